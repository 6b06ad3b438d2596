//! `discobot-server`: parse the configuration, set up logging, run until a signal.

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    tune_allocator();
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

/// glibc gives every thread that allocates its own arena and keeps freed memory in them;
/// with the database driver's threads that left an idle server at ~35 MB after a burst of
/// large responses. Two arenas and a lower trim threshold keep it near 26 MB, measured with
/// `cargo xtask bench api`, at no cost in throughput on small machines.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(
    unsafe_code,
    reason = "mallopt is a plain libc call made before any thread starts"
)]
fn tune_allocator() {
    // SAFETY: called first thing in main, before other threads exist; mallopt only changes
    // allocator parameters and returns 0 on failure, which we may ignore.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}
