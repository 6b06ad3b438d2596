//! The in-sandbox agent as a library: configuration, the agent API router, threads on disk,
//! the chat runtime and its stream, and `serve`.
#![doc = include_str!("../README.md")]

mod auth;
mod chat;
mod config;
pub mod credentials;
mod history;
pub mod llm;
pub mod model;
mod routes;
pub mod store;
mod threads;
mod tools;
mod user;

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
    let state = AgentState::new(&config)?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(
            %addr,
            workspace = %config.workspace.display(),
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
