//! `discobot-fake-llm`: serves the scripted fake LLM on one address until SIGTERM or ctrl-c.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use discobot_fake_llm::{FakeLlm, parse_script};
use tokio::signal::unix::{SignalKind, signal};

/// A fake Anthropic and OpenAI API that answers from a script.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The one address to listen on: loopback, or the Docker bridge gateway for containers.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// A JSON file of replies (an array, or one reply) queued before serving.
    #[arg(long)]
    script: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let replies = match &args.script {
        Some(path) => {
            let json = std::fs::read(path)
                .with_context(|| format!("could not read the script {}", path.display()))?;
            parse_script(&json).with_context(|| format!("in the script {}", path.display()))?
        }
        None => Vec::new(),
    };
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;

    let fake = FakeLlm::start(args.listen).await?;
    let queued = replies.len();
    fake.push_all(replies);
    // The first stdout line is the contract with whoever started us: they read the port here.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", fake.addr()).context("writing to stdout")?;
    stdout.flush().context("writing to stdout")?;
    drop(stdout);
    tracing::info!(addr = %fake.addr(), queued, "fake LLM serving");

    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    tracing::info!("shutting down");
    fake.shutdown().await?;
    Ok(())
}
