//! The terminal: a WebSocket to the session's persistent shell, and its status.

use axum::Json;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use discobot_core::ids::SessionId;
use discobot_core::ports::{SandboxState, TerminalAttachment};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::dto::rfc3339_secs;
use crate::error::ApiResult;
use crate::extract::{Access, ApiPath, ApiQuery};
use crate::state::AppState;

#[derive(Deserialize)]
pub(crate) struct TerminalQuery {
    #[serde(default)]
    rows: Option<u16>,
    #[serde(default)]
    cols: Option<u16>,
    #[serde(default)]
    root: Option<bool>,
}

/// `GET …/terminal/ws`: every check happens before the upgrade, so failures are JSON.
pub(crate) async fn terminal_ws(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<TerminalQuery>,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let attachment = state
        .app()
        .open_terminal(
            &access,
            &SessionId::new(session_id.as_str()),
            query.rows.unwrap_or(24),
            query.cols.unwrap_or(80),
            query.root.unwrap_or(false),
        )
        .await?;
    let shutdown = state.0.streams.clone();
    let (app, session) = (state.app().clone(), SessionId::new(session_id));
    // While the terminal is in use the sandbox is not idle.
    let activity = move || app.touch_session(&session);
    Ok(upgrade.on_upgrade(move |socket| relay(socket, attachment, shutdown, activity)))
}

/// A client frame: `{"type":"input","data":"…"}` or `{"type":"resize","data":{"rows","cols"}}`.
#[derive(Deserialize)]
struct ClientFrame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

async fn relay(
    mut socket: WebSocket,
    attachment: TerminalAttachment,
    shutdown: tokio_util::sync::CancellationToken,
    activity: impl Fn(),
) {
    let TerminalAttachment {
        replay,
        mut output,
        control,
    } = attachment;
    let mut decoder = Utf8Chunks::default();
    if !replay.is_empty()
        && send_output(&mut socket, &decoder.push(&replay))
            .await
            .is_err()
    {
        return;
    }
    let mut input_open = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            chunk = output.next_chunk() => match chunk {
                Some(chunk) => {
                    activity();
                    if send_output(&mut socket, &decoder.push(&chunk)).await.is_err() {
                        return;
                    }
                }
                None => {
                    let close = axum::extract::ws::CloseFrame { code: 1000, reason: "shell exited".into() };
                    let _ = socket.send(Message::Close(Some(close))).await;
                    return;
                }
            },
            message = socket.recv(), if input_open => match message {
                Some(Ok(Message::Text(text))) => {
                    activity();
                    match serde_json::from_str::<ClientFrame>(&text) {
                    Ok(frame) => handle_frame(&*control, frame).await,
                    // Upstream stops reading input after a malformed frame; output goes on.
                    Err(_) => input_open = false,
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

async fn handle_frame(control: &dyn discobot_core::ports::TerminalControl, frame: ClientFrame) {
    match frame.kind.as_str() {
        "input" => {
            if let Some(text) = frame.data.as_str()
                && let Err(error) = control.write(text.as_bytes()).await
            {
                tracing::debug!(%error, "terminal input failed");
            }
        }
        "resize" => {
            let rows = frame.data.get("rows").and_then(Value::as_u64);
            let cols = frame.data.get("cols").and_then(Value::as_u64);
            if let (Some(rows), Some(cols)) = (rows, cols) {
                let clamp = |value: u64, min: u16| (value.min(u16::MAX as u64) as u16).max(min);
                let _ = control.resize(clamp(rows, 20), clamp(cols, 80)).await;
            }
        }
        _ => {}
    }
}

async fn send_output(socket: &mut WebSocket, text: &str) -> Result<(), axum::Error> {
    if text.is_empty() {
        return Ok(());
    }
    let frame = json!({"type": "output", "data": text}).to_string();
    socket.send(Message::Text(frame.into())).await
}

/// Turns a byte stream into text without breaking a UTF-8 character split across chunks.
#[derive(Default)]
struct Utf8Chunks {
    pending: Vec<u8>,
}

impl Utf8Chunks {
    fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            // An incomplete character at the end waits for the next chunk; invalid bytes
            // elsewhere are replaced.
            Err(error) if error.error_len().is_none() => error.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let rest = self.pending.split_off(valid);
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending = rest;
        text
    }
}

/// `GET …/terminal/status`: the sandbox's state.
pub(crate) async fn terminal_status(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let session = SessionId::new(session);
    let provider = state.app().sandbox().status().await;
    if !provider.available {
        state.app().get_session(&access, &session).await?;
        return Ok(Json(
            json!({"status": "unavailable", "error": "sandbox provider not configured"}),
        )
        .into_response());
    }
    let Some(info) = state.app().sandbox_info(&access, &session).await? else {
        return Ok(Json(json!({"status": "not_created"})).into_response());
    };
    let status = match info.state {
        SandboxState::Created => "created",
        SandboxState::Running => "running",
        SandboxState::Stopped => "stopped",
        SandboxState::Failed => "failed",
    };
    let mut body = json!({"status": status, "image": info.image});
    if let Some(at) = info.created_at {
        body["createdAt"] = json!(rfc3339_secs(at));
    }
    if let Some(at) = info.started_at {
        body["startedAt"] = json!(rfc3339_secs(at));
    }
    if let Some(at) = info.stopped_at {
        body["stoppedAt"] = json!(rfc3339_secs(at));
    }
    if let Some(error) = info.error {
        body["error"] = json!(error);
    }
    Ok(Json(body).into_response())
}

#[cfg(test)]
mod tests {
    use super::Utf8Chunks;

    #[test]
    fn split_characters_are_joined() {
        let mut chunks = Utf8Chunks::default();
        let bytes = "é!".as_bytes();
        assert_eq!(chunks.push(&bytes[..1]), "");
        assert_eq!(chunks.push(&bytes[1..]), "é!");
        assert_eq!(chunks.push(b"\xff ok"), "\u{fffd} ok");
    }
}
