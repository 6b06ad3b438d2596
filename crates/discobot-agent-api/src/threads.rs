//! Thread wire types: `Thread`, queued prompts, UI messages, and the thread route bodies (§4.2).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `build` (the default) or `plan`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Build,
    Plan,
}

/// How the last turn of a thread ended when it did not finish normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThreadState {
    /// The agent stopped (killed, crashed) while a turn ran.
    Interrupted,
    /// The user cancelled the turn.
    Cancelled,
}

/// A thread as the agent reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Thread {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Full `providerId/modelId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ThreadState>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompt_queue: Vec<QueuedPrompt>,
}

/// A prompt sent while a turn ran; it runs after the turns before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedPrompt {
    pub id: String,
    /// RFC 3339.
    pub created_at: String,
    pub message: UiMessage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
}

/// `user`, `assistant` or `system`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    System,
}

/// An AI SDK v6 `UIMessage`. Parts stay JSON values: the agent only reads `text` parts and
/// must pass every other part through unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UiMessage {
    pub id: String,
    pub role: Role,
    #[serde(default)]
    pub parts: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

impl UiMessage {
    /// A message whose only part is a finished text part.
    pub fn text(id: impl Into<String>, role: Role, text: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            role,
            parts: vec![serde_json::json!({"type": "text", "text": text.into(), "state": "done"})],
            metadata: None,
            created_at: None,
        }
    }

    /// The text of all `text` parts, joined by newlines.
    pub fn plain_text(&self) -> String {
        self.parts
            .iter()
            .filter(|part| part.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `GET /threads`: sorted by id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadList {
    pub threads: Vec<Thread>,
}

/// `POST /threads`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateThreadRequest {
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `PUT`/`PATCH /threads/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateThreadRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `GET /threads/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesResponse {
    pub messages: Vec<UiMessage>,
}

/// `{"success":true}` of deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccessResponse {
    pub success: bool,
}

impl SuccessResponse {
    pub fn ok() -> Self {
        Self { success: true }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn minimal_thread_has_only_the_required_keys() {
        let thread = Thread {
            id: "t1".into(),
            name: "Fix it".into(),
            last_message: None,
            error_message: None,
            model: None,
            reasoning: None,
            mode: Mode::Build,
            state: None,
            prompt_queue: vec![],
        };
        assert_eq!(
            serde_json::to_value(&thread).unwrap(),
            json!({"id": "t1", "name": "Fix it", "mode": "build"})
        );
    }

    #[test]
    fn full_thread_round_trips() {
        let fixture = json!({
            "id": "t1", "name": "n", "lastMessage": "hi", "model": "anthropic/claude",
            "reasoning": "high", "mode": "plan", "state": "interrupted",
            "promptQueue": [{
                "id": "q1", "createdAt": "2026-01-01T00:00:00Z",
                "message": {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "hi"}]},
                "mode": "build"
            }]
        });
        let thread: Thread = serde_json::from_value(fixture.clone()).unwrap();
        assert_eq!(thread.state, Some(ThreadState::Interrupted));
        assert_eq!(thread.prompt_queue[0].message.plain_text(), "hi");
        assert_eq!(serde_json::to_value(&thread).unwrap(), fixture);
    }

    #[test]
    fn messages_keep_unknown_parts() {
        let fixture = json!({
            "id": "a1", "role": "assistant", "createdAt": "2026-01-01T00:00:00Z",
            "parts": [{"type": "step-start"}, {"type": "text", "text": "a", "state": "done"},
                      {"type": "dynamic-tool", "toolName": "Bash", "toolCallId": "c", "state": "input-available", "input": {}}],
            "metadata": {"model": "x"}
        });
        let message: UiMessage = serde_json::from_value(fixture.clone()).unwrap();
        assert_eq!(message.plain_text(), "a");
        assert_eq!(serde_json::to_value(&message).unwrap(), fixture);
        assert_eq!(
            serde_json::to_value(UiMessage::text("u", Role::User, "x")).unwrap(),
            json!({"id": "u", "role": "user", "parts": [{"type": "text", "text": "x", "state": "done"}]})
        );
    }
}
