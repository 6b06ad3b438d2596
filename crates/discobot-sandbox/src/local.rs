//! The local provider: each session's agent is a child process of the server, started in the
//! workspace folder on a free loopback port; commands and terminals run on the host.
//!
//! There is no isolation: the agent, `exec` and terminals run as the server's user. The agent
//! works in its own clone of the workspace folder (`<data dir>/<session id>/workspace`), where
//! `exec` and terminals run too; the workspace folder itself is only read. It is the fallback
//! for machines without Docker.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use discobot_core::ids::SessionId;
use discobot_core::model::{Session, Workspace};
use discobot_core::ports::{
    AgentEndpoint, ExecOutput, ProviderStatus, PtyRequest, SandboxEvent, SandboxEvents,
    SandboxInfo, SandboxPort, SandboxState, TerminalAttachment, TerminalHub,
};
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, watch};

use crate::error::SandboxError;
use crate::secret;
use crate::terminal::{PtyControl, StartedPty, Terminals};

/// The image name local sandboxes report.
pub const LOCAL_IMAGE: &str = "local";

/// How much of an agent's stderr is kept to explain why it exited.
const STDERR_TAIL_BYTES: usize = 4096;

/// Variables of the server's environment the agent does not inherit: the server's own
/// configuration (`DISCOBOT_*`, which would also clash with the agent's `DISCOBOT_PORT` and
/// `DISCOBOT_HOST`), its database and its encryption key, and the per-session variables set
/// here.
const NOT_INHERITED: &[&str] = &[
    "ENCRYPTION_KEY",
    "DATABASE_DSN",
    "SESSION_ID",
    "WORKSPACE_ORIGIN_PATH",
    "WORKSPACE_SOURCE",
    "WORKSPACE_COMMIT",
];

/// Settings of the local provider.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// The `discobot-agent` binary; `None` when none was found.
    pub agent_binary: Option<PathBuf>,
    /// How long a new agent gets to answer `/health`.
    pub health_timeout: Duration,
    /// Why this provider is in use (for example "no Docker daemon answers"), shown as the
    /// message of its status.
    pub reason: Option<String>,
    /// Where each session's agent keeps its own state (threads): `<data_dir>/<session id>`,
    /// the local counterpart of a container's data volume.
    pub data_dir: PathBuf,
}

/// Sessions' sandboxes as child processes of the server.
pub struct LocalProvider {
    config: LocalConfig,
    http: reqwest::Client,
    shared: Arc<Shared>,
    /// Serialises start per session so two callers never start two agents for one session.
    session_locks: Mutex<HashMap<SessionId, Arc<tokio::sync::Mutex<()>>>>,
    terminals: Arc<Terminals>,
    next_run: AtomicU64,
}

/// What the provider and the tasks watching its children share.
struct Shared {
    sandboxes: Mutex<HashMap<SessionId, Sandbox>>,
    events: broadcast::Sender<SandboxEvent>,
}

/// One session's sandbox: the agent's current (or last) run and what it needs to restart.
struct Sandbox {
    /// The workspace folder: the agent's origin, which it clones and never writes.
    work_dir: PathBuf,
    /// The agent's working copy (`DISCOBOT_AGENT_CWD`, `<data dir>/workspace`): where `exec`
    /// and terminals run, so they see what the agent and its tools changed.
    agent_cwd: PathBuf,
    /// The raw shared secret: the bearer token of the agent, which only gets its hash.
    secret: String,
    /// The session's variables, given to the agent, `exec` and terminals.
    env: Vec<(String, String)>,
    created_at: DateTime<Utc>,
    state: SandboxState,
    started_at: Option<DateTime<Utc>>,
    stopped_at: Option<DateTime<Utc>>,
    error: Option<String>,
    run: Option<Run>,
}

/// One started agent process.
struct Run {
    id: u64,
    port: u16,
    pid: Option<u32>,
    signals: mpsc::UnboundedSender<Signal>,
    /// Becomes `true` once the process exited and the sandbox's state says how.
    exited: watch::Receiver<bool>,
    /// Stopped on purpose: whatever the exit status, the sandbox is `stopped`.
    stop_requested: bool,
    /// Why the provider gave up on it (no health in time); wins over the exit status.
    failure: Option<String>,
}

enum Signal {
    Terminate,
    Kill,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Whole-value inserts and updates only: a panic elsewhere leaves the data consistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LocalProvider {
    pub fn new(config: LocalConfig) -> Result<Arc<Self>, SandboxError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|error| SandboxError::Other(error.to_string()))?;
        let (events, _) = broadcast::channel(256);
        Ok(Arc::new(LocalProvider {
            config,
            http,
            shared: Arc::new(Shared {
                sandboxes: Mutex::new(HashMap::new()),
                events,
            }),
            session_locks: Mutex::new(HashMap::new()),
            terminals: Arc::default(),
            next_run: AtomicU64::new(1),
        }))
    }

    /// The agent binary, when it exists.
    fn binary(&self) -> Result<&Path, SandboxError> {
        match self.config.agent_binary.as_deref() {
            Some(path) if path.is_file() => Ok(path),
            Some(path) => Err(SandboxError::ProviderUnavailable(format!(
                "the agent binary {} does not exist (build it with `cargo build -p \
                 discobot-agent-bin`, or set --agent-binary)",
                path.display()
            ))),
            None => Err(SandboxError::ProviderUnavailable(
                "no discobot-agent binary was found next to the server (build it with `cargo \
                 build -p discobot-agent-bin`, or set --agent-binary)"
                    .into(),
            )),
        }
    }

    fn session_lock(&self, session: &SessionId) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.session_locks)
            .entry(session.clone())
            .or_default()
            .clone()
    }

    /// The address of a running sandbox's agent and the raw secret for it.
    pub async fn agent_endpoint(
        &self,
        session: &SessionId,
    ) -> Result<(String, String), SandboxError> {
        let sandboxes = lock(&self.shared.sandboxes);
        let sandbox = sandboxes
            .get(session)
            .ok_or_else(|| SandboxError::NotFound(format!("sandbox of session {session}")))?;
        match (&sandbox.run, sandbox.state) {
            (Some(run), SandboxState::Running) => Ok((
                format!("http://127.0.0.1:{}", run.port),
                sandbox.secret.clone(),
            )),
            _ => Err(SandboxError::Other(format!(
                "the sandbox of session {session} is not running"
            ))),
        }
    }

    /// The process id of the session's agent while it runs.
    pub fn agent_pid(&self, session: &SessionId) -> Option<u32> {
        let sandboxes = lock(&self.shared.sandboxes);
        let sandbox = sandboxes.get(session)?;
        let run = sandbox.run.as_ref()?;
        (!*run.exited.borrow()).then_some(run.pid).flatten()
    }

    /// Stops every agent and terminal; the server calls this when it exits.
    pub async fn shutdown(&self, timeout: Duration) {
        self.terminals.close_all();
        let sessions: Vec<SessionId> = lock(&self.shared.sandboxes).keys().cloned().collect();
        let stops = sessions
            .iter()
            .map(|session| self.stop_agent(session, timeout));
        futures::future::join_all(stops).await;
        lock(&self.shared.sandboxes).clear();
    }

    fn session_data_dir(&self, session: &SessionId) -> PathBuf {
        self.config.data_dir.join(session.as_str())
    }

    /// Records a session's sandbox without starting it; `false` when one exists already.
    fn record(&self, session: &Session, workspace: &Workspace, work_dir: &Path) -> bool {
        let mut sandboxes = lock(&self.shared.sandboxes);
        if sandboxes.contains_key(&session.id) {
            return false;
        }
        let data_dir = self.session_data_dir(&session.id);
        let agent_cwd = data_dir.join("workspace");
        sandboxes.insert(
            session.id.clone(),
            Sandbox {
                work_dir: work_dir.to_owned(),
                agent_cwd: agent_cwd.clone(),
                secret: secret::generate(),
                env: {
                    let mut env = session_env(session, workspace, work_dir);
                    env.push((
                        "DISCOBOT_DATA_DIR".to_owned(),
                        data_dir.display().to_string(),
                    ));
                    env.push((
                        "DISCOBOT_AGENT_CWD".to_owned(),
                        agent_cwd.display().to_string(),
                    ));
                    env
                },
                created_at: Utc::now(),
                state: SandboxState::Created,
                started_at: None,
                stopped_at: None,
                error: None,
                run: None,
            },
        );
        true
    }

    /// Starts the recorded sandbox's agent (unless it runs) and waits for its health; retries
    /// with another port when the one picked was taken meanwhile. The caller holds the
    /// session's lock.
    async fn start_recorded(&self, session: &SessionId) -> Result<(), SandboxError> {
        if let Some(exited) = live_run(&self.shared, session) {
            return self.wait_healthy(session, exited).await;
        }
        let binary = self.binary()?.to_owned();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let exited = self.spawn(&binary, session)?;
            match self.wait_healthy(session, exited).await {
                Err(SandboxError::Unhealthy(message))
                    if attempts < 3 && message.contains("could not listen") =>
                {
                    tracing::debug!(session.id = %session, %message, "agent port taken; retrying");
                }
                result => return result,
            }
        }
    }

    /// Spawns the recorded sandbox's agent and the task that watches it; records the run.
    fn spawn(
        &self,
        binary: &Path,
        session: &SessionId,
    ) -> Result<watch::Receiver<bool>, SandboxError> {
        let port = free_port()?;
        let (work_dir, secret, env) = {
            let sandboxes = lock(&self.shared.sandboxes);
            let sandbox = sandboxes
                .get(session)
                .ok_or_else(|| SandboxError::NotFound(format!("sandbox of session {session}")))?;
            (
                sandbox.work_dir.clone(),
                sandbox.secret.clone(),
                sandbox.env.clone(),
            )
        };
        let mut command = tokio::process::Command::new(binary);
        command
            .current_dir(&work_dir)
            .env_clear()
            .envs(inherited_env())
            .envs(env.iter().map(|(name, value)| (name, value)))
            .env("DISCOBOT_HOST", "127.0.0.1")
            .env("DISCOBOT_PORT", port.to_string())
            .env("DISCOBOT_SECRET", secret::salted_hash(&secret))
            // Our end of its stdin lives in `Child` and closes when this process dies, however
            // it dies: the agent then exits by itself.
            .env("DISCOBOT_EXIT_ON_STDIN_EOF", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group: a Ctrl-C meant for the server does not hit the agents;
            // the server stops them itself when it exits.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|error| {
            SandboxError::Other(format!(
                "cannot start the agent {}: {error}",
                binary.display()
            ))
        })?;
        let pid = child.id();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr = child
            .stderr
            .take()
            .map(|stderr| tokio::spawn(read_stderr(session.clone(), stderr, tail.clone())));
        let (signals, signals_rx) = mpsc::unbounded_channel();
        let (exited_tx, exited) = watch::channel(false);
        let run_id = self.next_run.fetch_add(1, Ordering::Relaxed);
        {
            let mut sandboxes = lock(&self.shared.sandboxes);
            let Some(sandbox) = sandboxes.get_mut(session) else {
                // Removed meanwhile: `child` is dropped, and killed with it.
                return Err(SandboxError::NotFound(format!(
                    "sandbox of session {session}"
                )));
            };
            sandbox.state = SandboxState::Running;
            sandbox.started_at = Some(Utc::now());
            sandbox.stopped_at = None;
            sandbox.error = None;
            // Replacing the previous run drops its signal sender, which kills it if it
            // somehow still runs.
            sandbox.run = Some(Run {
                id: run_id,
                port,
                pid,
                signals,
                exited: exited.clone(),
                stop_requested: false,
                failure: None,
            });
        }
        tracing::debug!(session.id = %session, pid, port, "agent started");
        tokio::spawn(monitor(
            Arc::downgrade(&self.shared),
            session.clone(),
            run_id,
            child,
            signals_rx,
            exited_tx,
            stderr,
            tail,
        ));
        Ok(exited)
    }

    async fn wait_healthy(
        &self,
        session: &SessionId,
        mut exited: watch::Receiver<bool>,
    ) -> Result<(), SandboxError> {
        let deadline = Instant::now() + self.config.health_timeout;
        let mut last_error: String;
        loop {
            if *exited.borrow() {
                let error = lock(&self.shared.sandboxes)
                    .get(session)
                    .and_then(|sandbox| sandbox.error.clone())
                    .unwrap_or_else(|| "with status 0".into());
                return Err(SandboxError::Unhealthy(format!(
                    "the agent exited before it answered /health: {error}"
                )));
            }
            match self.agent_endpoint(session).await {
                Ok((base, _)) => match self.http.get(format!("{base}/health")).send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = self.shared.events.send(SandboxEvent::Sandbox {
                            session_id: session.clone(),
                            state: Some(SandboxState::Running),
                            error: None,
                        });
                        return Ok(());
                    }
                    Ok(response) => last_error = format!("status {}", response.status()),
                    Err(error) => last_error = error.to_string(),
                },
                // Not running any more: the exit, reported next round, says why.
                Err(error) => last_error = error.to_string(),
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::select! {
                _ = exited.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(15)) => {}
            }
        }
        let message = format!(
            "the agent did not answer /health within {:?}: {last_error}",
            self.config.health_timeout
        );
        let signals = {
            let mut sandboxes = lock(&self.shared.sandboxes);
            sandboxes
                .get_mut(session)
                .and_then(|sandbox| sandbox.run.as_mut())
                .map(|run| {
                    run.failure = Some(message.clone());
                    run.signals.clone()
                })
        };
        if let Some(signals) = signals {
            let _ = signals.send(Signal::Kill);
        }
        let _ =
            tokio::time::timeout(Duration::from_secs(5), exited.wait_for(|exited| *exited)).await;
        Err(SandboxError::Unhealthy(message))
    }

    /// SIGTERM, then SIGKILL after `timeout`; returns once the agent exited (or 5 s after the
    /// SIGKILL).
    async fn stop_agent(&self, session: &SessionId, timeout: Duration) {
        let found = {
            let mut sandboxes = lock(&self.shared.sandboxes);
            sandboxes
                .get_mut(session)
                .and_then(|sandbox| sandbox.run.as_mut())
                .filter(|run| !*run.exited.borrow())
                .map(|run| {
                    run.stop_requested = true;
                    (run.signals.clone(), run.exited.clone())
                })
        };
        let Some((signals, mut exited)) = found else {
            return;
        };
        let _ = signals.send(Signal::Terminate);
        if tokio::time::timeout(timeout, exited.wait_for(|exited| *exited))
            .await
            .is_err()
        {
            tracing::warn!(session.id = %session, "the agent ignored SIGTERM; killing it");
            let _ = signals.send(Signal::Kill);
            let _ = tokio::time::timeout(Duration::from_secs(5), exited.wait_for(|e| *e)).await;
        }
    }

    fn info(session: &SessionId, sandbox: &Sandbox) -> SandboxInfo {
        SandboxInfo {
            session_id: session.clone(),
            state: sandbox.state,
            image: LOCAL_IMAGE.into(),
            created_at: Some(sandbox.created_at),
            started_at: sandbox.started_at,
            stopped_at: sandbox.stopped_at,
            error: sandbox.error.clone(),
        }
    }

    /// The agent's working copy and the environment of a running sandbox.
    fn running(
        &self,
        session: &SessionId,
    ) -> Result<(PathBuf, Vec<(String, String)>), SandboxError> {
        let sandboxes = lock(&self.shared.sandboxes);
        let sandbox = sandboxes
            .get(session)
            .ok_or_else(|| SandboxError::NotFound(format!("sandbox of session {session}")))?;
        if sandbox.state != SandboxState::Running {
            return Err(SandboxError::Other(format!(
                "the sandbox of session {session} is not running"
            )));
        }
        Ok((sandbox.agent_cwd.clone(), sandbox.env.clone()))
    }
}

/// Waits for the agent to exit (signalling it when asked), then records how it ended.
#[allow(clippy::too_many_arguments)]
async fn monitor(
    shared: Weak<Shared>,
    session: SessionId,
    run_id: u64,
    mut child: tokio::process::Child,
    mut signals: mpsc::UnboundedReceiver<Signal>,
    exited: watch::Sender<bool>,
    stderr: Option<tokio::task::JoinHandle<()>>,
    tail: Arc<Mutex<VecDeque<u8>>>,
) {
    // `Child::wait` closes stdin first; the agent takes that as "the server is gone", so
    // our end is held here until it exits.
    let _lifeline = child.stdin.take();
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            signal = signals.recv() => match signal {
                Some(Signal::Terminate) => {
                    // `id()` is `None` once the child was reaped, so the pid is still ours.
                    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGTERM,
                        );
                    }
                }
                Some(Signal::Kill) => {
                    let _ = child.start_kill();
                }
                // The provider forgot this run (or is gone): nothing may outlive it.
                None => {
                    let _ = child.start_kill();
                    break child.wait().await;
                }
            },
        }
    };
    if let Some(stderr) = stderr {
        // The pipe closes with the process, unless something it started still holds it.
        let _ = tokio::time::timeout(Duration::from_secs(1), stderr).await;
    }
    let event = shared.upgrade().and_then(|shared| {
        let mut sandboxes = lock(&shared.sandboxes);
        let sandbox = sandboxes.get_mut(&session)?;
        let run = sandbox.run.as_ref().filter(|run| run.id == run_id)?;
        let (state, error) = match (&run.failure, &status) {
            (Some(failure), _) => (SandboxState::Failed, Some(failure.clone())),
            (None, Ok(_)) if run.stop_requested => (SandboxState::Stopped, None),
            (None, Ok(status)) if status.success() => (SandboxState::Stopped, None),
            (None, Ok(status)) => (SandboxState::Failed, Some(exit_message(*status, &tail))),
            (None, Err(error)) => (
                SandboxState::Failed,
                Some(format!("waiting for the agent failed: {error}")),
            ),
        };
        sandbox.state = state;
        sandbox.error = error.clone();
        sandbox.stopped_at = Some(Utc::now());
        let event = SandboxEvent::Sandbox {
            session_id: session.clone(),
            state: Some(state),
            error,
        };
        Some((shared.clone(), event))
    });
    tracing::debug!(session.id = %session, ?status, "agent exited");
    let _ = exited.send(true);
    if let Some((shared, event)) = event {
        let _ = shared.events.send(event);
    }
}

fn exit_message(status: ExitStatus, tail: &Mutex<VecDeque<u8>>) -> String {
    let tail: Vec<u8> = lock(tail).iter().copied().collect();
    let tail = String::from_utf8_lossy(&tail);
    let tail = tail.trim();
    if tail.is_empty() {
        format!("the agent exited with {status}")
    } else {
        format!("the agent exited with {status}: {tail}")
    }
}

/// Logs the agent's stderr (at debug) and keeps its last lines.
async fn read_stderr(
    session: SessionId,
    stderr: tokio::process::ChildStderr,
    tail: Arc<Mutex<VecDeque<u8>>>,
) {
    let mut lines = tokio::io::BufReader::new(stderr).split(b'\n');
    while let Ok(Some(line)) = lines.next_segment().await {
        tracing::debug!(session.id = %session, "agent: {}", String::from_utf8_lossy(&line));
        let mut tail = lock(&tail);
        tail.extend(line.iter().copied());
        tail.push_back(b'\n');
        let excess = tail.len().saturating_sub(STDERR_TAIL_BYTES);
        tail.drain(..excess);
    }
}

/// The session's folder: the workspace's working directory, resolved (symlinks followed).
/// A folder that is gone cannot come back by retrying: `NotFound`.
async fn workspace_dir(session: &Session, workspace: &Workspace) -> discobot_core::Result<PathBuf> {
    let dir = workspace
        .work_dir
        .as_deref()
        .or(session.workspace_path.as_deref())
        .filter(|dir| !dir.is_empty())
        .ok_or_else(|| {
            discobot_core::Error::unavailable(format!(
                "workspace {} has no folder yet",
                workspace.id
            ))
        })?;
    let resolved = tokio::fs::canonicalize(dir).await.map_err(|error| {
        discobot_core::Error::not_found(format!(
            "the workspace folder {dir} is not usable: {error}"
        ))
    })?;
    if !resolved.is_dir() {
        return Err(discobot_core::Error::not_found(format!(
            "the workspace folder {dir} is not a directory"
        )));
    }
    Ok(resolved)
}

/// The variables a session's agent, commands and terminals get on top of the inherited ones.
fn session_env(session: &Session, workspace: &Workspace, work_dir: &Path) -> Vec<(String, String)> {
    let mut env = vec![
        ("SESSION_ID".to_owned(), session.id.to_string()),
        ("DISCOBOT_SESSION_ID".to_owned(), session.id.to_string()),
        (
            "DISCOBOT_PROJECT_ID".to_owned(),
            session.project_id.to_string(),
        ),
        (
            "WORKSPACE_ORIGIN_PATH".to_owned(),
            work_dir.display().to_string(),
        ),
        ("WORKSPACE_SOURCE".to_owned(), workspace.path.clone()),
    ];
    if let Some(commit) = &session.workspace_commit {
        env.push(("WORKSPACE_COMMIT".to_owned(), commit.clone()));
    }
    env
}

/// The server's environment minus what the agent must not see (see `NOT_INHERITED`).
fn inherited_env() -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(name, _)| is_inherited(&name.to_string_lossy()))
        .collect()
}

fn is_inherited(name: &str) -> bool {
    !name.starts_with("DISCOBOT_") && !NOT_INHERITED.contains(&name)
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16, SandboxError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

#[async_trait]
impl SandboxPort for LocalProvider {
    fn name(&self) -> &str {
        "local"
    }

    async fn status(&self) -> ProviderStatus {
        match self.binary() {
            Ok(_) => ProviderStatus {
                available: true,
                state: "ready".into(),
                message: self.config.reason.clone(),
            },
            Err(error) => ProviderStatus {
                available: false,
                state: "not_available".into(),
                message: Some(error.to_string()),
            },
        }
    }

    async fn ensure_running(
        &self,
        session: &Session,
        workspace: &Workspace,
    ) -> discobot_core::Result<()> {
        self.binary()?;
        let lock = self.session_lock(&session.id);
        let _guard = lock.lock().await;
        if !sandbox_exists(&self.shared, &session.id) {
            let work_dir = workspace_dir(session, workspace).await?;
            self.record(session, workspace, &work_dir);
        }
        Ok(self.start_recorded(&session.id).await?)
    }

    async fn create(&self, session: &Session, workspace: &Workspace) -> discobot_core::Result<()> {
        let lock = self.session_lock(&session.id);
        let _guard = lock.lock().await;
        let work_dir = workspace_dir(session, workspace).await?;
        if !self.record(session, workspace, &work_dir) {
            return Err(discobot_core::Error::conflict(format!(
                "the sandbox of session {} exists already",
                session.id
            )));
        }
        Ok(())
    }

    async fn start(&self, session: &SessionId) -> discobot_core::Result<()> {
        self.binary()?;
        let lock = self.session_lock(session);
        let _guard = lock.lock().await;
        Ok(self.start_recorded(session).await?)
    }

    async fn stop(&self, session: &SessionId, timeout: Duration) -> discobot_core::Result<()> {
        self.terminals.close_session(session);
        self.stop_agent(session, timeout).await;
        Ok(())
    }

    async fn remove(&self, session: &SessionId, remove_volumes: bool) -> discobot_core::Result<()> {
        // The workspace folder is the user's; only the agent's own data dir goes.
        self.terminals.close_session(session);
        self.stop_agent(session, Duration::from_secs(5)).await;
        if remove_volumes {
            let dir = self.session_data_dir(session);
            if let Err(error) = tokio::fs::remove_dir_all(&dir).await
                && error.kind() != std::io::ErrorKind::NotFound
            {
                return Err(discobot_core::Error::internal(format!(
                    "cannot remove {}: {error}",
                    dir.display()
                )));
            }
        }
        let removed = lock(&self.shared.sandboxes).remove(session).is_some();
        lock(&self.session_locks).remove(session);
        if removed {
            let _ = self.shared.events.send(SandboxEvent::Sandbox {
                session_id: session.clone(),
                state: None,
                error: None,
            });
        }
        Ok(())
    }

    async fn get(&self, session: &SessionId) -> discobot_core::Result<Option<SandboxInfo>> {
        Ok(lock(&self.shared.sandboxes)
            .get(session)
            .map(|sandbox| Self::info(session, sandbox)))
    }

    async fn list(&self) -> discobot_core::Result<Vec<SandboxInfo>> {
        Ok(lock(&self.shared.sandboxes)
            .iter()
            .map(|(session, sandbox)| Self::info(session, sandbox))
            .collect())
    }

    async fn exec(
        &self,
        session: &SessionId,
        command: &[String],
    ) -> discobot_core::Result<ExecOutput> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| discobot_core::Error::invalid("the command is empty"))?;
        let (work_dir, env) = self.running(session)?;
        let output = tokio::process::Command::new(program)
            .args(args)
            .current_dir(&work_dir)
            .env_clear()
            .envs(inherited_env())
            .envs(env)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|error| SandboxError::Other(format!("cannot run {program}: {error}")))?;
        Ok(ExecOutput {
            // A command killed by a signal has no code; report it like a shell does.
            exit_code: output.status.code().map(i64::from).unwrap_or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                128 + i64::from(output.status.signal().unwrap_or(0))
            }),
            stdout: output.stdout,
            stderr: output.stderr,
        })
    }

    async fn agent_endpoint(&self, session: &SessionId) -> discobot_core::Result<AgentEndpoint> {
        let (base_url, secret) = LocalProvider::agent_endpoint(self, session).await?;
        Ok(AgentEndpoint { base_url, secret })
    }

    fn watch(&self) -> Option<Box<dyn SandboxEvents>> {
        Some(Box::new(Events(self.shared.events.subscribe())))
    }

    fn terminals(&self) -> Option<&dyn TerminalHub> {
        Some(self)
    }
}

fn sandbox_exists(shared: &Shared, session: &SessionId) -> bool {
    lock(&shared.sandboxes).contains_key(session)
}

/// The exit watch of the session's agent while it runs.
fn live_run(shared: &Shared, session: &SessionId) -> Option<watch::Receiver<bool>> {
    let sandboxes = lock(&shared.sandboxes);
    let sandbox = sandboxes.get(session)?;
    let run = sandbox.run.as_ref()?;
    (sandbox.state == SandboxState::Running && !*run.exited.borrow()).then(|| run.exited.clone())
}

struct Events(broadcast::Receiver<SandboxEvent>);

#[async_trait]
impl SandboxEvents for Events {
    async fn next_event(&mut self) -> Option<SandboxEvent> {
        loop {
            match self.0.recv().await {
                Ok(event) => return Some(event),
                // Missed events are made good by the next reconciliation.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[async_trait]
impl TerminalHub for LocalProvider {
    async fn attach(
        &self,
        session: &SessionId,
        key: &str,
        request: PtyRequest,
    ) -> discobot_core::Result<TerminalAttachment> {
        if let Some(user) = request.user.as_deref()
            && !(user == "root" && nix::unistd::Uid::effective().is_root())
        {
            return Err(discobot_core::Error::invalid(format!(
                "the local sandbox provider runs terminals as the server's user; a terminal as \
                 {user:?} is not available"
            )));
        }
        let (work_dir, env) = self.running(session)?;
        Ok(self
            .terminals
            .attach_with(
                session,
                key,
                &request,
                start_host_shell(work_dir, env, request.clone()),
            )
            .await?)
    }

    fn close_session(&self, session: &SessionId) {
        self.terminals.close_session(session);
    }
}

/// A login shell on the host, in a PTY of its own, in the agent's working copy.
async fn start_host_shell(
    work_dir: PathBuf,
    env: Vec<(String, String)>,
    request: PtyRequest,
) -> Result<StartedPty, SandboxError> {
    let pty_error = |error: pty_process::Error| SandboxError::Other(format!("PTY: {error}"));
    let (pty, pts) = pty_process::open().map_err(pty_error)?;
    pty.resize(pty_process::Size::new(request.rows, request.cols))
        .map_err(pty_error)?;
    let shell = if Path::new("/bin/bash").is_file() {
        "/bin/bash"
    } else {
        "/bin/sh"
    };
    let mut child = pty_process::Command::new(shell)
        .arg("-l")
        .current_dir(&work_dir)
        .env_clear()
        .envs(inherited_env())
        .envs(env)
        .env("TERM", "xterm-256color")
        .envs(request.env)
        .kill_on_drop(true)
        .spawn(pts)
        .map_err(pty_error)?;
    let (reader, writer) = pty.into_split();
    let (close, closed) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        tokio::select! {
            _ = child.wait() => {}
            // Closed, or the terminal was dropped: the shell goes too.
            _ = closed => {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    });
    let output = futures::stream::unfold(reader, |mut reader| async move {
        let mut buffer = vec![0u8; 8192];
        // A PTY whose shell exited reads as EIO: both errors and EOF end the output.
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((buffer, reader))
            }
        }
    })
    .boxed();
    Ok(StartedPty {
        control: Box::new(HostPty {
            writer: tokio::sync::Mutex::new(writer),
            close: Mutex::new(Some(close)),
        }),
        output,
    })
}

struct HostPty {
    writer: tokio::sync::Mutex<pty_process::OwnedWritePty>,
    close: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

#[async_trait]
impl PtyControl for HostPty {
    async fn write(&self, input: &[u8]) -> discobot_core::Result<()> {
        let mut writer = self.writer.lock().await;
        writer.write_all(input).await.map_err(|error| {
            discobot_core::Error::unavailable(format!("terminal closed: {error}"))
        })?;
        writer
            .flush()
            .await
            .map_err(|error| discobot_core::Error::unavailable(error.to_string()))
    }

    async fn resize(&self, rows: u16, cols: u16) -> discobot_core::Result<()> {
        self.writer
            .lock()
            .await
            .resize(pty_process::Size::new(rows, cols))
            .map_err(|error| discobot_core::Error::unavailable(format!("terminal resize: {error}")))
    }

    fn close(&self) {
        if let Some(close) = lock(&self.close).take() {
            let _ = close.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_configuration_is_not_inherited() {
        for name in [
            "DISCOBOT_ENCRYPTION_KEY",
            "DISCOBOT_DATABASE_URL",
            "DISCOBOT_PORT",
            "ENCRYPTION_KEY",
            "DATABASE_DSN",
            "SESSION_ID",
        ] {
            assert!(!is_inherited(name), "{name}");
        }
        for name in ["PATH", "HOME", "RUST_LOG", "ANTHROPIC_API_KEY"] {
            assert!(is_inherited(name), "{name}");
        }
    }

    #[test]
    fn free_ports_are_loopback_ports() {
        let port = free_port().unwrap();
        assert!(port > 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("still free");
    }
}
