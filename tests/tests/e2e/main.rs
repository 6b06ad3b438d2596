//! End-to-end tests: the real server over real HTTP, on SQLite and PostgreSQL.
//!
//! Each scenario runs against a fresh server (temporary data dir; a fresh PostgreSQL schema
//! for the `_postgres` variants, which need `DISCOBOT_TEST_DATABASE_URL`).

mod agent_credentials;
mod ai_sdk_client;
mod bad_input;
mod chat;
mod commit;
mod common;
mod credentials;
mod docker_chat;
mod events;
mod idle;
mod local_sandbox;
mod meta;
mod openapi;
mod projects;
mod replicas;
mod sandbox;
mod sessions;
mod workspace_git;
mod workspaces;
mod ws;
