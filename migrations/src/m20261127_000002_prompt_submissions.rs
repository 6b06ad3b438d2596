//! `prompt_submissions`: one row per chat prompt a client sent (keyed by session, thread and
//! the client's message id), so a repeated POST answers the recorded result instead of
//! starting a second turn. Holds a hash of the payload, never the messages.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PromptSubmissions {
    Table,
    Id,
    ProjectId,
    SessionId,
    ThreadId,
    ClientMessageId,
    PayloadHash,
    Status,
    CompletionId,
    QueuedPromptId,
    ResultStatus,
    ErrorMessage,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PromptSubmissions::Table)
                    .col(text(PromptSubmissions::Id).primary_key())
                    .col(text(PromptSubmissions::ProjectId))
                    .col(text(PromptSubmissions::SessionId))
                    .col(text(PromptSubmissions::ThreadId))
                    .col(text(PromptSubmissions::ClientMessageId))
                    .col(text(PromptSubmissions::PayloadHash))
                    .col(text(PromptSubmissions::Status))
                    .col(text_null(PromptSubmissions::CompletionId))
                    .col(text_null(PromptSubmissions::QueuedPromptId))
                    .col(text_null(PromptSubmissions::ResultStatus))
                    .col(text_null(PromptSubmissions::ErrorMessage))
                    .col(timestamp_with_time_zone(PromptSubmissions::CreatedAt))
                    .col(timestamp_with_time_zone(PromptSubmissions::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_prompt_submission_key")
                    .table(PromptSubmissions::Table)
                    .col(PromptSubmissions::SessionId)
                    .col(PromptSubmissions::ThreadId)
                    .col(PromptSubmissions::ClientMessageId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PromptSubmissions::Table).to_owned())
            .await
    }
}
