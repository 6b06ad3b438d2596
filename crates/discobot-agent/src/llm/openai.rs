//! OpenAI Chat Completions (`POST /chat/completions`, streaming), which OpenAI and the
//! OpenAI-compatible vendors speak: the request body built from the neutral conversation, and
//! the parser of its SSE chunks.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::StreamParser;
use crate::model::{
    Block, FinishReason, ModelError, ModelEvent, ModelMessage, ModelRequest, ModelRole,
};

/// The `reasoning_effort` of a reasoning level; `None`: the model's default.
fn reasoning_effort(reasoning: Option<&str>) -> Option<&'static str> {
    match reasoning? {
        "low" => Some("low"),
        "medium" => Some("medium"),
        // Chat Completions has no level above `high`.
        "high" | "xhigh" => Some("high"),
        _ => None,
    }
}

/// The JSON body of a streaming Chat Completions request.
pub(super) fn request_body(model: &str, request: &ModelRequest) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("stream".into(), json!(true));
    body.insert("stream_options".into(), json!({"include_usage": true}));
    let mut messages = Vec::new();
    if !request.system.is_empty() {
        messages.push(json!({"role": "system", "content": request.system}));
    }
    for message in &request.messages {
        push_message(&mut messages, message);
    }
    body.insert("messages".into(), Value::Array(messages));
    if !request.tools.is_empty() {
        let tools = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.input_schema,
                    },
                })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(effort) = reasoning_effort(request.reasoning.as_deref()) {
        body.insert("reasoning_effort".into(), json!(effort));
    }
    Value::Object(body)
}

/// Appends one neutral message: tool results become `tool` messages (which must follow the
/// assistant's `tool_calls` directly, so they come before the rest of a user message); thinking
/// is not sent back, as Chat Completions has no field for it.
fn push_message(messages: &mut Vec<Value>, message: &ModelMessage) {
    let mut text = String::new();
    let mut parts = Vec::new();
    let mut has_files = false;
    let mut tool_calls = Vec::new();
    let mut tool_results = Vec::new();
    for block in &message.blocks {
        match block {
            Block::Text(piece) => {
                text.push_str(piece);
                parts.push(json!({"type": "text", "text": piece}));
            }
            Block::Thinking { .. } => {}
            Block::File { media_type, url } => {
                if media_type.starts_with("image/") {
                    has_files = true;
                    parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
                } else {
                    let note = format!("[attached file of type {media_type}]");
                    text.push_str(&note);
                    parts.push(json!({"type": "text", "text": note}));
                }
            }
            Block::ToolCall { id, name, input } => tool_calls.push(json!({
                "id": id,
                "type": "function",
                "function": {"name": name, "arguments": input.to_string()},
            })),
            Block::ToolResult {
                id,
                output,
                is_error,
            } => {
                // The API has no error flag: the model reads it from the text.
                let content = if *is_error {
                    format!("Error: {output}")
                } else {
                    output.clone()
                };
                tool_results.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
            }
        }
    }
    match message.role {
        ModelRole::User => {
            messages.append(&mut tool_results);
            if has_files {
                messages.push(json!({"role": "user", "content": parts}));
            } else if !text.is_empty() {
                messages.push(json!({"role": "user", "content": text}));
            }
        }
        ModelRole::Assistant => {
            if !text.is_empty() || !tool_calls.is_empty() {
                let mut assistant = Map::new();
                assistant.insert("role".into(), json!("assistant"));
                assistant.insert(
                    "content".into(),
                    if text.is_empty() {
                        Value::Null
                    } else {
                        json!(text)
                    },
                );
                if !tool_calls.is_empty() {
                    assistant.insert("tool_calls".into(), Value::Array(tool_calls));
                }
                messages.push(Value::Object(assistant));
            }
            messages.append(&mut tool_results);
        }
    }
}

/// A tool call being streamed: its pieces arrive by `index`.
#[derive(Default)]
struct PendingCall {
    id: String,
    name: String,
    arguments: String,
    /// `ToolCallStart` was emitted (once the name is known).
    started: bool,
}

/// The state of one Chat Completions stream.
pub(super) struct Parser {
    /// The provider's name for messages.
    label: String,
    calls: BTreeMap<u64, PendingCall>,
    finish: Option<FinishReason>,
}

impl Parser {
    pub(super) fn new(label: String) -> Self {
        Self {
            label,
            calls: BTreeMap::new(),
            finish: None,
        }
    }

    /// Completes the tool calls and the answer.
    fn finish(&mut self, out: &mut Vec<ModelEvent>) -> Result<(), ModelError> {
        let calls = std::mem::take(&mut self.calls);
        let had_calls = !calls.is_empty();
        for (index, mut call) in calls {
            if call.id.is_empty() {
                call.id = format!("call_{index}");
            }
            if !call.started {
                out.push(ModelEvent::ToolCallStart {
                    id: call.id.clone(),
                    name: call.name.clone(),
                });
            }
            let input = if call.arguments.trim().is_empty() {
                Value::Object(Map::new())
            } else {
                serde_json::from_str(&call.arguments).map_err(|_| {
                    ModelError(format!(
                        "{} sent invalid JSON arguments for the tool call {}",
                        self.label, call.name
                    ))
                })?
            };
            out.push(ModelEvent::ToolCall {
                id: call.id,
                name: call.name,
                input,
            });
        }
        let reason = match self.finish.unwrap_or(FinishReason::Other) {
            // Some compatible vendors say `stop` after tool calls.
            FinishReason::Stop if had_calls => FinishReason::ToolCalls,
            reason => reason,
        };
        out.push(ModelEvent::Finish { reason });
        Ok(())
    }
}

impl StreamParser for Parser {
    fn on_event(&mut self, data: &str, out: &mut Vec<ModelEvent>) -> Result<bool, ModelError> {
        if data.trim() == "[DONE]" {
            self.finish(out)?;
            return Ok(true);
        }
        let chunk: Value = serde_json::from_str(data).map_err(|_| {
            ModelError(format!(
                "{} sent a stream chunk that is not JSON",
                self.label
            ))
        })?;
        if let Some(error) = chunk.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .or_else(|| error.as_str())
                .unwrap_or("unknown error");
            return Err(ModelError(format!("{} API error: {message}", self.label)));
        }
        // The last chunk (usage only) has no choices.
        let Some(choice) = chunk.pointer("/choices/0") else {
            return Ok(false);
        };
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        if let Some(content) = delta.get("content").and_then(Value::as_str)
            && !content.is_empty()
        {
            out.push(ModelEvent::TextDelta(content.to_owned()));
        }
        // `reasoning_content` (DeepSeek, Moonshot, vLLM …) or `reasoning` (OpenRouter, Groq).
        let reasoning = delta
            .get("reasoning_content")
            .or_else(|| delta.get("reasoning"))
            .and_then(Value::as_str);
        if let Some(reasoning) = reasoning
            && !reasoning.is_empty()
        {
            out.push(ModelEvent::ReasoningDelta(reasoning.to_owned()));
        }
        if let Some(tool_calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for (position, piece) in tool_calls.iter().enumerate() {
                let index = match piece.get("index").and_then(Value::as_u64) {
                    Some(index) => index,
                    // Vendors that leave `index` out: a new `id` is a new call, a piece
                    // without one continues the latest call.
                    None => match piece.get("id").and_then(Value::as_str) {
                        Some(id) => self
                            .calls
                            .iter()
                            .find(|(_, call)| call.id == id)
                            .map_or_else(
                                || self.calls.keys().next_back().map_or(0, |key| key + 1),
                                |(key, _)| *key,
                            ),
                        None => self.calls.keys().max().copied().unwrap_or(position as u64),
                    },
                };
                let call = self.calls.entry(index).or_default();
                if let Some(id) = piece.get("id").and_then(Value::as_str)
                    && call.id.is_empty()
                {
                    call.id = id.to_owned();
                }
                if let Some(name) = piece.pointer("/function/name").and_then(Value::as_str)
                    && call.name.is_empty()
                {
                    call.name = name.to_owned();
                }
                let arguments = piece
                    .pointer("/function/arguments")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                call.arguments.push_str(arguments);
                if !call.started && !call.name.is_empty() {
                    if call.id.is_empty() {
                        call.id = format!("call_{index}");
                    }
                    call.started = true;
                    out.push(ModelEvent::ToolCallStart {
                        id: call.id.clone(),
                        name: call.name.clone(),
                    });
                    // Arguments that came before the name are sent now, in one piece.
                    if !call.arguments.is_empty() {
                        out.push(ModelEvent::ToolCallDelta {
                            id: call.id.clone(),
                            delta: call.arguments.clone(),
                        });
                    }
                } else if call.started && !arguments.is_empty() {
                    out.push(ModelEvent::ToolCallDelta {
                        id: call.id.clone(),
                        delta: arguments.to_owned(),
                    });
                }
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(match reason {
                "stop" => FinishReason::Stop,
                "tool_calls" | "function_call" => FinishReason::ToolCalls,
                "length" => FinishReason::Length,
                "content_filter" => FinishReason::ContentFilter,
                _ => FinishReason::Other,
            });
        }
        Ok(false)
    }

    fn on_end(&mut self, out: &mut Vec<ModelEvent>) -> Result<(), ModelError> {
        // Some compatible vendors end the body without `[DONE]`; a finish reason is enough.
        if self.finish.is_some() {
            return self.finish(out);
        }
        Err(ModelError(format!(
            "the {} stream ended before the answer was complete",
            self.label
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::ToolSpec;

    #[test]
    fn body_of_a_tool_use_conversation() {
        let request = ModelRequest {
            model: None,
            reasoning: Some("xhigh".into()),
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
                            signature: None,
                        },
                        Block::ToolCall {
                            id: "c1".into(),
                            name: "Bash".into(),
                            input: json!({"command": "ls"}),
                        },
                    ],
                },
                ModelMessage {
                    role: ModelRole::User,
                    blocks: vec![
                        Block::ToolResult {
                            id: "c1".into(),
                            output: "no such dir".into(),
                            is_error: true,
                        },
                        Block::Text("why?".into()),
                    ],
                },
            ],
            tools: vec![ToolSpec {
                name: "Bash".into(),
                description: "Runs a command".into(),
                input_schema: json!({"type": "object"}),
            }],
            credentials: Arc::default(),
        };
        assert_eq!(
            request_body("gpt-5", &request),
            json!({
                "model": "gpt-5",
                "stream": true,
                "stream_options": {"include_usage": true},
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    ]},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "Bash", "arguments": "{\"command\":\"ls\"}"}},
                    ]},
                    {"role": "tool", "tool_call_id": "c1", "content": "Error: no such dir"},
                    {"role": "user", "content": "why?"},
                ],
                "tools": [{"type": "function", "function": {"name": "Bash", "description": "Runs a command", "parameters": {"type": "object"}}}],
                "reasoning_effort": "high",
            })
        );
    }

    fn run(chunks: &[&str]) -> (Vec<ModelEvent>, Result<(), ModelError>) {
        let mut parser = Parser::new("OpenAI".into());
        let mut out = Vec::new();
        for chunk in chunks {
            match parser.on_event(chunk, &mut out) {
                Ok(false) => {}
                Ok(true) => return (out, Ok(())),
                Err(err) => return (out, Err(err)),
            }
        }
        let end = parser.on_end(&mut out);
        (out, end)
    }

    #[test]
    fn finish_reasons_and_reasoning_content() {
        let (events, end) = run(&[
            r#"{"choices":[{"delta":{"reasoning_content":"think"}}]}"#,
            r#"{"choices":[{"delta":{"content":"hi"},"finish_reason":"length"}]}"#,
            r#"{"choices":[],"usage":{"total_tokens":3}}"#,
        ]);
        assert_eq!(end, Ok(()), "a finish reason without [DONE] still ends");
        assert_eq!(
            events,
            [
                ModelEvent::ReasoningDelta("think".into()),
                ModelEvent::TextDelta("hi".into()),
                ModelEvent::Finish {
                    reason: FinishReason::Length
                },
            ]
        );
        let (_, end) = run(&[r#"{"choices":[{"delta":{"content":"hi"}}]}"#]);
        assert!(end.unwrap_err().0.contains("ended before"));
        let (_, end) = run(&[r#"{"error":{"message":"quota exceeded"}}"#]);
        assert_eq!(
            end,
            Err(ModelError("OpenAI API error: quota exceeded".into()))
        );
        let (events, _) = run(&[
            r#"{"choices":[{"delta":{},"finish_reason":"content_filter"}]}"#,
            "[DONE]",
        ]);
        assert_eq!(
            events,
            [ModelEvent::Finish {
                reason: FinishReason::ContentFilter
            }]
        );
    }

    #[test]
    fn calls_without_index_are_told_apart_by_id() {
        let (events, end) = run(&[
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"a","function":{"name":"One","arguments":"{\"x\":1}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"b","function":{"name":"Two","arguments":"{"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"}"}}]}}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
            "[DONE]",
        ]);
        assert_eq!(end, Ok(()));
        let calls: Vec<_> = events
            .iter()
            .filter_map(|event| match event {
                ModelEvent::ToolCall { id, name, input } => {
                    Some((id.as_str(), name.as_str(), input.clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            calls,
            [("a", "One", json!({"x": 1})), ("b", "Two", json!({}))]
        );
    }

    #[test]
    fn parallel_tool_calls_complete_in_index_order() {
        let (events, end) = run(&[
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"Two","arguments":""}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"One","arguments":"{\"x\""}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
            "[DONE]",
        ]);
        assert_eq!(end, Ok(()));
        assert_eq!(
            events,
            [
                ModelEvent::ToolCallStart {
                    id: "b".into(),
                    name: "Two".into()
                },
                ModelEvent::ToolCallStart {
                    id: "a".into(),
                    name: "One".into()
                },
                ModelEvent::ToolCallDelta {
                    id: "a".into(),
                    delta: "{\"x\"".into()
                },
                ModelEvent::ToolCallDelta {
                    id: "a".into(),
                    delta: ":1}".into()
                },
                ModelEvent::ToolCall {
                    id: "a".into(),
                    name: "One".into(),
                    input: json!({"x": 1})
                },
                ModelEvent::ToolCall {
                    id: "b".into(),
                    name: "Two".into(),
                    input: json!({})
                },
                ModelEvent::Finish {
                    reason: FinishReason::ToolCalls
                },
            ]
        );
    }
}
