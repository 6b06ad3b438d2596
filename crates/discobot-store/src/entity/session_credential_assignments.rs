//! The `session_credential_assignments` table: per-session credential visibility, env var
//! rebinding and approved uses.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "session_credential_assignments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub session_id: String,
    pub credential_id: String,
    pub agent_visible: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub session_credential_id: Option<String>,
    pub env_var: Option<String>,
    pub source_env_var: Option<String>,
    pub console_visible: bool,
    pub service_visible: bool,
    pub hook_visible: bool,
    pub uses_json: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
