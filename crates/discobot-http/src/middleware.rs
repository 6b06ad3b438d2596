//! Middleware: the caller's identity, the one membership check of project routes, the
//! request body limit, and JSON answers for unmatched paths and methods.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawPathParams, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use discobot_core::app::Principal;
use discobot_core::ids::ProjectId;
use discobot_core::{Error, ErrorKind};
use futures::{Stream, StreamExt};

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

/// How much of an oversize body is still read (and dropped) before the 413 is sent: a client
/// still sending its body reads the answer only if the server keeps reading meanwhile;
/// otherwise it sees a reset connection.
const DRAIN_BYTES: usize = 64 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Answers a body larger than `max_body_bytes` with a JSON 413, for declared
/// (`Content-Length`) and chunked bodies alike. Bodies within the limit pass unchanged.
pub(crate) async fn limit_body(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let max = state.0.info.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match declared {
        Some(length) if length <= max as u64 => return next.run(request).await,
        Some(_) => {
            drain(request.into_body().into_data_stream()).await;
            return too_large();
        }
        None => {}
    }
    // No declared length (chunked, or no body at all): read it here, within the limit.
    let (parts, body) = request.into_parts();
    let mut stream = body.into_data_stream();
    let mut buffer = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return error_response(
                StatusCode::BAD_REQUEST,
                "Invalid request body: cannot read it",
            );
        };
        if buffer.len() + chunk.len() > max {
            drain(stream).await;
            return too_large();
        }
        buffer.extend_from_slice(&chunk);
    }
    next.run(Request::from_parts(parts, Body::from(buffer.freeze())))
        .await
}

async fn drain<S, E>(mut stream: S)
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
{
    let read = async {
        let mut total = 0usize;
        while let Some(Ok(chunk)) = stream.next().await {
            total += chunk.len();
            if total > DRAIN_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, read).await;
}

fn too_large() -> Response {
    ApiError(Error::new(
        ErrorKind::PayloadTooLarge,
        "request body is too large",
    ))
    .into_response()
}
