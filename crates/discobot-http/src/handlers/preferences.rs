//! User preferences.

use axum::Json;
use axum::extract::State;

use crate::dto::{
    PreferenceDto, PreferencesResponse, SetPreferenceRequest, SetPreferencesRequest,
    SuccessResponse,
};
use discobot_core::Error;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, CurrentUser, JsonBody};
use crate::state::AppState;

pub(crate) async fn list_preferences(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<PreferencesResponse>> {
    let preferences = state.app().list_preferences(&user).await?;
    Ok(Json(PreferencesResponse {
        preferences: preferences.iter().map(PreferenceDto::from).collect(),
    }))
}

pub(crate) async fn set_preferences(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    JsonBody(request): JsonBody<SetPreferencesRequest>,
) -> ApiResult<Json<PreferencesResponse>> {
    let values = request.preferences.into_iter().collect();
    let preferences = state.app().set_preferences(&user, values).await?;
    Ok(Json(PreferencesResponse {
        preferences: preferences.iter().map(PreferenceDto::from).collect(),
    }))
}

pub(crate) async fn get_preference(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<PreferenceDto>> {
    let preference = state.app().get_preference(&user, &key).await?;
    Ok(Json(PreferenceDto::from(&preference)))
}

pub(crate) async fn set_preference(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(key): ApiPath<String>,
    JsonBody(request): JsonBody<SetPreferenceRequest>,
) -> ApiResult<Json<PreferenceDto>> {
    let mut preferences = state
        .app()
        .set_preferences(&user, vec![(key, request.value)])
        .await?;
    let preference = preferences
        .pop()
        .ok_or_else(|| ApiError(Error::internal("preference was not written")))?;
    Ok(Json(PreferenceDto::from(&preference)))
}

pub(crate) async fn delete_preference(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<SuccessResponse>> {
    state.app().delete_preference(&user, &key).await?;
    Ok(Json(SuccessResponse::OK))
}
