//! Sessions: list, create, get, update, delete, terminal history.

use axum::Json;
use axum::extract::State;
use discobot_core::app::SessionPatch;
use discobot_core::ids::SessionId;
use serde::Deserialize;

use crate::dto::{
    CreateSessionRequest, CreateSessionResponse, SessionDto, SessionsResponse, SuccessResponse,
    TerminalHistoryDto, TerminalHistoryResponse, UpdateSessionRequest,
};
use crate::error::ApiResult;
use crate::extract::{Access, ApiPath, ApiQuery, JsonBody};
use crate::state::AppState;

pub(crate) async fn list_sessions(
    State(state): State<AppState>,
    Access(access): Access,
) -> ApiResult<Json<SessionsResponse>> {
    let sessions = state.app().list_sessions(&access).await?;
    Ok(Json(SessionsResponse {
        sessions: sessions.iter().map(SessionDto::from).collect(),
    }))
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
