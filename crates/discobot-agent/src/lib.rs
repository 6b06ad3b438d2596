//! The in-sandbox agent as a library: configuration, the agent API router, and `serve`.
#![doc = include_str!("../README.md")]

mod auth;
mod config;
mod routes;
mod user;

use std::future::Future;

pub use config::{AgentConfig, ConfigError};
pub use routes::{AgentState, router};

/// Why the agent stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("serving the agent API failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the agent API on `listener` until `shutdown` resolves, then finishes the requests in
/// flight and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let state = AgentState::new(&config)?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, workspace = %config.workspace.display(), "agent API listening");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
