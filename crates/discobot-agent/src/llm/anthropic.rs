//! The Anthropic Messages API (`POST /v1/messages`, streaming): the request body built from
//! the neutral conversation, and the parser of its SSE events.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::{StreamParser, base64_data_url};
use crate::model::{
    Block, FinishReason, ModelError, ModelEvent, ModelMessage, ModelRequest, ModelRole,
};

/// The `anthropic-version` header.
pub(super) const API_VERSION: &str = "2023-06-01";
/// The `anthropic-beta` header that lets a Claude Code OAuth token call the API.
pub(super) const OAUTH_BETA: &str = "oauth-2025-04-20";
/// The API accepts OAuth tokens only for requests whose system prompt starts with this.
const OAUTH_SYSTEM_PREFIX: &str = "You are Claude Code, Anthropic's official CLI for Claude.";

/// Room for the answer; with extended thinking the budget comes on top (the thinking
/// tokens count against `max_tokens`).
const MAX_TOKENS: u32 = 16_000;

/// The thinking budget of a reasoning level; `None`: thinking off.
fn thinking_budget(reasoning: Option<&str>) -> Option<u32> {
    match reasoning? {
        "low" => Some(4_096),
        "medium" | "auto" => Some(10_000),
        "high" => Some(20_000),
        "xhigh" => Some(31_999),
        _ => None,
    }
}

/// The JSON body of a streaming Messages request.
pub(super) fn request_body(model: &str, request: &ModelRequest, oauth: bool) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("stream".into(), json!(true));
    let budget = thinking_budget(request.reasoning.as_deref());
    body.insert("max_tokens".into(), json!(MAX_TOKENS + budget.unwrap_or(0)));
    if let Some(budget) = budget {
        body.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    }
    if oauth {
        let mut system = vec![json!({"type": "text", "text": OAUTH_SYSTEM_PREFIX})];
        if !request.system.is_empty() {
            system.push(json!({"type": "text", "text": request.system}));
        }
        body.insert("system".into(), Value::Array(system));
    } else if !request.system.is_empty() {
        body.insert("system".into(), json!(request.system));
    }
    body.insert("messages".into(), Value::Array(messages(&request.messages)));
    if !request.tools.is_empty() {
        let tools = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": tool.input_schema,
                })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    Value::Object(body)
}

/// The `messages` array: tool results go into user messages, blocks the API cannot take back
/// are dropped, and consecutive messages of one role are merged (the API wants them to
/// alternate).
fn messages(conversation: &[ModelMessage]) -> Vec<Value> {
    let mut merged: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut push = |role: &'static str, block: Value| match merged.last_mut() {
        Some((last, blocks)) if *last == role => blocks.push(block),
        _ => merged.push((role, vec![block])),
    };
    for message in conversation {
        let role = match message.role {
            ModelRole::User => "user",
            ModelRole::Assistant => "assistant",
        };
        for block in &message.blocks {
            match block {
                Block::Text(text) => {
                    // The API refuses empty text blocks.
                    if !text.is_empty() {
                        push(role, json!({"type": "text", "text": text}));
                    }
                }
                Block::Thinking { text, signature } => match signature {
                    // Without its signature the API refuses a thinking block.
                    Some(signature) if message.role == ModelRole::Assistant => push(
                        role,
                        json!({"type": "thinking", "thinking": text, "signature": signature}),
                    ),
                    _ => {}
                },
                Block::File { media_type, url } => push(role, file_block(media_type, url)),
                Block::ToolCall { id, name, input } => push(
                    "assistant",
                    json!({"type": "tool_use", "id": id, "name": name, "input": input}),
                ),
                Block::ToolResult {
                    id,
                    output,
                    is_error,
                } => push(
                    "user",
                    json!({
                        "type": "tool_result",
                        "tool_use_id": id,
                        "content": output,
                        "is_error": is_error,
                    }),
                ),
            }
        }
    }
    merged
        .into_iter()
        .map(|(role, mut blocks)| {
            // Tool results must open their user message.
            if role == "user" {
                blocks.sort_by_key(|block| block["type"] != "tool_result");
            }
            json!({"role": role, "content": blocks})
        })
        .collect()
}

/// An attachment: images and PDFs as `image`/`document` blocks (base64 from a `data:` URL,
/// else by URL); other types as a note, as the API has no block for them.
fn file_block(media_type: &str, url: &str) -> Value {
    let kind = if media_type.starts_with("image/") {
        "image"
    } else if media_type == "application/pdf" {
        "document"
    } else {
        return json!({"type": "text", "text": format!("[attached file of type {media_type}]")});
    };
    let source = match base64_data_url(url) {
        Some((data_type, data)) => {
            let data_type = if data_type.is_empty() {
                media_type
            } else {
                data_type
            };
            json!({"type": "base64", "media_type": data_type, "data": data})
        }
        None => json!({"type": "url", "url": url}),
    };
    json!({"type": kind, "source": source})
}

/// A content block the stream has opened and not yet closed.
enum OpenBlock {
    Thinking {
        signature: String,
    },
    ToolUse {
        id: String,
        name: String,
        json: String,
    },
    Other,
}

/// The state of one Messages stream.
#[derive(Default)]
pub(super) struct Parser {
    blocks: HashMap<u64, OpenBlock>,
    finish: Option<FinishReason>,
}

impl StreamParser for Parser {
    fn on_event(&mut self, data: &str, out: &mut Vec<ModelEvent>) -> Result<bool, ModelError> {
        let event: Value = serde_json::from_str(data)
            .map_err(|_| ModelError("Anthropic sent an event that is not JSON".to_owned()))?;
        let text = |value: &Value, key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let index = event.get("index").and_then(Value::as_u64).unwrap_or(0);
        match event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "content_block_start" => {
                let block = event.get("content_block").unwrap_or(&Value::Null);
                let open = match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let initial = text(block, "text");
                        if !initial.is_empty() {
                            out.push(ModelEvent::TextDelta(initial));
                        }
                        OpenBlock::Other
                    }
                    Some("thinking") => {
                        let initial = text(block, "thinking");
                        if !initial.is_empty() {
                            out.push(ModelEvent::ReasoningDelta(initial));
                        }
                        OpenBlock::Thinking {
                            signature: text(block, "signature"),
                        }
                    }
                    Some("tool_use") => {
                        let (id, name) = (text(block, "id"), text(block, "name"));
                        out.push(ModelEvent::ToolCallStart {
                            id: id.clone(),
                            name: name.clone(),
                        });
                        OpenBlock::ToolUse {
                            id,
                            name,
                            json: String::new(),
                        }
                    }
                    // `redacted_thinking` and newer block types: the neutral conversation has
                    // no place for them.
                    _ => OpenBlock::Other,
                };
                self.blocks.insert(index, open);
            }
            "content_block_delta" => {
                let delta = event.get("delta").unwrap_or(&Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => out.push(ModelEvent::TextDelta(text(delta, "text"))),
                    Some("thinking_delta") => {
                        out.push(ModelEvent::ReasoningDelta(text(delta, "thinking")));
                    }
                    Some("signature_delta") => {
                        if let Some(OpenBlock::Thinking { signature }) = self.blocks.get_mut(&index)
                        {
                            signature.push_str(&text(delta, "signature"));
                        }
                    }
                    Some("input_json_delta") => {
                        if let Some(OpenBlock::ToolUse { id, json, .. }) =
                            self.blocks.get_mut(&index)
                        {
                            let piece = text(delta, "partial_json");
                            json.push_str(&piece);
                            if !piece.is_empty() {
                                out.push(ModelEvent::ToolCallDelta {
                                    id: id.clone(),
                                    delta: piece,
                                });
                            }
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => match self.blocks.remove(&index) {
                Some(OpenBlock::Thinking { signature }) if !signature.is_empty() => {
                    out.push(ModelEvent::ReasoningSignature(signature));
                }
                Some(OpenBlock::ToolUse { id, name, json }) => {
                    let input = if json.trim().is_empty() {
                        Value::Object(Map::new())
                    } else {
                        serde_json::from_str(&json).map_err(|_| {
                            ModelError(format!(
                                "Anthropic sent invalid JSON input for the tool call {name}"
                            ))
                        })?
                    };
                    out.push(ModelEvent::ToolCall { id, name, input });
                }
                _ => {}
            },
            "message_delta" => {
                if let Some(reason) = event.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.finish = Some(match reason {
                        "end_turn" | "stop_sequence" => FinishReason::Stop,
                        "tool_use" => FinishReason::ToolCalls,
                        "max_tokens" => FinishReason::Length,
                        "refusal" => FinishReason::ContentFilter,
                        _ => FinishReason::Other,
                    });
                }
            }
            "message_stop" => {
                out.push(ModelEvent::Finish {
                    reason: self.finish.unwrap_or(FinishReason::Other),
                });
                return Ok(true);
            }
            "error" => {
                let message = event
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error");
                return Err(ModelError(format!("Anthropic API error: {message}")));
            }
            // `message_start`, `ping`, and event types added later (the API's versioning
            // policy says to ignore those).
            _ => {}
        }
        Ok(false)
    }

    fn on_end(&mut self, _out: &mut Vec<ModelEvent>) -> Result<(), ModelError> {
        Err(ModelError(
            "the Anthropic stream ended before the answer was complete".to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::ToolSpec;

    fn parse(events: &[Value]) -> (Vec<ModelEvent>, Result<bool, ModelError>) {
        let mut parser = Parser::default();
        let mut out = Vec::new();
        let mut last = Ok(false);
        for event in events {
            last = parser.on_event(&event.to_string(), &mut out);
            if !matches!(last, Ok(false)) {
                break;
            }
        }
        (out, last)
    }

    #[test]
    fn thinking_budgets_by_level() {
        let budgets: Vec<Option<u32>> = [
            None,
            Some("none"),
            Some("default"),
            Some("low"),
            Some("medium"),
            Some("high"),
            Some("xhigh"),
            Some("auto"),
        ]
        .into_iter()
        .map(thinking_budget)
        .collect();
        assert_eq!(
            budgets,
            [
                None,
                None,
                None,
                Some(4096),
                Some(10000),
                Some(20000),
                Some(31999),
                Some(10000)
            ]
        );
    }

    #[test]
    fn body_of_a_tool_use_conversation() {
        let request = ModelRequest {
            model: None,
            reasoning: Some("low".into()),
            system: "Be brief.".into(),
            messages: vec![
                ModelMessage {
                    role: ModelRole::User,
                    blocks: vec![
                        Block::Text("look".into()),
                        Block::File {
                            media_type: "image/png".into(),
                            url: "data:image/png;base64,AAAA".into(),
                        },
                    ],
                },
                ModelMessage {
                    role: ModelRole::Assistant,
                    blocks: vec![
                        Block::Thinking {
                            text: "hmm".into(),
                            signature: Some("sig".into()),
                        },
                        Block::Thinking {
                            text: "unsigned".into(),
                            signature: None,
                        },
                        Block::ToolCall {
                            id: "t1".into(),
                            name: "Bash".into(),
                            input: json!({"command": "ls"}),
                        },
                    ],
                },
                ModelMessage {
                    role: ModelRole::User,
                    blocks: vec![Block::ToolResult {
                        id: "t1".into(),
                        output: "a.txt".into(),
                        is_error: false,
                    }],
                },
                ModelMessage {
                    role: ModelRole::User,
                    blocks: vec![Block::Text("and now?".into())],
                },
            ],
            tools: vec![ToolSpec {
                name: "Bash".into(),
                description: "Runs a command".into(),
                input_schema: json!({"type": "object"}),
            }],
            credentials: Arc::default(),
        };
        let body = request_body("claude-sonnet-4-5", &request, false);
        assert_eq!(
            body,
            json!({
                "model": "claude-sonnet-4-5",
                "stream": true,
                "max_tokens": 20096,
                "thinking": {"type": "enabled", "budget_tokens": 4096},
                "system": "Be brief.",
                "messages": [
                    {"role": "user", "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                    ]},
                    {"role": "assistant", "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                        {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}},
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "a.txt", "is_error": false},
                        {"type": "text", "text": "and now?"},
                    ]},
                ],
                "tools": [{"name": "Bash", "description": "Runs a command", "input_schema": {"type": "object"}}],
            })
        );
        // OAuth: the Claude Code system prompt opens the system blocks; no thinking.
        let request = ModelRequest {
            reasoning: Some("none".into()),
            ..request
        };
        let body = request_body("m", &request, true);
        assert_eq!(body["max_tokens"], 16000);
        assert!(body.get("thinking").is_none());
        assert_eq!(body["system"][0]["text"], OAUTH_SYSTEM_PREFIX);
        assert_eq!(body["system"][1]["text"], "Be brief.");
    }

    #[test]
    fn tool_results_open_a_merged_user_message() {
        let messages = messages(&[
            ModelMessage {
                role: ModelRole::User,
                blocks: vec![Block::Text("note".into())],
            },
            ModelMessage {
                role: ModelRole::User,
                blocks: vec![Block::ToolResult {
                    id: "t".into(),
                    output: "boom".into(),
                    is_error: true,
                }],
            },
        ]);
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0]["content"][0]["type"], "tool_result");
        assert_eq!(messages[0]["content"][0]["is_error"], true);
        assert_eq!(messages[0]["content"][1]["text"], "note");
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        for (stop, reason) in [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("tool_use", FinishReason::ToolCalls),
            ("max_tokens", FinishReason::Length),
            ("refusal", FinishReason::ContentFilter),
            ("pause_turn", FinishReason::Other),
        ] {
            let (events, done) = parse(&[
                json!({"type": "message_start", "message": {}}),
                json!({"type": "message_delta", "delta": {"stop_reason": stop}}),
                json!({"type": "message_stop"}),
            ]);
            assert_eq!(done, Ok(true));
            assert_eq!(events, [ModelEvent::Finish { reason }], "{stop}");
        }
    }

    #[test]
    fn empty_tool_input_is_an_empty_object_and_errors_carry_the_message() {
        let (events, _) = parse(&[
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "t", "name": "Now", "input": {}}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ]);
        assert_eq!(
            events[1],
            ModelEvent::ToolCall {
                id: "t".into(),
                name: "Now".into(),
                input: json!({})
            }
        );
        let (_, done) = parse(&[
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ]);
        assert_eq!(
            done,
            Err(ModelError("Anthropic API error: Overloaded".into()))
        );
    }
}
