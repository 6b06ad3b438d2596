//! Credentials: the `settings` table (holds the encryption key check value), and the newer
//! columns of `session_credential_assignments` (session credential id, env var rebinding,
//! visibility in every context, approved uses).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Settings::Table)
                    .col(text(Settings::Key).primary_key())
                    .col(blob(Settings::Value))
                    .col(timestamp_with_time_zone(Settings::CreatedAt))
                    .col(timestamp_with_time_zone(Settings::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // SQLite takes one column per ALTER TABLE.
        let columns = [
            text_null(Assignments::SessionCredentialId),
            text_null(Assignments::EnvVar),
            text_null(Assignments::SourceEnvVar),
            boolean(Assignments::ConsoleVisible)
                .default(false)
                .to_owned(),
            boolean(Assignments::ServiceVisible)
                .default(false)
                .to_owned(),
            boolean(Assignments::HookVisible).default(false).to_owned(),
            text_null(Assignments::UsesJson),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Assignments::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            Assignments::UsesJson,
            Assignments::HookVisible,
            Assignments::ServiceVisible,
            Assignments::ConsoleVisible,
            Assignments::SourceEnvVar,
            Assignments::EnvVar,
            Assignments::SessionCredentialId,
        ];
        for column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Assignments::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(Settings::Table).if_exists().to_owned())
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    Key,
    Value,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Assignments {
    #[sea_orm(iden = "session_credential_assignments")]
    Table,
    SessionCredentialId,
    EnvVar,
    SourceEnvVar,
    ConsoleVisible,
    ServiceVisible,
    HookVisible,
    UsesJson,
}
