//! The agent API router: the meta routes of this first part, JSON errors, and the shared state.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use discobot_agent_api::{ErrorBody, HealthResponse, SecretHash, StatusResponse, UserResponse};

use crate::config::{AgentConfig, ConfigError};

/// What every handler shares; cheap to clone.
#[derive(Clone, Debug)]
pub struct AgentState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    secret: Option<SecretHash>,
    workspace: PathBuf,
}

impl AgentState {
    /// The state for `config`; fails if its secret hash is malformed. Warns when auth is off.
    pub fn new(config: &AgentConfig) -> Result<Self, ConfigError> {
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
        Ok(Self {
            inner: Arc::new(Inner {
                secret,
                workspace: config.workspace.clone(),
            }),
        })
    }

    /// The hash bearer tokens are checked against; `None` when auth is disabled.
    pub(crate) fn secret(&self) -> Option<&SecretHash> {
        self.inner.secret.as_ref()
    }

    /// The workspace root the agent works in.
    pub fn workspace(&self) -> &Path {
        &self.inner.workspace
    }
}

/// The agent API: `GET /` and `GET /health` (public), `GET /user` (bearer secret), and JSON
/// 404/405 for everything else.
pub fn router(state: AgentState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/user", get(user))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
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
