//! Sessions: list, create, get, update, delete, terminal history.

use std::sync::Mutex;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use discobot_core::Error;
use discobot_core::app::SessionPatch;
use discobot_core::ids::SessionId;
use serde::Deserialize;

use crate::dto::{
    CreateSessionRequest, CreateSessionResponse, SessionDto, SessionsResponse, SuccessResponse,
    TerminalHistoryDto, TerminalHistoryResponse, UpdateSessionRequest,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Access, ApiPath, ApiQuery, JsonBody};
use crate::state::AppState;

/// The session list, served from a cache of its JSON while nothing in the project has
/// changed, with an `ETag` so clients can revalidate with `If-None-Match`.
pub(crate) async fn list_sessions(
    State(state): State<AppState>,
    Access(access): Access,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let cached = lock(&state.0.session_lists)
        .get(&access.project_id)
        .cloned();
    let known_version = cached.as_ref().map(|(version, _)| *version);
    let listed = state
        .app()
        .list_sessions_versioned(&access, known_version)
        .await?;
    let (version, body) = match (listed.sessions, cached) {
        (None, Some(cached)) => cached,
        (Some(sessions), _) => {
            let response = SessionsResponse {
                sessions: sessions.iter().map(SessionDto::from).collect(),
            };
            let body = Bytes::from(serde_json::to_vec(&response).map_err(|error| {
                ApiError(Error::internal(format!("cannot encode sessions: {error}")))
            })?);
            lock(&state.0.session_lists)
                .insert(access.project_id.clone(), (listed.version, body.clone()));
            (listed.version, body)
        }
        (None, None) => {
            return Err(ApiError(Error::internal(
                "session list version without a list",
            )));
        }
    };
    let etag = format!("\"sessions-{version}\"");
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let status = if not_modified {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let body = if not_modified { Bytes::new() } else { body };
    Ok((
        status,
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::ETAG, etag),
        ],
        body,
    )
        .into_response())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The cache holds plain values; a panic elsewhere cannot leave it half-written.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) async fn create_session(
    State(state): State<AppState>,
    Access(access): Access,
    JsonBody(request): JsonBody<CreateSessionRequest>,
) -> ApiResult<Json<CreateSessionResponse>> {
    let session = state
        .app()
        .create_session(&access, &request.id, request.workspace_id.as_deref())
        .await?;
    Ok(Json(CreateSessionResponse {
        id: session.id.into_string(),
    }))
}

pub(crate) async fn get_session(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<SessionDto>> {
    let session = state
        .app()
        .get_session(&access, &SessionId::new(id))
        .await?;
    Ok(Json(SessionDto::from(&session)))
}

pub(crate) async fn update_session(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
    JsonBody(request): JsonBody<UpdateSessionRequest>,
) -> ApiResult<Json<SessionDto>> {
    let patch = SessionPatch {
        name: request.name,
        display_name: request.display_name,
        status: request.status,
    };
    let session = state
        .app()
        .update_session(&access, &SessionId::new(id), patch)
        .await?;
    Ok(Json(SessionDto::from(&session)))
}

pub(crate) async fn delete_session(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<SuccessResponse>> {
    state
        .app()
        .delete_session(&access, &SessionId::new(id))
        .await?;
    Ok(Json(SuccessResponse::OK))
}

/// `POST …/sessions/{id}/commit`: queued; progress shows as the session's commit status.
pub(crate) async fn commit_session(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<SuccessResponse>> {
    state
        .app()
        .commit_session(&access, &SessionId::new(id))
        .await?;
    Ok(Json(SuccessResponse::OK))
}

/// `POST …/sessions/{id}/rebase`: queued like a commit.
pub(crate) async fn rebase_session(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<SuccessResponse>> {
    state
        .app()
        .rebase_session(&access, &SessionId::new(id))
        .await?;
    Ok(Json(SuccessResponse::OK))
}

#[derive(Deserialize)]
pub(crate) struct HistoryQuery {
    #[serde(default)]
    limit: Option<u64>,
}

pub(crate) async fn get_terminal_history(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<TerminalHistoryResponse>> {
    let limit = query.limit.unwrap_or(100);
    let history = state
        .app()
        .terminal_history(&access, &SessionId::new(id), Some(limit))
        .await?;
    Ok(Json(TerminalHistoryResponse {
        history: history.iter().map(TerminalHistoryDto::from).collect(),
    }))
}
