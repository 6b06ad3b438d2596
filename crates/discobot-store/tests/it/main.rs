//! Integration tests of the store, each on SQLite and on PostgreSQL.

mod common;

mod concurrency;
mod credentials;
mod events;
mod jobs;
mod members;
mod migrations;
mod preferences;
mod projects;
mod sessions;
mod sqlite;
mod workspaces;
