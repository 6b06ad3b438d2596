//! Session files and diff: list, search, read (also at the base commit), write, delete,
//! rename, diff; forwarded to the session's agent after the path checks of core.

use axum::Json;
use axum::extract::State;
use discobot_core::app::SessionFileRead;
use discobot_core::ids::SessionId;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::dto::{DeleteFileRequest, RenameFileRequest, WriteFileRequest};
use crate::error::ApiResult;
use crate::extract::{Access, ApiPath, ApiQuery, JsonBody};
use crate::state::AppState;

type SessionPath = ApiPath<(String, String)>;

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    hidden: Option<String>,
}

pub(crate) async fn list_files(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id)): SessionPath,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let answer = state
        .app()
        .list_session_files(
            &access,
            &SessionId::new(session_id),
            query.path.as_deref(),
            query.hidden.as_deref() == Some("true"),
        )
        .await?;
    Ok(Json(answer))
}

#[derive(Deserialize)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    limit: Option<String>,
}

pub(crate) async fn search_files(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id)): SessionPath,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<Json<Value>> {
    let answer = state
        .app()
        .search_session_files(
            &access,
            &SessionId::new(session_id),
            &query.q,
            query.limit.as_deref(),
        )
        .await?;
    Ok(Json(answer))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReadQuery {
    #[serde(default)]
    path: String,
    #[serde(default)]
    from_base: Option<String>,
}

pub(crate) async fn read_file(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id)): SessionPath,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> ApiResult<Json<Value>> {
    let read = state
        .app()
        .read_session_file(
            &access,
            &SessionId::new(session_id),
            &query.path,
            query.from_base.as_deref() == Some("true"),
        )
        .await?;
    Ok(Json(match read {
        SessionFileRead::Agent(answer) => answer,
        SessionFileRead::Base(bytes) => {
            let size = bytes.len();
            match String::from_utf8(bytes) {
                Ok(text) => json!({"path": "", "content": text, "encoding": "utf-8", "size": size}),
                Err(error) => {
                    use base64::Engine as _;
                    let content =
                        base64::engine::general_purpose::STANDARD.encode(error.into_bytes());
                    json!({"path": "", "content": content, "encoding": "base64", "size": size})
                }
            }
        }
    }))
}

pub(crate) async fn write_file(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id)): SessionPath,
    JsonBody(request): JsonBody<WriteFileRequest>,
) -> ApiResult<Json<Value>> {
    let mut body = json!({"path": request.path, "content": request.content.unwrap_or_default()});
    if let Some(encoding) = request.encoding {
        body["encoding"] = json!(encoding);
    }
    if let Some(original) = request.original_content {
        body["originalContent"] = json!(original);
    }
    let answer = state
        .app()
        .write_session_file(&access, &SessionId::new(session_id), body)
        .await?;
    Ok(Json(answer))
}

pub(crate) async fn delete_file(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id)): SessionPath,
    JsonBody(request): JsonBody<DeleteFileRequest>,
) -> ApiResult<Json<Value>> {
    let answer = state
        .app()
        .delete_session_file(&access, &SessionId::new(session_id), &request.path)
        .await?;
    Ok(Json(answer))
}

pub(crate) async fn rename_file(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id)): SessionPath,
    JsonBody(request): JsonBody<RenameFileRequest>,
) -> ApiResult<Json<Value>> {
    let answer = state
        .app()
        .rename_session_file(
            &access,
            &SessionId::new(session_id),
            &request.old_path,
            &request.new_path,
        )
        .await?;
    Ok(Json(answer))
}

#[derive(Deserialize)]
pub(crate) struct DiffQuery {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    format: Option<String>,
}

pub(crate) async fn diff(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id)): SessionPath,
    ApiQuery(query): ApiQuery<DiffQuery>,
) -> ApiResult<Json<Value>> {
    let answer = state
        .app()
        .session_diff(
            &access,
            &SessionId::new(session_id),
            query.path.as_deref(),
            query.format.as_deref(),
        )
        .await?;
    Ok(Json(answer))
}
