//! Wiring of the discobot server: adapters into `App`, background loops, HTTP, shutdown.
#![doc = include_str!("../README.md")]

pub mod config;
pub mod keys;
pub mod logging;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use discobot_core::app::{AppConfig, Ports};
use discobot_core::ports::{EventLog, NoSandbox, SandboxPort};
use discobot_core::{App, ports::JobQueue};
use discobot_events::{
    Broker, BrokerConfig, BrokerSubscriber, Dispatcher, DispatcherConfig, JobWakeup,
};
use discobot_git::{GitAdapter, GitConfig};
use discobot_http::{AppState, ServerInfo, StatusMessage};
use discobot_sandbox::{
    DebugDockerConfig, DebugDockerServer, DockerConfig, DockerProvider, LocalConfig, LocalProvider,
};
use discobot_store::{Store, StoreConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ProviderChoice};

/// A started server: listening, with its background loops running.
pub struct Server {
    config: Config,
    listener: TcpListener,
    state: AppState,
    background: CancellationToken,
    loops: Vec<JoinHandle<()>>,
    store: Arc<Store>,
    /// The local provider, when in use: its agents are this process's children.
    local_sandboxes: Option<Arc<LocalProvider>>,
    /// The debug Docker proxy, when enabled.
    debug_docker: Option<DebugDockerServer>,
}

impl Server {
    /// Opens and migrates the database, wires the adapters, starts the background loops
    /// and binds the listener.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        if config.auth_enabled {
            anyhow::bail!(
                "AUTH_ENABLED=true is not supported by this version of discobot yet; \
                 run without it (anonymous mode) or keep the server on a trusted network"
            );
        }
        let data_dir = config.data_dir();
        let workspace_dir = config.workspace_dir();
        for dir in [&data_dir, &workspace_dir] {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
        }
        let mut store_config = StoreConfig::new(config.database_url());
        store_config.max_connections = config.database_max_connections;
        store_config.pg_schema = config.database_schema.clone();
        let store = Arc::new(
            Store::connect(store_config)
                .await
                .context("cannot open the database")?,
        );
        tracing::info!(database.driver = store.backend(), "database ready");
        if store.is_single_process() {
            // This process holds the SQLite file's lock, so any running job is a leftover
            // of a previous run of this server: make it claimable at once.
            let n_jobs = store
                .release_all_leases()
                .await
                .context("cannot reset job leases")?;
            if n_jobs > 0 {
                tracing::info!(n_jobs, "resumed jobs left running by the previous run");
            }
        }

        let broker = Broker::new(
            store.clone(),
            BrokerConfig {
                poll_interval: config.event_poll_interval,
                ..BrokerConfig::default()
            },
        );
        let wakeup = JobWakeup::default();
        let git = Arc::new(GitAdapter::new(GitConfig::default()));
        let SandboxSetup {
            provider: sandbox,
            local: local_sandboxes,
            note: sandbox_note,
        } = sandbox_provider(&config).await;
        let (sealer, key_source) = keys::load(
            config
                .encryption_key
                .as_ref()
                .map(config::SecretArg::expose),
            &data_dir,
        )?;
        let ports = Ports {
            users: store.clone(),
            projects: store.clone(),
            members: store.clone(),
            preferences: store.clone(),
            workspaces: store.clone(),
            sessions: store.clone(),
            submissions: store.clone(),
            credentials: store.clone(),
            settings: store.clone(),
            events: store.clone(),
            jobs: store.clone(),
            git,
            sandbox,
            event_notifier: broker.clone(),
            job_waker: Arc::new(wakeup.clone()),
            agent: Arc::new(discobot_chat_proxy::AgentClient::default()),
            sleeper: Arc::new(TokioSleeper),
        };
        let app = Arc::new(App::new(
            ports,
            AppConfig {
                workspace_dir: workspace_dir.clone(),
                job_retry_backoff: config.job_retry_backoff,
                invitation_ttl: Duration::from_secs(7 * 24 * 3600),
                suggestions_enabled: config.suggestions_enabled,
                sealer,
            },
        ));
        check_key_and_import_credentials(&app, &store, &config, &key_source).await?;

        let background = CancellationToken::new();
        // Read the event log's end before serving: every event stored after it reaches the
        // subscribers, even those that connect before the poller's first round.
        let event_watermark = store
            .max_event_seq()
            .await
            .context("cannot read the event log")?;
        let mut loops = vec![tokio::spawn(
            broker.clone().run_from(event_watermark, background.clone()),
        )];
        loops.push(tokio::spawn(discobot_events::purge_loop(
            store.clone(),
            config.event_retention,
            Duration::from_secs(3600),
            background.clone(),
        )));
        if config.dispatcher_enabled {
            let worker_id = format!("{}-{}", hostname(), uuid::Uuid::new_v4());
            tracing::info!(worker.id = worker_id, "job dispatcher starting");
            let dispatcher = Dispatcher::new(
                store.clone() as Arc<dyn JobQueue>,
                app.clone(),
                DispatcherConfig {
                    worker_id,
                    poll_interval: config.dispatcher_poll_interval,
                    lease: config.job_lease,
                    retry_backoff: config.job_retry_backoff,
                    job_timeout: config.dispatcher_job_timeout,
                    drain_timeout: config.shutdown_timeout,
                },
                wakeup,
            );
            loops.push(tokio::spawn(dispatcher.run(background.clone())));
        }

        // What the provider notices by itself: sandboxes stopped or removed outside discobot,
        // crashes, the image build's progress.
        if let Some(mut sandbox_events) = app.sandbox().watch() {
            let (watcher, shutdown) = (app.clone(), background.clone());
            loops.push(tokio::spawn(async move {
                loop {
                    let event = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        event = sandbox_events.next_event() => event,
                    };
                    let Some(event) = event else { return };
                    if let Err(error) = watcher.apply_sandbox_event(event).await {
                        tracing::warn!(%error, "failed to apply a sandbox event");
                    }
                }
            }));
        }
        // Sessions whose sandboxes changed while no server watched (a crash, a reboot).
        let reconciler = app.clone();
        loops.push(tokio::spawn(async move {
            match reconciler.reconcile_sessions().await {
                Ok(0) => {}
                Ok(n_sessions) => {
                    tracing::info!(n_sessions, "reconciled session states with their sandboxes")
                }
                Err(error) => tracing::error!(%error, "session reconciliation failed"),
            }
        }));
        if !config.sandbox_idle_timeout.is_zero() {
            let (idle_app, idle_timeout) = (app.clone(), config.sandbox_idle_timeout);
            loops.push(tokio::spawn(discobot_events::every(
                config.idle_check_interval,
                background.clone(),
                move || {
                    let app = idle_app.clone();
                    async move {
                        if let Err(error) = app.stop_idle_sessions(idle_timeout).await {
                            tracing::error!(%error, "idle sandbox check failed");
                        }
                    }
                },
            )));
        }

        let info = ServerInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            http_port: config.port,
            public_base_url: config.public_base_url(),
            database_driver: store.backend().into(),
            auth_enabled: config.auth_enabled,
            workspace_dir,
            sandbox_image: config.sandbox_image.clone(),
            ssh_enabled: config.ssh_enabled,
            ssh_port: config.ssh_port,
            dispatcher_enabled: config.dispatcher_enabled,
            log_path: config.log_file.clone(),
            startup_messages: startup_checks().into_iter().chain(sandbox_note).collect(),
            max_body_bytes: config.max_body_bytes,
            cors_origins: config.cors_origins(),
        };
        let state = AppState::new(app, Arc::new(BrokerSubscriber(broker)), info);
        let address = format!("{}:{}", config.host, config.port);
        let listener = TcpListener::bind(&address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let debug_docker = if config.debug_docker {
            let proxy = DebugDockerServer::start(DebugDockerConfig {
                port: config.debug_docker_port,
                project: config.debug_docker_project.clone(),
                socket: None,
            })
            .await
            .context("cannot start the debug Docker proxy (--debug-docker)")?;
            tracing::warn!(
                address = %proxy.local_addr(),
                project = config.debug_docker_project,
                "debug Docker proxy listening: every local user can reach this project's sandboxes"
            );
            Some(proxy)
        } else {
            None
        };
        Ok(Server {
            config,
            listener,
            state,
            background,
            loops,
            store,
            local_sandboxes,
            debug_docker,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The use cases this server runs (for in-process callers and tests, e.g. to build an
    /// agent's credentials).
    pub fn app(&self) -> Arc<App> {
        self.state.app().clone()
    }

    /// Serves until `shutdown` completes, then closes streams, lets in-flight requests
    /// finish, drains running jobs and stops the background loops.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let address = self.local_addr()?;
        tracing::info!(%address, "discobot-server listening");
        if !address.ip().is_loopback() {
            tracing::warn!("auth is disabled: anyone who can reach {address} controls this server");
        }
        discobot_http::serve(self.listener, self.state, shutdown)
            .await
            .context("HTTP server failed")?;
        tracing::info!("shutting down: draining background work");
        if let Some(proxy) = self.debug_docker {
            proxy.stop().await;
        }
        self.background.cancel();
        let drain = async {
            for handle in self.loops {
                let _ = handle.await;
            }
        };
        if tokio::time::timeout(self.config.shutdown_timeout + Duration::from_secs(5), drain)
            .await
            .is_err()
        {
            tracing::warn!("background work did not stop in time");
        }
        if let Some(local) = &self.local_sandboxes {
            local.shutdown(Duration::from_secs(5)).await;
        }
        if let Err(error) = self.store.close().await {
            tracing::warn!(%error, "closing the database failed");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The sandbox provider in use, and why.
struct SandboxSetup {
    provider: Arc<dyn SandboxPort>,
    /// The local provider's handle, so that shutdown stops its agents.
    local: Option<Arc<LocalProvider>>,
    /// Shown by `GET /api/status` when `auto` fell back to the local provider.
    note: Option<StatusMessage>,
}

/// `auto`: Docker when a daemon answers, else the local provider when the agent binary is
/// there, else none (sessions then fail with the reason). `docker`, `local` and `none` insist.
async fn sandbox_provider(config: &Config) -> SandboxSetup {
    let none = |reason: String| SandboxSetup {
        provider: Arc::new(NoSandbox { reason }),
        local: None,
        note: None,
    };
    match config.sandbox_provider {
        ProviderChoice::None => {
            tracing::info!(sandbox.provider = "none", "sandboxes are turned off");
            return none("sandboxes are turned off (--sandbox-provider none)".into());
        }
        ProviderChoice::Local => {
            let setup = local_provider(config, "--sandbox-provider local".into(), None);
            log_local(config, "--sandbox-provider local");
            return setup;
        }
        ProviderChoice::Auto | ProviderChoice::Docker => {}
    }
    let docker_config = DockerConfig {
        image: config.sandbox_image.clone(),
        base_image: config.sandbox_base_image.clone(),
        agent_binary: config.agent_binary(),
        memory_mb: config.sandbox_memory_mb,
        cpus: config.sandbox_cpus,
        privileged: config.sandbox_privileged,
        network: config.docker_network.clone(),
        health_timeout: Duration::from_secs(30),
    };
    let error = match DockerProvider::connect(docker_config).await {
        Ok(provider) => {
            tracing::info!(
                sandbox.provider = "docker",
                image = config.sandbox_image,
                "sandbox provider ready"
            );
            return SandboxSetup {
                provider,
                local: None,
                note: None,
            };
        }
        Err(error) => error,
    };
    if config.sandbox_provider == ProviderChoice::Docker || config.agent_binary().is_none() {
        let reason = if config.sandbox_provider == ProviderChoice::Docker {
            format!("no Docker daemon answers ({error})")
        } else {
            format!(
                "no Docker daemon answers ({error}), and no discobot-agent binary was found \
                 for the local provider (set --agent-binary)"
            )
        };
        tracing::warn!(%reason, "sessions cannot start sandboxes");
        return none(reason);
    }
    let why = format!("no Docker daemon answers ({error})");
    let note = StatusMessage {
        id: "sandbox-provider-choice".into(),
        level: "info".into(),
        title: "Local sandboxes".into(),
        message: format!(
            "Sessions run their agent as a local process of the server, without isolation: {why}"
        ),
    };
    let setup = local_provider(config, why.clone(), Some(note));
    log_local(config, &why);
    setup
}

fn local_provider(config: &Config, reason: String, note: Option<StatusMessage>) -> SandboxSetup {
    let local_config = LocalConfig {
        agent_binary: config.agent_binary(),
        health_timeout: Duration::from_secs(30),
        reason: Some(format!("local processes: {reason}")),
        data_dir: config.data_dir().join("sandboxes"),
    };
    match LocalProvider::new(local_config) {
        Ok(local) => SandboxSetup {
            provider: local.clone(),
            local: Some(local),
            note,
        },
        Err(error) => SandboxSetup {
            provider: Arc::new(NoSandbox {
                reason: format!("the local sandbox provider cannot start: {error}"),
            }),
            local: None,
            note: None,
        },
    }
}

fn log_local(config: &Config, why: &str) {
    match config.agent_binary().filter(|binary| binary.is_file()) {
        Some(binary) => tracing::info!(
            sandbox.provider = "local",
            agent = %binary.display(),
            why,
            "sandbox provider ready: agents run as local processes, without isolation"
        ),
        None => tracing::warn!(
            sandbox.provider = "local",
            why,
            "the local sandbox provider has no agent binary; sessions cannot start \
             (set --agent-binary)"
        ),
    }
}

/// Refuses to start with a key other than the database's (stored credentials would not
/// open), then imports credentials from this process's environment when asked to.
async fn check_key_and_import_credentials(
    app: &App,
    store: &Store,
    config: &Config,
    key_source: &keys::KeySource,
) -> anyhow::Result<()> {
    match app.check_encryption_key().await {
        Ok(discobot_core::app::KeyCheck::Created) => {
            tracing::info!("stored the encryption key check of a new database");
        }
        Ok(discobot_core::app::KeyCheck::Matched) => {}
        Err(error) => {
            let _ = store.close().await;
            if error.message == discobot_core::secrets::WRONG_KEY_MESSAGE {
                anyhow::bail!(
                    "{WRONG_KEY}: this start used {source}; start the server with the key the \
                     database was created with (--encryption-key / DISCOBOT_ENCRYPTION_KEY / \
                     ENCRYPTION_KEY, or its key file {file} in the data dir)",
                    WRONG_KEY = discobot_core::secrets::WRONG_KEY_MESSAGE,
                    source = key_source.describe(),
                    file = keys::KEY_FILE,
                );
            }
            return Err(anyhow::Error::new(error).context("cannot check the encryption key"));
        }
    }
    if config.import_env_credentials {
        let vars: Vec<(String, discobot_core::secrets::Secret)> =
            discobot_core::credentials::importable_env_vars()
                .into_iter()
                .filter_map(|name| {
                    let value = std::env::var(name).ok()?;
                    Some((name.to_owned(), discobot_core::secrets::Secret::new(value)))
                })
                .collect();
        if !vars.is_empty() {
            app.import_env_credentials(&vars)
                .await
                .context("cannot import credentials from the environment")?;
        }
    }
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
/// The use cases' timer (core has no runtime of its own).
struct TokioSleeper;

#[async_trait::async_trait]
impl discobot_core::ports::Sleeper for TokioSleeper {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// Checks of the machine shown by `GET /api/status`.
fn startup_checks() -> Vec<StatusMessage> {
    let mut messages = Vec::new();
    if !on_path("git") {
        messages.push(StatusMessage {
            id: "git-not-found".into(),
            level: "warn".into(),
            title: "Git not found".into(),
            message: "git is not on PATH; cloning local file:// repositories needs it".into(),
        });
    }
    messages
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "discobot".into())
}
