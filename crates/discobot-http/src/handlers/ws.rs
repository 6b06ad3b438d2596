//! `GET …/ws`: one WebSocket multiplexing a project's chat streams, service streams and
//! project events, with the subscribe/unsubscribe messages of the seed (§4.3).

use std::collections::HashMap;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use discobot_core::app::{ChatStreamItem, EventCursor, ProjectAccess};
use discobot_core::ids::SessionId;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::ApiResult;
use crate::extract::Access;
use crate::handlers::events::{event_json, history_then_live};
use crate::state::AppState;

/// Outgoing messages waiting for the socket; a slow client makes its streams wait.
const OUTBOX: usize = 256;

/// A client message. Unknown fields are ignored; anything else that is not this shape ends
/// the connection (as upstream does).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientMessage {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    thread_id: Option<String>,
    #[serde(default)]
    service_id: Option<String>,
    #[serde(default)]
    replay: Option<bool>,
    #[serde(default)]
    last_event_id: Option<String>,
    #[serde(default)]
    after_id: Option<String>,
}

/// A server message; every field is omitted when empty, `data` is the SSE data text.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerMessage {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thread_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replay: Option<bool>,
}

/// What identifies a subscription: subscribing again with the same key replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    stream: String,
    session_id: Option<String>,
    thread_id: Option<String>,
    service_id: Option<String>,
}

impl Key {
    fn of(message: &ClientMessage) -> Self {
        Self {
            stream: message.stream.clone().unwrap_or_default(),
            session_id: message.session_id.clone().filter(|id| !id.is_empty()),
            thread_id: message.thread_id.clone().filter(|id| !id.is_empty()),
            service_id: message.service_id.clone().filter(|id| !id.is_empty()),
        }
    }

    /// A message about this subscription, with its ids filled in.
    fn message(&self, kind: &'static str) -> ServerMessage {
        ServerMessage {
            kind,
            stream: Some(self.stream.clone()).filter(|stream| !stream.is_empty()),
            session_id: self.session_id.clone(),
            thread_id: self.thread_id.clone(),
            service_id: self.service_id.clone(),
            ..ServerMessage::default()
        }
    }

    fn error(&self, error: impl Into<String>) -> ServerMessage {
        ServerMessage {
            error: Some(error.into()),
            ..self.message("error")
        }
    }
}

/// The upgrade: membership was checked by the route guard, so failures before it are JSON.
pub(crate) async fn project_ws(
    State(state): State<AppState>,
    Access(access): Access,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    Ok(upgrade
        .read_buffer_size(1024)
        .write_buffer_size(1024)
        .on_upgrade(move |socket| connection(socket, state, access)))
}

async fn connection(socket: WebSocket, state: AppState, access: ProjectAccess) {
    let shutdown = state.0.streams.child_token();
    let (outbox, mut outgoing) = mpsc::channel::<ServerMessage>(OUTBOX);
    let (mut sink, mut incoming) = socket.split();
    // The writer drains the outbox on its own, so the reader below may wait for room in it
    // (a reply to a client message) without ever waiting on itself.
    let writer_shutdown = shutdown.clone();
    let writer = tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                _ = writer_shutdown.cancelled() => break,
                message = outgoing.recv() => message,
            };
            let Some(message) = message else { break };
            let Ok(text) = serde_json::to_string(&message) else {
                continue;
            };
            if sink.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
        // A failed write ends the reader too.
        writer_shutdown.cancel();
        let _ = sink.send(Message::Close(None)).await;
    });
    let mut subscriptions: HashMap<Key, CancellationToken> = HashMap::new();
    loop {
        let incoming = tokio::select! {
            _ = shutdown.cancelled() => break,
            incoming = incoming.next() => incoming,
        };
        let text = match incoming {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            // Binary frames, close, errors: the connection is over.
            _ => break,
        };
        let Ok(message) = serde_json::from_str::<ClientMessage>(&text) else {
            break;
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = handle(&state, &access, &outbox, &shutdown, &mut subscriptions, message) => {}
        }
    }
    shutdown.cancel();
    let _ = writer.await;
}

async fn handle(
    state: &AppState,
    access: &ProjectAccess,
    outbox: &mpsc::Sender<ServerMessage>,
    shutdown: &CancellationToken,
    subscriptions: &mut HashMap<Key, CancellationToken>,
    message: ClientMessage,
) {
    let key = Key::of(&message);
    match message.kind.as_str() {
        "unsubscribe" => {
            if let Some(cancel) = subscriptions.remove(&key) {
                cancel.cancel();
            }
            let _ = outbox.send(key.message("unsubscribed")).await;
        }
        "subscribe" => {
            if !matches!(key.stream.as_str(), "chat" | "service" | "project-events") {
                let error = format!("unsupported stream {:?}", key.stream);
                let _ = outbox.send(key.error(error)).await;
                return;
            }
            if let Some(previous) = subscriptions.remove(&key) {
                previous.cancel();
            }
            subscriptions.retain(|_, cancel| !cancel.is_cancelled());
            let cancel = shutdown.child_token();
            subscriptions.insert(key.clone(), cancel.clone());
            let (state, access, outbox) = (state.clone(), access.clone(), outbox.clone());
            tokio::spawn(async move {
                let run = subscription(&state, &access, &outbox, &key, &message, &cancel);
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = run => {}
                }
                if key.stream != "project-events" {
                    let _ = outbox.send(key.message("complete")).await;
                }
                cancel.cancel();
            });
        }
        other => {
            let error = format!("unsupported message type {other:?}");
            let _ = outbox
                .send(ServerMessage {
                    kind: "error",
                    stream: Some(key.stream.clone()).filter(|stream| !stream.is_empty()),
                    error: Some(error),
                    ..ServerMessage::default()
                })
                .await;
        }
    }
}

/// Runs one subscription until its stream ends (the caller races it against cancel).
async fn subscription(
    state: &AppState,
    access: &ProjectAccess,
    outbox: &mpsc::Sender<ServerMessage>,
    key: &Key,
    message: &ClientMessage,
    cancel: &CancellationToken,
) {
    match key.stream.as_str() {
        "chat" => chat(state, access, outbox, key, message).await,
        "service" => service(outbox, key).await,
        _ => project_events(state, access, outbox, key, message, cancel).await,
    }
}

async fn chat(
    state: &AppState,
    access: &ProjectAccess,
    outbox: &mpsc::Sender<ServerMessage>,
    key: &Key,
    message: &ClientMessage,
) {
    let Some(session_id) = &key.session_id else {
        let _ = outbox.send(key.error("sessionId is required")).await;
        return;
    };
    let Some(thread_id) = &key.thread_id else {
        let _ = outbox.send(key.error("threadId is required")).await;
        return;
    };
    // Upstream sends the cursor only with `replay: true`; without it the agent replays the
    // whole history.
    let replay = message.replay.unwrap_or(false);
    let last_event_id = message
        .last_event_id
        .clone()
        .filter(|id| replay && !id.is_empty());
    let opened = state
        .app()
        .open_chat_stream(
            access,
            &SessionId::new(session_id.as_str()),
            thread_id,
            last_event_id,
        )
        .await;
    let mut frames = match opened {
        Ok(frames) => frames.without_thread_events(),
        Err(error) => {
            let _ = outbox.send(key.error(error.message)).await;
            return;
        }
    };
    let subscribed = ServerMessage {
        replay: message.replay,
        ..key.message("subscribed")
    };
    if outbox.send(subscribed).await.is_err() {
        return;
    }
    // `next` already drops the agent's done markers and publishes thread renames.
    while let Some(item) = frames.next().await {
        let ChatStreamItem::Frame(frame) = item else {
            return;
        };
        let event = ServerMessage {
            event: frame.event,
            data: Some(frame.data),
            id: frame.id,
            ..key.message("event")
        };
        if outbox.send(event).await.is_err() {
            return;
        }
    }
}

/// Services (`.discobot/services`) are not run by this version's agent: the subscription is
/// refused with a clear error instead of hanging.
async fn service(outbox: &mpsc::Sender<ServerMessage>, key: &Key) {
    let error = if key.session_id.is_none() {
        "sessionId is required"
    } else if key.service_id.is_none() {
        "serviceId is required"
    } else {
        "services are not supported by this server yet"
    };
    let _ = outbox.send(key.error(error)).await;
}

async fn project_events(
    state: &AppState,
    access: &ProjectAccess,
    outbox: &mpsc::Sender<ServerMessage>,
    key: &Key,
    message: &ClientMessage,
    cancel: &CancellationToken,
) {
    let key = Key {
        stream: key.stream.clone(),
        session_id: None,
        thread_id: None,
        service_id: None,
    };
    let cursor = match message.after_id.clone().filter(|id| !id.is_empty()) {
        Some(after) => EventCursor::After(after),
        None => EventCursor::Live,
    };
    let Ok(events) = history_then_live(state, access, &cursor, cancel.clone()).await else {
        let _ = outbox
            .send(key.error("failed to get historical events"))
            .await;
        return;
    };
    let mut events = Box::pin(events);
    if outbox.send(key.message("subscribed")).await.is_err() {
        return;
    }
    let connected = ServerMessage {
        event: Some("connected".into()),
        data: Some(json!({"projectId": access.project_id.as_str()}).to_string()),
        ..key.message("event")
    };
    if outbox.send(connected).await.is_err() {
        return;
    }
    let frame = |event: &discobot_core::events::Event| ServerMessage {
        event: Some(event.event_type.clone()),
        id: Some(event.id.as_str().to_owned()),
        data: Some(event_json(event).to_string()),
        ..key.message("event")
    };
    while let Some(event) = events.next().await {
        if outbox.send(frame(&event)).await.is_err() {
            return;
        }
    }
}
