//! The database schema of discobot as sea-orm migrations, for SQLite and PostgreSQL alike.
#![doc = include_str!("../README.md")]

use sea_orm_migration::prelude::*;

pub use sea_orm_migration::MigratorTrait;

mod m20261125_000001_initial;
mod m20261125_000002_event_project_seq_index;
mod m20261126_000001_credentials;
mod m20261127_000001_session_chat_settings;
mod m20261127_000002_prompt_submissions;
mod m20261127_000003_prompt_payload;

/// Every migration, oldest first. Append new ones at the end; never edit an applied one.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_initial::Migration),
            Box::new(m20261125_000002_event_project_seq_index::Migration),
            Box::new(m20261126_000001_credentials::Migration),
            Box::new(m20261127_000001_session_chat_settings::Migration),
            Box::new(m20261127_000002_prompt_submissions::Migration),
            Box::new(m20261127_000003_prompt_payload::Migration),
        ]
    }
}
