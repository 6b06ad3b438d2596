//! The tool loop end to end through the router, driven by a scripted model: each model call
//! plays the next script (tool calls, text, reasoning) and records the request, so the tests
//! see both what the tools did (files, processes, the persisted message) and what the model
//! was told (tool results, the history round trip).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode, header};
use discobot_agent::model::{
    Block, FinishReason, ModelClient, ModelError, ModelEvent, ModelRequest, ModelRole,
};
use discobot_agent::{AgentConfig, AgentOptions, AgentState, router};
use discobot_agent_api::{Role, UiMessage};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use tower::ServiceExt;

const WAIT: Duration = Duration::from_secs(20);

/// Plays one script per model call; after the scripts run out it answers "done".
#[derive(Debug, Default)]
struct Scripted {
    steps: Mutex<VecDeque<Vec<ModelEvent>>>,
    requests: Mutex<Vec<ModelRequest>>,
}

impl Scripted {
    fn push(&self, steps: impl IntoIterator<Item = Vec<ModelEvent>>) {
        self.steps.lock().unwrap().extend(steps);
    }

    fn requests(&self) -> Vec<ModelRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// The result the model was given for tool call `id`: `(output, is_error)`.
    fn result(&self, id: &str) -> (String, bool) {
        for request in self.requests().iter().rev() {
            for message in &request.messages {
                for block in &message.blocks {
                    if let Block::ToolResult {
                        id: result_id,
                        output,
                        is_error,
                    } = block
                        && result_id == id
                    {
                        return (output.clone(), *is_error);
                    }
                }
            }
        }
        panic!("no result for tool call {id}");
    }
}

impl ModelClient for Scripted {
    fn stream(&self, request: ModelRequest) -> BoxStream<'static, Result<ModelEvent, ModelError>> {
        self.requests.lock().unwrap().push(request);
        let events = self.steps.lock().unwrap().pop_front().unwrap_or_else(|| {
            vec![
                ModelEvent::TextDelta("done".into()),
                ModelEvent::Finish {
                    reason: FinishReason::Stop,
                },
            ]
        });
        futures::stream::iter(events.into_iter().map(Ok)).boxed()
    }
}

/// One model step that calls one tool.
fn call(id: &str, name: &str, input: Value) -> Vec<ModelEvent> {
    vec![
        ModelEvent::ToolCallStart {
            id: id.into(),
            name: name.into(),
        },
        ModelEvent::ToolCallDelta {
            id: id.into(),
            delta: input.to_string(),
        },
        ModelEvent::ToolCall {
            id: id.into(),
            name: name.into(),
            input,
        },
        ModelEvent::Finish {
            reason: FinishReason::ToolCalls,
        },
    ]
}

struct Agent {
    _dir: tempfile::TempDir,
    data: PathBuf,
    work: PathBuf,
    model: Arc<Scripted>,
    state: AgentState,
}

impl Agent {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let config = AgentConfig {
            data_dir: data.clone(),
            work_dir: Some(work.clone()),
            ..AgentConfig::default()
        };
        let model = Arc::new(Scripted::default());
        let options = AgentOptions {
            model: model.clone(),
            ping_interval: Duration::from_secs(15),
        };
        let state = AgentState::with_options(&config, options).unwrap();
        Self {
            _dir: dir,
            data,
            work,
            model,
            state,
        }
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

    async fn chat(&self, thread: &str, message_id: &str, extra: Value) -> (StatusCode, Value) {
        let mut body = json!({"messages": [UiMessage::text(message_id, Role::User, "go")]});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        self.call(Method::POST, &format!("/threads/{thread}/chat"), Some(body))
            .await
    }

    async fn wait_idle(&self, thread: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let (_, status) = self
                .call(Method::GET, &format!("/threads/{thread}/chat/status"), None)
                .await;
            if status["isRunning"] == json!(false) {
                return;
            }
            assert!(Instant::now() < deadline, "turn never ended");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Runs one turn to its end.
    async fn turn(&self, thread: &str, message_id: &str, extra: Value) {
        let (status, body) = self.chat(thread, message_id, extra).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        self.wait_idle(thread).await;
    }

    /// The last message of the thread's active branch.
    async fn last_message(&self, thread: &str) -> Value {
        let (status, body) = self
            .call(Method::GET, &format!("/threads/{thread}/messages"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        body["messages"].as_array().unwrap().last().unwrap().clone()
    }
}

/// The `dynamic-tool` part of call `id` in a persisted message.
fn tool_part(message: &Value, id: &str) -> Value {
    message["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|part| part["type"] == "dynamic-tool" && part["toolCallId"] == id)
        .unwrap_or_else(|| panic!("no part for {id} in {message}"))
        .clone()
}

/// Whether `pid` still runs (a zombie waiting for its reaper counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

async fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.trim().is_empty()
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn write_read_and_edit_follow_the_read_before_write_rule() {
    let agent = Agent::new();
    std::fs::write(agent.work.join("old.txt"), "one two two\n").unwrap();
    std::fs::write(agent.work.join("later.txt"), "v1\n").unwrap();
    agent.model.push([
        call(
            "w1",
            "Write",
            json!({"file_path": "new/a.txt", "content": "hello\n"}),
        ),
        call(
            "w2",
            "Write",
            json!({"file_path": "old.txt", "content": "clobbered"}),
        ),
        call("e0", "Edit", json!({"file_path": "old.txt", "old_string": "one", "new_string": "1"})),
        call("r1", "Read", json!({"file_path": "old.txt"})),
        call("e1", "Edit", json!({"file_path": "old.txt", "old_string": "two", "new_string": "2"})),
        call(
            "e2",
            "Edit",
            json!({"file_path": "old.txt", "old_string": "two", "new_string": "2", "replace_all": true}),
        ),
        call("e3", "Edit", json!({"file_path": "old.txt", "old_string": "one", "new_string": "1"})),
        call("r2", "Read", json!({"file_path": agent.work.join("later.txt")})),
        call("b1", "Bash", json!({"command": "echo changed-behind-its-back >> later.txt"})),
        call("e4", "Edit", json!({"file_path": "later.txt", "old_string": "v1", "new_string": "v2"})),
        call("w3", "Write", json!({"file_path": "new/a.txt", "content": "again\n"})),
    ]);
    agent.turn("t", "u1", json!({})).await;

    let (output, is_error) = agent.model.result("w1");
    assert!(!is_error, "{output}");
    assert_eq!(
        std::fs::read_to_string(agent.work.join("new/a.txt")).unwrap(),
        "again\n",
        "the thread's own write counts as a read"
    );
    let (output, is_error) = agent.model.result("w2");
    assert!(is_error && output.contains("Read it first"), "{output}");
    let (output, is_error) = agent.model.result("e0");
    assert!(is_error && output.contains("Read it first"), "{output}");
    let (output, is_error) = agent.model.result("r1");
    assert!(!is_error);
    assert_eq!(output, "     1\tone two two\n");
    let (output, is_error) = agent.model.result("e1");
    assert!(is_error && output.contains("occurs 2 times"), "{output}");
    assert!(!agent.model.result("e2").1);
    assert!(!agent.model.result("e3").1, "an edit keeps the read record");
    assert_eq!(
        std::fs::read_to_string(agent.work.join("old.txt")).unwrap(),
        "1 2 2\n"
    );
    let (output, is_error) = agent.model.result("e4");
    assert!(is_error && output.contains("modified since"), "{output}");
    assert!(!agent.model.result("w3").1);

    // The second model call received the first call and its result, in order.
    let requests = agent.model.requests();
    assert_eq!(requests.len(), 12);
    let second = &requests[1].messages;
    assert_eq!(second.len(), 3);
    assert_eq!(second[0].role, ModelRole::User);
    assert_eq!(
        second[1].blocks,
        [Block::ToolCall {
            id: "w1".into(),
            name: "Write".into(),
            input: json!({"file_path": "new/a.txt", "content": "hello\n"}),
        }]
    );
    assert_eq!(second[2].role, ModelRole::User);
    assert!(
        matches!(&second[2].blocks[..], [Block::ToolResult { id, is_error: false, .. }] if id == "w1")
    );
    assert!(requests[0].tools.iter().any(|tool| tool.name == "Bash"));
    assert!(
        requests[0]
            .system
            .contains(&agent.work.display().to_string())
    );

    // The persisted message: a step per model call, the tool parts with their outcome.
    let message = agent.last_message("t").await;
    let parts = message["parts"].as_array().unwrap();
    assert_eq!(
        parts
            .iter()
            .filter(|part| part["type"] == "step-start")
            .count(),
        12
    );
    let w1 = tool_part(&message, "w1");
    assert_eq!(w1["state"], "output-available");
    assert_eq!(w1["toolName"], "Write");
    assert_eq!(w1["input"]["content"], "hello\n");
    let w2 = tool_part(&message, "w2");
    assert_eq!(w2["state"], "output-error");
    assert!(w2["errorText"].as_str().unwrap().contains("Read it first"));
    assert_eq!(parts.last().unwrap()["text"], "done");
}

#[tokio::test]
async fn bash_keeps_its_cwd_times_out_and_spills_long_output() {
    let agent = Agent::new();
    agent.model.push([
        call("b1", "Bash", json!({"command": "mkdir -p sub && cd sub"})),
        call(
            "b2",
            "Bash",
            json!({"command": "pwd; echo oops >&2; exit 3"}),
        ),
        call(
            "b3",
            "Bash",
            json!({"command": "sleep 30 & echo $! > bg.pid; sleep 30", "timeout": 300}),
        ),
        call(
            "b4",
            "Bash",
            json!({"command": "head -c 40000 /dev/zero | tr '\\0' x"}),
        ),
        call("b5", "Bash", json!({"command": "if then"})),
    ]);
    let started = Instant::now();
    agent.turn("t", "u1", json!({})).await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the timeout did not kill"
    );

    let (output, is_error) = agent.model.result("b2");
    assert!(!is_error);
    let sub = agent.work.join("sub");
    assert_eq!(output, format!("{}\noops\n\nExit code: 3", sub.display()));

    let (output, is_error) = agent.model.result("b3");
    assert!(
        is_error && output.contains("timed out after 300 ms"),
        "{output}"
    );
    let pid: u32 = std::fs::read_to_string(sub.join("bg.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!alive(pid), "the background sleep survived the timeout");

    let (output, is_error) = agent.model.result("b4");
    assert!(!is_error);
    assert!(output.len() < 6000, "{}", output.len());
    assert!(output.starts_with(&"x".repeat(5000)));
    let saved = agent.data.join("threads/t/output/b4.txt");
    assert!(output.contains(&saved.display().to_string()), "{output}");
    let full = std::fs::read_to_string(saved).unwrap();
    assert!(full.starts_with(&"x".repeat(40000)));

    let (output, _) = agent.model.result("b5");
    assert!(output.contains("syntax error"), "{output}");
}

#[tokio::test]
async fn plan_mode_blocks_changes_until_the_plan_is_saved() {
    let agent = Agent::new();
    let plan_file = agent.data.join("threads/t/plans/plan.md");
    agent.model.push([
        call("w1", "Write", json!({"file_path": "a.txt", "content": "x"})),
        call("b1", "Bash", json!({"command": "touch b.txt"})),
        call(
            "w2",
            "Write",
            json!({"file_path": plan_file, "content": "draft"}),
        ),
        call("x1", "ExitPlanMode", json!({"plan": "1. write a.txt"})),
        call("w3", "Write", json!({"file_path": "a.txt", "content": "x"})),
    ]);
    agent.turn("t", "u1", json!({"mode": "plan"})).await;

    let (output, is_error) = agent.model.result("w1");
    assert!(is_error && output.contains("plan mode"), "{output}");
    assert!(agent.model.result("b1").1);
    assert!(!agent.work.join("b.txt").exists());
    assert!(!agent.model.result("w2").1, "the plan file is writable");
    assert!(!agent.model.result("x1").1);
    assert_eq!(
        std::fs::read_to_string(&plan_file).unwrap(),
        "1. write a.txt"
    );
    assert!(!agent.model.result("w3").1, "build mode writes");
    assert!(agent.work.join("a.txt").exists());
    let requests = agent.model.requests();
    assert!(requests[0].system.contains("Plan mode is on"));
    assert!(!requests[4].system.contains("Plan mode is on"));
    let (_, thread) = agent.call(Method::GET, "/threads/t", None).await;
    assert_eq!(thread["mode"], "build");

    // The switch was announced in the completion.
    let (_, status) = agent.call(Method::GET, "/threads/t", None).await;
    assert_eq!(status["mode"], "build");
    let turns = agent.data.join("threads/t/turns");
    let log = std::fs::read_dir(turns)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains(r#""type":"data-mode-change","data":{"mode":"build"}"#),
        "{log}"
    );
}

#[tokio::test]
async fn a_question_pauses_the_turn_until_it_is_answered() {
    let agent = Agent::new();
    let questions = json!([{
        "question": "Which color?",
        "header": "Color",
        "options": [{"label": "blue", "description": "calm"}, {"label": "red", "description": "loud"}],
        "multiSelect": false
    }]);
    agent.model.push([call(
        "q1",
        "AskUserQuestion",
        json!({"questions": questions}),
    )]);
    let (status, _) = agent.chat("t", "u1", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let deadline = Instant::now() + WAIT;
    let pending = loop {
        let (_, body) = agent
            .call(Method::GET, "/threads/t/chat/question/q1", None)
            .await;
        if body["status"] == "pending" {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the question never became pending"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        pending,
        json!({"status": "pending", "question": {"toolUseID": "q1", "questions": questions}})
    );

    // The running completion shows the call.
    let completion = agent
        .call(Method::GET, "/threads/t/chat/status", None)
        .await
        .1["completionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let log = std::fs::read_to_string(
        agent
            .data
            .join(format!("threads/t/turns/{completion}.jsonl")),
    )
    .unwrap();
    assert!(
        log.contains(
            r#""type":"tool-input-available","toolCallId":"q1","toolName":"AskUserQuestion""#
        ),
        "{log}"
    );
    // The client closes the message on the approval request and fetches the question by it.
    assert!(
        log.contains(r#"{"type":"tool-approval-request","approvalId":"q1","toolCallId":"q1"}"#),
        "{log}"
    );

    let (status, body) = agent.chat("t", "u2", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body,
        json!({
            "error": "pending_question_requires_answer",
            "message": "This thread is waiting for an answer to an earlier question before sending a new message.",
            "questionId": "q1"
        })
    );
    let answer = |id: &str, body: Value| {
        let path = format!("/threads/t/chat/answer/{id}");
        let agent = &agent;
        async move { agent.call(Method::POST, &path, Some(body)).await }
    };
    assert_eq!(
        answer("q1", json!({"answers": {}})).await,
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "answers or credentials is required"})
        )
    );
    assert_eq!(
        answer("nope", json!({"answers": {"Which color?": "red"}}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        answer("q1", json!({"answers": {"Which color?": "blue"}})).await,
        (StatusCode::OK, json!({"success": true}))
    );
    agent.wait_idle("t").await;
    // The answered turn re-opens its message before its next chunks.
    let log = std::fs::read_to_string(
        agent
            .data
            .join(format!("threads/t/turns/{completion}.jsonl")),
    )
    .unwrap();
    let resume = format!(
        r#"{{"type":"data-thread-resume","data":{{"messageId":"{completion}-assistant","threadId":"t"}}}}"#
    );
    let resumed_at = log.find(&resume).unwrap_or_else(|| panic!("{log}"));
    assert!(
        resumed_at < log.find("tool-output-available").unwrap(),
        "{log}"
    );

    let expected = json!([{"question": "Which color?", "answer": "blue"}]).to_string();
    assert_eq!(agent.model.result("q1"), (expected.clone(), false));
    let message = agent.last_message("t").await;
    let part = tool_part(&message, "q1");
    assert_eq!(part["state"], "output-available");
    assert_eq!(part["output"], expected);
    assert_eq!(
        agent
            .call(Method::GET, "/threads/t/chat/question/q1", None)
            .await
            .1,
        json!({"status": "answered", "question": null})
    );
    assert_eq!(
        agent
            .call(Method::GET, "/threads/t/chat/question/other", None)
            .await
            .1,
        json!({"status": "expired", "question": null})
    );
    assert_eq!(
        answer("q1", json!({"answers": {"Which color?": "blue"}}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn cancel_kills_a_running_command() {
    let agent = Agent::new();
    agent.model.push([call(
        "b1",
        "Bash",
        json!({"command": "sleep 60 & echo $! > sleep.pid; wait"}),
    )]);
    let (status, _) = agent.chat("t", "u1", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let pid: u32 = wait_for_file(&agent.work.join("sleep.pid"))
        .await
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid));
    let started = Instant::now();
    let (status, _) = agent
        .call(Method::POST, "/threads/t/chat/cancel", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    agent.wait_idle("t").await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        assert!(Instant::now() < deadline, "the command survived the cancel");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let message = agent.last_message("t").await;
    assert_eq!(tool_part(&message, "b1")["state"], "output-error");
    let (_, thread) = agent.call(Method::GET, "/threads/t", None).await;
    assert_eq!(thread["state"], "cancelled");
    // Only the one model call: the loop stopped.
    assert_eq!(agent.model.requests().len(), 1);
}

#[tokio::test]
async fn a_later_turn_sees_earlier_tool_calls_reasoning_and_signatures() {
    let agent = Agent::new();
    agent.model.push([
        vec![
            ModelEvent::ReasoningDelta("think".into()),
            ModelEvent::ReasoningSignature("sig-1".into()),
            ModelEvent::TextDelta("listing".into()),
            ModelEvent::ToolCallStart {
                id: "b1".into(),
                name: "Bash".into(),
            },
            ModelEvent::ToolCall {
                id: "b1".into(),
                name: "Bash".into(),
                input: json!({"command": "echo hi"}),
            },
            ModelEvent::Finish {
                reason: FinishReason::ToolCalls,
            },
        ],
        vec![
            ModelEvent::TextDelta("said hi".into()),
            ModelEvent::Finish {
                reason: FinishReason::Stop,
            },
        ],
    ]);
    agent.turn("t", "u1", json!({})).await;
    let message = agent.last_message("t").await;
    let types: Vec<&str> = message["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|part| part["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "step-start",
            "reasoning",
            "text",
            "dynamic-tool",
            "step-start",
            "text"
        ]
    );
    assert_eq!(
        message["parts"][1]["providerMetadata"],
        json!({"anthropic": {"signature": "sig-1"}})
    );

    let assistant_id = message["id"].as_str().unwrap().to_owned();
    let body = json!({"messages": [
        UiMessage::text("u1", Role::User, "go"),
        {"id": assistant_id, "role": "assistant", "parts": []},
        UiMessage::text("u2", Role::User, "again"),
    ]});
    let (status, _) = agent
        .call(Method::POST, "/threads/t/chat", Some(body))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    agent.wait_idle("t").await;
    let requests = agent.model.requests();
    let last = &requests.last().unwrap().messages;
    let blocks: Vec<&Block> = last.iter().flat_map(|message| &message.blocks).collect();
    assert_eq!(
        blocks,
        [
            &Block::Text("go".into()),
            &Block::Thinking {
                text: "think".into(),
                signature: Some("sig-1".into())
            },
            &Block::Text("listing".into()),
            &Block::ToolCall {
                id: "b1".into(),
                name: "Bash".into(),
                input: json!({"command": "echo hi"})
            },
            &Block::ToolResult {
                id: "b1".into(),
                output: "hi\n\nExit code: 0".into(),
                is_error: false
            },
            &Block::Text("said hi".into()),
            &Block::Text("again".into()),
        ]
    );
}

#[tokio::test]
async fn bash_sees_only_the_agent_visible_credentials_and_the_model_sees_all() {
    let agent = Agent::new();
    agent.model.push([call(
        "b1",
        "Bash",
        json!({"command": "echo \"visible=$TOOL_TOKEN hidden=${MODEL_KEY:-unset}\""}),
    )]);
    let credentials = json!([
        {"envVar": "TOOL_TOKEN", "value": "tool-secret", "provider": "github", "authType": "api_key", "agentVisible": true},
        {"envVar": "MODEL_KEY", "value": "model-secret", "provider": "anthropic", "authType": "api_key", "agentVisible": false}
    ]);
    let body = json!({"messages": [UiMessage::text("u1", Role::User, "go")]});
    let request = Request::builder()
        .method(Method::POST)
        .uri("/threads/t/chat")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-discobot-credentials", credentials.to_string())
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = router(agent.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    agent.wait_idle("t").await;

    let (output, is_error) = agent.model.result("b1");
    assert!(!is_error);
    assert_eq!(output, "visible=tool-secret hidden=unset\n\nExit code: 0");
    let requests = agent.model.requests();
    assert_eq!(requests[0].credentials["MODEL_KEY"], "model-secret");
    assert_eq!(requests[0].credentials["TOOL_TOKEN"], "tool-secret");
    // Nothing reached the agent's own environment.
    assert!(std::env::var("TOOL_TOKEN").is_err());
}

#[tokio::test]
async fn slash_commands_bypass_the_model() {
    let agent = Agent::new();
    // Not a git repository: the command fails, and says so as the turn's error.
    let body = json!({"messages": [UiMessage::text("u1", Role::User, "/discobot-commit abc123")]});
    let (status, _) = agent
        .call(Method::POST, "/threads/t/chat", Some(body))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    agent.wait_idle("t").await;
    assert!(agent.model.requests().is_empty());
    let (_, thread) = agent.call(Method::GET, "/threads/t", None).await;
    assert!(
        thread["errorMessage"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{thread}"
    );

    // Any other text goes to the model.
    let body = json!({"messages": [UiMessage::text("u2", Role::User, "/discobot-commitment")]});
    let (status, _) = agent
        .call(Method::POST, "/threads/t2/chat", Some(body))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    agent.wait_idle("t2").await;
    assert_eq!(agent.model.requests().len(), 1);
}
