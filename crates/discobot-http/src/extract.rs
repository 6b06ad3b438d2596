//! Extractors that turn every malformed request into a JSON 4xx: body, path, query, and
//! the caller's identity and project access.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use bytes::Bytes;
use discobot_core::app::{Principal, ProjectAccess};
use discobot_core::{Error, ErrorKind};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body. Any content type is accepted (the reference client sends JSON
/// with varying headers); syntax errors, wrong types and oversize bodies become 400/413.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError(Error::new(
                        ErrorKind::PayloadTooLarge,
                        "request body is too large",
                    ))
                } else {
                    ApiError::bad_request(format!(
                        "Invalid request body: {}",
                        rejection.body_text()
                    ))
                }
            })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A JSON body that may carry secrets (API keys, tokens). A malformed one is refused with
/// the bare message `Invalid request body`: parser errors can quote the input, and a secret
/// sent in the wrong field must not come back in an answer or a log line.
pub struct SecretJsonBody<T>(pub T);

impl<S, T> FromRequest<S> for SecretJsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match JsonBody::<T>::from_request(request, state).await {
            Ok(JsonBody(value)) => Ok(SecretJsonBody(value)),
            Err(ApiError(error)) if error.kind == ErrorKind::InvalidInput => {
                Err(ApiError::bad_request("Invalid request body"))
            }
            Err(error) => Err(error),
        }
    }
}

/// Parses a JSON body, naming the problem (syntax, type, missing field) in the 400.
///
/// Every request body of the API is a JSON object. serde would also read a struct from a
/// JSON array (`["x"]` as `{"name": "x"}`), so anything else is refused up front.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(ApiError::bad_request("Invalid request body: empty body")),
        Some(b'{') => {}
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid request body: expected a JSON object",
            ));
        }
    }
    serde_json::from_slice(bytes)
        .map_err(|error| ApiError::bad_request(format!("Invalid request body: {error}")))
}

/// Path parameters, with a JSON 400 when they do not parse.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|rejection| {
                ApiError::bad_request(format!("invalid path: {}", rejection.body_text()))
            })
    }
}

/// Query parameters, with a JSON 400 when they do not parse.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection| {
                ApiError::bad_request(format!("invalid query: {}", rejection.body_text()))
            })
    }
}

/// The caller. Put in the request by the auth middleware.
pub struct CurrentUser(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(CurrentUser)
            .ok_or_else(|| {
                ApiError(Error::new(
                    ErrorKind::Unauthenticated,
                    "Authentication required",
                ))
            })
    }
}

/// The caller's membership of the project in the path, checked by the membership layer.
pub struct Access(pub ProjectAccess);

impl<S: Send + Sync> FromRequestParts<S> for Access {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ProjectAccess>()
            .cloned()
            .map(Access)
            // Only reachable if a project route was registered without the membership layer.
            .ok_or_else(|| ApiError(Error::internal("route is missing the membership check")))
    }
}
