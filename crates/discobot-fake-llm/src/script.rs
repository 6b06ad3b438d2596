//! The script: the replies the fake answers model requests with, as JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Characters per text, thinking or tool-input delta unless a reply says otherwise.
pub const DEFAULT_CHUNK_CHARS: usize = 8;

/// One answer to one model request: its steps, streamed in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reply {
    pub steps: Vec<Step>,
    /// A pause before every streamed delta, to make a stream slow.
    #[serde(
        default,
        alias = "chunk_delay_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub chunk_delay_ms: Option<u64>,
    /// Characters per delta; [`DEFAULT_CHUNK_CHARS`] when absent.
    #[serde(
        default,
        alias = "chunk_chars",
        skip_serializing_if = "Option::is_none"
    )]
    pub chunk_chars: Option<usize>,
}

impl Reply {
    /// A reply of these steps, with the default pacing.
    pub fn new(steps: Vec<Step>) -> Self {
        Self {
            steps,
            chunk_delay_ms: None,
            chunk_chars: None,
        }
    }

    /// A reply that streams `text`.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(vec![Step::text(text)])
    }

    /// A reply that calls one tool.
    pub fn tool_call(name: impl Into<String>, input: Value) -> Self {
        Self::new(vec![Step::tool_call(name, input)])
    }

    /// A reply answered with an HTTP error instead of a stream.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self::new(vec![Step::Error {
            error: ErrorStep {
                status,
                message: message.into(),
                error_type: None,
                retry_after: None,
            },
        }])
    }

    /// The bench reply: `chunks` text deltas of `chunk_text`, as fast as possible.
    pub fn bulk_text(chunks: u64, chunk_text: impl Into<String>) -> Self {
        Self::new(vec![Step::BulkText {
            bulk_text: BulkText {
                chunks,
                chunk_text: chunk_text.into(),
            },
        }])
    }

    /// What the fake answers when the queue is empty.
    pub fn default_reply() -> Self {
        Self::text("ok")
    }

    pub(crate) fn chunk_chars(&self) -> usize {
        self.chunk_chars.unwrap_or(DEFAULT_CHUNK_CHARS).max(1)
    }

    /// The error step that replaces the stream, if the reply has one.
    pub(crate) fn error_step(&self) -> Option<&ErrorStep> {
        self.steps.iter().find_map(|step| match step {
            Step::Error { error } => Some(error),
            _ => None,
        })
    }

    /// The `delayMs` steps before the error step, added up.
    pub(crate) fn delay_before_error_ms(&self) -> u64 {
        self.steps
            .iter()
            .take_while(|step| !matches!(step, Step::Error { .. }))
            .map(|step| match step {
                Step::Delay { delay_ms } => *delay_ms,
                _ => 0,
            })
            .sum()
    }

    pub(crate) fn calls_tools(&self) -> bool {
        self.steps
            .iter()
            .any(|step| matches!(step, Step::ToolCall { .. }))
    }
}

/// One thing a reply does. Each variant is a JSON object named by its one key
/// (`thinking` may add `signature`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum Step {
    /// `{"text": "..."}`: streamed as text deltas.
    Text { text: String },
    /// `{"thinking": "...", "signature"?: "..."}`: a thinking block (OpenAI: `reasoning_content`).
    Thinking {
        thinking: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    /// `{"toolCall": {...}}`: a tool call whose input JSON is streamed in pieces.
    ToolCall { tool_call: ToolCall },
    /// `{"error": {...}}`: the whole reply becomes this HTTP error (steps after it are ignored;
    /// `delayMs` steps before it delay the answer).
    Error { error: ErrorStep },
    /// `{"streamError": "..."}`: the stream breaks here (Anthropic: an `error` event;
    /// OpenAI: the stream ends without `[DONE]`).
    StreamError { stream_error: String },
    /// `{"delayMs": n}`: a pause mid-stream.
    Delay { delay_ms: u64 },
    /// `{"hang": true}`: the stream never finishes (until the client goes or the fake shuts down).
    Hang { hang: bool },
    /// `{"bulkText": {...}}`: the bench mode, many tiny text deltas as fast as possible.
    BulkText { bulk_text: BulkText },
}

impl Step {
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text { text: text.into() }
    }

    pub fn thinking(thinking: impl Into<String>, signature: Option<String>) -> Self {
        Self::Thinking {
            thinking: thinking.into(),
            signature,
        }
    }

    pub fn tool_call(name: impl Into<String>, input: Value) -> Self {
        Self::ToolCall {
            tool_call: ToolCall {
                name: name.into(),
                input,
                id: None,
            },
        }
    }

    pub fn stream_error(message: impl Into<String>) -> Self {
        Self::StreamError {
            stream_error: message.into(),
        }
    }

    pub fn delay_ms(delay_ms: u64) -> Self {
        Self::Delay { delay_ms }
    }

    pub fn hang() -> Self {
        Self::Hang { hang: true }
    }
}

/// A tool call of a reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolCall {
    pub name: String,
    pub input: Value,
    /// The call id; generated (`toolu_fake_N` / `call_fake_N`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// An HTTP error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorStep {
    pub status: u16,
    pub message: String,
    /// The vendor's error type; derived from the status when absent.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Seconds for the `retry-after` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// The bench step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkText {
    pub chunks: u64,
    pub chunk_text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_parses_from_its_documented_json() {
        let reply: Reply = serde_json::from_value(serde_json::json!({
            "chunkDelayMs": 5,
            "steps": [
                {"text": "hi"},
                {"thinking": "hmm", "signature": "sig"},
                {"thinking": "bare"},
                {"toolCall": {"name": "Write", "input": {"path": "a"}, "id": "t1"}},
                {"error": {"status": 429, "message": "slow down", "type": "rate_limit_error", "retryAfter": 3}},
                {"streamError": "boom"},
                {"delayMs": 10},
                {"hang": true},
                {"bulkText": {"chunks": 3, "chunkText": "x"}}
            ]
        }))
        .unwrap();
        assert_eq!(reply.chunk_delay_ms, Some(5));
        assert_eq!(
            reply.steps,
            vec![
                Step::text("hi"),
                Step::thinking("hmm", Some("sig".into())),
                Step::thinking("bare", None),
                Step::ToolCall {
                    tool_call: ToolCall {
                        name: "Write".into(),
                        input: serde_json::json!({"path": "a"}),
                        id: Some("t1".into())
                    }
                },
                Step::Error {
                    error: ErrorStep {
                        status: 429,
                        message: "slow down".into(),
                        error_type: Some("rate_limit_error".into()),
                        retry_after: Some(3)
                    }
                },
                Step::stream_error("boom"),
                Step::delay_ms(10),
                Step::hang(),
                Reply::bulk_text(3, "x").steps[0].clone(),
            ]
        );
        let round_trip: Reply =
            serde_json::from_value(serde_json::to_value(&reply).unwrap()).unwrap();
        assert_eq!(round_trip, reply);
    }

    #[test]
    fn unknown_or_mixed_steps_are_rejected() {
        for bad in [
            serde_json::json!({"steps": [{"txt": "hi"}]}),
            serde_json::json!({"steps": [{"text": "hi", "signature": "s"}]}),
            serde_json::json!({"steps": [{"delayMs": "soon"}]}),
            serde_json::json!({"steps": [], "extra": 1}),
        ] {
            assert!(
                serde_json::from_value::<Reply>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
