//! The agent API router: meta, thread and chat routes, JSON errors, and the shared state.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use discobot_agent_api::{ErrorBody, HealthResponse, SecretHash, StatusResponse, UserResponse};

use crate::chat::Chat;
use crate::config::{AgentConfig, ConfigError};
use crate::credentials::Credentials;
use crate::llm::Providers;
use crate::model::ModelClient;
use crate::store::ThreadStore;
use crate::{commits, diff, files, threads};

/// What the environment does not configure: the model behind the chat and the stream's idle
/// ping interval.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub model: Arc<dyn ModelClient>,
    /// 15 s by default.
    pub ping_interval: Duration,
}

impl Default for AgentOptions {
    fn default() -> Self {
        Self {
            model: Arc::new(Providers::from_env()),
            ping_interval: Duration::from_secs(15),
        }
    }
}

/// What every handler shares; cheap to clone.
#[derive(Clone, Debug)]
pub struct AgentState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    secret: Option<SecretHash>,
    /// The working copy (`AgentConfig::work_dir`).
    work_dir: PathBuf,
    /// The read-only origin it was cloned from.
    origin: PathBuf,
    /// `WORKSPACE_COMMIT`, a fallback for the diff base.
    workspace_commit: Option<String>,
    chat: Arc<Chat>,
    /// The latest credentials and git identity headers (memory only).
    credentials: Credentials,
    ping_interval: Duration,
    /// Cancelled when the server shuts down: the endless chat streams end so the graceful
    /// shutdown does not wait for them.
    shutdown: tokio_util::sync::CancellationToken,
}

impl AgentState {
    /// The state for `config` with the default options (the LLM [`Providers`]); see
    /// [`Self::with_options`].
    pub fn new(config: &AgentConfig) -> Result<Self, ConfigError> {
        Self::with_options(config, AgentOptions::default())
    }

    /// The state for `config`; fails if its secret hash is malformed. Opening the thread store
    /// marks turns a previous process left `interrupted`. Warns when auth is off.
    pub fn with_options(config: &AgentConfig, options: AgentOptions) -> Result<Self, ConfigError> {
        let secret = config
            .secret_hash
            .as_deref()
            .map(SecretHash::parse)
            .transpose()?;
        if secret.is_none() {
            tracing::warn!(
                "DISCOBOT_SECRET is not set: the agent API accepts unauthenticated requests"
            );
        }
        // An unusable data directory does not stop the agent: its other routes keep working
        // (the local provider does not pass `DISCOBOT_DATA_DIR` yet) and the thread routes
        // answer 503 with the reason.
        let store = ThreadStore::open(&config.data_dir).unwrap_or_else(|err| {
            tracing::error!(data_dir = %config.data_dir.display(), %err, "threads are unavailable");
            ThreadStore::unavailable(err.to_string())
        });
        // One store: the middleware fills it, the turns read it (model and Bash env).
        let credentials = Credentials::new();
        let chat = Chat::new(
            Arc::new(store),
            options.model,
            config.work_dir(),
            credentials.clone(),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                secret,
                work_dir: config.work_dir(),
                origin: config.workspace.clone(),
                workspace_commit: config.workspace_commit.clone(),
                chat: Arc::new(chat),
                credentials,
                ping_interval: options.ping_interval,
                shutdown: tokio_util::sync::CancellationToken::new(),
            }),
        })
    }

    pub(crate) fn chat(&self) -> &Arc<Chat> {
        &self.inner.chat
    }

    /// The credentials of the latest `X-Discobot-Credentials` header and the git identity.
    pub(crate) fn credentials(&self) -> &Credentials {
        &self.inner.credentials
    }

    pub(crate) fn ping_interval(&self) -> Duration {
        self.inner.ping_interval
    }

    /// Ends every open chat stream (and refuses to keep new ones open): call it when the
    /// server begins its graceful shutdown. Running turns are not cancelled; a turn cut off
    /// by the exit is `interrupted` on the next start.
    pub fn close_streams(&self) {
        self.inner.shutdown.cancel();
    }

    pub(crate) fn shutdown(&self) -> &tokio_util::sync::CancellationToken {
        &self.inner.shutdown
    }

    /// The hash bearer tokens are checked against; `None` when auth is disabled.
    pub(crate) fn secret(&self) -> Option<&SecretHash> {
        self.inner.secret.as_ref()
    }

    /// The working copy the agent, its tools and the file routes work in (a clone of the
    /// origin, see `workspace::prepare`).
    pub fn workspace(&self) -> &Path {
        &self.inner.work_dir
    }

    /// The read-only origin the working copy was cloned from (`WORKSPACE_ORIGIN_PATH`).
    pub fn origin(&self) -> &Path {
        &self.inner.origin
    }

    /// `WORKSPACE_COMMIT`, when set.
    pub(crate) fn workspace_commit(&self) -> Option<&str> {
        self.inner.workspace_commit.as_deref()
    }
}

/// The agent API: `GET /` and `GET /health` (public); `GET /user`, the thread, chat, file,
/// diff and commit routes (bearer secret); JSON 404/405 for everything else.
pub fn router(state: AgentState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/user", get(user))
        .route("/threads", get(threads::list).post(threads::create))
        .route(
            "/threads/{id}",
            get(threads::get)
                .put(threads::update)
                .patch(threads::update)
                .delete(threads::delete),
        )
        .route("/threads/{id}/messages", get(threads::messages))
        .route("/threads/{id}/models", get(crate::llm::models::list))
        .route(
            "/threads/{id}/queue/{queue_id}",
            delete(threads::delete_queued),
        )
        .route("/threads/{id}/chat", post(threads::chat))
        .route("/threads/{id}/chat/stream", get(threads::stream))
        .route("/threads/{id}/chat/status", get(threads::status))
        .route("/threads/{id}/chat/cancel", post(threads::cancel))
        .route(
            "/threads/{id}/chat/question/{question_id}",
            get(threads::question),
        )
        .route(
            "/threads/{id}/chat/answer/{question_id}",
            post(threads::answer),
        )
        .route("/files", get(files::list))
        .route("/files/search", get(files::search))
        .route("/files/read", get(files::read))
        .route("/files/write", post(files::write))
        .route("/files/delete", post(files::delete))
        .route("/files/rename", post(files::rename))
        .route("/diff", get(diff::diff))
        .route("/commits", get(commits::commits))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Inside the bearer check: only an authenticated caller can replace the credentials.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::credentials::capture,
        ))
        // Outside the routes and the fallback: an unauthenticated caller learns nothing about
        // which paths exist.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_bearer,
        ))
        .with_state(state)
}

/// `{"error": message}` with `status`.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(ErrorBody::new(message))).into_response()
}

async fn root() -> Json<StatusResponse> {
    Json(StatusResponse::ok())
}

async fn health() -> Json<HealthResponse> {
    Json(HealthResponse {
        healthy: true,
        connected: true,
    })
}

async fn user(State(_state): State<AgentState>) -> Response {
    match crate::user::current_user().await {
        Ok(user) => Json::<UserResponse>(user).into_response(),
        Err(err) => {
            tracing::error!(%err, "failed to get current user");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed to get current user",
            )
        }
    }
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not found")
}

async fn method_not_allowed() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}
