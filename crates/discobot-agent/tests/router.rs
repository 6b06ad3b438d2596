//! The agent API router driven in-process with `tower::ServiceExt::oneshot`, and `serve` over TCP.

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode, header};
use discobot_agent::{AgentConfig, AgentState, router, serve};
use discobot_agent_api::secret::salted_hash;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

const RAW: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// One data directory for these meta tests (they create no threads); held in a static, so
/// it stays under the system temp dir after the run.
fn data_dir() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap())
        .path()
        .to_owned()
}

fn config(secret: Option<&str>) -> AgentConfig {
    AgentConfig {
        secret_hash: secret.map(|raw| salted_hash(raw, &[0x5a; 16])),
        data_dir: data_dir(),
        ..AgentConfig::default()
    }
}

/// Sends one request to a fresh router and returns the status and the JSON body.
async fn call(
    config: &AgentConfig,
    method: Method,
    path: &str,
    authorization: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let response = router(AgentState::new(config).unwrap())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    assert_eq!(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{path}: every answer is JSON"
    );
    (status, serde_json::from_slice(&body).unwrap())
}

async fn get(config: &AgentConfig, path: &str, authorization: Option<&str>) -> (StatusCode, Value) {
    call(config, Method::GET, path, authorization).await
}

fn unauthorized() -> (StatusCode, Value) {
    (StatusCode::UNAUTHORIZED, json!({"error": "Unauthorized"}))
}

#[tokio::test]
async fn root_and_health_need_no_token() {
    let config = config(Some(RAW));
    assert_eq!(
        get(&config, "/", None).await,
        (StatusCode::OK, json!({"status": "ok", "service": "agent"}))
    );
    assert_eq!(
        get(&config, "/health", None).await,
        (StatusCode::OK, json!({"healthy": true, "connected": true}))
    );
    // A wrong token does not matter on public paths either.
    assert_eq!(
        get(&config, "/health", Some("Bearer wrong")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn user_needs_the_right_token() {
    let config = config(Some(RAW));
    assert_eq!(get(&config, "/user", None).await, unauthorized());
    assert_eq!(
        get(&config, "/user", Some("Bearer wrong")).await,
        unauthorized()
    );
    assert_eq!(get(&config, "/user", Some("Bearer ")).await, unauthorized());
    assert_eq!(get(&config, "/user", Some(RAW)).await, unauthorized());
    assert_eq!(
        get(&config, "/user", Some(&format!("Basic {RAW}"))).await,
        unauthorized()
    );
    // The hash itself is not a token.
    let hash = config.secret_hash.clone().unwrap();
    assert_eq!(
        get(&config, "/user", Some(&format!("Bearer {hash}"))).await,
        unauthorized()
    );

    let (status, body) = get(&config, "/user", Some(&format!("Bearer {RAW}"))).await;
    assert_eq!(status, StatusCode::OK);
    let status_file = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid_line = status_file.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let uid: u64 = uid_line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(body["uid"], json!(uid));
    assert!(body["gid"].is_u64());
    assert!(!body["username"].as_str().unwrap().is_empty());
    if uid == 0 {
        assert_eq!(body["username"], "root");
    }
}

#[tokio::test]
async fn without_a_secret_auth_is_disabled() {
    let config = config(None);
    assert_eq!(get(&config, "/user", None).await.0, StatusCode::OK);
    assert_eq!(
        get(&config, "/user", Some("Bearer anything")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_paths_are_json_404_behind_auth() {
    let open = config(None);
    assert_eq!(
        get(&open, "/nope", None).await,
        (StatusCode::NOT_FOUND, json!({"error": "not found"}))
    );
    let closed = config(Some(RAW));
    assert_eq!(get(&closed, "/nope", None).await, unauthorized());
    assert_eq!(get(&closed, "/threads", None).await, unauthorized());
    assert_eq!(
        call(&closed, Method::POST, "/threads/x/chat", None).await,
        unauthorized()
    );
    assert_eq!(
        get(&closed, "/nope/x", Some(&format!("Bearer {RAW}"))).await,
        (StatusCode::NOT_FOUND, json!({"error": "not found"}))
    );
}

#[tokio::test]
async fn wrong_methods_are_json_405() {
    let config = config(None);
    assert_eq!(
        call(&config, Method::POST, "/health", None).await,
        (
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "method not allowed"})
        )
    );
}

#[tokio::test]
async fn serve_answers_over_tcp_and_shuts_down() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, config(Some(RAW)), async move {
        let _ = stopped.await;
    }));

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with(r#"{"healthy":true,"connected":true}"#));

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn malformed_secret_is_refused_at_start() {
    let config = AgentConfig {
        secret_hash: Some("not-a-hash".into()),
        data_dir: data_dir(),
        ..AgentConfig::default()
    };
    assert!(AgentState::new(&config).is_err());
}

#[tokio::test]
async fn an_unusable_data_dir_only_disables_the_thread_routes() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let config = AgentConfig {
        data_dir: file.path().join("below-a-file"),
        ..AgentConfig::default()
    };
    assert_eq!(get(&config, "/health", None).await.0, StatusCode::OK);
    assert_eq!(
        get(&config, "/threads", None).await,
        (
            StatusCode::NOT_IMPLEMENTED,
            json!({"error": "thread store unavailable"})
        )
    );
}
