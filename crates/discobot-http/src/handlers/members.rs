//! Members and invitations.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use discobot_core::app::NewInvitation;
use discobot_core::ids::{ProjectId, UserId};

use crate::dto::{InvitationDto, InvitationRequest, MemberDto, SuccessResponse};
use crate::error::ApiResult;
use crate::extract::{Access, ApiPath, CurrentUser, JsonBody};
use crate::state::AppState;

pub(crate) async fn list_members(
    State(state): State<AppState>,
    Access(access): Access,
) -> ApiResult<Json<Vec<MemberDto>>> {
    let members = state.app().list_members(&access).await?;
    Ok(Json(members.iter().map(MemberDto::from).collect()))
}

pub(crate) async fn remove_member(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, user_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<SuccessResponse>> {
    state
        .app()
        .remove_member(&access, &UserId::new(user_id))
        .await?;
    Ok(Json(SuccessResponse::OK))
}

pub(crate) async fn create_invitation(
    State(state): State<AppState>,
    Access(access): Access,
    JsonBody(request): JsonBody<InvitationRequest>,
) -> ApiResult<(StatusCode, Json<InvitationDto>)> {
    let request = NewInvitation {
        email: request.email,
        role: request.role,
    };
    let invitation = state.app().create_invitation(&access, request).await?;
    Ok((StatusCode::CREATED, Json(InvitationDto::from(&invitation))))
}

/// Not behind the membership check: the person accepting is usually not a member yet.
pub(crate) async fn accept_invitation(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath((project, token)): ApiPath<(String, String)>,
) -> ApiResult<Json<SuccessResponse>> {
    state
        .app()
        .accept_invitation(&user, &ProjectId::new(project), &token)
        .await?;
    Ok(Json(SuccessResponse::OK))
}
