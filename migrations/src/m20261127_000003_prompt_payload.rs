//! `prompt_submissions.payload_sealed`: the prompt's messages, model, reasoning and mode,
//! sealed like credentials, kept until the agent accepts it so a `prompt_dispatch` job can
//! deliver it later.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PromptSubmissions {
    Table,
    PayloadSealed,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(PromptSubmissions::Table)
                    .add_column(blob_null(PromptSubmissions::PayloadSealed))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(PromptSubmissions::Table)
                    .drop_column(PromptSubmissions::PayloadSealed)
                    .to_owned(),
            )
            .await
    }
}
