//! Chat route bodies (§4.3): start (started or queued), status, cancel.

use serde::{Deserialize, Serialize};

use crate::threads::{Mode, UiMessage};

/// `POST /threads/{id}/chat`: the messages the browser holds; the agent takes the branch
/// point (the last assistant message) and the new input (the last user message after it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    pub messages: Vec<UiMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// `plan`, `build`, or absent/empty to keep the thread's mode.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "mode_or_empty"
    )]
    pub mode: Option<Mode>,
}

fn mode_or_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Mode>, D::Error> {
    let raw: Option<String> = Option::deserialize(d)?;
    match raw.as_deref() {
        None | Some("") => Ok(None),
        Some("build") => Ok(Some(Mode::Build)),
        Some("plan") => Ok(Some(Mode::Plan)),
        Some(other) => Err(serde::de::Error::custom(format!("unknown mode {other:?}"))),
    }
}

/// `started` or `queued`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatStartStatus {
    Started,
    Queued,
}

/// 202 answer of `POST /threads/{id}/chat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatStartResponse {
    pub status: ChatStartStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_prompt_id: Option<String>,
}

impl ChatStartResponse {
    pub fn started(completion_id: impl Into<String>) -> Self {
        Self {
            status: ChatStartStatus::Started,
            completion_id: Some(completion_id.into()),
            queued_prompt_id: None,
        }
    }

    pub fn queued(queued_prompt_id: impl Into<String>) -> Self {
        Self {
            status: ChatStartStatus::Queued,
            completion_id: None,
            queued_prompt_id: Some(queued_prompt_id.into()),
        }
    }
}

/// `GET /threads/{id}/chat/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatStatusResponse {
    pub is_running: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_id: Option<String>,
}

/// 200 answer of `POST /threads/{id}/chat/cancel`; `status` is always `cancelled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatCancelResponse {
    pub success: bool,
    pub completion_id: String,
    pub status: String,
}

impl ChatCancelResponse {
    pub fn cancelled(completion_id: impl Into<String>) -> Self {
        Self {
            success: true,
            completion_id: completion_id.into(),
            status: "cancelled".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn start_answers() {
        assert_eq!(
            serde_json::to_value(ChatStartResponse::started("c1")).unwrap(),
            json!({"status": "started", "completionId": "c1"})
        );
        assert_eq!(
            serde_json::to_value(ChatStartResponse::queued("q1")).unwrap(),
            json!({"status": "queued", "queuedPromptId": "q1"})
        );
        assert_eq!(
            serde_json::to_value(ChatCancelResponse::cancelled("c1")).unwrap(),
            json!({"success": true, "completionId": "c1", "status": "cancelled"})
        );
        assert_eq!(
            serde_json::to_value(ChatStatusResponse {
                is_running: false,
                completion_id: None
            })
            .unwrap(),
            json!({"isRunning": false})
        );
    }

    #[test]
    fn request_modes() {
        let request: ChatRequest = serde_json::from_value(json!({
            "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}],
            "model": "anthropic/claude", "mode": ""
        }))
        .unwrap();
        assert_eq!(request.mode, None);
        assert_eq!(request.messages[0].plain_text(), "hi");
        let plan: ChatRequest =
            serde_json::from_value(json!({"messages": [], "mode": "plan"})).unwrap();
        assert_eq!(plan.mode, Some(Mode::Plan));
        assert!(serde_json::from_value::<ChatRequest>(json!({"mode": "fly"})).is_err());
    }
}
