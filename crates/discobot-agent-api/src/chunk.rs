//! The chunks of the Vercel AI SDK UI message stream v1 (§5.1), one JSON object per SSE event.
//!
//! [`UiChunk`] is either a [`CoreChunk`] (a fixed `type`) or a [`DataChunk`] (`type` =
//! `data-<name>`, with `{id?, data, transient?}`). Optional fields are left out when absent,
//! so a chunk carries exactly the keys the AI SDK's reader expects.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// One chunk of the UI message stream.
#[derive(Debug, Clone, PartialEq)]
pub enum UiChunk {
    Core(CoreChunk),
    Data(DataChunk),
}

/// The chunks with a fixed `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum CoreChunk {
    #[serde(rename_all = "camelCase")]
    Start {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_metadata: Option<Value>,
    },
    StartStep,
    FinishStep,
    #[serde(rename_all = "camelCase")]
    TextStart {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_metadata: Option<Value>,
    },
    #[serde(rename_all = "camelCase")]
    TextDelta {
        id: String,
        delta: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_metadata: Option<Value>,
    },
    #[serde(rename_all = "camelCase")]
    TextEnd {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_metadata: Option<Value>,
    },
    #[serde(rename_all = "camelCase")]
    ReasoningStart {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_metadata: Option<Value>,
    },
    ReasoningDelta {
        id: String,
        delta: String,
    },
    #[serde(rename_all = "camelCase")]
    ReasoningEnd {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_metadata: Option<Value>,
    },
    #[serde(rename_all = "camelCase")]
    ToolInputStart {
        tool_call_id: String,
        tool_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_executed: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dynamic: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    ToolInputDelta {
        tool_call_id: String,
        input_text_delta: String,
    },
    #[serde(rename_all = "camelCase")]
    ToolInputAvailable {
        tool_call_id: String,
        tool_name: String,
        input: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_executed: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dynamic: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    ToolInputError {
        tool_call_id: String,
        tool_name: String,
        input: Value,
        error_text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_executed: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dynamic: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    ToolOutputAvailable {
        tool_call_id: String,
        output: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_executed: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dynamic: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        preliminary: Option<bool>,
    },
    #[serde(rename_all = "camelCase")]
    ToolOutputError {
        tool_call_id: String,
        error_text: String,
    },
    #[serde(rename_all = "camelCase")]
    ToolOutputDenied {
        tool_call_id: String,
    },
    /// The tool waits for the user (a question): closes the message in the client, which
    /// then fetches the question by `approvalId`.
    #[serde(rename_all = "camelCase")]
    ToolApprovalRequest {
        approval_id: String,
        tool_call_id: String,
    },
    #[serde(rename_all = "camelCase")]
    MessageMetadata {
        message_metadata: Value,
    },
    #[serde(rename_all = "camelCase")]
    Finish {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        finish_reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_metadata: Option<Value>,
    },
    Abort {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Error {
        error_text: String,
    },
}

/// A `data-<name>` chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct DataChunk {
    /// The part after `data-`, e.g. `user-message`.
    pub name: String,
    pub id: Option<String>,
    pub data: Value,
    pub transient: Option<bool>,
}

#[derive(Serialize, Deserialize)]
struct DataWire {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    data: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transient: Option<bool>,
}

impl UiChunk {
    /// A `data-<name>` chunk without id.
    pub fn data(name: impl Into<String>, data: Value) -> Self {
        Self::Data(DataChunk {
            name: name.into(),
            id: None,
            data,
            transient: None,
        })
    }

    /// Whether this chunk ends a completion (`finish`, `error` or `abort`).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Core(
                CoreChunk::Finish { .. } | CoreChunk::Error { .. } | CoreChunk::Abort { .. }
            )
        )
    }
}

impl From<CoreChunk> for UiChunk {
    fn from(chunk: CoreChunk) -> Self {
        Self::Core(chunk)
    }
}

impl Serialize for UiChunk {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Core(chunk) => chunk.serialize(serializer),
            Self::Data(chunk) => DataWire {
                kind: format!("data-{}", chunk.name),
                id: chunk.id.clone(),
                data: chunk.data.clone(),
                transient: chunk.transient,
            }
            .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for UiChunk {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(deserializer)?;
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| D::Error::missing_field("type"))?;
        if let Some(name) = kind.strip_prefix("data-") {
            let name = name.to_owned();
            let wire: DataWire = serde_json::from_value(value).map_err(D::Error::custom)?;
            Ok(Self::Data(DataChunk {
                name,
                id: wire.id,
                data: wire.data,
                transient: wire.transient,
            }))
        } else {
            serde_json::from_value(value)
                .map(Self::Core)
                .map_err(D::Error::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every fixture decodes and encodes back to exactly itself.
    #[test]
    fn fixtures_round_trip_exactly() {
        let fixtures = [
            json!({"type": "start"}),
            json!({"type": "start", "messageId": "m1", "messageMetadata": {"model": "echo/echo"}}),
            json!({"type": "start-step"}),
            json!({"type": "finish-step"}),
            json!({"type": "text-start", "id": "t"}),
            json!({"type": "text-delta", "id": "t", "delta": "Hel"}),
            json!({"type": "text-delta", "id": "t", "delta": "lo", "providerMetadata": {"a": {}}}),
            json!({"type": "text-end", "id": "t"}),
            json!({"type": "reasoning-start", "id": "r"}),
            json!({"type": "reasoning-delta", "id": "r", "delta": "hmm"}),
            json!({"type": "reasoning-end", "id": "r"}),
            json!({"type": "tool-input-start", "toolCallId": "c1", "toolName": "Bash"}),
            json!({"type": "tool-input-start", "toolCallId": "c1", "toolName": "Bash", "dynamic": true, "title": "ls"}),
            json!({"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": "{\"co"}),
            json!({"type": "tool-input-available", "toolCallId": "c1", "toolName": "Bash", "input": {"command": "ls"}, "dynamic": true}),
            json!({"type": "tool-input-error", "toolCallId": "c1", "toolName": "Bash", "input": "{", "errorText": "bad json"}),
            json!({"type": "tool-output-available", "toolCallId": "c1", "output": {"stdout": "a"}, "preliminary": false}),
            json!({"type": "tool-output-error", "toolCallId": "c1", "errorText": "exit 1"}),
            json!({"type": "tool-output-denied", "toolCallId": "c1"}),
            json!({"type": "message-metadata", "messageMetadata": {"x": 1}}),
            json!({"type": "finish"}),
            json!({"type": "finish", "finishReason": "stop", "messageMetadata": {"t": 2}}),
            json!({"type": "abort"}),
            json!({"type": "abort", "reason": "cancelled"}),
            json!({"type": "error", "errorText": "boom"}),
            json!({"type": "data-user-message", "data": {"message": {"id": "u1", "role": "user", "parts": []}}}),
            json!({"type": "data-thread-update", "id": "x", "data": {"thread": {"id": "t"}}, "transient": true}),
            json!({"type": "data-completion-status", "data": {"threadId": "t", "isRunning": false}}),
        ];
        for fixture in fixtures {
            let chunk: UiChunk = serde_json::from_value(fixture.clone())
                .unwrap_or_else(|err| panic!("{fixture}: {err}"));
            assert_eq!(serde_json::to_value(&chunk).unwrap(), fixture);
        }
    }

    #[test]
    fn typed_chunks_encode_to_the_wire_names() {
        let delta: UiChunk = CoreChunk::TextDelta {
            id: "t".into(),
            delta: "x".into(),
            provider_metadata: None,
        }
        .into();
        assert_eq!(
            serde_json::to_string(&delta).unwrap(),
            r#"{"type":"text-delta","id":"t","delta":"x"}"#
        );
        let data = UiChunk::data("mode-change", json!({"mode": "plan"}));
        assert_eq!(
            serde_json::to_string(&data).unwrap(),
            r#"{"type":"data-mode-change","data":{"mode":"plan"}}"#
        );
        assert!(UiChunk::from(CoreChunk::Abort { reason: None }).is_terminal());
        assert!(!data.is_terminal());
    }

    #[test]
    fn rejects_unknown_and_malformed_chunks() {
        for bad in [
            json!({"type": "nope"}),
            json!({"delta": "x"}),
            json!({"type": "text-delta", "id": "t"}),
            json!({"type": "data-x"}),
        ] {
            assert!(
                serde_json::from_value::<UiChunk>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
