//! The LLM provider clients against in-test servers on 127.0.0.1 that speak the Anthropic
//! Messages and OpenAI Chat Completions wire formats: streamed text, thinking, tool calls,
//! the request bodies, retries, provider errors, and cancel by dropping the stream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use discobot_agent::llm::{Providers, RetryPolicy};
use discobot_agent::model::{
    Block, FinishReason, ModelClient, ModelError, ModelEvent, ModelMessage, ModelRequest,
    ModelRole, ToolSpec,
};
use futures::StreamExt;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);
const ANTHROPIC_KEY: &str = "sk-ant-test-key-0123456789";
const OPENAI_KEY: &str = "sk-openai-test-key-0123456789";

/// What the fake provider saw: one entry per request.
#[derive(Clone, Default)]
struct Seen {
    requests: Arc<Mutex<Vec<(String, HeaderMap, Value)>>>,
}

impl Seen {
    fn record(&self, path: &str, headers: &HeaderMap, body: &Bytes) -> usize {
        let body = serde_json::from_slice(body).unwrap_or(Value::Null);
        let mut requests = self.requests.lock().unwrap();
        requests.push((path.to_owned(), headers.clone(), body));
        requests.len()
    }

    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    fn last(&self) -> (String, HeaderMap, Value) {
        self.requests.lock().unwrap().last().cloned().unwrap()
    }
}

/// Serves `router` on a loopback port.
async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// An SSE body, cut into small pieces so that events and lines span chunks.
fn sse(events: &[(Option<&str>, String)]) -> Response {
    let mut text = String::new();
    for (event, data) in events {
        if let Some(event) = event {
            text.push_str(&format!("event: {event}\n"));
        }
        text.push_str(&format!("data: {data}\n\n"));
    }
    let chunks: Vec<Result<Bytes, Infallible>> = text
        .into_bytes()
        .chunks(7)
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(futures::stream::iter(chunks)),
    )
        .into_response()
}

/// Anthropic events: each is sent with its type as the SSE event name, as the API does.
fn anthropic_sse(events: &[Value]) -> Response {
    let events: Vec<(Option<&str>, String)> = events
        .iter()
        .map(|event| (event["type"].as_str(), event.to_string()))
        .collect();
    sse(&events)
}

fn openai_sse(chunks: &[Value]) -> Response {
    let mut events: Vec<(Option<&str>, String)> = chunks
        .iter()
        .map(|chunk| (None, chunk.to_string()))
        .collect();
    events.push((None, "[DONE]".to_owned()));
    sse(&events)
}

/// A fake provider answering every POST with `answer(n)` (n counts from 1).
async fn provider(
    path: &'static str,
    answer: impl Fn(usize) -> Response + Clone + Send + Sync + 'static,
) -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let recorder = seen.clone();
    let router = Router::new().route(
        path,
        post(move |headers: HeaderMap, body: Bytes| {
            let n = recorder.record(path, &headers, &body);
            let answer = answer.clone();
            async move { answer(n) }
        }),
    );
    (serve(router).await, seen)
}

fn providers() -> Providers {
    Providers::new(None).with_retry_policy(RetryPolicy {
        max_retries: 4,
        base_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_millis(50),
    })
}

fn request(model: &str, credentials: &[(&str, String)]) -> ModelRequest {
    ModelRequest {
        model: Some(model.to_owned()),
        reasoning: None,
        system: String::new(),
        messages: vec![ModelMessage {
            role: ModelRole::User,
            blocks: vec![Block::Text("hello".into())],
        }],
        tools: Vec::new(),
        credentials: Arc::new(
            credentials
                .iter()
                .map(|(key, value)| ((*key).to_owned(), value.clone()))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

fn anthropic(addr: SocketAddr) -> Vec<(&'static str, String)> {
    vec![
        ("ANTHROPIC_API_KEY", ANTHROPIC_KEY.to_owned()),
        ("ANTHROPIC_BASE_URL", format!("http://{addr}")),
    ]
}

fn openai(addr: SocketAddr) -> Vec<(&'static str, String)> {
    vec![
        ("OPENAI_API_KEY", OPENAI_KEY.to_owned()),
        ("OPENAI_BASE_URL", format!("http://{addr}/v1")),
    ]
}

async fn collect(request: ModelRequest) -> Vec<Result<ModelEvent, ModelError>> {
    tokio::time::timeout(WAIT, providers().stream(request).collect())
        .await
        .expect("the stream ends")
}

fn ok(events: Vec<Result<ModelEvent, ModelError>>) -> Vec<ModelEvent> {
    events
        .into_iter()
        .map(|event| event.expect("no error"))
        .collect()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.to_str().unwrap())
}

#[tokio::test]
async fn anthropic_streams_thinking_with_its_signature_then_text() {
    let (addr, seen) = provider("/v1/messages", |_| {
        anthropic_sse(&[
            json!({"type": "message_start", "message": {"id": "msg_1", "role": "assistant", "content": []}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
            json!({"type": "ping"}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me "}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "think."}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQB"}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "Zm9v"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hello "}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "wörld"}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}),
            json!({"type": "message_stop"}),
        ])
    })
    .await;
    let mut request = request("anthropic/claude-sonnet-4-5", &anthropic(addr));
    request.reasoning = Some("high".into());
    let events = ok(collect(request).await);
    assert_eq!(
        events,
        [
            ModelEvent::ReasoningDelta("Let me ".into()),
            ModelEvent::ReasoningDelta("think.".into()),
            ModelEvent::ReasoningSignature("EqQBZm9v".into()),
            ModelEvent::TextDelta("Hello ".into()),
            ModelEvent::TextDelta("wörld".into()),
            ModelEvent::Finish {
                reason: FinishReason::Stop
            },
        ]
    );
    let (path, headers, body) = seen.last();
    assert_eq!(path, "/v1/messages");
    assert_eq!(header(&headers, "x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(header(&headers, "anthropic-version"), Some("2023-06-01"));
    assert_eq!(header(&headers, "authorization"), None);
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["max_tokens"], 36000,
        "the answer's room on top of the thinking budget"
    );
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 20000})
    );
}

#[tokio::test]
async fn anthropic_tool_call_input_arrives_in_pieces_over_oauth() {
    let (addr, seen) = provider("/v1/messages", |_| {
        anthropic_sse(&[
            json!({"type": "message_start", "message": {}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Listing."}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"comm"}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "and\": \"ls"}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": " -la\"}"}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}}),
            json!({"type": "message_stop"}),
        ])
    })
    .await;
    let credentials = vec![
        ("CLAUDE_CODE_OAUTH_TOKEN", "oat-token-0123456789".to_owned()),
        ("ANTHROPIC_BASE_URL", format!("http://{addr}/")),
    ];
    let events = ok(collect(request("anthropic/claude-haiku-4-5", &credentials)).await);
    assert_eq!(
        events,
        [
            ModelEvent::TextDelta("Listing.".into()),
            ModelEvent::ToolCallStart {
                id: "toolu_1".into(),
                name: "Bash".into()
            },
            ModelEvent::ToolCallDelta {
                id: "toolu_1".into(),
                delta: "{\"comm".into()
            },
            ModelEvent::ToolCallDelta {
                id: "toolu_1".into(),
                delta: "and\": \"ls".into()
            },
            ModelEvent::ToolCallDelta {
                id: "toolu_1".into(),
                delta: " -la\"}".into()
            },
            ModelEvent::ToolCall {
                id: "toolu_1".into(),
                name: "Bash".into(),
                input: json!({"command": "ls -la"})
            },
            ModelEvent::Finish {
                reason: FinishReason::ToolCalls
            },
        ]
    );
    let (_, headers, body) = seen.last();
    assert_eq!(
        header(&headers, "authorization"),
        Some("Bearer oat-token-0123456789")
    );
    assert_eq!(header(&headers, "anthropic-beta"), Some("oauth-2025-04-20"));
    assert_eq!(header(&headers, "x-api-key"), None);
    assert_eq!(body["max_tokens"], 16000);
    assert!(body.get("thinking").is_none());
}

fn tool_conversation(model: &str, credentials: &[(&str, String)]) -> ModelRequest {
    ModelRequest {
        system: "You are a coding agent.".into(),
        messages: vec![
            ModelMessage {
                role: ModelRole::User,
                blocks: vec![Block::Text("list the files".into())],
            },
            ModelMessage {
                role: ModelRole::Assistant,
                blocks: vec![
                    Block::Thinking {
                        text: "use Bash".into(),
                        signature: Some("sig".into()),
                    },
                    Block::Text("Listing.".into()),
                    Block::ToolCall {
                        id: "call_1".into(),
                        name: "Bash".into(),
                        input: json!({"command": "ls"}),
                    },
                ],
            },
            ModelMessage {
                role: ModelRole::User,
                blocks: vec![Block::ToolResult {
                    id: "call_1".into(),
                    output: "README.md".into(),
                    is_error: false,
                }],
            },
        ],
        tools: vec![ToolSpec {
            name: "Bash".into(),
            description: "Runs a shell command".into(),
            input_schema: json!({"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}),
        }],
        ..request(model, credentials)
    }
}

#[tokio::test]
async fn anthropic_request_carries_system_tools_and_tool_results() {
    let (addr, seen) = provider("/v1/messages", |_| {
        anthropic_sse(&[
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}}),
            json!({"type": "message_stop"}),
        ])
    })
    .await;
    let events = ok(collect(tool_conversation(
        "anthropic/claude-opus-4-1",
        &anthropic(addr),
    ))
    .await);
    assert_eq!(
        events,
        [ModelEvent::Finish {
            reason: FinishReason::Stop
        }]
    );
    let (_, _, body) = seen.last();
    assert_eq!(body["system"], "You are a coding agent.");
    assert_eq!(
        body["tools"],
        json!([{
            "name": "Bash",
            "description": "Runs a shell command",
            "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
        }])
    );
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "list the files"}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "use Bash", "signature": "sig"},
                {"type": "text", "text": "Listing."},
                {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "ls"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "README.md", "is_error": false},
            ]},
        ])
    );
}

#[tokio::test]
async fn openai_tool_call_arguments_arrive_in_pieces() {
    let (addr, seen) = provider("/v1/chat/completions", |_| {
        openai_sse(&[
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
            json!({"choices": [{"index": 0, "delta": {"content": "Let me look."}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_9", "type": "function", "function": {"name": "Bash", "arguments": ""}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"command\""}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": \"pwd\"}"}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7}}),
        ])
    })
    .await;
    let mut request = tool_conversation("openai/gpt-5", &openai(addr));
    request.reasoning = Some("low".into());
    let events = ok(collect(request).await);
    assert_eq!(
        events,
        [
            ModelEvent::TextDelta("Let me look.".into()),
            ModelEvent::ToolCallStart {
                id: "call_9".into(),
                name: "Bash".into()
            },
            ModelEvent::ToolCallDelta {
                id: "call_9".into(),
                delta: "{\"command\"".into()
            },
            ModelEvent::ToolCallDelta {
                id: "call_9".into(),
                delta: ": \"pwd\"}".into()
            },
            ModelEvent::ToolCall {
                id: "call_9".into(),
                name: "Bash".into(),
                input: json!({"command": "pwd"})
            },
            ModelEvent::Finish {
                reason: FinishReason::ToolCalls
            },
        ]
    );
    let (path, headers, body) = seen.last();
    assert_eq!(path, "/v1/chat/completions");
    assert_eq!(
        header(&headers, "authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
    assert_eq!(body["model"], "gpt-5");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["reasoning_effort"], "low");
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {
            "name": "Bash",
            "description": "Runs a shell command",
            "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
        }}])
    );
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You are a coding agent."},
            {"role": "user", "content": "list the files"},
            {"role": "assistant", "content": "Listing.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "Bash", "arguments": "{\"command\":\"ls\"}"}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "README.md"},
        ])
    );
}

#[tokio::test]
async fn compatible_vendors_use_their_own_key_and_base_url() {
    let (addr, seen) = provider("/api/v1/chat/completions", |_| {
        openai_sse(&[
            json!({"choices": [{"index": 0, "delta": {"reasoning_content": "hmm"}}]}),
            json!({"choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]}),
        ])
    })
    .await;
    let credentials = vec![
        ("MOON-SHOT_API_KEY", "wrong".to_owned()),
        ("MOON_SHOT_API_KEY", "ms-key-0123456789".to_owned()),
        ("MOON_SHOT_BASE_URL", format!("http://{addr}/api/v1")),
    ];
    let events = ok(collect(request("moon-shot/kimi-k2", &credentials)).await);
    assert_eq!(
        events,
        [
            ModelEvent::ReasoningDelta("hmm".into()),
            ModelEvent::TextDelta("ok".into()),
            ModelEvent::Finish {
                reason: FinishReason::Stop
            },
        ]
    );
    let (_, headers, body) = seen.last();
    assert_eq!(
        header(&headers, "authorization"),
        Some("Bearer ms-key-0123456789")
    );
    assert_eq!(body["model"], "kimi-k2");
}

#[tokio::test]
async fn rate_limits_are_retried_until_the_stream_starts() {
    let (addr, seen) = provider("/v1/messages", |n| {
        if n == 1 {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "0")],
                axum::Json(json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})),
            )
                .into_response()
        } else {
            anthropic_sse(&[
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "done"}}),
                json!({"type": "content_block_stop", "index": 0}),
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}}),
                json!({"type": "message_stop"}),
            ])
        }
    })
    .await;
    let events = ok(collect(request("anthropic/claude-sonnet-4-5", &anthropic(addr))).await);
    assert_eq!(seen.count(), 2);
    assert_eq!(
        events,
        [
            ModelEvent::TextDelta("done".into()),
            ModelEvent::Finish {
                reason: FinishReason::Stop
            }
        ]
    );
}

#[tokio::test]
async fn overload_gives_up_after_four_retries() {
    let (addr, seen) = provider("/v1/chat/completions", |_| {
        (
            StatusCode::from_u16(529).unwrap(),
            axum::Json(json!({"error": {"message": "overloaded"}})),
        )
            .into_response()
    })
    .await;
    let events = collect(request("openai/gpt-5", &openai(addr))).await;
    assert_eq!(seen.count(), 5, "the first attempt and four retries");
    let [Err(err)] = events.as_slice() else {
        panic!("one error: {events:?}")
    };
    assert!(
        err.0.contains("529") && err.0.contains("overloaded"),
        "{err}"
    );
}

#[tokio::test]
async fn a_client_error_is_not_retried_and_carries_the_providers_message() {
    let (addr, seen) = provider("/v1/messages", |_| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({
                "type": "error",
                "error": {"type": "invalid_request_error", "message": format!("max_tokens: too large (key {ANTHROPIC_KEY})")},
            })),
        )
            .into_response()
    })
    .await;
    let events = collect(request("anthropic/claude-sonnet-4-5", &anthropic(addr))).await;
    assert_eq!(seen.count(), 1);
    let [Err(err)] = events.as_slice() else {
        panic!("one error: {events:?}")
    };
    assert!(err.0.contains("400"), "{err}");
    assert!(err.0.contains("max_tokens: too large"), "{err}");
    assert!(!err.0.contains(ANTHROPIC_KEY), "the key is redacted: {err}");
}

#[tokio::test]
async fn an_error_event_in_the_stream_ends_it_with_the_message() {
    let (addr, _) = provider("/v1/messages", |_| {
        anthropic_sse(&[
            json!({"type": "message_start", "message": {}}),
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ])
    })
    .await;
    let events = collect(request("anthropic/claude-sonnet-4-5", &anthropic(addr))).await;
    assert_eq!(
        events,
        [Err(ModelError("Anthropic API error: Overloaded".into()))]
    );
}

#[tokio::test]
async fn an_unreachable_provider_is_an_error_without_the_key() {
    // A port that was free a moment ago: nothing listens there.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let events = collect(request("openai/gpt-5", &openai(addr))).await;
    let [Err(err)] = events.as_slice() else {
        panic!("one error: {events:?}")
    };
    assert!(err.0.contains("could not reach the OpenAI API"), "{err}");
    assert!(!err.0.contains(OPENAI_KEY), "{err}");
}

/// Set when the server's response body is dropped: hyper drops it when writing to the closed
/// connection fails.
struct DropSignal(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(sender) = self.0.take() {
            let _ = sender.send(());
        }
    }
}

#[tokio::test]
async fn dropping_the_stream_closes_the_connection() {
    let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel();
    let dropped_tx = Arc::new(Mutex::new(Some(dropped_tx)));
    let (addr, _) = provider("/v1/messages", move |_| {
        let signal = DropSignal(dropped_tx.lock().unwrap().take());
        let body = async_stream::stream! {
            let _signal = signal;
            let start = json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}});
            let delta = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "tick "}});
            yield Ok::<_, Infallible>(Bytes::from(format!("event: content_block_start\ndata: {start}\n\n")));
            // Endless: a ping-like delta every 20 ms until the client goes away.
            loop {
                yield Ok(Bytes::from(format!("event: content_block_delta\ndata: {delta}\n\n")));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        ([(header::CONTENT_TYPE, "text/event-stream")], Body::from_stream(body)).into_response()
    })
    .await;
    let mut stream = providers().stream(request("anthropic/claude-sonnet-4-5", &anthropic(addr)));
    let first = tokio::time::timeout(WAIT, stream.next()).await.unwrap();
    assert_eq!(first, Some(Ok(ModelEvent::TextDelta("tick ".into()))));
    drop(stream);
    tokio::time::timeout(WAIT, dropped_rx)
        .await
        .expect("the server sees the connection go")
        .unwrap();
}

#[tokio::test]
async fn no_credentials_is_a_clear_error() {
    let mut request = request("ignored/x", &[]);
    request.model = None;
    let events = collect(request).await;
    assert_eq!(
        events,
        [Err(ModelError(
            "no model credentials: add an Anthropic or OpenAI credential to the project".into()
        ))]
    );
}
