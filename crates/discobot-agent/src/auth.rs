//! The bearer-secret check in front of every route except the public ones.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::routes::{AgentState, error};

/// Paths anyone may call: the server probes them before it knows the secret works.
/// (The service proxy, `/services/{id}/http/…`, joins them with the services issue.)
pub(crate) fn is_public(path: &str) -> bool {
    matches!(path, "/" | "/health")
}

/// Lets a request through if auth is off, its path is public, or it carries
/// `Authorization: Bearer <raw>` whose salted hash is the configured one; otherwise
/// 401 `{"error":"Unauthorized"}`.
pub(crate) async fn require_bearer(
    State(state): State<AgentState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(secret) = state.secret() else {
        return next.run(request).await;
    };
    if is_public(request.uri().path()) {
        return next.run(request).await;
    }
    match bearer_token(request.headers()) {
        Some(token) if secret.verify(token) => next.run(request).await,
        _ => error(StatusCode::UNAUTHORIZED, "Unauthorized"),
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn parses_bearer_tokens() {
        assert_eq!(bearer_token(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("bearer abc ")), Some("abc"));
        assert_eq!(bearer_token(&headers("Basic abc")), None);
        assert_eq!(bearer_token(&headers("Bearer ")), None);
        assert_eq!(bearer_token(&headers("Bearerabc")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn public_paths() {
        assert!(is_public("/"));
        assert!(is_public("/health"));
        assert!(!is_public("/user"));
        assert!(!is_public("/health/"));
        assert!(!is_public("/threads"));
    }
}
