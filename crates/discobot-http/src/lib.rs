//! The HTTP layer: router, handlers, DTOs, error mapping and the server loop.
#![doc = include_str!("../README.md")]

mod dto;
mod error;
mod extract;
mod handlers;
mod middleware;
pub mod openapi;
pub mod routes;
mod state;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method};
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

pub use error::{ApiError, status_for};
pub use state::{AppState, ServerInfo, StatusMessage};

/// The whole application as a router, for in-process tests and for `serve`.
pub fn router(state: AppState) -> Router {
    let (_specs, routes) = routes::build_router(state.clone());
    let cors = cors_layer(&state.0.info.cors_origins);
    routes
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .layer(axum::middleware::from_fn(middleware::identify))
        .layer(DefaultBodyLimit::max(state.0.info.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::limit_body,
        ))
        .layer(cors)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves until `shutdown` completes: then long-lived streams are closed at once
/// (`begin_shutdown`) and in-flight requests get to finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    let stream_closer = state.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            stream_closer.begin_shutdown();
        })
        .await
}

/// CORS for the UI origins; an entry `http://*.localhost:3000` matches any subdomain.
fn cors_layer(origins: &[String]) -> CorsLayer {
    let origins = origins.to_vec();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            let Ok(origin) = origin.to_str() else {
                return false;
            };
            origins
                .iter()
                .any(|allowed| origin_matches(allowed, origin))
        }))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
            Method::HEAD,
            Method::PATCH,
        ])
        .allow_headers([
            axum::http::header::ACCEPT,
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderName::from_static("x-csrf-token"),
            axum::http::header::USER_AGENT,
            axum::http::HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([axum::http::header::LINK])
        .allow_credentials(true)
        .max_age(Duration::from_secs(300))
}

fn origin_matches(allowed: &str, origin: &str) -> bool {
    match allowed.split_once("://*.") {
        Some((scheme, rest)) => origin
            .strip_prefix(scheme)
            .and_then(|origin| origin.strip_prefix("://"))
            .and_then(|host| host.split_once('.'))
            .is_some_and(|(sub, tail)| !sub.is_empty() && tail == rest),
        None => allowed == origin,
    }
}

#[cfg(test)]
mod tests {
    use super::origin_matches;

    #[test]
    fn cors_wildcards() {
        assert!(origin_matches(
            "http://localhost:3000",
            "http://localhost:3000"
        ));
        assert!(origin_matches(
            "http://*.localhost:3000",
            "http://a.localhost:3000"
        ));
        assert!(!origin_matches(
            "http://*.localhost:3000",
            "http://localhost:3000"
        ));
        assert!(!origin_matches(
            "http://*.localhost:3000",
            "http://a.evil.com:3000"
        ));
    }
}
