//! Chat and the agent-proxied session routes end to end, with the local sandbox provider
//! (the agent binary as a child process; no Docker): a chat creates its session, the stream
//! replays history and the turn, reconnecting with `Last-Event-ID` repeats nothing, threads
//! and files round-trip, client paths outside the workspace are 400s.

use std::time::Duration;

use discobot_tests::reqwest::{Method, StatusCode};
use discobot_tests::{Backend, Body, ServerOptions, SseFrame, SseStream, TestServer, json};
use serde_json::Value;

use crate::common::{LOCAL, assert_client_error};

fn agent_binary_built() {
    let exe = std::env::current_exe().expect("test binary path");
    let agent = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("discobot-agent");
    assert!(
        agent.exists(),
        "build the agent first: cargo build -p discobot-agent-bin ({})",
        agent.display()
    );
}

async fn local_server() -> TestServer {
    agent_binary_built();
    let mut options = ServerOptions::new(Backend::Sqlite);
    options.docker = true;
    options.extra_args = vec!["--sandbox-provider".into(), "local".into()];
    TestServer::start_with(options)
        .await
        .expect("server starts")
}

async fn open_stream(server: &TestServer, path: &str, last_event_id: Option<&str>) -> SseStream {
    let mut request = server.client().get(server.url(path));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.expect("stream opens");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert_eq!(headers["x-vercel-ai-ui-message-stream"], "v1");
    SseStream::new(response)
}

fn chunk_type(frame: &SseFrame) -> Value {
    if frame.event.as_deref() == Some("chunk") {
        serde_json::from_str::<Value>(&frame.data).unwrap_or_default()["type"].clone()
    } else {
        Value::Null
    }
}

const TURN: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_threads_files_with_the_local_agent() {
    let server = local_server().await;
    let sid = "chatsession1";
    let s = format!("{LOCAL}/sessions/{sid}");

    // An empty chat creates the session (and its automatic workspace) without the agent.
    let created = server
        .expect(
            Method::POST,
            &format!("{s}/threads/{sid}/chat"),
            Some(json!({"messages": []})),
            200,
        )
        .await;
    assert_eq!(created["sessionId"], sid);
    assert_eq!(created["threadId"], sid);
    assert!(
        created["workspaceId"]
            .as_str()
            .is_some_and(|w| !w.is_empty())
    );
    assert!(created.get("status").is_none(), "{created}");

    // A message goes to the agent (the sandbox is waited for) and names the session.
    let message = json!({
        "id": "m1", "role": "user",
        "parts": [{"type": "text", "text": "Hello agent\nmore detail"}],
    });
    let started = server
        .expect(
            Method::POST,
            &format!("{s}/threads/{sid}/chat"),
            Some(json!({"messages": [message]})),
            200,
        )
        .await;
    assert_eq!(started["messageId"], "m1", "{started}");
    assert!(
        matches!(started["status"].as_str(), Some("started" | "queued")),
        "{started}"
    );
    let session = server.expect(Method::GET, &s, None, 200).await;
    assert_eq!(session["name"], "Hello agent", "{session}");

    // The stream: history (the first turn, finished or not), then a second turn live until
    // it ends (whatever the model answers: finish, error or abort).
    let mut stream = open_stream(&server, &format!("{s}/threads/{sid}/stream"), None).await;
    let (_, _) = stream
        .until("history-start", TURN, |f| {
            f.event.as_deref() == Some("history-start")
        })
        .await;
    let (_, history) = stream
        .until("history-end", TURN, |f| {
            f.event.as_deref() == Some("history-end")
        })
        .await;
    assert!(
        history.iter().any(|f| f.data.contains("\"id\":\"m1\"")),
        "{history:#?}"
    );
    // Let a running first turn end, so the second one starts rather than queues.
    let _ = stream.try_next_frame(Duration::from_secs(3)).await;
    let second = json!({
        "id": "m2", "role": "user", "parts": [{"type": "text", "text": "again"}],
    });
    let mut messages: Vec<Value> = history
        .iter()
        .filter(|f| f.event.as_deref() == Some("history-message"))
        .map(|f| serde_json::from_str(&f.data).unwrap())
        .collect();
    messages.push(second);
    server
        .expect(
            Method::POST,
            &format!("{s}/threads/{sid}/chat"),
            Some(json!({"messages": messages})),
            200,
        )
        .await;
    let (end, seen) = stream
        .until("the turn's end", TURN, |f| {
            matches!(chunk_type(f).as_str(), Some("finish" | "error" | "abort"))
        })
        .await;
    let last_id = end
        .id
        .clone()
        .or_else(|| seen.iter().rev().find_map(|f| f.id.clone()))
        .expect("chunks carry ids");
    drop(stream);

    // Reconnecting after the last chunk repeats no history and no chunk.
    let mut again = open_stream(
        &server,
        &format!("{s}/threads/{sid}/stream"),
        Some(&last_id),
    )
    .await;
    if let Ok(Some(frame)) = again.try_next_frame(Duration::from_secs(2)).await {
        assert!(
            !matches!(
                frame.event.as_deref(),
                Some("history-start" | "history-message")
            ),
            "{frame:?}"
        );
        assert_ne!(frame.id.as_deref(), Some(last_id.as_str()), "{frame:?}");
    }
    drop(again);

    // Nothing runs now: cancel is a 409.
    let reply = server
        .send(
            Method::POST,
            &format!("{s}/threads/{sid}/cancel"),
            Body::None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    assert_eq!(
        reply.json.unwrap()["error"],
        "no active completion to cancel"
    );

    // Threads CRUD.
    let threads = server
        .expect(Method::GET, &format!("{s}/threads"), None, 200)
        .await;
    assert!(
        threads["threads"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == sid),
        "{threads}"
    );
    let thread = server
        .expect(
            Method::POST,
            &format!("{s}/threads"),
            Some(json!({"id": "second", "name": "Second"})),
            201,
        )
        .await;
    assert_eq!(thread["id"], "second");
    let reply = server
        .send(
            Method::POST,
            &format!("{s}/threads"),
            Body::Json(json!({"id": "second"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    let renamed = server
        .expect(
            Method::PATCH,
            &format!("{s}/threads/second"),
            Some(json!({"name": "Renamed"})),
            200,
        )
        .await;
    assert_eq!(renamed["name"], "Renamed");
    let reply = server
        .send(
            Method::PUT,
            &format!("{s}/threads/second"),
            Body::Json(json!({"name": " "})),
        )
        .await;
    assert_client_error(&reply, "blank thread name");
    server
        .expect(Method::DELETE, &format!("{s}/threads/second"), None, 200)
        .await;
    let reply = server
        .send(Method::GET, &format!("{s}/threads/second"), Body::None)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);

    // Paths outside the workspace never reach the agent.
    for path in ["/etc/passwd", "../outside", "a/../../x"] {
        let reply = server
            .send(
                Method::GET,
                &format!("{s}/files/read?path={}", urlencode(path)),
                Body::None,
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            reply.text
        );
        assert_eq!(reply.json.unwrap()["error"], "Invalid path");
        let reply = server
            .send(
                Method::PUT,
                &format!("{s}/files/write"),
                Body::Json(json!({"path": path, "content": "x"})),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            reply.text
        );
    }
    let reply = server
        .send(
            Method::POST,
            &format!("{s}/files/rename"),
            Body::Json(json!({"oldPath": "a"})),
        )
        .await;
    assert_eq!(reply.json.unwrap()["error"], "newPath is required");

    // Models: the agent's, or the project's when it cannot say; never an error.
    let models = server
        .expect(Method::GET, &format!("{s}/models"), None, 200)
        .await;
    assert!(models["models"].is_array(), "{models}");

    // Auth providers come from the catalogue, sorted by name.
    let providers = server
        .expect(Method::GET, &format!("{LOCAL}/auth-providers"), None, 200)
        .await;
    let names: Vec<&str> = providers["authProviders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.len() >= 5, "{providers}");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);

    // Another project's session id is refused by the chat route.
    let reply = server
        .send(
            Method::POST,
            &format!("{s}/threads/{sid}/chat"),
            Body::Json(json!({"messages": "nope"})),
        )
        .await;
    assert_client_error(&reply, "malformed chat body");

    // While a commit is pending, messages are refused (an empty chat still answers).
    set_commit_status(&server, sid, "pending").await;
    let reply = server
        .send(
            Method::POST,
            &format!("{s}/threads/{sid}/chat"),
            Body::Json(json!({"messages": [{"id": "m3", "role": "user", "parts": []}]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    assert_eq!(
        reply.json.unwrap()["error"],
        "Cannot send messages while session is committing"
    );
    server
        .expect(
            Method::POST,
            &format!("{s}/threads/{sid}/chat"),
            Some(json!({"messages": []})),
            200,
        )
        .await;

    server.stop().await.expect("server stops");
}

/// Sets a session's commit status in the SQLite file (the commit routes are not built yet).
async fn set_commit_status(server: &TestServer, id: &str, status: &str) {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let url = format!(
        "sqlite://{}",
        server.data_dir().join("discobot.db").display()
    );
    let db = Database::connect(url).await.expect("database opens");
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE sessions SET commit_status = ? WHERE id = ?",
        [status.into(), id.into()],
    ))
    .await
    .expect("commit status set");
    db.close().await.expect("database closes");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
