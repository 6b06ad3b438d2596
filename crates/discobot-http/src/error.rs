//! The one table from `ErrorKind` to HTTP status, and the JSON error envelope.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use discobot_core::{Error, ErrorKind};
use serde_json::json;

/// An error on its way to becoming a response: `{"error": "<message>"}` with the status
/// of its kind. Internal errors are logged here, once, and shown without detail.
#[derive(Debug)]
pub struct ApiError(pub Error);

pub type ApiResult<T> = Result<T, ApiError>;

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError(error)
    }
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError(Error::invalid(message))
    }
}

/// The one place where a domain error kind becomes a status code.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::BadGateway => StatusCode::BAD_GATEWAY,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_for(self.0.kind);
        if self.0.kind == ErrorKind::Internal {
            tracing::error!(error = %self.0.message, "internal error");
            return error_response(status, "internal server error");
        }
        match self.0.details {
            // A few errors carry more than their text (a chat conflict's `completionId`).
            Some(details) => {
                let mut body = *details;
                body.insert("error".into(), json!(self.0.message));
                (status, Json(serde_json::Value::Object(body))).into_response()
            }
            None => error_response(status, &self.0.message),
        }
    }
}

/// `{"error": message}` as `application/json` with `status`.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}
