//! The Anthropic Messages API wire format: SSE events, the non-streaming message, error bodies.

use serde_json::{Value, json};

use crate::frames::{Frame, Frames, named_event_bytes, pieces};
use crate::script::{Reply, Step};
use crate::summary::{Block, Summary};
use crate::turn::Turn;

/// Sent as the signature of a thinking block whose step names none: real thinking blocks
/// always carry one, and clients send it back.
const DEFAULT_SIGNATURE: &str = "ZmFrZS1zaWduYXR1cmU=";

/// What kind of content block is open, so consecutive text (or thinking) steps share one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
}

/// The SSE stream of `reply` (which has no `error` step).
pub(crate) fn render_stream(reply: &Reply, turn: &Turn) -> Vec<Frame> {
    let chunk_chars = reply.chunk_chars();
    let mut frames = Frames::new(reply.chunk_delay_ms);
    let mut stream = Stream {
        frames: &mut frames,
        open: None,
        index: 0,
        started: false,
        output_chars: 0,
    };
    stream.frames.named_event(
        "message_start",
        &json!({
            "type": "message_start",
            "message": {
                "id": turn.message_id("msg"),
                "type": "message",
                "role": "assistant",
                "model": turn.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": usage_start(turn),
            },
        }),
    );
    stream.frames.named_event("ping", &json!({"type": "ping"}));

    let mut tool_calls = 0;
    for step in &reply.steps {
        match step {
            Step::Text { text } => {
                stream.open_block(Open::Text);
                for piece in pieces(text, chunk_chars) {
                    stream.delta(json!({"type": "text_delta", "text": piece}));
                }
                stream.output_chars += text.len();
            }
            Step::Thinking {
                thinking,
                signature,
            } => {
                stream.open_block(Open::Thinking);
                for piece in pieces(thinking, chunk_chars) {
                    stream.delta(json!({"type": "thinking_delta", "thinking": piece}));
                }
                stream.output_chars += thinking.len();
                let signature = signature.as_deref().unwrap_or(DEFAULT_SIGNATURE);
                stream.delta(json!({"type": "signature_delta", "signature": signature}));
                // A signature seals the block: the next thinking step starts a new one.
                stream.close_block();
            }
            Step::ToolCall { tool_call } => {
                stream.close_block();
                tool_calls += 1;
                let id = tool_call
                    .id
                    .clone()
                    .unwrap_or_else(|| format!("toolu_fake_{}_{tool_calls}", turn.number));
                stream.start_block(json!({
                    "type": "tool_use",
                    "id": id,
                    "name": tool_call.name,
                    "input": {},
                }));
                let input = tool_call.input.to_string();
                for piece in pieces(&input, chunk_chars) {
                    stream.delta(json!({"type": "input_json_delta", "partial_json": piece}));
                }
                stream.output_chars += input.len();
                stream.close_block();
            }
            Step::StreamError { stream_error } => {
                // The real API ends the stream right after an `error` event.
                stream.frames.named_event(
                    "error",
                    &json!({
                        "type": "error",
                        "error": {"type": "overloaded_error", "message": stream_error},
                    }),
                );
                return frames.into_frames();
            }
            Step::Delay { delay_ms } => stream.frames.pause(*delay_ms),
            Step::Hang { hang: true } => {
                stream.frames.hang();
                return frames.into_frames();
            }
            Step::Hang { hang: false } | Step::Error { .. } => {}
            Step::BulkText { bulk_text } => {
                stream.open_block(Open::Text);
                let event = named_event_bytes(
                    "content_block_delta",
                    &json!({
                        "type": "content_block_delta",
                        "index": stream.index,
                        "delta": {"type": "text_delta", "text": bulk_text.chunk_text},
                    }),
                );
                stream.frames.repeat(&event, bulk_text.chunks);
                stream.output_chars += bulk_text.chunk_text.len() * bulk_text.chunks as usize;
            }
        }
    }
    stream.close_block();
    let output_chars = stream.output_chars;
    frames.named_event(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(reply), "stop_sequence": null},
            "usage": {"output_tokens": tokens(output_chars)},
        }),
    );
    frames.named_event("message_stop", &json!({"type": "message_stop"}));
    frames.into_frames()
}

/// The non-streaming answer (`"stream": false`) to a reply that ends normally.
pub(crate) fn render_message(summary: &Summary, reply: &Reply, turn: &Turn) -> Value {
    let mut tool_calls = 0;
    let content: Vec<Value> = summary
        .blocks
        .iter()
        .map(|block| match block {
            Block::Text(text) => json!({"type": "text", "text": text}),
            Block::Thinking {
                thinking,
                signature,
            } => json!({
                "type": "thinking",
                "thinking": thinking,
                "signature": signature.as_deref().unwrap_or(DEFAULT_SIGNATURE),
            }),
            Block::ToolCall { id, name, input } => {
                tool_calls += 1;
                json!({
                    "type": "tool_use",
                    "id": id.clone().unwrap_or_else(|| format!("toolu_fake_{}_{tool_calls}", turn.number)),
                    "name": name,
                    "input": input,
                })
            }
        })
        .collect();
    let mut usage = usage_start(turn);
    usage["output_tokens"] = json!(tokens(summary.output_chars));
    json!({
        "id": turn.message_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": turn.model,
        "content": content,
        "stop_reason": stop_reason(reply),
        "stop_sequence": null,
        "usage": usage,
    })
}

/// The error body the real API sends with an HTTP error status.
pub(crate) fn error_body(
    status: u16,
    error_type: Option<&str>,
    message: &str,
    turn: &Turn,
) -> Value {
    json!({
        "type": "error",
        "error": {
            "type": error_type.unwrap_or_else(|| error_type_for(status)),
            "message": message,
        },
        "request_id": turn.message_id("req"),
    })
}

/// Anthropic's documented error type of each HTTP status.
fn error_type_for(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

fn stop_reason(reply: &Reply) -> &'static str {
    if reply.calls_tools() {
        "tool_use"
    } else {
        "end_turn"
    }
}

fn usage_start(turn: &Turn) -> Value {
    json!({
        "input_tokens": turn.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 1,
    })
}

/// A rough token count (about four bytes a token), so usage numbers look plausible.
fn tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4).max(1)
}

/// The content-block bookkeeping of one stream.
struct Stream<'a> {
    frames: &'a mut Frames,
    open: Option<Open>,
    /// The index of the open block, or of the next one when none is open.
    index: usize,
    /// Whether a block (of any kind) is open and needs a `content_block_stop`.
    started: bool,
    output_chars: usize,
}

impl Stream<'_> {
    fn open_block(&mut self, kind: Open) {
        if self.open == Some(kind) {
            return;
        }
        self.close_block();
        let block = match kind {
            Open::Text => json!({"type": "text", "text": ""}),
            Open::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
        };
        self.start_block(block);
        self.open = Some(kind);
    }

    fn start_block(&mut self, block: Value) {
        self.frames.named_event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.index, "content_block": block}),
        );
        // Tool-use blocks are not merged, but they are open until `close_block`.
        self.open = None;
        self.started = true;
    }

    fn delta(&mut self, delta: Value) {
        self.frames.pace();
        self.frames.named_event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": self.index, "delta": delta}),
        );
    }

    fn close_block(&mut self) {
        if !self.started {
            return;
        }
        self.frames.named_event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": self.index}),
        );
        self.index += 1;
        self.open = None;
        self.started = false;
    }
}
