//! The `prompt_submissions` table: chat prompts by (session, thread, client message id).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "prompt_submissions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub project_id: String,
    pub session_id: String,
    pub thread_id: String,
    pub client_message_id: String,
    pub payload_hash: String,
    pub status: String,
    pub completion_id: Option<String>,
    pub queued_prompt_id: Option<String>,
    pub result_status: Option<String>,
    pub error_message: Option<String>,
    pub payload_sealed: Option<Vec<u8>>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
