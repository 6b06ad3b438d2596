//! What every handler can reach: the use cases, live event streams, server facts for the
//! meta routes, and the shutdown signal for long-lived streams.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use discobot_core::ids::ProjectId;

use discobot_core::App;
use discobot_core::ports::EventSubscriber;
use tokio_util::sync::CancellationToken;

/// Shared state of the router; cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<StateInner>);

pub(crate) struct StateInner {
    pub(crate) app: Arc<App>,
    pub(crate) events: Arc<dyn EventSubscriber>,
    pub(crate) info: ServerInfo,
    pub(crate) streams: CancellationToken,
    /// Serialised session lists by project, with the version they were read at: the list
    /// is the API's hottest read and is re-serialised only after something changed.
    pub(crate) session_lists: Mutex<HashMap<ProjectId, (i64, Bytes)>>,
}

/// A note, warning or error shown by `GET /api/status`.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusMessage {
    pub id: String,
    /// `info`, `warn` or `error` (only `error` makes the status not `ok`).
    pub level: String,
    pub title: String,
    pub message: String,
}

/// Facts about the running server, for the meta routes. Holds no secrets.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    pub version: String,
    pub http_port: u16,
    pub public_base_url: String,
    /// `sqlite` or `postgres`.
    pub database_driver: String,
    pub auth_enabled: bool,
    pub workspace_dir: PathBuf,
    pub sandbox_image: String,
    pub ssh_enabled: bool,
    pub ssh_port: u16,
    pub dispatcher_enabled: bool,
    /// The server's log file, when it writes one (`LOG_FILE`).
    pub log_path: Option<PathBuf>,
    /// Checks made at start-up (missing git, no Docker, …).
    pub startup_messages: Vec<StatusMessage>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Origins allowed by CORS; `*.` matches any subdomain.
    pub cors_origins: Vec<String>,
}

impl AppState {
    pub fn new(app: Arc<App>, events: Arc<dyn EventSubscriber>, info: ServerInfo) -> Self {
        AppState(Arc::new(StateInner {
            app,
            events,
            info,
            streams: CancellationToken::new(),
            session_lists: Mutex::new(HashMap::new()),
        }))
    }

    /// Ends every long-lived stream (event SSE, later chat and terminals) so that a
    /// graceful shutdown does not wait for clients that never hang up.
    pub fn begin_shutdown(&self) {
        self.0.streams.cancel();
    }

    pub fn app(&self) -> &Arc<App> {
        &self.0.app
    }
}
