//! The thread's UI messages as the model's conversation: user text and files; per assistant
//! step (split at `step-start` parts) its reasoning (signature from `providerMetadata`), text
//! and tool calls, followed by a user message with the tool results.

use discobot_agent_api::{Role, UiMessage};
use serde_json::Value;

use crate::model::{Block, ModelMessage, ModelRole};

/// Told to the model for a tool call that never produced a result (the turn was cut off).
const INTERRUPTED: &str = "The tool call was interrupted before it finished.";

/// Converts a branch of the thread (oldest first) to model messages.
pub(crate) fn to_model_messages(messages: &[UiMessage]) -> Vec<ModelMessage> {
    let mut out = Vec::new();
    for message in messages {
        match message.role {
            Role::User => {
                let blocks: Vec<Block> = message.parts.iter().filter_map(user_block).collect();
                if !blocks.is_empty() {
                    out.push(ModelMessage {
                        role: ModelRole::User,
                        blocks,
                    });
                }
            }
            Role::Assistant => {
                for step in message
                    .parts
                    .split(|part| part_type(part) == Some("step-start"))
                {
                    push_step(&mut out, step);
                }
            }
            // The system prompt is the agent's own; stored system messages are not replayed.
            Role::System => {}
        }
    }
    out
}

fn part_type(part: &Value) -> Option<&str> {
    part.get("type").and_then(Value::as_str)
}

fn str_field<'a>(part: &'a Value, key: &str) -> Option<&'a str> {
    part.get(key).and_then(Value::as_str)
}

fn user_block(part: &Value) -> Option<Block> {
    match part_type(part)? {
        "text" => Some(Block::Text(str_field(part, "text")?.to_owned())),
        "file" => Some(Block::File {
            media_type: str_field(part, "mediaType")
                .unwrap_or("application/octet-stream")
                .to_owned(),
            url: str_field(part, "url")?.to_owned(),
        }),
        _ => None,
    }
}

/// One assistant step: its blocks, then (if it called tools) one user message of results.
fn push_step(out: &mut Vec<ModelMessage>, parts: &[Value]) {
    let mut blocks = Vec::new();
    let mut results = Vec::new();
    for part in parts {
        match part_type(part) {
            Some("text") => {
                if let Some(text) = str_field(part, "text").filter(|text| !text.is_empty()) {
                    blocks.push(Block::Text(text.to_owned()));
                }
            }
            Some("reasoning") => {
                let text = str_field(part, "text").unwrap_or_default().to_owned();
                let signature = part
                    .pointer("/providerMetadata/anthropic/signature")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if !text.is_empty() || signature.is_some() {
                    blocks.push(Block::Thinking { text, signature });
                }
            }
            Some("dynamic-tool") => {
                let (Some(id), Some(name)) =
                    (str_field(part, "toolCallId"), str_field(part, "toolName"))
                else {
                    continue;
                };
                blocks.push(Block::ToolCall {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    input: part.get("input").cloned().unwrap_or(Value::Null),
                });
                let (output, is_error) = match str_field(part, "state") {
                    Some("output-available") => (output_text(part.get("output")), false),
                    Some("output-error") => (
                        str_field(part, "errorText").unwrap_or_default().to_owned(),
                        true,
                    ),
                    Some("output-denied") => ("The user denied this tool call.".to_owned(), true),
                    _ => (INTERRUPTED.to_owned(), true),
                };
                results.push(Block::ToolResult {
                    id: id.to_owned(),
                    output,
                    is_error,
                });
            }
            _ => {}
        }
    }
    if blocks.is_empty() {
        return;
    }
    out.push(ModelMessage {
        role: ModelRole::Assistant,
        blocks,
    });
    if !results.is_empty() {
        out.push(ModelMessage {
            role: ModelRole::User,
            blocks: results,
        });
    }
}

/// A tool output as text: strings as they are, other JSON as JSON.
fn output_text(output: Option<&Value>) -> String {
    match output {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(role: Role, parts: Value) -> UiMessage {
        serde_json::from_value(json!({"id": "m", "role": role, "parts": parts})).unwrap()
    }

    #[test]
    fn steps_become_calls_and_results() {
        let messages = [
            message(
                Role::User,
                json!([
                    {"type": "text", "text": "look"},
                    {"type": "file", "mediaType": "image/png", "url": "data:image/png;base64,AA"}
                ]),
            ),
            message(
                Role::Assistant,
                json!([
                    {"type": "step-start"},
                    {"type": "reasoning", "text": "hm", "providerMetadata": {"anthropic": {"signature": "sig"}}},
                    {"type": "text", "text": "reading"},
                    {"type": "dynamic-tool", "toolCallId": "c1", "toolName": "Read", "state": "output-available", "input": {"file_path": "a"}, "output": "1\tx"},
                    {"type": "dynamic-tool", "toolCallId": "c2", "toolName": "Bash", "state": "output-error", "input": {"command": "false"}, "errorText": "boom"},
                    {"type": "step-start"},
                    {"type": "dynamic-tool", "toolCallId": "c3", "toolName": "Bash", "state": "input-available", "input": {}},
                    {"type": "step-start"},
                    {"type": "text", "text": "done"}
                ]),
            ),
        ];
        let converted = to_model_messages(&messages);
        let expected = vec![
            ModelMessage {
                role: ModelRole::User,
                blocks: vec![
                    Block::Text("look".into()),
                    Block::File {
                        media_type: "image/png".into(),
                        url: "data:image/png;base64,AA".into(),
                    },
                ],
            },
            ModelMessage {
                role: ModelRole::Assistant,
                blocks: vec![
                    Block::Thinking {
                        text: "hm".into(),
                        signature: Some("sig".into()),
                    },
                    Block::Text("reading".into()),
                    Block::ToolCall {
                        id: "c1".into(),
                        name: "Read".into(),
                        input: json!({"file_path": "a"}),
                    },
                    Block::ToolCall {
                        id: "c2".into(),
                        name: "Bash".into(),
                        input: json!({"command": "false"}),
                    },
                ],
            },
            ModelMessage {
                role: ModelRole::User,
                blocks: vec![
                    Block::ToolResult {
                        id: "c1".into(),
                        output: "1\tx".into(),
                        is_error: false,
                    },
                    Block::ToolResult {
                        id: "c2".into(),
                        output: "boom".into(),
                        is_error: true,
                    },
                ],
            },
            ModelMessage {
                role: ModelRole::Assistant,
                blocks: vec![Block::ToolCall {
                    id: "c3".into(),
                    name: "Bash".into(),
                    input: json!({}),
                }],
            },
            ModelMessage {
                role: ModelRole::User,
                blocks: vec![Block::ToolResult {
                    id: "c3".into(),
                    output: INTERRUPTED.into(),
                    is_error: true,
                }],
            },
            ModelMessage {
                role: ModelRole::Assistant,
                blocks: vec![Block::Text("done".into())],
            },
        ];
        assert_eq!(converted, expected);
    }
}
