//! The OpenAI Chat Completions wire format: `chat.completion.chunk` SSE, the non-streaming
//! completion, error bodies.

use serde_json::{Value, json};

use crate::frames::{Frame, Frames, data_event_bytes, pieces};
use crate::script::{Reply, Step};
use crate::summary::{Block, Summary};
use crate::turn::Turn;

/// The SSE stream of `reply` (which has no `error` step).
pub(crate) fn render_stream(reply: &Reply, turn: &Turn) -> Vec<Frame> {
    let chunk_chars = reply.chunk_chars();
    let mut frames = Frames::new(reply.chunk_delay_ms);
    let chunk = |delta: Value, finish_reason: Option<&str>| {
        json!({
            "id": turn.message_id("chatcmpl"),
            "object": "chat.completion.chunk",
            "created": turn.created,
            "model": turn.model,
            "system_fingerprint": "fp_fake",
            "choices": [{
                "index": 0,
                "delta": delta,
                "logprobs": null,
                "finish_reason": finish_reason,
            }],
        })
    };

    frames.data_event(&chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        None,
    ));
    let mut output_chars = 0;
    let mut tool_calls = 0;
    for step in &reply.steps {
        match step {
            Step::Text { text } => {
                for piece in pieces(text, chunk_chars) {
                    frames.pace();
                    frames.data_event(&chunk(json!({"content": piece}), None));
                }
                output_chars += text.len();
            }
            Step::Thinking { thinking, .. } => {
                // OpenAI-compatible reasoning models stream their thinking as
                // `reasoning_content`; there is no signature on this wire.
                for piece in pieces(thinking, chunk_chars) {
                    frames.pace();
                    frames.data_event(&chunk(json!({"reasoning_content": piece}), None));
                }
                output_chars += thinking.len();
            }
            Step::ToolCall { tool_call } => {
                let index = tool_calls;
                tool_calls += 1;
                let id = tool_call
                    .id
                    .clone()
                    .unwrap_or_else(|| format!("call_fake_{}_{tool_calls}", turn.number));
                frames.pace();
                frames.data_event(&chunk(
                    json!({"tool_calls": [{
                        "index": index,
                        "id": id,
                        "type": "function",
                        "function": {"name": tool_call.name, "arguments": ""},
                    }]}),
                    None,
                ));
                let arguments = tool_call.input.to_string();
                for piece in pieces(&arguments, chunk_chars) {
                    frames.pace();
                    frames.data_event(&chunk(
                        json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                        None,
                    ));
                }
                output_chars += arguments.len();
            }
            // The stream just ends: no finish reason, no usage, no `[DONE]`.
            Step::StreamError { .. } => return frames.into_frames(),
            Step::Delay { delay_ms } => frames.pause(*delay_ms),
            Step::Hang { hang: true } => {
                frames.hang();
                return frames.into_frames();
            }
            Step::Hang { hang: false } | Step::Error { .. } => {}
            Step::BulkText { bulk_text } => {
                let event =
                    data_event_bytes(&chunk(json!({"content": bulk_text.chunk_text}), None));
                frames.repeat(&event, bulk_text.chunks);
                output_chars += bulk_text.chunk_text.len() * bulk_text.chunks as usize;
            }
        }
    }
    frames.data_event(&chunk(json!({}), Some(finish_reason(reply))));
    let mut usage_chunk = chunk(json!({}), None);
    usage_chunk["choices"] = json!([]);
    usage_chunk["usage"] = usage(turn, output_chars);
    frames.data_event(&usage_chunk);
    frames.raw(b"data: [DONE]\n\n");
    frames.into_frames()
}

/// The non-streaming answer (`"stream"` absent or false) to a reply that ends normally.
pub(crate) fn render_completion(summary: &Summary, reply: &Reply, turn: &Turn) -> Value {
    let mut content = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in &summary.blocks {
        match block {
            Block::Text(text) => content.push_str(text),
            Block::Thinking { thinking, .. } => reasoning.push_str(thinking),
            Block::ToolCall { id, name, input } => {
                let id = id.clone().unwrap_or_else(|| {
                    format!("call_fake_{}_{}", turn.number, tool_calls.len() + 1)
                });
                tool_calls.push(json!({
                    "id": id,
                    "type": "function",
                    "function": {"name": name, "arguments": input.to_string()},
                }));
            }
        }
    }
    let mut message = json!({
        "role": "assistant",
        "content": if content.is_empty() && !tool_calls.is_empty() { Value::Null } else { json!(content) },
        "refusal": null,
    });
    if !reasoning.is_empty() {
        message["reasoning_content"] = json!(reasoning);
    }
    if !tool_calls.is_empty() {
        message["tool_calls"] = json!(tool_calls);
    }
    json!({
        "id": turn.message_id("chatcmpl"),
        "object": "chat.completion",
        "created": turn.created,
        "model": turn.model,
        "system_fingerprint": "fp_fake",
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(reply),
        }],
        "usage": usage(turn, summary.output_chars),
    })
}

/// The error body the real API sends with an HTTP error status.
pub(crate) fn error_body(status: u16, error_type: Option<&str>, message: &str) -> Value {
    let (default_type, code) = match status {
        401 => ("invalid_request_error", json!("invalid_api_key")),
        429 => ("requests", json!("rate_limit_exceeded")),
        500..=599 => ("server_error", Value::Null),
        _ => ("invalid_request_error", Value::Null),
    };
    json!({
        "error": {
            "message": message,
            "type": error_type.unwrap_or(default_type),
            "param": null,
            "code": code,
        },
    })
}

fn finish_reason(reply: &Reply) -> &'static str {
    if reply.calls_tools() {
        "tool_calls"
    } else {
        "stop"
    }
}

fn usage(turn: &Turn, output_chars: usize) -> Value {
    let completion_tokens = (output_chars as u64).div_ceil(4).max(1);
    json!({
        "prompt_tokens": turn.input_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": turn.input_tokens + completion_tokens,
    })
}
