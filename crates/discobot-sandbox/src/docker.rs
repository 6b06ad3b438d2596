//! The Docker provider: one container per session, reached on a loopback port.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder, StopContainerOptionsBuilder,
};
use chrono::{DateTime, Utc};
use discobot_core::ids::ProjectId;
use discobot_core::ids::SessionId;
use discobot_core::model::{Session, Workspace};
use discobot_core::ports::{
    AgentEndpoint, ExecOutput, ProviderStatus, PtyRequest, SandboxEvent, SandboxEvents,
    SandboxInfo, SandboxPort, SandboxState, TerminalAttachment, TerminalHub,
};
use futures::StreamExt;

use crate::error::{SandboxError, is_not_found};
use crate::image::{ImageBuilder, ImageState};
use crate::secret;
use crate::terminal::Terminals;

/// The port the agent listens on inside every sandbox.
pub const AGENT_PORT: u16 = 3002;
const AGENT_PORT_KEY: &str = "3002/tcp";

const LABEL_MANAGED: &str = "discobot.managed";
const LABEL_SESSION: &str = "discobot.session.id";
const LABEL_PROJECT: &str = "discobot.project.id";
const LABEL_WORKSPACE: &str = "discobot.workspace.id";
/// The raw shared secret; the container itself only gets its salted hash.
const LABEL_SECRET: &str = "discobot.secret";

/// Settings of the Docker provider.
#[derive(Clone, Debug)]
pub struct DockerConfig {
    /// The sandbox image sessions run.
    pub image: String,
    /// The image the sandbox image is built from when missing.
    pub base_image: String,
    /// The agent binary copied into the image when it is built here.
    pub agent_binary: Option<PathBuf>,
    /// Memory limit per sandbox in MiB (0 = none).
    pub memory_mb: u64,
    /// CPU limit per sandbox in cores (0 = none).
    pub cpus: f64,
    /// Run sandboxes privileged (needed only for Docker-in-sandbox); off by default.
    pub privileged: bool,
    /// A Docker network to attach sandboxes to instead of the default bridge.
    pub network: Option<String>,
    /// How long a new sandbox's agent gets to answer `/health`.
    pub health_timeout: Duration,
}

/// Sessions' sandboxes as Docker containers.
pub struct DockerProvider {
    docker: Docker,
    config: DockerConfig,
    http: reqwest::Client,
    image: Arc<ImageBuilder>,
    /// Serialises create/start per session so two callers never race on one container.
    session_locks: Mutex<HashMap<SessionId, Arc<tokio::sync::Mutex<()>>>>,
    terminals: Arc<Terminals>,
}

impl DockerProvider {
    /// Connects to the daemon of `DOCKER_HOST` (or the local socket) and checks that it
    /// answers; starts building the sandbox image in the background when it is missing.
    pub async fn connect(config: DockerConfig) -> Result<Arc<Self>, SandboxError> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(|error| SandboxError::Unavailable(error.to_string()))?;
        let docker = tokio::time::timeout(Duration::from_secs(3), docker.negotiate_version())
            .await
            .map_err(|_| SandboxError::Unavailable("the Docker daemon did not answer".into()))?
            .map_err(|error| SandboxError::Unavailable(error.to_string()))?;
        docker
            .ping()
            .await
            .map_err(|error| SandboxError::Unavailable(error.to_string()))?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|error| SandboxError::Other(error.to_string()))?;
        let image = ImageBuilder::new(docker.clone(), &config);
        let provider = Arc::new(DockerProvider {
            docker,
            config,
            http,
            image,
            session_locks: Mutex::new(HashMap::new()),
            terminals: Arc::default(),
        });
        provider.image.clone().ensure_in_background();
        Ok(provider)
    }

    /// The container name of a session.
    pub fn container_name(session: &SessionId) -> String {
        format!("discobot-session-{session}")
    }

    fn data_volume(session: &SessionId) -> String {
        format!("discobot-data-{session}")
    }

    fn cache_volume(project: &str) -> String {
        format!("discobot-cache-{project}")
    }

    fn session_lock(&self, session: &SessionId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .session_locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(session.clone()).or_default().clone()
    }

    /// The host address of a running sandbox's agent and the raw secret for it.
    pub async fn agent_endpoint(
        &self,
        session: &SessionId,
    ) -> Result<(String, String), SandboxError> {
        let container = self
            .docker
            .inspect_container(
                &Self::container_name(session),
                None::<InspectContainerOptions>,
            )
            .await?;
        let port = container
            .network_settings
            .as_ref()
            .and_then(|settings| settings.ports.as_ref())
            .and_then(|ports| ports.get(AGENT_PORT_KEY).cloned().flatten())
            .and_then(|bindings| bindings.into_iter().find_map(|binding| binding.host_port))
            .filter(|port| !port.is_empty())
            .ok_or_else(|| {
                SandboxError::Other(format!("sandbox {session} publishes no agent port"))
            })?;
        let secret = container
            .config
            .and_then(|config| config.labels)
            .and_then(|labels| labels.get(LABEL_SECRET).cloned())
            .unwrap_or_default();
        Ok((format!("http://127.0.0.1:{port}"), secret))
    }

    async fn create_container_for(
        &self,
        session: &Session,
        workspace: &Workspace,
    ) -> Result<(), SandboxError> {
        self.image.wait_ready().await?;
        self.create_volumes(session).await?;
        let raw_secret = secret::generate();
        let labels = HashMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_SESSION.to_owned(), session.id.to_string()),
            (LABEL_PROJECT.to_owned(), session.project_id.to_string()),
            (LABEL_WORKSPACE.to_owned(), workspace.id.to_string()),
            (LABEL_SECRET.to_owned(), raw_secret.clone()),
        ]);
        let mut env = vec![
            format!("SESSION_ID={}", session.id),
            format!("DISCOBOT_SESSION_ID={}", session.id),
            format!("DISCOBOT_SECRET={}", secret::salted_hash(&raw_secret)),
            format!("DISCOBOT_PROJECT_ID={}", session.project_id),
            format!("WORKSPACE_SOURCE={}", workspace.path),
        ];
        let mut mounts = vec![
            Mount {
                typ: Some(MountType::VOLUME),
                source: Some(Self::data_volume(&session.id)),
                target: Some("/.data".into()),
                ..Default::default()
            },
            Mount {
                typ: Some(MountType::VOLUME),
                source: Some(Self::cache_volume(session.project_id.as_str())),
                target: Some("/.data/cache".into()),
                ..Default::default()
            },
        ];
        if let Some(dir) = workspace.work_dir.as_deref().filter(|dir| !dir.is_empty()) {
            env.push("WORKSPACE_ORIGIN_PATH=/.workspace".into());
            mounts.push(Mount {
                typ: Some(MountType::BIND),
                source: Some(dir.to_owned()),
                target: Some("/.workspace".into()),
                read_only: Some(true),
                ..Default::default()
            });
        }
        if let Some(commit) = &session.workspace_commit {
            env.push(format!("WORKSPACE_COMMIT={commit}"));
        }
        let host_config = HostConfig {
            mounts: Some(mounts),
            port_bindings: Some(HashMap::from([(
                AGENT_PORT_KEY.to_owned(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(String::new()),
                }]),
            )])),
            // An init process forwards SIGTERM, so stop takes milliseconds instead of the
            // full grace period.
            init: Some(true),
            privileged: Some(self.config.privileged),
            memory: (self.config.memory_mb > 0)
                .then(|| (self.config.memory_mb * 1024 * 1024) as i64),
            nano_cpus: (self.config.cpus > 0.0).then_some((self.config.cpus * 1e9) as i64),
            extra_hosts: Some(vec!["host.docker.internal:host-gateway".into()]),
            network_mode: self.config.network.clone(),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(self.config.image.clone()),
            hostname: Some("discobot".into()),
            labels: Some(labels),
            env: Some(env),
            exposed_ports: Some(vec![AGENT_PORT_KEY.to_owned()]),
            host_config: Some(host_config),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new()
            .name(&Self::container_name(&session.id))
            .build();
        self.docker.create_container(Some(options), body).await?;
        Ok(())
    }

    /// Creates the session's data volume and the project's cache volume with our labels
    /// (a volume Docker creates implicitly for a mount has none, and could not be found).
    async fn create_volumes(&self, session: &Session) -> Result<(), SandboxError> {
        let volumes = [
            (
                Self::data_volume(&session.id),
                HashMap::from([
                    (LABEL_MANAGED.to_owned(), "true".to_owned()),
                    (LABEL_SESSION.to_owned(), session.id.to_string()),
                ]),
            ),
            (
                Self::cache_volume(session.project_id.as_str()),
                HashMap::from([
                    (LABEL_MANAGED.to_owned(), "true".to_owned()),
                    (LABEL_PROJECT.to_owned(), session.project_id.to_string()),
                    ("discobot.type".to_owned(), "cache".to_owned()),
                ]),
            ),
        ];
        for (name, labels) in volumes {
            let options = bollard::models::VolumeCreateRequest {
                name: Some(name),
                labels: Some(labels),
                ..Default::default()
            };
            // Creating an existing volume is a no-op that returns it.
            self.docker.create_volume(options).await?;
        }
        Ok(())
    }

    async fn wait_healthy(&self, session: &SessionId) -> Result<(), SandboxError> {
        let deadline = Instant::now() + self.config.health_timeout;
        let mut last_error = String::from("no answer");
        while Instant::now() < deadline {
            match self.agent_endpoint(session).await {
                Ok((base, _)) => match self.http.get(format!("{base}/health")).send().await {
                    Ok(response) if response.status().is_success() => return Ok(()),
                    Ok(response) => last_error = format!("status {}", response.status()),
                    Err(error) => last_error = error.to_string(),
                },
                Err(error) => last_error = error.to_string(),
            }
            if let Ok(Some(info)) = self.info(session).await
                && matches!(info.state, SandboxState::Stopped | SandboxState::Failed)
            {
                return Err(SandboxError::Unhealthy(format!(
                    "the sandbox exited: {}",
                    info.error.unwrap_or_else(|| "no error reported".into())
                )));
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        Err(SandboxError::Unhealthy(format!(
            "the agent did not answer within {:?}: {last_error}",
            self.config.health_timeout
        )))
    }

    async fn info(&self, session: &SessionId) -> Result<Option<SandboxInfo>, SandboxError> {
        match self
            .docker
            .inspect_container(
                &Self::container_name(session),
                None::<InspectContainerOptions>,
            )
            .await
        {
            Ok(container) => {
                let state = container.state.unwrap_or_default();
                let sandbox_state = if state.running == Some(true) && state.paused != Some(true) {
                    SandboxState::Running
                } else if state.dead == Some(true) || state.oom_killed == Some(true) {
                    SandboxState::Failed
                } else if state.paused == Some(true)
                    || state
                        .finished_at
                        .as_deref()
                        .is_some_and(|at| !at.starts_with("0001"))
                {
                    SandboxState::Stopped
                } else {
                    SandboxState::Created
                };
                let error = state.error.filter(|error| !error.is_empty()).or_else(|| {
                    (state.oom_killed == Some(true)).then(|| "out of memory".to_owned())
                });
                Ok(Some(SandboxInfo {
                    session_id: session.clone(),
                    state: sandbox_state,
                    image: container
                        .config
                        .and_then(|config| config.image)
                        .unwrap_or_default(),
                    created_at: container.created,
                    started_at: state.started_at.as_deref().and_then(parse_time),
                    stopped_at: state.finished_at.as_deref().and_then(parse_time),
                    error,
                }))
            }
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }
}

#[async_trait]
impl TerminalHub for DockerProvider {
    async fn attach(
        &self,
        session: &SessionId,
        key: &str,
        request: PtyRequest,
    ) -> discobot_core::Result<TerminalAttachment> {
        let container = Self::container_name(session);
        Ok(self
            .terminals
            .attach(&self.docker, &container, session, key, request)
            .await?)
    }

    fn close_session(&self, session: &SessionId) {
        self.terminals.close_session(session);
    }
}

/// Docker's zero time (`0001-01-01…`) means "never".
fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    if raw.starts_with("0001") {
        return None;
    }
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

#[async_trait]
impl SandboxPort for DockerProvider {
    fn name(&self) -> &str {
        "docker"
    }

    async fn status(&self) -> ProviderStatus {
        if let Err(error) = self.docker.ping().await {
            return ProviderStatus {
                available: false,
                state: "not_available".into(),
                message: Some(format!("the Docker daemon does not answer: {error}")),
            };
        }
        match self.image.state() {
            ImageState::Ready => ProviderStatus {
                available: true,
                state: "ready".into(),
                message: None,
            },
            ImageState::Building(message) => ProviderStatus {
                available: true,
                state: "building".into(),
                message: Some(message),
            },
            ImageState::Failed(message) => ProviderStatus {
                available: false,
                state: "failed".into(),
                message: Some(message),
            },
        }
    }

    async fn create(&self, session: &Session, workspace: &Workspace) -> discobot_core::Result<()> {
        let lock = self.session_lock(&session.id);
        let _guard = lock.lock().await;
        if self.info(&session.id).await?.is_some() {
            return Err(discobot_core::Error::conflict(format!(
                "sandbox of session {} already exists",
                session.id
            )));
        }
        Ok(self.create_container_for(session, workspace).await?)
    }

    async fn start(&self, session: &SessionId) -> discobot_core::Result<()> {
        let lock = self.session_lock(session);
        let _guard = lock.lock().await;
        match self
            .docker
            .start_container(&Self::container_name(session), None)
            .await
        {
            Ok(()) => {}
            // 304: already running.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => {}
            Err(error) => return Err(SandboxError::from(error).into()),
        }
        self.wait_healthy(session).await?;
        Ok(())
    }

    async fn ensure_running(
        &self,
        session: &Session,
        workspace: &Workspace,
    ) -> discobot_core::Result<()> {
        let lock = self.session_lock(&session.id);
        let _guard = lock.lock().await;
        match self.info(&session.id).await? {
            Some(info) if info.state == SandboxState::Running => {}
            Some(_) => {
                self.docker
                    .start_container(&Self::container_name(&session.id), None)
                    .await
                    .map_err(SandboxError::from)?;
            }
            None => {
                self.create_container_for(session, workspace).await?;
                if let Err(error) = self
                    .docker
                    .start_container(&Self::container_name(&session.id), None)
                    .await
                {
                    // A container that cannot start is useless; keep its volumes for a retry.
                    let _ = self.remove(&session.id, false).await;
                    return Err(
                        SandboxError::Other(format!("sandbox start failed: {error}")).into(),
                    );
                }
            }
        }
        self.wait_healthy(&session.id).await?;
        Ok(())
    }

    async fn stop(&self, session: &SessionId, timeout: Duration) -> discobot_core::Result<()> {
        self.terminals.close_session(session);
        let options = StopContainerOptionsBuilder::new()
            .t(timeout.as_secs() as i32)
            .build();
        match self
            .docker
            .stop_container(&Self::container_name(session), Some(options))
            .await
        {
            Ok(()) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(error) => Err(SandboxError::from(error).into()),
        }
    }

    async fn remove(&self, session: &SessionId, remove_volumes: bool) -> discobot_core::Result<()> {
        self.terminals.close_session(session);
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match self
            .docker
            .remove_container(&Self::container_name(session), Some(options))
            .await
        {
            Ok(()) => {}
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(SandboxError::from(error).into()),
        }
        if remove_volumes {
            // `v: true` removes anonymous volumes only; named ones go explicitly.
            let options = RemoveVolumeOptionsBuilder::new().force(true).build();
            match self
                .docker
                .remove_volume(&Self::data_volume(session), Some(options))
                .await
            {
                Ok(()) => {}
                Err(error) if is_not_found(&error) => {}
                Err(error) => return Err(SandboxError::from(error).into()),
            }
        }
        Ok(())
    }

    async fn get(&self, session: &SessionId) -> discobot_core::Result<Option<SandboxInfo>> {
        Ok(self.info(session).await?)
    }

    async fn list(&self) -> discobot_core::Result<Vec<SandboxInfo>> {
        let filters = HashMap::from([("label", vec![format!("{LABEL_MANAGED}=true")])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(SandboxError::from)?;
        let mut sandboxes = Vec::new();
        for container in containers {
            let Some(session) = container
                .labels
                .as_ref()
                .and_then(|labels| labels.get(LABEL_SESSION))
            else {
                continue;
            };
            if let Some(info) = self.info(&SessionId::new(session.as_str())).await? {
                sandboxes.push(info);
            }
        }
        Ok(sandboxes)
    }

    fn terminals(&self) -> Option<&dyn TerminalHub> {
        Some(self)
    }

    async fn exec_stream(
        &self,
        session: &SessionId,
        request: discobot_core::ports::ExecStreamRequest,
    ) -> discobot_core::Result<TerminalAttachment> {
        let container = Self::container_name(session);
        Ok(crate::docker_terminal::exec_stream(&self.docker, &container, request).await?)
    }

    async fn agent_endpoint(&self, session: &SessionId) -> discobot_core::Result<AgentEndpoint> {
        let (base_url, secret) = DockerProvider::agent_endpoint(self, session).await?;
        Ok(AgentEndpoint { base_url, secret })
    }

    fn watch(&self) -> Option<Box<dyn SandboxEvents>> {
        let (sender, receiver) = tokio::sync::mpsc::channel(256);
        tokio::spawn(Self::forward_container_events(
            self.docker.clone(),
            sender.clone(),
        ));
        tokio::spawn(self.image.clone().forward_progress(sender));
        Some(Box::new(DockerEvents { receiver }))
    }

    async fn cache_volumes(&self, project: &ProjectId) -> discobot_core::Result<serde_json::Value> {
        let filters = HashMap::from([(
            "label",
            vec![
                format!("{LABEL_PROJECT}={project}"),
                "discobot.type=cache".to_owned(),
            ],
        )]);
        let options = bollard::query_parameters::ListVolumesOptionsBuilder::new()
            .filters(&filters)
            .build();
        let volumes = self
            .docker
            .list_volumes(Some(options))
            .await
            .map_err(SandboxError::from)?;
        let volumes: Vec<serde_json::Value> = volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|volume| {
                serde_json::json!({
                    "name": volume.name,
                    "projectId": project.as_str(),
                    "createdAt": volume.created_at,
                    "labels": volume.labels,
                })
            })
            .collect();
        Ok(serde_json::Value::Array(volumes))
    }

    async fn delete_cache_volume(&self, project: &ProjectId) -> discobot_core::Result<()> {
        let options = RemoveVolumeOptionsBuilder::new().force(true).build();
        match self
            .docker
            .remove_volume(&Self::cache_volume(project.as_str()), Some(options))
            .await
        {
            Ok(()) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            // 409: sandboxes still use it.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                message,
            }) => Err(discobot_core::Error::conflict(format!(
                "the cache volume is in use: {message}"
            ))),
            Err(error) => Err(SandboxError::from(error).into()),
        }
    }

    async fn exec(
        &self,
        session: &SessionId,
        command: &[String],
    ) -> discobot_core::Result<ExecOutput> {
        let exec = self
            .docker
            .create_exec(
                &Self::container_name(session),
                CreateExecOptions::<String> {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(command.to_vec()),
                    ..Default::default()
                },
            )
            .await
            .map_err(SandboxError::from)?;
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(SandboxError::from)?
        {
            while let Some(item) = output.next().await {
                match item.map_err(SandboxError::from)? {
                    bollard::container::LogOutput::StdErr { message } => {
                        stderr.extend_from_slice(&message)
                    }
                    other => stdout.extend_from_slice(&other.into_bytes()),
                }
            }
        }
        let inspect = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(SandboxError::from)?;
        Ok(ExecOutput {
            exit_code: inspect.exit_code.unwrap_or(-1),
            stdout,
            stderr,
        })
    }
}

/// Forwards Docker's container events and the image builder's progress as `SandboxEvent`s.
struct DockerEvents {
    receiver: tokio::sync::mpsc::Receiver<SandboxEvent>,
}

#[async_trait]
impl SandboxEvents for DockerEvents {
    async fn next_event(&mut self) -> Option<SandboxEvent> {
        self.receiver.recv().await
    }
}

impl DockerProvider {
    /// Reads Docker's event stream (reconnecting every 5 s on errors) until `sender` closes.
    async fn forward_container_events(
        docker: Docker,
        sender: tokio::sync::mpsc::Sender<SandboxEvent>,
    ) {
        let filters = HashMap::from([
            ("type", vec!["container".to_owned()]),
            ("label", vec![format!("{LABEL_MANAGED}=true")]),
        ]);
        loop {
            let options = bollard::query_parameters::EventsOptionsBuilder::new()
                .filters(&filters)
                .build();
            let mut events = docker.events(Some(options));
            while let Some(event) = events.next().await {
                let event = match event {
                    Ok(event) => event,
                    Err(error) => {
                        tracing::warn!(%error, "Docker event stream failed; reconnecting");
                        break;
                    }
                };
                let attributes = event
                    .actor
                    .and_then(|actor| actor.attributes)
                    .unwrap_or_default();
                let Some(session) = attributes.get(LABEL_SESSION) else {
                    continue;
                };
                let (state, error) = match event.action.as_deref().unwrap_or_default() {
                    "start" => (Some(SandboxState::Running), None),
                    "stop" | "kill" | "die" => (Some(SandboxState::Stopped), None),
                    "oom" => (Some(SandboxState::Failed), Some("out of memory".to_owned())),
                    "destroy" => (None, None),
                    _ => continue,
                };
                let event = SandboxEvent::Sandbox {
                    session_id: SessionId::new(session.as_str()),
                    state,
                    error,
                };
                if sender.send(event).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                _ = sender.closed() => return,
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}
