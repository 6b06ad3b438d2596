//! Log setup: human-readable or JSON lines on stdout, or appended to `LOG_FILE`.

use std::fs::OpenOptions;
use std::sync::Mutex;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

pub fn init(config: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .context("invalid log filter")?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match (&config.log_file, config.log_format) {
        (Some(path), format) => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).ok();
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?;
            let builder = builder.with_ansi(false).with_writer(Mutex::new(file));
            match format {
                LogFormat::Json => builder.json().try_init(),
                LogFormat::Human => builder.try_init(),
            }
        }
        (None, LogFormat::Json) => builder.json().try_init(),
        (None, LogFormat::Human) => builder.try_init(),
    };
    // A second init (tests starting several servers in one process) keeps the first.
    let _ = result;
    Ok(())
}
