//! The `credentials` table (sealed secrets per project and provider).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credentials")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub project_id: String,
    pub provider: String,
    pub name: String,
    pub description: Option<String>,
    pub auth_type: String,
    pub encrypted_data: Option<Vec<u8>>,
    pub is_configured: bool,
    pub inactive: bool,
    pub agent_visible: bool,
    pub console_visible: bool,
    pub service_visible: bool,
    pub hook_visible: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
