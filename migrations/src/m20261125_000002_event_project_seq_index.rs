//! Index `project_events(project_id, seq)`: the per-project "latest event" lookup that
//! versions cached session lists.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_project_events_project_seq")
                    .table(Alias::new("project_events"))
                    .col(Alias::new("project_id"))
                    .col(Alias::new("seq"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_project_events_project_seq")
                    .table(Alias::new("project_events"))
                    .to_owned(),
            )
            .await
    }
}
