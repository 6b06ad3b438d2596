//! Workspaces: list, create, validate, get, update, delete, and path suggestions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use discobot_core::app::{NewWorkspace, WorkspacePatch};
use discobot_core::ids::WorkspaceId;
use discobot_core::model::DirSuggestion;
use serde::Deserialize;

use crate::dto::{
    CreateWorkspaceRequest, SuccessResponse, SuggestionDto, SuggestionsResponse,
    UpdateWorkspaceRequest, ValidateWorkspaceRequest, ValidateWorkspaceResponse, WorkspaceDto,
    WorkspacesResponse,
};
use crate::error::ApiResult;
use crate::extract::{Access, ApiPath, ApiQuery, JsonBody};
use crate::state::AppState;

pub(crate) async fn list_workspaces(
    State(state): State<AppState>,
    Access(access): Access,
) -> ApiResult<Json<WorkspacesResponse>> {
    let workspaces = state.app().list_workspaces(&access).await?;
    Ok(Json(WorkspacesResponse {
        workspaces: workspaces
            .iter()
            .map(|workspace| WorkspaceDto::new(workspace, &[]))
            .collect(),
    }))
}

pub(crate) async fn create_workspace(
    State(state): State<AppState>,
    Access(access): Access,
    JsonBody(request): JsonBody<CreateWorkspaceRequest>,
) -> ApiResult<(StatusCode, Json<WorkspaceDto>)> {
    let request = NewWorkspace {
        path: request.path,
        display_name: request.display_name,
        source_type: request.source_type,
        provider: request.provider,
    };
    let workspace = state.app().create_workspace(&access, request).await?;
    Ok((
        StatusCode::CREATED,
        Json(WorkspaceDto::new(&workspace, &[])),
    ))
}

pub(crate) async fn validate_workspace(
    State(state): State<AppState>,
    Access(_access): Access,
    JsonBody(request): JsonBody<ValidateWorkspaceRequest>,
) -> ApiResult<Json<ValidateWorkspaceResponse>> {
    let validation = state
        .app()
        .validate_workspace(&request.path, request.source_type.as_deref())
        .await?;
    Ok(Json(ValidateWorkspaceResponse {
        path: validation.path,
        source_type: validation.source_type.as_str().to_owned(),
        valid: validation.valid,
        classification: validation.classification,
        error: validation.error,
        suggestions: validation.suggestions.iter().map(suggestion_dto).collect(),
    }))
}

pub(crate) async fn get_workspace(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<WorkspaceDto>> {
    let view = state
        .app()
        .get_workspace_view(&access, &WorkspaceId::new(id))
        .await?;
    Ok(Json(WorkspaceDto::new(&view.workspace, &view.sessions)))
}

pub(crate) async fn update_workspace(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
    JsonBody(request): JsonBody<UpdateWorkspaceRequest>,
) -> ApiResult<Json<WorkspaceDto>> {
    let patch = WorkspacePatch {
        path: request.path,
        display_name: request.display_name,
    };
    let workspace = state
        .app()
        .update_workspace(&access, &WorkspaceId::new(id), patch)
        .await?;
    Ok(Json(WorkspaceDto::new(&workspace, &[])))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeleteWorkspaceQuery {
    #[serde(default)]
    delete_files: bool,
}

pub(crate) async fn delete_workspace(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<DeleteWorkspaceQuery>,
) -> ApiResult<Json<SuccessResponse>> {
    state
        .app()
        .delete_workspace(&access, &WorkspaceId::new(id), query.delete_files)
        .await?;
    Ok(Json(SuccessResponse::OK))
}

#[derive(Deserialize)]
pub(crate) struct SuggestionsQuery {
    #[serde(default)]
    q: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

pub(crate) async fn get_suggestions(
    State(state): State<AppState>,
    Access(_access): Access,
    ApiQuery(query): ApiQuery<SuggestionsQuery>,
) -> ApiResult<Json<SuggestionsResponse>> {
    let kind = query.kind.as_deref().unwrap_or("path");
    let suggestions = state.app().suggestions(&query.q, kind).await?;
    Ok(Json(SuggestionsResponse {
        suggestions: suggestions.iter().map(suggestion_dto).collect(),
    }))
}

fn suggestion_dto(suggestion: &DirSuggestion) -> SuggestionDto {
    SuggestionDto {
        value: suggestion.value.clone(),
        kind: "path".to_owned(),
        valid: suggestion.valid,
        classification: Some(suggestion.class.as_str().to_owned()),
    }
}
