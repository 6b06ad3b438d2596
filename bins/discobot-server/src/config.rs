//! The server's configuration: every option is a flag, a `DISCOBOT_*` variable, and where
//! upstream has one, its variable name (`PORT`, `DATABASE_DSN`, …); the `DISCOBOT_` form
//! wins when both are set.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProviderChoice {
    Auto,
    Docker,
    Local,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// discobot: a self-hosted coding-agent session manager.
///
/// Every option can also be set with the environment variable shown; upstream's names
/// (PORT, DATABASE_DSN, WORKSPACE_DIR, …) are accepted too.
#[derive(Clone, Debug, Parser)]
#[command(name = "discobot-server", version, about, long_about = None)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "DISCOBOT_HOST", default_value = "0.0.0.0")]
    pub host: String,

    /// HTTP port [also: PORT].
    #[arg(long, env = "DISCOBOT_PORT", default_value_t = 3001)]
    pub port: u16,

    /// Directory for the database, workspaces and keys [default: the user's data dir + /discobot].
    #[arg(long, env = "DISCOBOT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Database URL: postgres://… or sqlite://<file> [also: DATABASE_DSN; default: SQLite in the data dir].
    #[arg(long, env = "DISCOBOT_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// PostgreSQL schema to use instead of the role's default search path (created when missing).
    #[arg(long, env = "DISCOBOT_DATABASE_SCHEMA")]
    pub database_schema: Option<String>,

    /// PostgreSQL connection pool size.
    #[arg(long, env = "DISCOBOT_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,

    /// Where git clones and automatic workspaces live [also: WORKSPACE_DIR; default: <data dir>/workspaces].
    #[arg(long, env = "DISCOBOT_WORKSPACE_DIR")]
    pub workspace_dir: Option<PathBuf>,

    /// Require sign-in (OIDC) [also: AUTH_ENABLED]. Not available in this version yet.
    #[arg(long, env = "DISCOBOT_AUTH_ENABLED", default_value_t = false, action = clap::ArgAction::Set)]
    pub auth_enabled: bool,

    /// Sandbox image for sessions [also: SANDBOX_IMAGE].
    #[arg(long, env = "DISCOBOT_SANDBOX_IMAGE", default_value = concat!("discobot-sandbox:", env!("CARGO_PKG_VERSION")))]
    pub sandbox_image: String,

    /// Sandbox provider: `auto` (Docker when a daemon answers, else `local` when the agent binary is found), `docker`, `local` (agents as child processes, no isolation), or `none`.
    #[arg(long, env = "DISCOBOT_SANDBOX_PROVIDER", value_enum, default_value_t = ProviderChoice::Auto)]
    pub sandbox_provider: ProviderChoice,

    /// Base of the sandbox image when it must be built [pulled if possible, else the base `cargo xtask sandbox-image` makes].
    #[arg(
        long,
        env = "DISCOBOT_SANDBOX_BASE_IMAGE",
        default_value = "debian:bookworm-slim"
    )]
    pub sandbox_base_image: String,

    /// The discobot-agent binary put into the sandbox image, or run by the local provider [default: next to this binary].
    #[arg(long, env = "DISCOBOT_AGENT_BINARY")]
    pub agent_binary: Option<PathBuf>,

    /// Memory limit per sandbox in MiB (0 = none).
    #[arg(long, env = "DISCOBOT_SANDBOX_MEMORY_MB", default_value_t = 0)]
    pub sandbox_memory_mb: u64,

    /// CPU limit per sandbox in cores (0 = none).
    #[arg(long, env = "DISCOBOT_SANDBOX_CPUS", default_value_t = 0.0)]
    pub sandbox_cpus: f64,

    /// Run sandboxes privileged (only needed for Docker inside a sandbox).
    #[arg(long, env = "DISCOBOT_SANDBOX_PRIVILEGED", default_value_t = false, action = clap::ArgAction::Set)]
    pub sandbox_privileged: bool,

    /// Docker network for sandboxes [also: DOCKER_NETWORK; default: the default bridge].
    #[arg(long, env = "DISCOBOT_DOCKER_NETWORK")]
    pub docker_network: Option<String>,

    /// Serve the Docker API of one project's sandboxes on 127.0.0.1 for debugging
    /// (`DOCKER_HOST=tcp://127.0.0.1:<port> docker ps`) [also: DEBUG_DOCKER].
    #[arg(long, env = "DISCOBOT_DEBUG_DOCKER", default_value_t = false, action = clap::ArgAction::Set)]
    pub debug_docker: bool,

    /// Port of the debug Docker proxy [also: DEBUG_DOCKER_PORT].
    #[arg(long, env = "DISCOBOT_DEBUG_DOCKER_PORT", default_value_t = 2375)]
    pub debug_docker_port: u16,

    /// The project whose sandboxes the debug Docker proxy serves.
    #[arg(long, env = "DISCOBOT_DEBUG_DOCKER_PROJECT", default_value = "local")]
    pub debug_docker_project: String,

    /// Stop a session's sandbox after this long without use; 0 disables [also: SANDBOX_IDLE_TIMEOUT].
    #[arg(long, env = "DISCOBOT_SANDBOX_IDLE_TIMEOUT", default_value = "1h", value_parser = humantime::parse_duration)]
    pub sandbox_idle_timeout: Duration,

    /// How often idle sandboxes are looked for [also: IDLE_CHECK_INTERVAL].
    #[arg(long, env = "DISCOBOT_IDLE_CHECK_INTERVAL", default_value = "5m", value_parser = humantime::parse_duration)]
    pub idle_check_interval: Duration,

    /// Key sealing credentials at rest: 64 hex characters or base64 of 32 bytes [also: ENCRYPTION_KEY; default: the key file <data dir>/encryption.key, created on first start].
    #[arg(long, env = "DISCOBOT_ENCRYPTION_KEY", hide_env_values = true, value_parser = SecretArg::parse)]
    pub encryption_key: Option<SecretArg>,

    /// Import credentials found in this process's environment (ANTHROPIC_API_KEY, OPENAI_API_KEY, …) into project `local` at start, for providers that have none.
    #[arg(long, env = "DISCOBOT_IMPORT_ENV_CREDENTIALS", default_value_t = true, action = clap::ArgAction::Set)]
    pub import_env_credentials: bool,

    /// Serve SSH access to sandboxes [also: SSH_ENABLED]. Not available in this version yet.
    #[arg(long, env = "DISCOBOT_SSH_ENABLED", default_value_t = false, action = clap::ArgAction::Set)]
    pub ssh_enabled: bool,

    /// SSH port [also: SSH_PORT].
    #[arg(long, env = "DISCOBOT_SSH_PORT", default_value_t = 3333)]
    pub ssh_port: u16,

    /// Public host name or base URL of the server [also: PUBLIC_HOSTNAME; default: http://localhost:<port>].
    #[arg(long, env = "DISCOBOT_PUBLIC_HOSTNAME")]
    pub public_hostname: Option<String>,

    /// Comma-separated CORS origins; `*.` matches subdomains [also: CORS_ORIGINS].
    #[arg(long, env = "DISCOBOT_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Offer directory suggestions of this machine's filesystem [also: SUGGESTIONS_ENABLED].
    #[arg(long, env = "DISCOBOT_SUGGESTIONS_ENABLED", default_value_t = false, action = clap::ArgAction::Set)]
    pub suggestions_enabled: bool,

    /// Run background jobs in this process [also: DISPATCHER_ENABLED].
    #[arg(long, env = "DISCOBOT_DISPATCHER_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub dispatcher_enabled: bool,

    /// How often the job queue is polled [also: DISPATCHER_POLL_INTERVAL].
    #[arg(long, env = "DISCOBOT_DISPATCHER_POLL_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub dispatcher_poll_interval: Duration,

    /// An attempt running longer than this fails [also: DISPATCHER_JOB_TIMEOUT].
    #[arg(long, env = "DISCOBOT_DISPATCHER_JOB_TIMEOUT", default_value = "20m", value_parser = humantime::parse_duration)]
    pub dispatcher_job_timeout: Duration,

    /// How long a claimed job stays claimed without renewal; a crashed server's jobs are
    /// taken over after this.
    #[arg(long, env = "DISCOBOT_JOB_LEASE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub job_lease: Duration,

    /// Delay before retrying a failed job, times the attempt number [also: JOB_RETRY_BACKOFF].
    #[arg(long, env = "DISCOBOT_JOB_RETRY_BACKOFF", default_value = "5s", value_parser = humantime::parse_duration)]
    pub job_retry_backoff: Duration,

    /// How long project events are kept.
    #[arg(long, env = "DISCOBOT_EVENT_RETENTION", default_value = "7days", value_parser = humantime::parse_duration)]
    pub event_retention: Duration,

    /// How often the event log is polled for other replicas' events.
    #[arg(long, env = "DISCOBOT_EVENT_POLL_INTERVAL", default_value = "250ms", value_parser = humantime::parse_duration)]
    pub event_poll_interval: Duration,

    /// Largest accepted request body in bytes.
    #[arg(long, env = "DISCOBOT_MAX_BODY_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Log format.
    #[arg(long, env = "DISCOBOT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Log filter (overridden by RUST_LOG) [also: LOG_LEVEL].
    #[arg(
        long,
        env = "DISCOBOT_LOG_LEVEL",
        default_value = "info,sqlx=warn,sea_orm=warn"
    )]
    pub log_level: String,

    /// Append logs to this file instead of stdout [also: LOG_FILE].
    #[arg(long, env = "DISCOBOT_LOG_FILE")]
    pub log_file: Option<PathBuf>,

    /// How long shutdown waits for running jobs and requests.
    #[arg(long, env = "DISCOBOT_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
}

/// A secret option value (the encryption key): kept as given, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretArg(String);

impl SecretArg {
    /// Accepts anything; the value is checked where it is used, by messages that do not
    /// repeat it (clap's own errors would).
    fn parse(text: &str) -> Result<SecretArg, std::convert::Infallible> {
        Ok(SecretArg(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `(flag, DISCOBOT_ name, upstream name)`: the upstream name is used when neither the
/// flag nor the `DISCOBOT_` variable is given.
const UPSTREAM_NAMES: &[(&str, &str, &str)] = &[
    ("port", "DISCOBOT_PORT", "PORT"),
    ("database-url", "DISCOBOT_DATABASE_URL", "DATABASE_DSN"),
    ("workspace-dir", "DISCOBOT_WORKSPACE_DIR", "WORKSPACE_DIR"),
    ("auth-enabled", "DISCOBOT_AUTH_ENABLED", "AUTH_ENABLED"),
    ("sandbox-image", "DISCOBOT_SANDBOX_IMAGE", "SANDBOX_IMAGE"),
    ("ssh-enabled", "DISCOBOT_SSH_ENABLED", "SSH_ENABLED"),
    (
        "encryption-key",
        "DISCOBOT_ENCRYPTION_KEY",
        "ENCRYPTION_KEY",
    ),
    (
        "docker-network",
        "DISCOBOT_DOCKER_NETWORK",
        "DOCKER_NETWORK",
    ),
    ("debug-docker", "DISCOBOT_DEBUG_DOCKER", "DEBUG_DOCKER"),
    (
        "debug-docker-port",
        "DISCOBOT_DEBUG_DOCKER_PORT",
        "DEBUG_DOCKER_PORT",
    ),
    (
        "sandbox-idle-timeout",
        "DISCOBOT_SANDBOX_IDLE_TIMEOUT",
        "SANDBOX_IDLE_TIMEOUT",
    ),
    (
        "idle-check-interval",
        "DISCOBOT_IDLE_CHECK_INTERVAL",
        "IDLE_CHECK_INTERVAL",
    ),
    ("ssh-port", "DISCOBOT_SSH_PORT", "SSH_PORT"),
    (
        "public-hostname",
        "DISCOBOT_PUBLIC_HOSTNAME",
        "PUBLIC_HOSTNAME",
    ),
    ("cors-origins", "DISCOBOT_CORS_ORIGINS", "CORS_ORIGINS"),
    (
        "suggestions-enabled",
        "DISCOBOT_SUGGESTIONS_ENABLED",
        "SUGGESTIONS_ENABLED",
    ),
    (
        "dispatcher-enabled",
        "DISCOBOT_DISPATCHER_ENABLED",
        "DISPATCHER_ENABLED",
    ),
    (
        "dispatcher-poll-interval",
        "DISCOBOT_DISPATCHER_POLL_INTERVAL",
        "DISPATCHER_POLL_INTERVAL",
    ),
    (
        "dispatcher-job-timeout",
        "DISCOBOT_DISPATCHER_JOB_TIMEOUT",
        "DISPATCHER_JOB_TIMEOUT",
    ),
    (
        "job-retry-backoff",
        "DISCOBOT_JOB_RETRY_BACKOFF",
        "JOB_RETRY_BACKOFF",
    ),
    ("log-level", "DISCOBOT_LOG_LEVEL", "LOG_LEVEL"),
    ("log-file", "DISCOBOT_LOG_FILE", "LOG_FILE"),
];

impl Config {
    /// Parses the process's arguments and environment; exits with usage on bad input.
    pub fn load() -> Config {
        let args = with_upstream_names(std::env::args_os().collect(), |name| {
            std::env::var_os(name).filter(|value| !value.is_empty())
        });
        Config::parse_from(args)
    }

    /// The data directory: `--data-dir`, else the user's data dir + `/discobot`.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| {
            dirs::data_dir()
                .unwrap_or_else(|| PathBuf::from("."))
                .join("discobot")
        })
    }

    /// The agent binary: `--agent-binary`, else `discobot-agent` next to this executable
    /// (or one directory up, where cargo puts binaries when tests run).
    pub fn agent_binary(&self) -> Option<PathBuf> {
        if let Some(path) = &self.agent_binary {
            return Some(path.clone());
        }
        let exe = std::env::current_exe().ok()?;
        let dir = exe.parent()?;
        [
            dir.join("discobot-agent"),
            dir.parent()?.join("discobot-agent"),
        ]
        .into_iter()
        .find(|path| path.is_file())
    }

    pub fn workspace_dir(&self) -> PathBuf {
        self.workspace_dir
            .clone()
            .unwrap_or_else(|| self.data_dir().join("workspaces"))
    }

    /// The database URL, defaulting to a SQLite file in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir().join("discobot.db").display()),
        }
    }

    pub fn public_base_url(&self) -> String {
        match self
            .public_hostname
            .as_deref()
            .map(str::trim)
            .filter(|host| !host.is_empty())
        {
            None => format!("http://localhost:{}", self.port),
            Some(host) if host.contains("://") => host.trim_end_matches('/').to_owned(),
            Some(host) => {
                let loopback = ["localhost", "127.0.0.1", "[::1]"]
                    .iter()
                    .any(|loopback| host == *loopback || host.starts_with(&format!("{loopback}:")));
                let scheme = if loopback { "http" } else { "https" };
                format!("{scheme}://{host}")
            }
        }
    }

    /// Upstream's default UI origins unless `--cors-origins` is given.
    pub fn cors_origins(&self) -> Vec<String> {
        let origins: Vec<String> = self
            .cors_origins
            .iter()
            .map(|o| o.trim().to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        if !origins.is_empty() {
            return origins
                .into_iter()
                .map(|origin| origin.replace("{HTTP_PORT}", &self.port.to_string()))
                .filter(|origin| !origin.contains("{HTTPS_PORT}"))
                .collect();
        }
        let port = self.port;
        vec![
            format!("http://localhost:{port}"),
            format!("http://*.localhost:{port}"),
            "http://localhost:3000".into(),
            "http://*.localhost:3000".into(),
            "http://localhost:3100".into(),
            "http://*.localhost:3100".into(),
        ]
    }
}

/// Appends `--flag=value` for upstream variables whose option was not given otherwise.
fn with_upstream_names(
    mut args: Vec<OsString>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Vec<OsString> {
    for (flag, discobot_name, upstream_name) in UPSTREAM_NAMES {
        let long = format!("--{flag}");
        let given_as_flag = args.iter().any(|arg| {
            let arg = arg.to_string_lossy();
            arg == long || arg.starts_with(&format!("{long}="))
        });
        if given_as_flag || env(discobot_name).is_some() {
            continue;
        }
        if let Some(value) = env(upstream_name) {
            let mut arg = OsString::from(format!("{long}="));
            arg.push(value);
            args.push(arg);
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Config {
        let args = args.iter().map(OsString::from).collect();
        let lookup = |name: &str| {
            env.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| OsString::from(value))
        };
        Config::try_parse_from(with_upstream_names(args, lookup)).unwrap()
    }

    #[test]
    fn upstream_names_apply_when_ours_are_absent() {
        let config = parse(
            &["discobot-server"],
            &[("PORT", "4000"), ("DATABASE_DSN", "postgres://x")],
        );
        assert_eq!(config.port, 4000);
        assert_eq!(config.database_url.as_deref(), Some("postgres://x"));
    }

    #[test]
    fn flags_win_over_upstream_names() {
        let config = parse(&["discobot-server", "--port", "5000"], &[("PORT", "4000")]);
        assert_eq!(config.port, 5000);
    }

    #[test]
    fn defaults() {
        let config = parse(&["discobot-server", "--data-dir", "/tmp/d"], &[]);
        assert_eq!(config.port, 3001);
        assert_eq!(config.database_url(), "sqlite:///tmp/d/discobot.db");
        assert_eq!(config.workspace_dir(), PathBuf::from("/tmp/d/workspaces"));
        assert_eq!(config.public_base_url(), "http://localhost:3001");
    }

    #[test]
    fn debug_docker_is_opt_in() {
        let config = parse(&["x"], &[]);
        assert!(!config.debug_docker);
        assert_eq!(config.debug_docker_port, 2375);
        assert_eq!(config.debug_docker_project, "local");
        let config = parse(
            &["x"],
            &[("DEBUG_DOCKER", "true"), ("DEBUG_DOCKER_PORT", "2400")],
        );
        assert!(config.debug_docker);
        assert_eq!(config.debug_docker_port, 2400);
    }

    #[test]
    fn public_hostname_schemes() {
        let config = parse(&["x", "--public-hostname", "example.com"], &[]);
        assert_eq!(config.public_base_url(), "https://example.com");
        let config = parse(&["x", "--public-hostname", "localhost:8080"], &[]);
        assert_eq!(config.public_base_url(), "http://localhost:8080");
    }

    #[test]
    fn encryption_key_is_read_and_never_shown() {
        let key = "ab".repeat(32);
        let config = parse(&["x"], &[("ENCRYPTION_KEY", &key)]);
        assert_eq!(
            config.encryption_key.as_ref().map(SecretArg::expose),
            Some(key.as_str())
        );
        assert!(!format!("{config:?}").contains(&key));
        let ours = "cd".repeat(32);
        let config = parse(
            &["x"],
            &[("ENCRYPTION_KEY", &key), ("DISCOBOT_ENCRYPTION_KEY", &ours)],
        );
        // The DISCOBOT_ variable wins (clap reads it itself; the test lookup does not).
        assert_eq!(config.encryption_key, None);
        let config = parse(&["x", "--encryption-key", &ours], &[]);
        assert_eq!(
            config.encryption_key.as_ref().map(SecretArg::expose),
            Some(ours.as_str())
        );
        assert!(config.import_env_credentials);
    }
}
