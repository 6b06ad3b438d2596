//! `AgentClient` against an in-test axum server: headers, retries, error texts, streams and
//! relay throughput.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use discobot_chat_proxy::{AgentClient, RetryPolicy};
use discobot_core::ErrorKind;
use discobot_core::ports::{AgentEndpoint, AgentMethod, AgentPort, AgentRequest};
use discobot_core::secrets::Secret;
use futures::StreamExt;
use serde_json::{Value, json};

async fn serve(router: Router) -> AgentEndpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    AgentEndpoint {
        base_url: format!("http://{addr}"),
        secret: "s3cret".into(),
    }
}

fn fast_retries(max_attempts: u32) -> AgentClient {
    AgentClient::new(RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
    })
}

fn header(headers: &HeaderMap, name: &str) -> Value {
    headers
        .get(name)
        .map_or(Value::Null, |v| json!(v.to_str().unwrap()))
}

#[tokio::test]
async fn sends_auth_credentials_git_and_json_headers() {
    let router = Router::new().route(
        "/threads/t1/chat",
        post(|headers: HeaderMap, body: String| async move {
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({
                    "authorization": header(&headers, "authorization"),
                    "credentials": header(&headers, "x-discobot-credentials"),
                    "gitName": header(&headers, "x-discobot-git-user-name"),
                    "gitEmail": header(&headers, "x-discobot-git-user-email"),
                    "contentType": header(&headers, "content-type"),
                    "body": body,
                })),
            )
        }),
    );
    let endpoint = serve(router).await;
    let answer = fast_retries(3)
        .call(
            &endpoint,
            AgentRequest {
                method: Some(AgentMethod::Post),
                path: "/threads/t1/chat".into(),
                body: Some(json!({"messages": []})),
                credentials_header: Some(Secret::new("[{\"envVar\":\"K\"}]")),
                git_user_name: Some("Ada".into()),
                git_user_email: Some("ada@example.com".into()),
                last_event_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 202);
    assert_eq!(
        answer.body,
        json!({
            "authorization": "Bearer s3cret",
            "credentials": "[{\"envVar\":\"K\"}]",
            "gitName": "Ada",
            "gitEmail": "ada@example.com",
            "contentType": "application/json",
            "body": "{\"messages\":[]}",
        })
    );
}

#[tokio::test]
async fn retries_5xx_until_success_and_returns_4xx_at_once() {
    let hits = Arc::new(AtomicU32::new(0));
    let counter = hits.clone();
    let bad_hits = Arc::new(AtomicU32::new(0));
    let bad_counter = bad_hits.clone();
    let router = Router::new()
        .route(
            "/flaky",
            get(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 3 {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response()
                    } else {
                        axum::Json(json!({"ok": true})).into_response()
                    }
                }
            }),
        )
        .route(
            "/bad",
            get(move || {
                bad_counter.fetch_add(1, Ordering::SeqCst);
                async {
                    (
                        StatusCode::NOT_FOUND,
                        axum::Json(json!({"error": "thread not found"})),
                    )
                }
            }),
        );
    let endpoint = serve(router).await;
    let client = fast_retries(15);
    let answer = client
        .call(
            &endpoint,
            AgentRequest {
                path: "/flaky".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((answer.status, answer.body), (200, json!({"ok": true})));
    assert_eq!(hits.load(Ordering::SeqCst), 4);

    let answer = client
        .call(
            &endpoint,
            AgentRequest {
                path: "/bad".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body, json!({"error": "thread not found"}));
    assert_eq!(bad_hits.load(Ordering::SeqCst), 1, "a 4xx is not retried");
}

#[tokio::test]
async fn persistent_5xx_names_status_and_attempts() {
    let hits = Arc::new(AtomicU32::new(0));
    let counter = hits.clone();
    let router = Router::new().route(
        "/down",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { StatusCode::BAD_GATEWAY }
        }),
    );
    let endpoint = serve(router).await;
    let error = fast_retries(4)
        .call(
            &endpoint,
            AgentRequest {
                path: "/down".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::BadGateway);
    assert_eq!(
        error.message,
        "sandbox returned retryable status 502 after 4 attempts"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn unreachable_agent_is_retried_then_fails_without_the_secret() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let endpoint = AgentEndpoint {
        base_url: format!("http://{addr}"),
        secret: "topsecret".into(),
    };
    let started = Instant::now();
    let error = fast_retries(3)
        .call(
            &endpoint,
            AgentRequest {
                path: "/health".into(),
                credentials_header: Some(Secret::new("credential-value")),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::BadGateway);
    assert!(
        error
            .message
            .starts_with("sandbox unreachable after 3 attempts"),
        "{}",
        error.message
    );
    assert!(!error.message.contains("topsecret") && !error.message.contains("credential-value"));
    assert!(
        started.elapsed() >= Duration::from_millis(2),
        "backed off between attempts"
    );
}

#[test]
fn backoff_doubles_from_50ms_and_caps_at_2s() {
    let policy = RetryPolicy::default();
    assert_eq!(policy.max_attempts, 15);
    let delays: Vec<u128> = (1..=8).map(|a| policy.backoff(a).as_millis()).collect();
    assert_eq!(delays, vec![50, 100, 200, 400, 800, 1600, 2000, 2000]);
}

#[tokio::test]
async fn stream_forwards_last_event_id_and_parses_frames() {
    let router = Router::new().route(
        "/threads/t1/chat/stream",
        get(|headers: HeaderMap| async move {
            let text = format!(
                ": hello\n\nid: c1:{}\nevent: chunk\ndata: {{\"type\":\"text-delta\"}}\n\r\n\
                 event: ping\r\ndata: {{}}\r\n\r\n",
                header(&headers, "last-event-id").as_str().unwrap_or("none"),
            );
            let accept = header(&headers, "accept");
            assert_eq!(accept, json!("text/event-stream"));
            ([("content-type", "text/event-stream")], text)
        }),
    );
    let endpoint = serve(router).await;
    let mut stream = fast_retries(2)
        .open_stream(
            &endpoint,
            AgentRequest {
                path: "/threads/t1/chat/stream".into(),
                last_event_id: Some("c1:4".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let first = stream.next_frame().await.unwrap().unwrap();
    assert_eq!(first.id.as_deref(), Some("c1:c1:4"));
    assert_eq!(first.event.as_deref(), Some("chunk"));
    assert_eq!(first.data, "{\"type\":\"text-delta\"}");
    let second = stream.next_frame().await.unwrap().unwrap();
    assert_eq!(
        (second.event.as_deref(), second.data.as_str()),
        (Some("ping"), "{}")
    );
    assert!(stream.next_frame().await.is_none());
}

#[tokio::test]
async fn stream_open_4xx_is_an_error_with_the_agents_text() {
    let router = Router::new().route(
        "/threads/x/chat/stream",
        get(|| async {
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": "thread not found"})),
            )
        }),
    );
    let endpoint = serve(router).await;
    let error = fast_retries(2)
        .open_stream(
            &endpoint,
            AgentRequest {
                path: "/threads/x/chat/stream".into(),
                ..Default::default()
            },
        )
        .await
        .err()
        .unwrap();
    assert_eq!(error.kind, ErrorKind::BadGateway);
    assert_eq!(
        error.message,
        "sandbox returned status 404: thread not found"
    );
}

#[tokio::test]
async fn mid_stream_failure_is_one_error_then_the_end() {
    let router = Router::new().route(
        "/s",
        get(|| async {
            let body = async_stream::stream! {
                yield Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"data: one\n\n"));
                // Headers and the first frame go out before the failure.
                tokio::time::sleep(Duration::from_millis(100)).await;
                yield Err(std::io::Error::other("boom"));
            };
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(body))
                .unwrap()
        }),
    );
    let endpoint = serve(router).await;
    let mut stream = fast_retries(1)
        .open_stream(
            &endpoint,
            AgentRequest {
                path: "/s".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(stream.next_frame().await.unwrap().unwrap().data, "one");
    assert!(stream.next_frame().await.unwrap().is_err());
    assert!(stream.next_frame().await.is_none());
}

const N_CHUNKS: usize = 100_000;

fn many_chunks() -> Body {
    let frames = futures::stream::iter(0..N_CHUNKS).map(|i| {
        Ok::<_, std::io::Error>(bytes::Bytes::from(format!(
            "id: c:{i}\nevent: chunk\ndata: {{\"type\":\"text-delta\",\"id\":\"t\",\"delta\":\"x\"}}\n\n"
        )))
    });
    Body::from_stream(frames)
}

/// 100,000 small frames come through the parser whole, in order, ids intact. (How fast is
/// measured by `cargo xtask bench chat`, not asserted here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_100k_small_chunks_in_order() {
    let router = Router::new().route("/s", get(|| async { many_chunks() }));
    let endpoint = serve(router).await;
    let client = fast_retries(1);
    let mut stream = client
        .open_stream(
            &endpoint,
            AgentRequest {
                path: "/s".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut n_frames = 0;
    while let Some(frame) = stream.next_frame().await {
        let frame = frame.unwrap();
        assert_eq!(frame.event.as_deref(), Some("chunk"));
        assert_eq!(frame.id, Some(format!("c:{n_frames}")));
        assert_eq!(frame.data, r#"{"type":"text-delta","id":"t","delta":"x"}"#);
        n_frames += 1;
    }
    assert_eq!(n_frames, N_CHUNKS);
}
