//! Middleware: the caller's identity, the one membership check of project routes, and JSON
//! answers for unmatched paths and methods.

use axum::extract::{RawPathParams, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use discobot_core::app::Principal;
use discobot_core::ids::ProjectId;

use crate::error::{ApiError, error_response};
use crate::extract::CurrentUser;
use crate::state::AppState;

/// Puts the caller in the request. Auth is disabled (anonymous mode) until the auth issue
/// lands; the binary refuses to start with `AUTH_ENABLED=true` meanwhile.
pub(crate) async fn identify(mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(Principal::anonymous());
    next.run(request).await
}

/// The membership check of every `/api/projects/{projectId}/…` route: 404 for an unknown
/// project, 403 for a non-member; on success the `ProjectAccess` goes into the request.
pub(crate) async fn require_member(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    params: RawPathParams,
    mut request: Request,
    next: Next,
) -> Response {
    let project = params
        .iter()
        .find(|(name, _)| *name == "projectId")
        .map(|(_, value)| value.to_owned())
        .unwrap_or_default();
    match state
        .app()
        .authorize_project(&user, &ProjectId::new(project))
        .await
    {
        Ok(access) => {
            request.extensions_mut().insert(access);
            next.run(request).await
        }
        Err(error) => ApiError(error).into_response(),
    }
}

pub(crate) async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not found")
}

pub(crate) async fn method_not_allowed() -> Response {
    error_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}
