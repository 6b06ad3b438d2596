//! The LLM port: [`ModelClient`] streams a model's answer to a provider-neutral conversation
//! as [`ModelEvent`]s. The provider clients live in `llm`; [`Echo`] answers with the user's
//! own text, so the chat machinery (stream, resume, queue, cancel, persistence) is testable
//! without any provider.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use serde_json::Value;

/// Who said a [`ModelMessage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelRole {
    User,
    Assistant,
}

/// One piece of a message in the conversation sent to the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Text(String),
    /// Extended thinking; `signature` is the provider's opaque proof (Anthropic requires it
    /// back with tool-use turns).
    Thinking {
        text: String,
        signature: Option<String>,
    },
    /// An image or other file the user attached (`data:` URL or https URL).
    File {
        media_type: String,
        url: String,
    },
    /// A tool call the assistant made.
    ToolCall {
        id: String,
        name: String,
        input: Value,
    },
    /// The result of a tool call; sent in a `User` message (Anthropic) or as a tool message
    /// (OpenAI) by the provider client.
    ToolResult {
        id: String,
        output: String,
        is_error: bool,
    },
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelMessage {
    pub role: ModelRole,
    pub blocks: Vec<Block>,
}

/// A tool the model may call: JSON-schema input.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
}

/// What the model is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRequest {
    /// `provider/model` (e.g. `anthropic/claude-sonnet-4-5`); `None`: the client's default.
    pub model: Option<String>,
    /// `auto|low|medium|high|xhigh|none|default` as the chat request named it.
    pub reasoning: Option<String>,
    pub system: String,
    pub messages: Vec<ModelMessage>,
    pub tools: Vec<ToolSpec>,
    /// The credentials of the latest `X-Discobot-Credentials` header as env var → value
    /// (`ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`, `OPENAI_API_KEY`, …). Memory only.
    pub credentials: Arc<HashMap<String, String>>,
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    /// The model called tools: run them and ask again.
    ToolCalls,
    Length,
    ContentFilter,
    Other,
}

impl FinishReason {
    /// The UI stream's `finishReason` text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::ToolCalls => "tool-calls",
            Self::Length => "length",
            Self::ContentFilter => "content-filter",
            Self::Other => "other",
        }
    }
}

/// One piece of the model's answer, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelEvent {
    TextDelta(String),
    ReasoningDelta(String),
    /// The thinking block's signature (Anthropic), sent once at its end.
    ReasoningSignature(String),
    /// A tool call begins; its input follows as deltas.
    ToolCallStart {
        id: String,
        name: String,
    },
    /// A piece of the tool call's JSON input text.
    ToolCallDelta {
        id: String,
        delta: String,
    },
    /// The tool call is complete with its parsed input.
    ToolCall {
        id: String,
        name: String,
        input: Value,
    },
    /// The answer is complete.
    Finish {
        reason: FinishReason,
    },
}

/// A failed model call; the message reaches the user as an `error` chunk. Never contains a
/// credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ModelError(pub String);

/// A streaming LLM. Dropping the stream must stop the request: that is how cancel works.
pub trait ModelClient: Send + Sync + Debug + 'static {
    fn stream(&self, request: ModelRequest) -> BoxStream<'static, Result<ModelEvent, ModelError>>;
}

/// Streams the last user message's text back word by word, waiting `delay` before each word.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo {
    pub delay: Duration,
}

impl ModelClient for Echo {
    fn stream(&self, request: ModelRequest) -> BoxStream<'static, Result<ModelEvent, ModelError>> {
        let text = request
            .messages
            .iter()
            .rev()
            .find(|message| message.role == ModelRole::User)
            .map(|message| {
                message
                    .blocks
                    .iter()
                    .filter_map(|block| match block {
                        Block::Text(text) => Some(text.as_str()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join("")
            })
            .unwrap_or_default();
        let delay = self.delay;
        Box::pin(async_stream::stream! {
            for word in text.split_inclusive(' ') {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                yield Ok(ModelEvent::TextDelta(word.to_owned()));
            }
            yield Ok(ModelEvent::Finish { reason: FinishReason::Stop });
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn text(role: ModelRole, text: &str) -> ModelMessage {
        ModelMessage {
            role,
            blocks: vec![Block::Text(text.into())],
        }
    }

    #[tokio::test]
    async fn echo_repeats_the_last_user_message() {
        let request = ModelRequest {
            model: None,
            reasoning: None,
            system: String::new(),
            messages: vec![
                text(ModelRole::User, "old"),
                text(ModelRole::Assistant, "old"),
                text(ModelRole::User, "hello big world"),
            ],
            tools: Vec::new(),
            credentials: Arc::default(),
        };
        let events: Vec<_> = Echo::default().stream(request).collect().await;
        let events: Vec<ModelEvent> = events.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            events,
            [
                ModelEvent::TextDelta("hello ".into()),
                ModelEvent::TextDelta("big ".into()),
                ModelEvent::TextDelta("world".into()),
                ModelEvent::Finish {
                    reason: FinishReason::Stop
                },
            ]
        );
    }
}
