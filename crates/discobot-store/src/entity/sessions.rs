//! The `sessions` table; rows are soft-deleted (`deleted_at`) and their ids never reused.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub project_id: String,
    pub workspace_id: String,
    pub name: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub status: String,
    pub commit_status: Option<String>,
    pub commit_operation: Option<String>,
    pub commit_error: Option<String>,
    pub base_commit: Option<String>,
    pub applied_commit: Option<String>,
    pub error_message: Option<String>,
    pub workspace_path: Option<String>,
    pub workspace_commit: Option<String>,
    pub model: Option<String>,
    pub reasoning: Option<String>,
    pub mode: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
