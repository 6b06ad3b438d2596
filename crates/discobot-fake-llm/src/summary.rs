//! A reply folded into whole content blocks, for non-streaming answers.

use serde_json::Value;

use crate::script::{Reply, Step};

/// One whole content block of a reply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Block {
    Text(String),
    Thinking {
        thinking: String,
        signature: Option<String>,
    },
    ToolCall {
        id: Option<String>,
        name: String,
        input: Value,
    },
}

/// How a reply ends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ending {
    Complete,
    StreamError(String),
    Hang,
}

/// A reply as whole blocks, with the pauses it asks for added up.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    pub(crate) blocks: Vec<Block>,
    pub(crate) delay_ms: u64,
    pub(crate) output_chars: usize,
    pub(crate) ending: Ending,
}

impl Summary {
    pub(crate) fn of(reply: &Reply) -> Self {
        let mut summary = Self {
            blocks: Vec::new(),
            delay_ms: 0,
            output_chars: 0,
            ending: Ending::Complete,
        };
        for step in &reply.steps {
            match step {
                Step::Text { text } => summary.push_text(text),
                Step::BulkText { bulk_text } => {
                    summary.push_text(&bulk_text.chunk_text.repeat(bulk_text.chunks as usize));
                }
                Step::Thinking {
                    thinking,
                    signature,
                } => {
                    summary.output_chars += thinking.len();
                    summary.blocks.push(Block::Thinking {
                        thinking: thinking.clone(),
                        signature: signature.clone(),
                    });
                }
                Step::ToolCall { tool_call } => {
                    summary.output_chars += tool_call.input.to_string().len();
                    summary.blocks.push(Block::ToolCall {
                        id: tool_call.id.clone(),
                        name: tool_call.name.clone(),
                        input: tool_call.input.clone(),
                    });
                }
                Step::Delay { delay_ms } => summary.delay_ms += delay_ms,
                Step::StreamError { stream_error } => {
                    summary.ending = Ending::StreamError(stream_error.clone());
                    break;
                }
                Step::Hang { hang: true } => {
                    summary.ending = Ending::Hang;
                    break;
                }
                Step::Hang { hang: false } | Step::Error { .. } => {}
            }
        }
        summary
    }

    fn push_text(&mut self, text: &str) {
        self.output_chars += text.len();
        if let Some(Block::Text(open)) = self.blocks.last_mut() {
            open.push_str(text);
        } else {
            self.blocks.push(Block::Text(text.to_owned()));
        }
    }
}
