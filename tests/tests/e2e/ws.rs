//! The project WebSocket (`GET …/ws`): project events with `afterId` replay, a chat
//! subscription relaying the agent's thread stream (local sandbox provider), unsubscribe and
//! re-subscribe, and the error frames and closes of bad client messages.

use std::time::Duration;

use discobot_tests::reqwest::Method;
use discobot_tests::{Backend, ServerOptions, TestServer, json};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{LOCAL, delete_session_and_wait};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const WAIT: Duration = Duration::from_secs(60);

async fn connect(server: &TestServer) -> Socket {
    let url = server.url(&format!("{LOCAL}/ws")).replacen("http", "ws", 1);
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket upgrade");
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("send");
}

/// The next JSON message; `None` when the socket closed.
async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        let message = socket.next().await?;
        match message.ok()? {
            Message::Text(text) => return Some(serde_json::from_str(&text).expect("JSON frame")),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

/// Messages until one satisfies `done` (returned last).
async fn until(socket: &mut Socket, what: &str, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let message = tokio::time::timeout(WAIT, next(socket))
            .await
            .unwrap_or_else(|_| panic!("no {what} in time: {seen:?}"))
            .unwrap_or_else(|| panic!("socket closed before {what}: {seen:?}"));
        let stop = done(&message);
        seen.push(message);
        if stop {
            return seen;
        }
    }
}

async fn local_server() -> TestServer {
    let mut options = ServerOptions::new(Backend::Sqlite);
    options.docker = true;
    options.extra_args = vec!["--sandbox-provider".into(), "local".into()];
    TestServer::start_with(options)
        .await
        .expect("server starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_events_and_bad_messages() {
    let server = TestServer::start(Backend::Sqlite).await.expect("server");
    let mut socket = connect(&server).await;

    send(
        &mut socket,
        json!({"type": "subscribe", "stream": "project-events"}),
    )
    .await;
    assert_eq!(
        next(&mut socket).await.unwrap(),
        json!({"type": "subscribed", "stream": "project-events"})
    );
    let connected = next(&mut socket).await.unwrap();
    assert_eq!(connected["event"], "connected");
    let data: Value = serde_json::from_str(connected["data"].as_str().unwrap()).unwrap();
    assert_eq!(data["projectId"], "local");

    // A change in the project arrives as an event whose data is the event JSON as a string.
    let dir = tempfile::tempdir().unwrap();
    let workspace = server
        .expect(
            Method::POST,
            &format!("{LOCAL}/workspaces"),
            Some(json!({"path": dir.path().join("ws").display().to_string()})),
            201,
        )
        .await;
    let events = until(&mut socket, "workspace event", |m| {
        m["event"]
            .as_str()
            .is_some_and(|e| e.starts_with("workspace_"))
    })
    .await;
    let event = events.last().unwrap();
    assert_eq!(event["type"], "event");
    assert_eq!(event["stream"], "project-events");
    let payload: Value = serde_json::from_str(event["data"].as_str().unwrap()).unwrap();
    assert_eq!(payload["id"], event["id"]);
    assert_eq!(payload["data"]["workspaceId"], workspace["id"]);
    let first_id = event["id"].as_str().unwrap().to_owned();

    // Unknown streams and message types get error frames; unsubscribe is acknowledged.
    send(&mut socket, json!({"type": "subscribe", "stream": "nope"})).await;
    let error = until(&mut socket, "error frame", |m| m["type"] == "error").await;
    assert_eq!(
        error.last().unwrap()["error"],
        "unsupported stream \"nope\""
    );
    send(&mut socket, json!({"type": "hello", "stream": "chat"})).await;
    let error = until(&mut socket, "error frame", |m| m["type"] == "error").await;
    assert_eq!(
        error.last().unwrap()["error"],
        "unsupported message type \"hello\""
    );
    send(&mut socket, json!({"type": "subscribe", "stream": "chat"})).await;
    let error = until(&mut socket, "error frame", |m| m["type"] == "error").await;
    assert_eq!(error.last().unwrap()["error"], "sessionId is required");
    send(
        &mut socket,
        json!({"type": "unsubscribe", "stream": "project-events"}),
    )
    .await;
    until(&mut socket, "unsubscribed", |m| m["type"] == "unsubscribed").await;

    // A second connection replays after an id: the later events, not the reference one.
    server
        .expect(
            Method::PUT,
            &format!("{LOCAL}/workspaces/{}", workspace["id"].as_str().unwrap()),
            Some(json!({"displayName": "renamed"})),
            200,
        )
        .await;
    let mut replay = connect(&server).await;
    send(
        &mut replay,
        json!({"type": "subscribe", "stream": "project-events", "afterId": first_id}),
    )
    .await;
    let replayed = until(&mut replay, "replayed update", |m| {
        m["event"] == "workspace_updated"
    })
    .await;
    assert!(
        replayed.iter().all(|m| m["id"] != first_id.as_str()),
        "{replayed:?}"
    );

    // Invalid JSON ends the connection.
    replay
        .send(Message::Text("{not json".into()))
        .await
        .unwrap();
    loop {
        match next(&mut replay).await {
            None => break,
            Some(message) => assert_eq!(message["type"], "event", "{message}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_subscription_relays_the_thread_stream() {
    let server = local_server().await;
    let sid = "wschat1";
    let s = format!("{LOCAL}/sessions/{sid}");
    server
        .expect(
            Method::POST,
            &format!("{s}/threads/{sid}/chat"),
            Some(json!({"messages": []})),
            200,
        )
        .await;
    let mut socket = connect(&server).await;
    let subscribe =
        json!({"type": "subscribe", "stream": "chat", "sessionId": sid, "threadId": sid});
    send(&mut socket, subscribe.clone()).await;
    let seen = until(&mut socket, "history end", |m| m["event"] == "history-end").await;
    assert_eq!(
        seen[0],
        json!({"type": "subscribed", "stream": "chat", "sessionId": sid, "threadId": sid}),
        "{seen:?}"
    );
    assert!(seen.iter().any(|m| m["event"] == "history-start"));

    // A message's turn arrives as chunk events with ids, ending in finish or error (the
    // agent has no model credentials here, which is an error chunk: relayed all the same).
    let message = json!({"id": "m1", "role": "user", "parts": [{"type": "text", "text": "hi"}]});
    server
        .expect(
            Method::POST,
            &format!("{s}/threads/{sid}/chat"),
            Some(json!({"messages": [message]})),
            200,
        )
        .await;
    let turn = until(&mut socket, "the turn's end", |m| {
        let data: Value = serde_json::from_str(m["data"].as_str().unwrap_or("null")).unwrap();
        matches!(data["type"].as_str(), Some("finish" | "error" | "abort"))
    })
    .await;
    let chunks: Vec<&Value> = turn.iter().filter(|m| m["event"] == "chunk").collect();
    assert!(
        chunks
            .iter()
            .any(|m| m["id"].as_str().is_some_and(|id| id.ends_with(":0"))),
        "{turn:?}"
    );
    assert!(
        chunks
            .iter()
            .all(|m| m["stream"] == "chat" && m["sessionId"] == sid)
    );

    // Re-subscribing replaces the old subscription (which completes) and replays history.
    send(&mut socket, subscribe).await;
    let again = until(&mut socket, "history end", |m| m["event"] == "history-end").await;
    assert!(again.iter().any(|m| m["type"] == "complete"), "{again:?}");
    assert!(
        again.iter().any(|m| m["event"] == "history-message"),
        "{again:?}"
    );
    send(
        &mut socket,
        json!({"type": "unsubscribe", "stream": "chat", "sessionId": sid, "threadId": sid}),
    )
    .await;
    let end = until(&mut socket, "unsubscribed", |m| m["type"] == "unsubscribed").await;
    assert_eq!(
        end.last().unwrap(),
        &json!({"type": "unsubscribed", "stream": "chat", "sessionId": sid, "threadId": sid})
    );

    // A session of nobody: an error frame, not a closed socket.
    send(
        &mut socket,
        json!({"type": "subscribe", "stream": "chat", "sessionId": "nosuch", "threadId": "t"}),
    )
    .await;
    let error = until(&mut socket, "error", |m| m["type"] == "error").await;
    assert_eq!(error.last().unwrap()["sessionId"], "nosuch");
    delete_session_and_wait(&server, sid, WAIT).await;
}
