//! Credentials: types, list, create-or-update, get, delete, session assignments, and the
//! MCP token push. Answers show which fields are set, never a secret; bodies that may hold
//! secrets are read with `SecretJsonBody`, whose errors never quote the input.

use axum::Json;
use axum::extract::State;
use discobot_core::app::{AssignmentInput, CredentialInput, EnvVarInput, McpTokenInput};
use discobot_core::ids::SessionId;

use crate::dto::{
    CreateCredentialRequest, CredentialInfoDto, CredentialTypeDto, CredentialTypesResponse,
    CredentialsResponse, McpTokenRequest, SessionCredentialDto, SessionCredentialsResponse,
    SetSessionCredentialsRequest, StatusResponse,
};
use crate::error::ApiResult;
use crate::extract::{Access, ApiPath, JsonBody, SecretJsonBody};
use crate::state::AppState;

pub(crate) async fn credential_types(
    State(state): State<AppState>,
    Access(_access): Access,
) -> Json<CredentialTypesResponse> {
    Json(CredentialTypesResponse {
        credential_types: state
            .app()
            .credential_types()
            .iter()
            .map(CredentialTypeDto::from)
            .collect(),
    })
}

pub(crate) async fn list_credentials(
    State(state): State<AppState>,
    Access(access): Access,
) -> ApiResult<Json<CredentialsResponse>> {
    let credentials = state.app().list_credentials(&access).await?;
    Ok(Json(CredentialsResponse {
        credentials: credentials.iter().map(CredentialInfoDto::from).collect(),
    }))
}

pub(crate) async fn create_credential(
    State(state): State<AppState>,
    Access(access): Access,
    SecretJsonBody(request): SecretJsonBody<CreateCredentialRequest>,
) -> ApiResult<Json<CredentialInfoDto>> {
    let input = CredentialInput {
        provider: request.provider,
        credential_id: request.credential_id,
        name: request.name,
        description: request.description,
        auth_type: request.auth_type,
        api_key: request.api_key,
        env_vars: request
            .env_vars
            .unwrap_or_default()
            .into_iter()
            .map(|var| EnvVarInput {
                key: var.key,
                value: var.value,
            })
            .collect(),
        agent_visible: request.agent_visible,
        visibility: request.visibility.map(Into::into),
        inactive: request.inactive,
    };
    let info = state.app().save_credential(&access, input).await?;
    Ok(Json(CredentialInfoDto::from(&info)))
}

pub(crate) async fn get_credential(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, key)): ApiPath<(String, String)>,
) -> ApiResult<Json<CredentialInfoDto>> {
    let info = state.app().get_credential(&access, &key).await?;
    Ok(Json(CredentialInfoDto::from(&info)))
}

pub(crate) async fn delete_credential(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, key)): ApiPath<(String, String)>,
) -> ApiResult<Json<StatusResponse>> {
    state.app().delete_credential(&access, &key).await?;
    Ok(Json(StatusResponse { status: "deleted" }))
}

pub(crate) async fn list_session_credentials(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session)): ApiPath<(String, String)>,
) -> ApiResult<Json<SessionCredentialsResponse>> {
    let views = state
        .app()
        .list_session_credentials(&access, &SessionId::new(session))
        .await?;
    Ok(Json(SessionCredentialsResponse {
        credentials: views.iter().map(SessionCredentialDto::from).collect(),
    }))
}

pub(crate) async fn set_session_credentials(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session)): ApiPath<(String, String)>,
    JsonBody(request): JsonBody<SetSessionCredentialsRequest>,
) -> ApiResult<Json<SessionCredentialsResponse>> {
    let inputs = request
        .credentials
        .unwrap_or_default()
        .into_iter()
        .map(|entry| AssignmentInput {
            credential_id: entry.credential_id,
            session_credential_id: entry.session_credential_id,
            env_var: entry.env_var,
            source_env_var: entry.source_env_var,
            agent_visible: entry.agent_visible,
            visibility: entry.visibility.map(Into::into),
            uses: entry
                .uses
                .map(|uses| uses.into_iter().map(|u| u.description).collect()),
        })
        .collect();
    let views = state
        .app()
        .set_session_credentials(&access, &SessionId::new(session), inputs)
        .await?;
    Ok(Json(SessionCredentialsResponse {
        credentials: views.iter().map(SessionCredentialDto::from).collect(),
    }))
}

pub(crate) async fn post_mcp_token(
    State(state): State<AppState>,
    Access(access): Access,
    SecretJsonBody(request): SecretJsonBody<McpTokenRequest>,
) -> ApiResult<Json<StatusResponse>> {
    let input = McpTokenInput {
        url: request.url,
        access_token: request.access_token,
        refresh_token: request.refresh_token,
        expires_at: request.expires_at,
    };
    state.app().store_mcp_token(&access, input).await?;
    Ok(Json(StatusResponse { status: "ok" }))
}
