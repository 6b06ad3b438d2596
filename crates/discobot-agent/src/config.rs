//! The agent's configuration, read from its environment (the sandbox provider sets it).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// Where the agent listens, how it checks callers, and where the workspace is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// `DISCOBOT_HOST`, default `0.0.0.0` (the container's published port needs it; the local
    /// provider passes `127.0.0.1`).
    pub host: IpAddr,
    /// `DISCOBOT_PORT`, default 3002.
    pub port: u16,
    /// `DISCOBOT_SECRET`: `hex(salt):hex(sha256(salt || raw))`. `None` (unset or empty)
    /// disables authentication.
    pub secret_hash: Option<String>,
    /// `WORKSPACE_ORIGIN_PATH`, default `/.workspace`: the origin the working copy is cloned
    /// from (read-only in a container; the agent never writes it).
    pub workspace: PathBuf,
    /// `WORKSPACE_COMMIT`: the commit the working copy starts from; `None` keeps the origin's
    /// checked-out commit.
    pub workspace_commit: Option<String>,
    /// `DISCOBOT_DATA_DIR`, default `/.data`: the agent's own state (threads under `threads/`).
    pub data_dir: PathBuf,
    /// `DISCOBOT_AGENT_CWD`: the working copy the agent, its tools and the file routes work
    /// in; `None` means `{data_dir}/workspace` (see [`AgentConfig::work_dir`]).
    pub work_dir: Option<PathBuf>,
}

/// A configuration value the agent cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("DISCOBOT_PORT={0:?} is not a port number")]
    Port(String),
    #[error("DISCOBOT_HOST={0:?} is not an IP address")]
    Host(String),
    /// Refusing to start beats silently running without auth.
    #[error("DISCOBOT_SECRET: {0}")]
    Secret(#[from] discobot_agent_api::MalformedSecretHash),
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 3002,
            secret_hash: None,
            workspace: PathBuf::from("/.workspace"),
            workspace_commit: None,
            data_dir: PathBuf::from("/.data"),
            work_dir: None,
        }
    }
}

impl AgentConfig {
    /// The working copy: `DISCOBOT_AGENT_CWD`, else `{data_dir}/workspace`.
    pub fn work_dir(&self) -> PathBuf {
        self.work_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("workspace"))
    }

    /// The configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// The configuration from `var` (a name → value lookup); empty values count as unset.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        let mut config = Self::default();
        if let Some(host) = var("DISCOBOT_HOST") {
            config.host = host.trim().parse().map_err(|_| ConfigError::Host(host))?;
        }
        if let Some(port) = var("DISCOBOT_PORT") {
            config.port = port.trim().parse().map_err(|_| ConfigError::Port(port))?;
        }
        if let Some(secret) = var("DISCOBOT_SECRET") {
            discobot_agent_api::SecretHash::parse(&secret)?;
            config.secret_hash = Some(secret.trim().to_owned());
        }
        if let Some(workspace) = var("WORKSPACE_ORIGIN_PATH") {
            config.workspace = PathBuf::from(workspace);
        }
        if let Some(commit) = var("WORKSPACE_COMMIT") {
            config.workspace_commit = Some(commit.trim().to_owned());
        }
        if let Some(data_dir) = var("DISCOBOT_DATA_DIR") {
            config.data_dir = PathBuf::from(data_dir);
        }
        if let Some(work_dir) = var("DISCOBOT_AGENT_CWD") {
            config.work_dir = Some(PathBuf::from(work_dir));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<AgentConfig, ConfigError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AgentConfig::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults() {
        let config = from(&[]).unwrap();
        assert_eq!(config, AgentConfig::default());
        assert_eq!(config.port, 3002);
        assert_eq!(config.host.to_string(), "0.0.0.0");
        assert_eq!(config.secret_hash, None);
        assert_eq!(config.workspace, PathBuf::from("/.workspace"));
        assert_eq!(config.data_dir, PathBuf::from("/.data"));
        assert_eq!(config.workspace_commit, None);
        assert_eq!(config.work_dir(), PathBuf::from("/.data/workspace"));
        let moved = from(&[("DISCOBOT_DATA_DIR", "/tmp/data")]).unwrap();
        assert_eq!(moved.work_dir(), PathBuf::from("/tmp/data/workspace"));
    }

    #[test]
    fn reads_every_variable() {
        let hash = discobot_agent_api::secret::salted_hash("raw", &[1; 16]);
        let config = from(&[
            ("DISCOBOT_HOST", "127.0.0.1"),
            ("DISCOBOT_PORT", "4100"),
            ("DISCOBOT_SECRET", &hash),
            ("WORKSPACE_ORIGIN_PATH", "/tmp/ws"),
            ("DISCOBOT_DATA_DIR", "/tmp/data"),
            ("DISCOBOT_AGENT_CWD", "/tmp/cwd"),
            ("WORKSPACE_COMMIT", "abc123"),
        ])
        .unwrap();
        assert_eq!(config.work_dir(), PathBuf::from("/tmp/cwd"));
        assert_eq!(config.workspace_commit.as_deref(), Some("abc123"));
        assert_eq!(config.host.to_string(), "127.0.0.1");
        assert_eq!(config.port, 4100);
        assert_eq!(config.secret_hash.as_deref(), Some(hash.as_str()));
        assert_eq!(config.workspace, PathBuf::from("/tmp/ws"));
        assert_eq!(config.data_dir, PathBuf::from("/tmp/data"));
    }

    #[test]
    fn empty_secret_disables_auth() {
        assert_eq!(from(&[("DISCOBOT_SECRET", "")]).unwrap().secret_hash, None);
        assert_eq!(
            from(&[("DISCOBOT_SECRET", "  ")]).unwrap().secret_hash,
            None
        );
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(matches!(
            from(&[("DISCOBOT_PORT", "http")]),
            Err(ConfigError::Port(_))
        ));
        assert!(matches!(
            from(&[("DISCOBOT_PORT", "70000")]),
            Err(ConfigError::Port(_))
        ));
        assert!(matches!(
            from(&[("DISCOBOT_HOST", "localhost")]),
            Err(ConfigError::Host(_))
        ));
        assert!(matches!(
            from(&[("DISCOBOT_SECRET", "not-a-hash")]),
            Err(ConfigError::Secret(_))
        ));
    }
}
