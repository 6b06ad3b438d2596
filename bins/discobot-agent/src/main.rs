//! The `discobot-agent` binary that runs inside each sandbox: configuration from the
//! environment, tracing to stderr, serve the agent API, stop gracefully on SIGTERM/SIGINT.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use discobot_agent::AgentConfig;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

/// How long requests in flight may take to finish after a stop signal.
const GRACE: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours only for a terminal: `docker logs` of a container without a TTY stays plain.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let config = AgentConfig::from_env().context("invalid configuration")?;
    // Installed before binding: as PID 1 in a container, a signal without a handler is ignored.
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;

    let addr = SocketAddr::new(config.host, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("could not listen on {addr}"))?;

    let parent_gone = stdin_lifeline();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(discobot_agent::serve(listener, config, async move {
        let _ = stopped.await;
    }));

    let reason = tokio::select! {
        result = &mut server => return Ok(result.context("agent server task")??),
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
        _ = parent_gone => "end of stdin (the server is gone)",
    };
    tracing::info!(reason, "shutting down");
    let _ = stop.send(());
    match tokio::time::timeout(GRACE, server).await {
        Ok(result) => result.context("agent server task")??,
        Err(_) => tracing::warn!("requests still running after {GRACE:?}; exiting anyway"),
    }
    Ok(())
}

/// With `DISCOBOT_EXIT_ON_STDIN_EOF=1` (the local provider sets it and holds the write end
/// of our stdin), completes when stdin closes: the server is gone, even if it was killed
/// with SIGKILL and could not stop us. Otherwise never completes.
async fn stdin_lifeline() {
    if std::env::var("DISCOBOT_EXIT_ON_STDIN_EOF").as_deref() != Ok("1") {
        return std::future::pending().await;
    }
    let (closed, on_closed) = tokio::sync::oneshot::channel::<()>();
    // A plain thread: a blocking read cannot be cancelled, and tokio's blocking pool would
    // make the runtime wait for it at exit.
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buffer = [0u8; 256];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut buffer) {
            if n == 0 {
                break;
            }
        }
        let _ = closed.send(());
    });
    let _ = on_closed.await;
}
