//! Projects: list, create, get, update, delete.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::dto::{ProjectDto, ProjectRequest, SuccessResponse};
use crate::error::ApiResult;
use crate::extract::{Access, CurrentUser, JsonBody};
use crate::state::AppState;

pub(crate) async fn list_projects(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<Vec<ProjectDto>>> {
    let projects = state.app().list_projects(&user).await?;
    Ok(Json(projects.iter().map(ProjectDto::from).collect()))
}

pub(crate) async fn create_project(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    JsonBody(request): JsonBody<ProjectRequest>,
) -> ApiResult<(StatusCode, Json<ProjectDto>)> {
    let project = state.app().create_project(&user, &request.name).await?;
    Ok((StatusCode::CREATED, Json(ProjectDto::from(&project))))
}

pub(crate) async fn get_project(
    State(state): State<AppState>,
    Access(access): Access,
) -> ApiResult<Json<ProjectDto>> {
    let project = state.app().get_project(&access).await?;
    Ok(Json(ProjectDto::from(&project)))
}

pub(crate) async fn update_project(
    State(state): State<AppState>,
    Access(access): Access,
    JsonBody(request): JsonBody<ProjectRequest>,
) -> ApiResult<Json<ProjectDto>> {
    let project = state.app().update_project(&access, &request.name).await?;
    Ok(Json(ProjectDto::from(&project)))
}

pub(crate) async fn delete_project(
    State(state): State<AppState>,
    Access(access): Access,
) -> ApiResult<Json<SuccessResponse>> {
    state.app().delete_project(&access).await?;
    Ok(Json(SuccessResponse::OK))
}
