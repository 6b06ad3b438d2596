//! Chat end to end through real Docker sandboxes, with the fake LLM standing in for Anthropic:
//! a tool call that writes a file (seen in the stream, the files route, the diff and the
//! model's next request) and CommitSession bringing it to the host workspace as a commit,
//! cancel mid-stream, reconnect with `Last-Event-ID`, a question and its answer, a server
//! killed mid-stream and restarted on the same database, and the agent killed mid-turn then
//! resumed.
//!
//! Each scenario has its own project (so its own cache volume: scenarios may run at the same
//! time as the other Docker tests), its own fake LLM listening on the Docker bridge gateway
//! (the container reaches it as `host.docker.internal`), and removes everything it made.
//! Gated like `sandbox.rs`: `DISCOBOT_DOCKER_TESTS=1` runs them, `DISCOBOT_SKIP_DOCKER=1`
//! skips them; they need the current agent in the sandbox image (`cargo xtask sandbox-image`).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use discobot_fake_llm::{FakeLlm, Reply, Step, docker_bridge_gateway};
use discobot_tests::reqwest::{Method, StatusCode};
use discobot_tests::{
    Backend, GitFixture, ServerOptions, SseFrame, SseStream, TestServer, git_fixture, json,
    str_field, wait_until,
};
use serde_json::Value;

use crate::sandbox::{
    assert_nothing_left, container, docker, docker_wanted, free_port, spawn_server, wait_healthy,
};

/// A turn (or a sandbox start) that takes longer than this is a failure.
const TURN: Duration = Duration::from_secs(30);

/// HTTP to one server (in-process or a child process), by base URL.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    fn of(server: &TestServer) -> Api {
        Api {
            client: server.client().clone(),
            base: server.url(""),
        }
    }

    fn at(base: String) -> Api {
        Api {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("HTTP client"),
            base,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("{method} {path}: {error:?}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path}: {status} {text:?} is not JSON"));
        (status, json)
    }

    async fn expect(&self, method: Method, path: &str, body: Option<Value>, status: u16) -> Value {
        let (got, json) = self.call(method.clone(), path, body).await;
        assert_eq!(got.as_u16(), status, "{method} {path} answered {json}");
        json
    }

    /// Opens an SSE stream, asserting a 200 event stream.
    async fn open_stream(&self, path: &str, last_event_id: Option<&str>) -> SseStream {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {path}: {error:?}"));
        let status = response.status();
        if status != StatusCode::OK {
            let body = response.text().await.unwrap_or_default();
            panic!("GET {path}: {status} {body}");
        }
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        SseStream::new(response)
    }
}

/// One scenario's world: a project with an `anthropic` credential pointing at its fake LLM,
/// a git workspace, and a session whose sandbox is ready. Removes what is left of the
/// session's Docker objects when dropped, so a failing scenario leaves nothing behind.
struct ChatFixture {
    api: Api,
    fake: FakeLlm,
    project: String,
    session: String,
    _workspace_dir: tempfile::TempDir,
    workspace: GitFixture,
    torn_down: bool,
}

impl ChatFixture {
    async fn start(api: Api) -> ChatFixture {
        let gateway = docker_bridge_gateway().expect("the Docker bridge gateway address");
        let fake = FakeLlm::start(SocketAddr::new(gateway, 0))
            .await
            .expect("the fake LLM listens on the bridge gateway");
        let project = api
            .expect(
                Method::POST,
                "/api/projects",
                Some(json!({"name": "Docker chat"})),
                201,
            )
            .await;
        let project = str_field(&project, "id").to_owned();
        let p = format!("/api/projects/{project}");
        let credential = api
            .expect(
                Method::POST,
                &format!("{p}/credentials"),
                Some(json!({
                    "provider": "anthropic", "name": "Anthropic", "authType": "api_key",
                    "envVars": [
                        {"key": "ANTHROPIC_API_KEY", "value": "test-key"},
                        {"key": "ANTHROPIC_BASE_URL",
                         "value": format!("http://host.docker.internal:{}", fake.addr().port())},
                    ],
                })),
                200,
            )
            .await;
        assert_eq!(
            credential["envKeys"],
            json!(["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"]),
            "{credential}"
        );
        let workspace_dir = tempfile::tempdir().expect("temp dir");
        let workspace = git_fixture(&workspace_dir.path().join("repo"));
        let created = api
            .expect(
                Method::POST,
                &format!("{p}/workspaces"),
                Some(json!({"path": workspace.dir.display().to_string()})),
                201,
            )
            .await;
        let workspace_id = str_field(&created, "id").to_owned();
        wait_until(TURN, "workspace ready", || async {
            let (_, body) = api
                .call(Method::GET, &format!("{p}/workspaces/{workspace_id}"), None)
                .await;
            assert_ne!(body["status"], "error", "{body}");
            (body["status"] == "ready").then_some(())
        })
        .await;
        let session = format!("chat-{}", uuid::Uuid::new_v4().simple());
        let fixture = ChatFixture {
            api,
            fake,
            project,
            session,
            _workspace_dir: workspace_dir,
            workspace,
            torn_down: false,
        };
        fixture
            .api
            .expect(
                Method::POST,
                &format!("{p}/sessions"),
                Some(json!({"id": fixture.session, "workspaceId": workspace_id})),
                200,
            )
            .await;
        fixture.wait_ready().await;
        // The thread exists before any chat, so a stream can be open before the turn starts
        // and see every chunk of it.
        fixture
            .api
            .expect(
                Method::POST,
                &format!("{}/threads", fixture.s()),
                Some(json!({"id": fixture.session})),
                201,
            )
            .await;
        fixture
    }

    /// `P`.
    fn p(&self) -> String {
        format!("/api/projects/{}", self.project)
    }

    /// `S`.
    fn s(&self) -> String {
        format!("{}/sessions/{}", self.p(), self.session)
    }

    /// The session's main thread (its id is the session's).
    fn thread(&self) -> String {
        format!("{}/threads/{}", self.s(), self.session)
    }

    async fn wait_ready(&self) {
        let path = self.s();
        wait_until(TURN, "session ready", || async {
            let (status, body) = self.api.call(Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_ne!(body["status"], "error", "session failed: {body}");
            (body["status"] == "ready").then_some(())
        })
        .await;
    }

    /// Sends the chat `messages`; the agent must start a turn. Returns its completion id.
    async fn chat(&self, messages: Vec<Value>) -> String {
        let started = self
            .api
            .expect(
                Method::POST,
                &format!("{}/chat", self.thread()),
                Some(json!({"messages": messages})),
                200,
            )
            .await;
        assert_eq!(started["status"], "started", "{started}");
        str_field(&started, "completionId").to_owned()
    }

    async fn stream(&self, last_event_id: Option<&str>) -> SseStream {
        self.api
            .open_stream(&format!("{}/stream", self.thread()), last_event_id)
            .await
    }

    /// A stream whose history replay has been read (and is returned).
    async fn stream_after_history(&self) -> (SseStream, Vec<Value>) {
        let mut stream = self.stream(None).await;
        stream
            .until("history-start", TURN, |f| {
                f.event.as_deref() == Some("history-start")
            })
            .await;
        let (_, history) = stream
            .until("history-end", TURN, |f| {
                f.event.as_deref() == Some("history-end")
            })
            .await;
        let history = history
            .iter()
            .filter(|f| f.event.as_deref() == Some("history-message"))
            .map(SseFrame::json)
            .collect();
        (stream, history)
    }

    /// Waits until the fake has received `count` model requests; returns them all.
    async fn wait_requests(&self, count: usize) -> Vec<Value> {
        wait_until(TURN, &format!("{count} model requests"), || async {
            let requests = self.fake.requests();
            (requests.len() >= count).then(|| requests.into_iter().map(|r| r.body).collect())
        })
        .await
    }

    /// Deletes the session (its container and data volume go) and the project's cache
    /// volume, then checks that Docker holds nothing of them.
    async fn tear_down(mut self) {
        let s = self.s();
        self.api.expect(Method::DELETE, &s, None, 200).await;
        wait_until(Duration::from_secs(60), "session removed", || async {
            let (status, _) = self.api.call(Method::GET, &s, None).await;
            (status == StatusCode::NOT_FOUND).then_some(())
        })
        .await;
        self.api
            .expect(Method::DELETE, &format!("{}/cache", self.p()), None, 200)
            .await;
        assert_nothing_left(&[&self.session]);
        let cache = format!("discobot-cache-{}", self.project);
        assert!(
            !docker(&["volume", "inspect", &cache]).0,
            "cache volume {cache} left"
        );
        self.torn_down = true;
    }
}

impl Drop for ChatFixture {
    fn drop(&mut self) {
        if self.torn_down {
            return;
        }
        let _ = docker(&["rm", "-f", "-v", &container(&self.session)]);
        let _ = docker(&[
            "volume",
            "rm",
            "-f",
            &format!("discobot-data-{}", self.session),
        ]);
        let _ = docker(&[
            "volume",
            "rm",
            "-f",
            &format!("discobot-cache-{}", self.project),
        ]);
    }
}

/// A user message in the browser's shape.
fn user_message(id: &str, text: &str) -> Value {
    json!({"id": id, "role": "user", "parts": [{"type": "text", "text": text}]})
}

/// The chunk of a `chunk` frame, if it is one.
fn chunk(frame: &SseFrame) -> Option<Value> {
    (frame.event.as_deref() == Some("chunk")).then(|| frame.json())
}

fn chunk_type(frame: &SseFrame) -> String {
    chunk(frame)
        .and_then(|chunk| chunk["type"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Reads until a chunk of type `wanted` (any of them); returns it and the frames before.
async fn until_chunk(stream: &mut SseStream, wanted: &[&str]) -> (SseFrame, Vec<SseFrame>) {
    stream
        .until(&format!("a {wanted:?} chunk"), TURN, |frame| {
            wanted.contains(&chunk_type(frame).as_str())
        })
        .await
}

/// The chunks of `frames` (with their ids) that belong to `completion`.
fn completion_chunks(frames: &[SseFrame], completion: &str) -> Vec<(u64, Value)> {
    frames
        .iter()
        .filter_map(|frame| {
            let (id, offset) = frame.id.as_deref()?.rsplit_once(':')?;
            (id == completion).then(|| (offset.parse().expect("numeric offset"), frame.json()))
        })
        .collect()
}

/// The text of the `text-delta` chunks, in order.
fn text_of(chunks: &[(u64, Value)]) -> String {
    chunks
        .iter()
        .filter(|(_, chunk)| chunk["type"] == "text-delta")
        .map(|(_, chunk)| chunk["delta"].as_str().unwrap_or_default())
        .collect()
}

/// Offsets `0..n` exactly once each, in order.
fn assert_consecutive(chunks: &[(u64, Value)]) {
    let offsets: Vec<u64> = chunks.iter().map(|(offset, _)| *offset).collect();
    let expected: Vec<u64> = (0..offsets.len() as u64).collect();
    assert_eq!(offsets, expected, "offsets have a gap or a duplicate");
}

/// The `tool_result` blocks of an Anthropic request body's messages.
fn tool_results(request: &Value) -> Vec<Value> {
    request["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|message| message["content"].as_array().cloned().unwrap_or_default())
        .filter(|block| block["type"] == "tool_result")
        .collect()
}

/// A server in-process on SQLite with the Docker provider (as `sandbox.rs` starts one).
async fn docker_server() -> TestServer {
    let mut options = ServerOptions::new(Backend::Sqlite);
    options.docker = true;
    TestServer::start_with(options)
        .await
        .expect("server starts")
}

/// Runs `scenario` against a fresh Docker server, stopping it whatever happens.
async fn with_server<F, Fut>(scenario: F)
where
    F: FnOnce(Api) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let server = docker_server().await;
    let outcome = tokio::spawn(scenario(Api::of(&server))).await;
    let stopped = server.stop().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
    stopped.expect("the server stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_chat_write_tool() {
    if docker_wanted() {
        with_server(write_tool).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_chat_cancel() {
    if docker_wanted() {
        with_server(cancel).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_chat_reconnect() {
    if docker_wanted() {
        with_server(reconnect).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_chat_question() {
    if docker_wanted() {
        with_server(question).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_chat_agent_killed() {
    if docker_wanted() {
        with_server(agent_killed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_chat_server_killed() {
    if docker_wanted() {
        server_killed().await;
    }
}

/// The model writes a file with `Write`: the stream shows the call and its output, the file
/// is in the sandbox and in the diff, and the model's next request carries the result.
async fn write_tool(api: Api) {
    let fixture = ChatFixture::start(api).await;
    let content = "hello from the fake model\n";
    fixture.fake.push_all([
        Reply::new(vec![
            Step::text("Writing the file."),
            Step::tool_call(
                "Write",
                json!({"file_path": "hello.txt", "content": content}),
            ),
        ]),
        Reply::text("Done: hello.txt is written."),
    ]);
    let (mut stream, history) = fixture.stream_after_history().await;
    assert_eq!(history, Vec::<Value>::new());
    let completion = fixture
        .chat(vec![user_message("m1", "Please create hello.txt")])
        .await;
    let (finish, frames) = until_chunk(&mut stream, &["finish", "error", "abort"]).await;
    assert_eq!(chunk_type(&finish), "finish", "{frames:#?}");
    let chunks = completion_chunks(&frames, &completion);
    let input = chunks
        .iter()
        .map(|(_, chunk)| chunk)
        .find(|chunk| chunk["type"] == "tool-input-available")
        .unwrap_or_else(|| panic!("no tool-input-available in {chunks:#?}"));
    assert_eq!(input["toolName"], "Write", "{input}");
    assert_eq!(input["input"]["file_path"], "hello.txt", "{input}");
    let call_id = str_field(input, "toolCallId").to_owned();
    let output = chunks
        .iter()
        .map(|(_, chunk)| chunk)
        .find(|chunk| chunk["type"] == "tool-output-available")
        .unwrap_or_else(|| panic!("no tool-output-available in {chunks:#?}"));
    assert_eq!(output["toolCallId"], call_id.as_str(), "{output}");
    assert!(
        text_of(&chunks).ends_with("Done: hello.txt is written."),
        "{chunks:#?}"
    );
    drop(stream);

    let file = fixture
        .api
        .expect(
            Method::GET,
            &format!("{}/files/read?path=hello.txt", fixture.s()),
            None,
            200,
        )
        .await;
    assert_eq!(file["content"], content, "{file}");
    let diff = fixture
        .api
        .expect(Method::GET, &format!("{}/diff", fixture.s()), None, 200)
        .await;
    let files = diff["files"].as_array().expect("diff files");
    assert!(
        files
            .iter()
            .any(|f| f["path"] == "hello.txt" && f["status"] == "added"),
        "{diff}"
    );
    // The host workspace is untouched until a commit.
    assert!(!fixture.workspace.dir.join("hello.txt").exists());

    let requests = fixture.wait_requests(2).await;
    let results = tool_results(&requests[1]);
    assert_eq!(results.len(), 1, "{}", requests[1]);
    assert_eq!(
        results[0]["tool_use_id"],
        call_id.as_str(),
        "{}",
        results[0]
    );
    assert!(tool_results(&requests[0]).is_empty());

    // CommitSession brings the work back: a real commit on the host's HEAD.
    let base = discobot_tests::git(&fixture.workspace.dir, &["rev-parse", "HEAD"]);
    let started = fixture
        .api
        .expect(Method::POST, &format!("{}/commit", fixture.s()), None, 200)
        .await;
    assert_eq!(started, json!({"success": true}));
    let committed = wait_until(Duration::from_secs(60), "session committed", || async {
        let (_, body) = fixture.api.call(Method::GET, &fixture.s(), None).await;
        assert_ne!(body["status"], "error", "{body}");
        (body["status"] == "committed").then_some(body)
    })
    .await;
    let dir = &fixture.workspace.dir;
    let head = discobot_tests::git(dir, &["rev-parse", "HEAD"]);
    assert_eq!(committed["appliedCommit"], head.as_str(), "{committed}");
    assert_eq!(discobot_tests::git(dir, &["rev-parse", "HEAD~1"]), base);
    assert_eq!(
        discobot_tests::git(dir, &["log", "-1", "--name-status", "--format="]),
        "A\thello.txt"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("hello.txt")).unwrap(),
        content
    );
    assert_eq!(discobot_tests::git(dir, &["status", "--porcelain"]), "");
    discobot_tests::git(dir, &["fsck", "--strict"]);
    fixture.tear_down().await;
}

/// A hanging reply is cancelled: 200, the stream shows `abort`; the next chat works.
async fn cancel(api: Api) {
    let fixture = ChatFixture::start(api).await;
    fixture.fake.push(Reply::new(vec![
        Step::text("Let me think about that for a very long time"),
        Step::hang(),
    ]));
    let (mut stream, _) = fixture.stream_after_history().await;
    let completion = fixture
        .chat(vec![user_message("m1", "Take your time")])
        .await;
    until_chunk(&mut stream, &["text-delta"]).await;
    let cancelled = fixture
        .api
        .expect(
            Method::POST,
            &format!("{}/cancel", fixture.thread()),
            None,
            200,
        )
        .await;
    assert_eq!(
        cancelled,
        json!({"success": true, "completionId": completion, "status": "cancelled"})
    );
    let (end, frames) = until_chunk(&mut stream, &["finish", "error", "abort"]).await;
    assert_eq!(chunk_type(&end), "abort", "{frames:#?}");
    // Nothing runs any more.
    let (status, body) = fixture
        .api
        .call(Method::POST, &format!("{}/cancel", fixture.thread()), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    drop(stream);

    // A new message, sent the way the browser does: the history plus the new message.
    fixture
        .fake
        .push(Reply::text("Fresh answer after the cancel."));
    let (mut stream, mut history) = fixture.stream_after_history().await;
    assert_eq!(history.first().map(|m| &m["id"]), Some(&json!("m1")));
    history.push(user_message("m2", "Answer quickly this time"));
    let second = fixture.chat(history).await;
    assert_ne!(second, completion);
    let (end, frames) = until_chunk(&mut stream, &["finish", "error", "abort"]).await;
    assert_eq!(chunk_type(&end), "finish", "{frames:#?}");
    assert_eq!(
        text_of(&completion_chunks(&frames, &second)),
        "Fresh answer after the cancel."
    );
    let requests = fixture.wait_requests(2).await;
    assert!(
        requests[1].to_string().contains("Answer quickly this time"),
        "{}",
        requests[1]
    );
    fixture.tear_down().await;
}

/// Text long enough to stream for a few seconds at `chunk_chars` per delta.
fn long_text() -> String {
    (0..40).map(|n| format!("word{n:02} ")).collect()
}

fn slow_reply(text: &str) -> Reply {
    Reply {
        steps: vec![Step::text(text)],
        chunk_delay_ms: Some(60),
        chunk_chars: Some(5),
    }
}

/// A dropped stream reconnected with `Last-Event-ID` continues right after that chunk.
async fn reconnect(api: Api) {
    let fixture = ChatFixture::start(api).await;
    let text = long_text();
    fixture.fake.push(slow_reply(&text));
    let (mut stream, _) = fixture.stream_after_history().await;
    let completion = fixture
        .chat(vec![user_message("m1", "Tell me a long story")])
        .await;
    let mut first = Vec::new();
    while completion_chunks(&first, &completion).len() < 12 {
        let frame = stream.next_frame(TURN).await.expect("the stream goes on");
        assert_ne!(chunk_type(&frame), "finish", "the reply was too fast");
        first.push(frame);
    }
    drop(stream);
    let last_id = first
        .iter()
        .rev()
        .find_map(|frame| frame.id.clone())
        .expect("an id");

    let mut again = fixture.stream(Some(&last_id)).await;
    let (end, rest) = until_chunk(&mut again, &["finish", "error", "abort"]).await;
    assert_eq!(chunk_type(&end), "finish", "{rest:#?}");
    assert!(
        rest.iter().all(|f| !matches!(
            f.event.as_deref(),
            Some("history-start" | "history-message")
        )),
        "a reconnect replays no history: {rest:#?}"
    );
    let mut all = first;
    all.extend(rest);
    all.push(end);
    let chunks = completion_chunks(&all, &completion);
    assert_consecutive(&chunks);
    assert_eq!(
        chunks.last().map(|(_, c)| &c["type"]),
        Some(&json!("finish"))
    );
    assert_eq!(text_of(&chunks), text);
    fixture.tear_down().await;
}

/// `AskUserQuestion`: pending until answered; the answer reaches the model; the turn ends.
async fn question(api: Api) {
    let fixture = ChatFixture::start(api).await;
    let question_id = "toolu_question_1";
    let question = "Which colour should the button be?";
    fixture.fake.push_all([
        Reply::new(vec![Step::ToolCall {
            tool_call: discobot_fake_llm::ToolCall {
                name: "AskUserQuestion".into(),
                input: json!({"questions": [{
                    "question": question, "header": "Colour", "multiSelect": false,
                    "options": [{"label": "Teal", "description": "calm"},
                                {"label": "Orange", "description": "loud"}],
                }]}),
                id: Some(question_id.into()),
            },
        }]),
        Reply::text("Teal it is."),
    ]);
    let (mut stream, _) = fixture.stream_after_history().await;
    let completion = fixture
        .chat(vec![user_message("m1", "Style the button")])
        .await;
    let (input, _) = until_chunk(&mut stream, &["tool-input-available"]).await;
    let input = input.json();
    assert_eq!(input["toolName"], "AskUserQuestion", "{input}");
    assert_eq!(input["toolCallId"], question_id, "{input}");
    assert_eq!(input["input"]["questions"][0]["question"], question);

    let path = format!("{}/question/{question_id}", fixture.thread());
    let pending = fixture.api.expect(Method::GET, &path, None, 200).await;
    assert_eq!(pending["status"], "pending", "{pending}");
    assert_eq!(
        pending["question"]["questions"][0]["question"], question,
        "{pending}"
    );
    // Another message meanwhile is refused: the question must be answered first.
    let (status, body) = fixture
        .api
        .call(
            Method::POST,
            &format!("{}/chat", fixture.thread()),
            Some(json!({"messages": [user_message("m2", "never mind")]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "pending_question_requires_answer", "{body}");

    fixture
        .api
        .expect(
            Method::POST,
            &format!("{}/answer/{question_id}", fixture.thread()),
            Some(json!({"answers": {question: "Teal"}})),
            200,
        )
        .await;
    let (end, frames) = until_chunk(&mut stream, &["finish", "error", "abort"]).await;
    assert_eq!(chunk_type(&end), "finish", "{frames:#?}");
    let chunks = completion_chunks(&frames, &completion);
    assert!(
        chunks
            .iter()
            .any(|(_, c)| c["type"] == "tool-output-available" && c["toolCallId"] == question_id),
        "{chunks:#?}"
    );
    assert!(text_of(&chunks).ends_with("Teal it is."), "{chunks:#?}");
    let answered = fixture.api.expect(Method::GET, &path, None, 200).await;
    assert_eq!(answered["status"], "answered", "{answered}");

    let requests = fixture.wait_requests(2).await;
    let results = tool_results(&requests[1]);
    assert_eq!(results.len(), 1, "{}", requests[1]);
    assert_eq!(results[0]["tool_use_id"], question_id);
    assert!(results[0].to_string().contains("Teal"), "{}", results[0]);
    fixture.tear_down().await;
}

/// The server process is SIGKILLed mid-stream and started again on the same data dir (as in
/// `sandbox.rs`); the container kept running, so the client reconnecting with
/// `Last-Event-ID` gets the rest of the completion.
async fn server_killed() {
    let data = tempfile::tempdir().expect("data dir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = spawn_server(data.path(), port);
    let api = Api::at(base.clone());
    wait_healthy(&api.client, &base).await;
    let fixture = ChatFixture::start(api.clone()).await;
    let outcome = tokio::spawn(async move {
        let text = long_text();
        fixture.fake.push(slow_reply(&text));
        let (mut stream, _) = fixture.stream_after_history().await;
        let completion = fixture
            .chat(vec![user_message("m1", "Tell me a long story")])
            .await;
        let mut first = Vec::new();
        while completion_chunks(&first, &completion).len() < 8 {
            first.push(stream.next_frame(TURN).await.expect("the stream goes on"));
        }
        (fixture, stream, completion, first, text)
    })
    .await;
    server.kill().expect("SIGKILL");
    server.wait().expect("reaped");
    let (fixture, mut stream, completion, mut first, text) = match outcome {
        Ok(values) => values,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    };
    // Whatever was already buffered before the kill still counts; then the stream ends.
    while let Ok(Some(frame)) = stream.try_next_frame(Duration::from_secs(5)).await {
        first.push(frame);
    }
    let last_id = first
        .iter()
        .rev()
        .find_map(|frame| frame.id.clone())
        .expect("an id");

    let mut server = spawn_server(data.path(), port);
    let outcome = tokio::spawn(async move {
        wait_healthy(&fixture.api.client, &fixture.api.base).await;
        let mut again = fixture.stream(Some(&last_id)).await;
        let (end, rest) = until_chunk(&mut again, &["finish", "error", "abort"]).await;
        assert_eq!(chunk_type(&end), "finish", "{rest:#?}");
        let mut all = first;
        all.extend(rest);
        all.push(end);
        let chunks = completion_chunks(&all, &completion);
        assert_consecutive(&chunks);
        assert_eq!(text_of(&chunks), text);
        drop(again);
        fixture.tear_down().await;
    })
    .await;
    let _ = server.kill();
    let _ = server.wait();
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// The agent process dies mid-turn: the thread is `interrupted` when the agent is back, and
/// opening the stream resumes the turn as a new completion that finishes.
async fn agent_killed(api: Api) {
    let fixture = ChatFixture::start(api).await;
    fixture.fake.push_all([
        Reply::new(vec![Step::text("Starting on it"), Step::hang()]),
        Reply::text("Resumed and finished."),
    ]);
    let (mut stream, _) = fixture.stream_after_history().await;
    let completion = fixture
        .chat(vec![user_message("m1", "Do the long job")])
        .await;
    until_chunk(&mut stream, &["text-delta"]).await;
    let name = container(&fixture.session);
    let (found, pid) = docker(&["exec", &name, "pgrep", "-x", "discobot-agent"]);
    assert!(found && !pid.is_empty(), "the agent runs in {name}");
    // The agent is the child of the container's init: it exits with it, the container stops.
    let (killed, _) = docker(&["exec", &name, "kill", "-KILL", pid.trim()]);
    assert!(killed, "kill the agent");
    // The relay ends when the agent's connection goes.
    stream.expect_end(TURN).await;

    // The provider's watch notices the stopped container; the next request brings the
    // sandbox back, and the thread says its turn was interrupted.
    let s = fixture.s();
    wait_until(TURN, "session stopped", || async {
        let (_, body) = fixture.api.call(Method::GET, &s, None).await;
        (body["status"] == "stopped").then_some(())
    })
    .await;
    let thread = fixture
        .api
        .expect(Method::GET, &fixture.thread(), None, 200)
        .await;
    assert_eq!(thread["state"], "interrupted", "{thread}");

    // Opening the stream resumes it: a new completion for the same user message, which is
    // that completion's input (a `data-user-message` chunk), not history.
    let (mut stream, history) = fixture.stream_after_history().await;
    assert_eq!(history, Vec::<Value>::new());
    let (status, _) = until_chunk(&mut stream, &["data-completion-status"]).await;
    let resumed = str_field(&chunk(&status).unwrap()["data"], "completionId").to_owned();
    assert_ne!(resumed, completion);
    let (end, frames) = until_chunk(&mut stream, &["finish", "error", "abort"]).await;
    assert_eq!(chunk_type(&end), "finish", "{frames:#?}");
    let mut chunks = completion_chunks(&frames, &resumed);
    chunks.extend(completion_chunks(std::slice::from_ref(&end), &resumed));
    assert_consecutive(&chunks);
    assert!(
        chunks
            .iter()
            .any(|(_, c)| c["type"] == "data-user-message" && c["data"]["message"]["id"] == "m1"),
        "{chunks:#?}"
    );
    assert_eq!(text_of(&chunks), "Resumed and finished.");
    let requests = fixture.wait_requests(2).await;
    assert!(
        requests[1].to_string().contains("Do the long job"),
        "{}",
        requests[1]
    );
    let thread = fixture
        .api
        .expect(Method::GET, &fixture.thread(), None, 200)
        .await;
    assert_ne!(thread["state"], "interrupted", "{thread}");
    let ids: BTreeSet<String> = frames.iter().filter_map(|f| f.id.clone()).collect();
    assert!(
        ids.iter().all(|id| !id.starts_with(&completion)),
        "the dead completion is gone: {ids:?}"
    );
    fixture.tear_down().await;
}
