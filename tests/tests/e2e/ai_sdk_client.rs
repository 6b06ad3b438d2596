//! A real Vercel AI SDK client reads our chat stream: a turn with reasoning, text and a tool
//! call runs through the server (local sandbox provider, the fake LLM as Anthropic), the raw
//! SSE of the server's thread stream is saved, and `tests/node-client/read-ui-stream.mjs`
//! (the `ai` npm package's own `readUIMessageStream`) must rebuild the assistant message from
//! it without rejecting a chunk. Needs `node` on `PATH` and `tests/node-client/node_modules`
//! (`cargo xtask ci` installs both); `DISCOBOT_SKIP_NODE=1` skips the test deliberately.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use discobot_fake_llm::{Reply, Step};
use discobot_tests::reqwest::{Method, StatusCode};
use discobot_tests::{git_fixture, json, str_field};
use futures::StreamExt;
use serde_json::Value;

use crate::common::{LOCAL, delete_session_and_wait, local_server_with_fake_anthropic};
use crate::sandbox::wait_status;

const THINKING: &str = "The user wants a greeting file.";
const BEFORE_TOOL: &str = "Writing the greeting now.";
const AFTER_TOOL: &str = "All done: hello.txt is written.";
const FILE_CONTENT: &str = "hello from the fake model\n";

/// `tests/node-client`, whose script and `node_modules` the test runs.
fn node_client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node-client")
}

/// Whether the Node client can run; `false` only when `DISCOBOT_SKIP_NODE=1` says to skip.
///
/// # Panics
/// When node or the client's packages are missing and no skip was asked for.
fn node_client_ready() -> bool {
    let node_runs = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    let installed = node_client_dir()
        .join("node_modules/ai/package.json")
        .is_file();
    if node_runs && installed {
        return true;
    }
    if std::env::var("DISCOBOT_SKIP_NODE").as_deref() == Ok("1") {
        eprintln!("skipping the AI SDK client test: DISCOBOT_SKIP_NODE=1");
        return false;
    }
    panic!(
        "the AI SDK client test needs node on PATH ({}) and tests/node-client/node_modules ({}). \
         Run `cargo xtask ci` (it installs node and runs `npm ci` in tests/node-client), or \
         `npm ci` there yourself, or set DISCOBOT_SKIP_NODE=1 to skip this test deliberately.",
        if node_runs { "found" } else { "missing" },
        if installed { "found" } else { "missing" },
    );
}

/// `target/<profile>/discobot-agent`, which the local provider starts.
fn assert_agent_built() {
    let exe = std::env::current_exe().expect("test binary path");
    let agent = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("discobot-agent");
    assert!(
        agent.is_file(),
        "build the agent first: cargo build -p discobot-agent-bin ({})",
        agent.display()
    );
}

/// Reads the raw bytes of a thread stream until the completion ends (a `chunk` frame of type
/// `data-completion-status` with `isRunning: false`) and returns them as sent.
async fn read_until_completion_ends(response: reqwest::Response, timeout: Duration) -> Vec<u8> {
    let start = Instant::now();
    let mut body = response.bytes_stream();
    let mut raw = Vec::new();
    // Where the next unparsed frame starts.
    let mut scanned = 0;
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        let next = tokio::time::timeout(left, body.next()).await;
        let bytes = match next {
            Ok(Some(Ok(bytes))) => bytes,
            Ok(Some(Err(error))) => panic!("the stream broke: {error}"),
            Ok(None) => panic!(
                "the stream ended before the completion did:\n{}",
                String::from_utf8_lossy(&raw)
            ),
            Err(_) => panic!(
                "the completion did not end within {timeout:?}:\n{}",
                String::from_utf8_lossy(&raw)
            ),
        };
        raw.extend_from_slice(&bytes);
        while let Some(end) = raw[scanned..].windows(2).position(|pair| pair == b"\n\n") {
            let frame = String::from_utf8_lossy(&raw[scanned..scanned + end]).into_owned();
            scanned += end + 2;
            if completion_ended(&frame) {
                return raw;
            }
        }
    }
}

/// Whether one SSE frame (without its blank line) says the completion is no longer running.
fn completion_ended(frame: &str) -> bool {
    let mut event = None;
    let mut data = String::new();
    for line in frame.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            event = Some(value.trim_start());
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    if event != Some("chunk") {
        return false;
    }
    let Ok(chunk) = serde_json::from_str::<Value>(&data) else {
        return false;
    };
    chunk["type"] == "data-completion-status" && chunk["data"]["isRunning"] == false
}

/// The parts of `message` of type `kind`.
fn parts<'a>(message: &'a Value, kind: &str) -> Vec<&'a Value> {
    message["parts"]
        .as_array()
        .map(|parts| parts.iter().filter(|part| part["type"] == kind).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_sdk_client_rebuilds_the_relayed_turn() {
    if !node_client_ready() {
        return;
    }
    assert_agent_built();

    // The model: reasoning, text and a Write call, then text once the tool has answered.
    let (server, fake) = local_server_with_fake_anthropic(&[]).await;
    fake.push(Reply::new(vec![
        Step::thinking(THINKING, None),
        Step::text(BEFORE_TOOL),
        Step::tool_call(
            "Write",
            json!({"file_path": "hello.txt", "content": FILE_CONTENT}),
        ),
    ]));
    fake.push(Reply::text(AFTER_TOOL));

    let dir = tempfile::tempdir().unwrap();
    let repo = git_fixture(&dir.path().join("repo"));
    let workspace = server
        .ready_workspace("local", json!({"path": repo.dir.display().to_string()}))
        .await;
    let session = format!("sdk-{}", uuid::Uuid::new_v4().simple());
    let s = format!("{LOCAL}/sessions/{session}");
    server
        .expect(
            Method::POST,
            &format!("{LOCAL}/sessions"),
            Some(json!({"id": session, "workspaceId": str_field(&workspace, "id")})),
            200,
        )
        .await;
    wait_status(&server, &session, "ready").await;

    // The thread exists before its stream opens, so the stream carries the whole turn as
    // `chunk` frames (a stream opened after the turn would replay it as history instead).
    let thread = "main";
    server
        .expect(
            Method::POST,
            &format!("{s}/threads"),
            Some(json!({"id": thread})),
            201,
        )
        .await;
    let response = server
        .client()
        .get(server.url(&format!("{s}/threads/{thread}/stream")))
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(response.status(), StatusCode::OK);
    let reading = tokio::spawn(read_until_completion_ends(
        response,
        Duration::from_secs(90),
    ));

    let message = json!({
        "id": "user-1", "role": "user",
        "parts": [{"type": "text", "text": "Write hello.txt, please."}],
    });
    let started = server
        .expect(
            Method::POST,
            &format!("{s}/threads/{thread}/chat"),
            Some(json!({"messages": [message], "model": "anthropic/claude-sonnet-4-5"})),
            200,
        )
        .await;
    assert_eq!(started["status"], "started", "{started}");
    let raw = reading.await.expect("the stream reader");
    // The client skips the frames that are not chunks (here the empty history replay).
    assert!(
        String::from_utf8_lossy(&raw).starts_with("event: history-start\n"),
        "{}",
        String::from_utf8_lossy(&raw)
    );

    // The AI SDK reads what the browser would have received.
    let sse = tempfile::Builder::new()
        .suffix(".sse")
        .tempfile()
        .expect("temp file");
    std::fs::write(sse.path(), &raw).expect("save the stream");
    let output = tokio::process::Command::new("node")
        .arg(node_client_dir().join("read-ui-stream.mjs"))
        .arg(sse.path())
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the AI SDK client failed ({}):\n{stderr}\nstream:\n{}",
        output.status,
        String::from_utf8_lossy(&raw)
    );
    let messages: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("the client printed no JSON ({error}): {stdout}"));
    let messages = messages.as_array().expect("an array of messages");
    assert_eq!(messages[0]["id"], "user-1", "{stdout}");
    let assistants: Vec<&Value> = messages
        .iter()
        .filter(|message| message["role"] == "assistant")
        .collect();
    assert_eq!(assistants.len(), 1, "one assistant message: {stdout}");
    let assistant = assistants[0];

    let reasoning: Vec<&str> = parts(assistant, "reasoning")
        .iter()
        .filter_map(|part| part["text"].as_str())
        .collect();
    assert_eq!(reasoning, [THINKING], "{stdout}");
    let texts: Vec<&str> = parts(assistant, "text")
        .iter()
        .filter_map(|part| part["text"].as_str())
        .collect();
    assert_eq!(texts, [BEFORE_TOOL, AFTER_TOOL], "{stdout}");
    assert_eq!(
        parts(assistant, "step-start").len(),
        2,
        "two steps: {stdout}"
    );
    // The agent's tools are dynamic (not declared to the client), so the SDK makes
    // `dynamic-tool` parts of them.
    let tools = parts(assistant, "dynamic-tool");
    assert_eq!(tools.len(), 1, "{stdout}");
    let tool = tools[0];
    assert_eq!(tool["toolName"], "Write", "{stdout}");
    assert_eq!(tool["state"], "output-available", "{stdout}");
    assert_eq!(tool["input"]["file_path"], "hello.txt", "{stdout}");
    assert_eq!(tool["input"]["content"], FILE_CONTENT, "{stdout}");
    let tool_output = tool["output"].to_string();
    assert!(tool_output.contains("hello.txt"), "tool output: {stdout}");
    for message in &messages[1..] {
        assert!(
            message["parts"]
                .as_array()
                .is_some_and(|parts| parts.iter().all(|p| p["state"] != "streaming")),
            "nothing is left streaming: {stdout}"
        );
    }

    // The tool really ran in the session's working copy.
    let file = server
        .expect(
            Method::GET,
            &format!("{s}/files/read?path=hello.txt"),
            None,
            200,
        )
        .await;
    assert_eq!(file["content"], FILE_CONTENT, "{file}");
    assert_eq!(fake.requests().len(), 2, "two model calls");

    delete_session_and_wait(&server, &session, Duration::from_secs(60)).await;
    server.stop().await.unwrap();
    fake.shutdown().await.unwrap();
}
