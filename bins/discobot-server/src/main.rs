//! `discobot-server`: parse the configuration, set up logging, run until a signal.

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let config = discobot_server::config::Config::load();
    discobot_server::logging::init(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async move {
        let server = discobot_server::Server::start(config).await?;
        server.run_until(discobot_server::shutdown_signal()).await
    })
}
