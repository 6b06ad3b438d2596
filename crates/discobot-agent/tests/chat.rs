//! Threads and chat end to end through the router: CRUD in-process with `oneshot`, the SSE
//! stream over real TCP with reqwest (history replay, resume with `Last-Event-ID`, queueing,
//! cancel, ping), and a restart after a kill leaving the thread `interrupted`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode, header};
use discobot_agent::model::Echo;
use discobot_agent::store::{ActiveTurn, StoredMessage, ThreadStore};
use discobot_agent::{AgentConfig, AgentOptions, AgentState, router};
use discobot_agent_api::{Role, UiMessage};
use futures::StreamExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const PING: Duration = Duration::from_millis(400);
const WAIT: Duration = Duration::from_secs(10);

struct Agent {
    dir: tempfile::TempDir,
    state: AgentState,
    base: Option<String>,
}

impl Agent {
    fn new(delay_ms: u64) -> Self {
        Self::in_dir(tempfile::tempdir().unwrap(), delay_ms)
    }

    fn in_dir(dir: tempfile::TempDir, delay_ms: u64) -> Self {
        let config = AgentConfig {
            data_dir: dir.path().to_owned(),
            ..AgentConfig::default()
        };
        let options = AgentOptions {
            model: Arc::new(Echo {
                delay: Duration::from_millis(delay_ms),
            }),
            ping_interval: PING,
        };
        let state = AgentState::with_options(&config, options).unwrap();
        Self {
            dir,
            state,
            base: None,
        }
    }

    /// Serves the router on a loopback port for the streaming tests.
    async fn listen(mut self) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.base = Some(format!("http://{}", listener.local_addr().unwrap()));
        let app = router(self.state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        self
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json");
        let body = body.map_or_else(Body::empty, |body| Body::from(body.to_string()));
        let response = router(self.state.clone())
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn chat(&self, thread: &str, messages: Value) -> (StatusCode, Value) {
        let body = json!({"messages": messages});
        self.call(Method::POST, &format!("/threads/{thread}/chat"), Some(body))
            .await
    }

    async fn wait_idle(&self, thread: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (_, status) = self
                .call(Method::GET, &format!("/threads/{thread}/chat/status"), None)
                .await;
            if status["isRunning"] == json!(false) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "turn never ended");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stream(&self, thread: &str, last_event_id: Option<&str>) -> Sse {
        let url = format!(
            "{}/threads/{thread}/chat/stream",
            self.base.as_ref().unwrap()
        );
        let mut request = reqwest::Client::new()
            .get(url)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        assert_eq!(response.headers()["cache-control"], "no-cache");
        Sse {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }
}

fn user(id: &str, text: &str) -> Value {
    serde_json::to_value(UiMessage::text(id, Role::User, text)).unwrap()
}

/// One SSE event.
#[derive(Debug, Clone, PartialEq)]
struct Event {
    event: String,
    id: Option<String>,
    data: Value,
}

struct Sse {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl Sse {
    async fn next(&mut self) -> Event {
        tokio::time::timeout(WAIT, self.next_inner())
            .await
            .expect("no SSE event in time")
    }

    async fn next_inner(&mut self) -> Event {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event {
                    event: "message".into(),
                    id: None,
                    data: Value::Null,
                };
                for line in frame.lines() {
                    if let Some(value) = line.strip_prefix("event: ") {
                        event.event = value.into();
                    } else if let Some(value) = line.strip_prefix("id: ") {
                        event.id = Some(value.into());
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        event.data = serde_json::from_str(value).unwrap();
                    }
                }
                return event;
            }
            let bytes = self.body.next().await.expect("stream ended").unwrap();
            self.buffer.push_str(std::str::from_utf8(&bytes).unwrap());
        }
    }

    /// The history replay: the messages between `history-start` and `history-end`.
    async fn history(&mut self) -> Vec<Value> {
        assert_eq!(self.next().await.event, "history-start");
        let mut messages = Vec::new();
        loop {
            let event = self.next().await;
            match event.event.as_str() {
                "history-message" => messages.push(event.data),
                "history-end" => return messages,
                other => panic!("unexpected {other} in the history"),
            }
        }
    }

    /// The next chunk of a completion, skipping pings and the id-less completion status.
    async fn next_chunk(&mut self) -> Event {
        loop {
            let event = self.next().await;
            if event.event == "ping" || event.data["type"] == "data-completion-status" {
                assert!(event.id.is_none());
                continue;
            }
            return event;
        }
    }

    /// Chunks up to and including the next terminal one (`finish`, `abort`, `error`), without
    /// pings and completion statuses.
    async fn until_end(&mut self) -> Vec<Event> {
        let mut chunks = Vec::new();
        loop {
            let event = self.next_chunk().await;
            assert_eq!(event.event, "chunk");
            let kind = event.data["type"].as_str().unwrap().to_owned();
            chunks.push(event);
            if matches!(kind.as_str(), "finish" | "abort" | "error") {
                return chunks;
            }
        }
    }
}

fn types(chunks: &[Event]) -> Vec<String> {
    chunks
        .iter()
        .map(|c| c.data["type"].as_str().unwrap().to_owned())
        .collect()
}

fn text_of(chunks: &[Event]) -> String {
    chunks
        .iter()
        .filter(|c| c.data["type"] == "text-delta")
        .map(|c| c.data["delta"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn thread_crud() {
    let agent = Agent::new(0);
    assert_eq!(
        agent.call(Method::GET, "/threads", None).await,
        (StatusCode::OK, json!({"threads": []}))
    );
    let (status, thread) = agent
        .call(
            Method::POST,
            "/threads",
            Some(json!({"id": "t2", "name": "Second"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        thread,
        json!({"id": "t2", "name": "Second", "mode": "build"})
    );
    agent
        .call(Method::POST, "/threads", Some(json!({"id": "t1"})))
        .await;
    assert_eq!(
        agent
            .call(Method::POST, "/threads", Some(json!({"id": "t1"})))
            .await,
        (
            StatusCode::CONFLICT,
            json!({"error": "thread already exists"})
        )
    );
    assert_eq!(
        agent
            .call(Method::POST, "/threads", Some(json!({"name": "x"})))
            .await,
        (StatusCode::BAD_REQUEST, json!({"error": "id is required"}))
    );
    assert_eq!(
        agent.call(Method::POST, "/threads", Some(json!([1]))).await,
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid request body"})
        )
    );
    let (_, list) = agent.call(Method::GET, "/threads", None).await;
    let ids: Vec<_> = list["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    assert_eq!(ids, [json!("t1"), json!("t2")]);

    let (status, renamed) = agent
        .call(
            Method::PATCH,
            "/threads/t1",
            Some(json!({"name": "Renamed"})),
        )
        .await;
    assert_eq!(
        (status, &renamed["name"]),
        (StatusCode::OK, &json!("Renamed"))
    );
    let (status, _) = agent
        .call(Method::PUT, "/threads/t1", Some(json!({"name": "Again"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        agent.call(Method::GET, "/threads/t1", None).await.1["name"],
        "Again"
    );
    assert_eq!(
        agent.call(Method::GET, "/threads/nope", None).await,
        (StatusCode::NOT_FOUND, json!({"error": "thread not found"}))
    );
    assert_eq!(
        agent.call(Method::GET, "/threads/.hidden", None).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        agent.call(Method::GET, "/threads/t1/messages", None).await,
        (StatusCode::OK, json!({"messages": []}))
    );
    assert_eq!(
        agent.call(Method::DELETE, "/threads/t1", None).await,
        (StatusCode::OK, json!({"success": true}))
    );
    assert_eq!(
        agent.call(Method::DELETE, "/threads/t1", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        agent
            .call(Method::GET, "/threads/t1/chat/status", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        agent
            .chat(
                "t3",
                json!([{"id": "", "role": "assistant", "parts": []}, user("u", "x")])
            )
            .await,
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "last assistant message has no ID"})
        )
    );
    assert_eq!(
        agent
            .chat("t3", json!([{"id": "a", "role": "assistant", "parts": []}]))
            .await,
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "no user message found after the last assistant message"})
        )
    );
}

#[tokio::test]
async fn chat_streams_after_the_history_replay() {
    let agent = Agent::new(0).listen().await;
    let (status, started) = agent
        .chat("s1", json!([user("u1", "hello big world")]))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(started["status"], "started");
    agent.wait_idle("s1").await;
    let (_, thread) = agent.call(Method::GET, "/threads/s1", None).await;
    assert_eq!(thread["name"], "hello big world");

    // A fresh stream replays the finished turn as history, then follows the next one.
    let mut stream = agent.stream("s1", None).await;
    let history = stream.history().await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["id"], "u1");
    assert_eq!(history[1]["role"], "assistant");
    assert_eq!(history[1]["parts"][1]["text"], "hello big world");

    let assistant = history[1]["id"].clone();
    let (_, started) = agent
        .chat(
            "s1",
            json!([
                user("u1", "hello big world"),
                history[1],
                user("u2", "again please")
            ]),
        )
        .await;
    let completion = started["completionId"].as_str().unwrap().to_owned();
    let status = |running: bool| Event {
        event: "chunk".into(),
        id: None,
        data: json!({"type": "data-completion-status",
                     "data": {"threadId": "s1", "completionId": completion, "isRunning": running}}),
    };
    assert_eq!(stream.next().await, status(true));
    let chunks = stream.until_end().await;
    assert_eq!(
        types(&chunks),
        [
            "data-user-message",
            "start",
            "start-step",
            "text-start",
            "text-delta",
            "text-delta",
            "text-end",
            "finish-step",
            "finish",
        ]
    );
    for (offset, chunk) in chunks.iter().enumerate() {
        assert_eq!(
            chunk.id.as_deref(),
            Some(format!("{completion}:{offset}").as_str())
        );
    }
    assert_eq!(chunks[0].data["data"]["message"]["id"], "u2");
    assert_eq!(text_of(&chunks), "again please");
    assert_eq!(
        chunks.last().unwrap().data,
        json!({"type": "finish", "finishReason": "stop"})
    );

    agent.wait_idle("s1").await;
    let (_, messages) = agent.call(Method::GET, "/threads/s1/messages", None).await;
    let ids: Vec<_> = messages["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(ids[..3], [json!("u1"), assistant, json!("u2")]);
    assert_eq!(ids.len(), 4);
    // The completion is framed as finished; then nothing happens and the idle stream pings.
    assert_eq!(stream.next().await, status(false));
    assert_eq!(stream.next().await.event, "ping");
}

#[tokio::test]
async fn reconnect_with_last_event_id_resumes_exactly() {
    let agent = Agent::new(30).listen().await;
    agent
        .call(Method::POST, "/threads", Some(json!({"id": "r"})))
        .await;
    let mut steady = agent.stream("r", None).await;
    assert!(steady.history().await.is_empty());
    let mut flaky = agent.stream("r", None).await;
    assert!(flaky.history().await.is_empty());

    let text = "one two three four five six seven eight";
    agent.chat("r", json!([user("u1", text)])).await;
    let mut first = Vec::new();
    for _ in 0..5 {
        first.push(flaky.next_chunk().await);
    }
    drop(flaky);
    let last = first.last().unwrap().id.clone().unwrap();
    let mut resumed = agent.stream("r", Some(&last)).await;
    let rest = resumed.until_end().await;
    let all = steady.until_end().await;
    assert_eq!(
        [first, rest.clone()].concat(),
        all,
        "no chunk lost or repeated"
    );
    assert_eq!(text_of(&all), text);

    // After the end, resuming from any chunk returns exactly the remaining ones, then pings.
    agent.wait_idle("r").await;
    for k in [0, 3, all.len() - 1] {
        let mut again = agent.stream("r", all[k].id.as_deref()).await;
        for expected in &all[k + 1..] {
            assert_eq!(&again.next().await, expected);
        }
        let end = again.next().await;
        assert_eq!(
            (end.id, &end.data["data"]["isRunning"]),
            (None, &json!(false))
        );
        assert_eq!(again.next().await.event, "ping");
    }
    // An unknown event id replays the history instead.
    let mut unknown = agent.stream("r", Some("nope:3")).await;
    assert_eq!(unknown.history().await.len(), 2);
}

#[tokio::test]
async fn prompts_sent_during_a_turn_are_queued_and_run_next() {
    let agent = Agent::new(40).listen().await;
    let (_, first) = agent.chat("q", json!([user("u1", "a b c d e")])).await;
    assert_eq!(first["status"], "started");
    let mut stream = agent.stream("q", None).await;
    assert!(stream.history().await.is_empty());

    let (status, queued) = agent.chat("q", json!([user("u2", "f g")])).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(queued["status"], "queued");
    assert!(queued.get("completionId").is_none());
    let queued_id = queued["queuedPromptId"].as_str().unwrap().to_owned();
    let (_, third) = agent.chat("q", json!([user("u3", "dropped")])).await;
    let third_id = third["queuedPromptId"].as_str().unwrap().to_owned();

    let (_, thread) = agent.call(Method::GET, "/threads/q", None).await;
    let queue: Vec<_> = thread["promptQueue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(queue, [json!(queued_id), json!(third_id)]);
    let (_, status) = agent
        .call(Method::GET, "/threads/q/chat/status", None)
        .await;
    assert_eq!(status["isRunning"], true);
    assert_eq!(status["completionId"], first["completionId"]);

    let path = format!("/threads/q/queue/{third_id}");
    assert_eq!(
        agent.call(Method::DELETE, &path, None).await,
        (StatusCode::OK, json!({"success": true}))
    );
    assert_eq!(
        agent.call(Method::DELETE, &path, None).await,
        (
            StatusCode::NOT_FOUND,
            json!({"error": "queued prompt not found"})
        )
    );

    let one = stream.until_end().await;
    assert_eq!(text_of(&one), "a b c d e");
    // Each queued prompt was announced in the running completion.
    let updates: Vec<_> = one
        .iter()
        .filter(|c| c.data["type"] == "data-thread-update")
        .map(|c| {
            c.data["data"]["thread"]["promptQueue"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(updates, [1, 2]);
    let two = stream.until_end().await;
    assert_eq!(two[0].data["data"]["message"]["id"], "u2");
    assert_eq!(text_of(&two), "f g");
    let second_completion = two[0].id.as_ref().unwrap().split(':').next().unwrap();
    assert_ne!(Some(second_completion), first["completionId"].as_str());

    agent.wait_idle("q").await;
    let (_, messages) = agent.call(Method::GET, "/threads/q/messages", None).await;
    let roles: Vec<_> = messages["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].clone())
        .collect();
    assert_eq!(
        roles,
        [
            json!("user"),
            json!("assistant"),
            json!("user"),
            json!("assistant")
        ]
    );
    assert_eq!(messages["messages"][2]["id"], "u2");
    let (_, thread) = agent.call(Method::GET, "/threads/q", None).await;
    assert!(thread.get("promptQueue").is_none());
}

#[tokio::test]
async fn cancel_aborts_the_running_turn() {
    let agent = Agent::new(100).listen().await;
    assert_eq!(
        agent
            .call(Method::POST, "/threads/c/chat/cancel", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, started) = agent
        .chat("c", json!([user("u1", &"word ".repeat(50))]))
        .await;
    let mut stream = agent.stream("c", None).await;
    assert!(stream.history().await.is_empty());
    loop {
        if stream.next().await.data["type"] == "text-delta" {
            break;
        }
    }
    let (_, queued) = agent.chat("c", json!([user("u2", "later")])).await;
    assert_eq!(queued["status"], "queued");
    assert_eq!(
        agent
            .call(Method::POST, "/threads/c/chat/cancel", None)
            .await,
        (
            StatusCode::OK,
            json!({"success": true, "completionId": started["completionId"], "status": "cancelled"})
        )
    );
    let rest = stream.until_end().await;
    assert_eq!(
        rest.last().unwrap().data,
        json!({"type": "abort", "reason": "cancelled"})
    );
    agent.wait_idle("c").await;
    assert_eq!(
        agent
            .call(Method::POST, "/threads/c/chat/cancel", None)
            .await,
        (
            StatusCode::CONFLICT,
            json!({"error": "no_active_completion"})
        )
    );
    let (_, thread) = agent.call(Method::GET, "/threads/c", None).await;
    assert_eq!(thread["state"], "cancelled");
    // Queued prompts run after a successful turn only: this one waits.
    assert_eq!(thread["promptQueue"][0]["id"], queued["queuedPromptId"]);
    let (_, messages) = agent.call(Method::GET, "/threads/c/messages", None).await;
    assert_eq!(messages["messages"].as_array().unwrap().len(), 2);
}

/// What a process killed mid-turn leaves in `dir`: thread `k` with the user message `u1`
/// ("hi"), the active-turn marker, a logged chunk, and a torn temporary file.
fn killed_mid_turn(dir: &std::path::Path) {
    {
        // What a process killed mid-turn leaves: the user message, the marker, a torn write.
        let store = ThreadStore::open(dir).unwrap();
        store.create("k", Some("Killed")).unwrap();
        let message = UiMessage::text("u1", Role::User, "hi");
        store
            .put_message(
                "k",
                &StoredMessage {
                    id: "u1".into(),
                    parent_id: None,
                    message,
                },
            )
            .unwrap();
        store
            .set_active_turn(
                "k",
                &ActiveTurn {
                    completion_id: "c1".into(),
                    user_message_id: "u1".into(),
                    assistant_message_id: "c1-assistant".into(),
                    started_at: "2026-01-01T00:00:00Z".into(),
                },
            )
            .unwrap();
        store
            .append_chunk("k", "c1", r#"{"type":"start"}"#)
            .unwrap();
        std::fs::write(dir.join("threads/k/.tmp-1"), "{\"id\":").unwrap();
    }
}

#[tokio::test]
async fn a_killed_turn_leaves_the_thread_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    killed_mid_turn(dir.path());
    let agent = Agent::in_dir(dir, 0);
    let (_, thread) = agent.call(Method::GET, "/threads/k", None).await;
    assert_eq!(thread["state"], "interrupted");
    assert_eq!(thread["name"], "Killed");
    let (_, status) = agent
        .call(Method::GET, "/threads/k/chat/status", None)
        .await;
    assert_eq!(status, json!({"isRunning": false}));
    let (_, messages) = agent.call(Method::GET, "/threads/k/messages", None).await;
    assert_eq!(messages["messages"][0]["id"], "u1");
    assert!(!agent.dir.path().join("threads/k/.tmp-1").exists());

    // A new prompt is refused: the agent resumes the interrupted turn first.
    let (status, refused) = agent.chat("k", json!([user("u2", "go on")])).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(refused["error"], "interrupted_turn_requires_resume");
    assert!(refused["completionId"].is_string());
    agent.wait_idle("k").await;
    let (_, thread) = agent.call(Method::GET, "/threads/k", None).await;
    assert!(thread.get("state").is_none());
    assert!(!agent.dir.path().join("threads/k/active_turn.json").exists());
    let (_, messages) = agent.call(Method::GET, "/threads/k/messages", None).await;
    let messages = messages["messages"].as_array().unwrap().clone();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["parts"][1]["text"], "hi");
    // Then prompts start as usual.
    let (status, _) = agent
        .chat(
            "k",
            json!([user("u1", "hi"), messages[1], user("u2", "go on")]),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn opening_the_stream_resumes_an_interrupted_turn() {
    let dir = tempfile::tempdir().unwrap();
    killed_mid_turn(dir.path());
    let agent = Agent::in_dir(dir, 0).listen().await;
    let mut stream = agent.stream("k", None).await;
    // History stops before the interrupted turn, which is streamed again from its user message.
    assert!(stream.history().await.is_empty());
    let chunks = stream.until_end().await;
    assert_eq!(chunks[0].data["data"]["message"]["id"], "u1");
    assert_eq!(text_of(&chunks), "hi");
    agent.wait_idle("k").await;
    let (_, thread) = agent.call(Method::GET, "/threads/k", None).await;
    assert!(thread.get("state").is_none());
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let dir = tempfile::tempdir().unwrap();
    let config = AgentConfig {
        data_dir: dir.path().to_owned(),
        ..AgentConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(discobot_agent::serve(listener, config, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    client
        .post(format!("{base}/threads"))
        .json(&json!({"id": "s"}))
        .send()
        .await
        .unwrap();
    let response = client
        .get(format!("{base}/threads/s/chat/stream"))
        .send()
        .await
        .unwrap();
    let mut stream = Sse {
        body: response.bytes_stream().boxed(),
        buffer: String::new(),
    };
    assert!(stream.history().await.is_empty());

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .expect("the open stream does not hold the shutdown")
        .unwrap()
        .unwrap();
    assert!(stream.body.next().await.is_none_or(|item| item.is_err()));
}

#[tokio::test]
async fn deleting_a_thread_mid_turn_ends_its_stream_and_leaves_a_new_one_clean() {
    let agent = Agent::new(50).listen().await;
    agent
        .chat("d", json!([user("u1", &"slow ".repeat(40))]))
        .await;
    let mut stream = agent.stream("d", None).await;
    assert!(stream.history().await.is_empty());
    assert_eq!(stream.next_chunk().await.data["type"], "data-user-message");

    assert_eq!(
        agent.call(Method::DELETE, "/threads/d", None).await,
        (StatusCode::OK, json!({"success": true}))
    );
    // The stream ends (maybe after the chunks already queued for it).
    tokio::time::timeout(WAIT, async {
        while let Some(Ok(_)) = stream.body.next().await {}
    })
    .await
    .expect("the stream of a deleted thread ends");

    // A new thread with the same id gets nothing of the old turn.
    agent
        .call(Method::POST, "/threads", Some(json!({"id": "d"})))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        agent.call(Method::GET, "/threads/d/messages", None).await,
        (StatusCode::OK, json!({"messages": []}))
    );
    let (_, thread) = agent.call(Method::GET, "/threads/d", None).await;
    assert_eq!(thread, json!({"id": "d", "name": "", "mode": "build"}));
    assert!(!agent.dir.path().join("threads/d/turns").exists());
}
