//! The in-sandbox agent as a library: configuration, the working copy, the agent API router,
//! threads on disk, the chat runtime and its stream, files, diff and commits, and `serve`.
#![doc = include_str!("../README.md")]

mod auth;
mod chat;
mod commands;
mod commits;
mod config;
pub mod credentials;
mod diff;
mod files;
mod history;
pub mod llm;
pub mod model;
mod routes;
pub mod store;
mod threads;
mod tools;
mod user;
pub mod workspace;

use std::future::Future;

pub use config::{AgentConfig, ConfigError};
pub use routes::{AgentOptions, AgentState, router};

/// Why the agent stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("serving the agent API failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the agent API on `listener` until `shutdown` resolves, then ends the open chat
/// streams, finishes the requests in flight and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // Before serving: a tool or file route must never see a half-made working copy. A failure
    // does not stop the agent (its health and threads still work); the file and git routes
    // then answer with the reason.
    if let Err(err) = workspace::prepare(&config).await {
        tracing::error!(
            origin = %config.workspace.display(),
            work_dir = %config.work_dir().display(),
            %err,
            "the working copy is unavailable"
        );
    }
    let state = AgentState::new(&config)?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(
            %addr,
            origin = %config.workspace.display(),
            work_dir = %config.work_dir().display(),
            data_dir = %config.data_dir.display(),
            "agent API listening"
        );
    }
    let streams = state.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            streams.close_streams();
        })
        .await?;
    Ok(())
}
