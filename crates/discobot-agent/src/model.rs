//! The LLM port: [`ModelClient`] streams a model's answer as [`ModelEvent`]s. [`Echo`], the
//! only implementation so far, answers with the user's own text, so the whole chat machinery
//! (stream, resume, queue, cancel, persistence) runs without a provider.

use std::fmt::Debug;
use std::time::Duration;

use discobot_agent_api::{Role, UiMessage};
use futures::stream::BoxStream;

/// What the model is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRequest {
    /// `provider/model`, as the thread or the request names it.
    pub model: Option<String>,
    /// The history along the active branch, the new user message last.
    pub messages: Vec<UiMessage>,
}

/// One piece of the model's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelEvent {
    TextDelta(String),
    ReasoningDelta(String),
    /// The answer is complete; `reason` is the UI stream's `finishReason` (`stop`, …).
    Finish {
        reason: String,
    },
}

/// A failed model call; the message reaches the user as an `error` chunk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ModelError(pub String);

/// A streaming LLM. Dropping the stream must stop the request: that is how cancel works.
pub trait ModelClient: Send + Sync + Debug + 'static {
    fn stream(&self, request: ModelRequest) -> BoxStream<'static, Result<ModelEvent, ModelError>>;
}

/// Streams the last user message back word by word, waiting `delay` before each word.
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
            .find(|message| message.role == Role::User)
            .map(UiMessage::plain_text)
            .unwrap_or_default();
        let delay = self.delay;
        Box::pin(async_stream::stream! {
            for word in text.split_inclusive(' ') {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                yield Ok(ModelEvent::TextDelta(word.to_owned()));
            }
            yield Ok(ModelEvent::Finish { reason: "stop".to_owned() });
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn echo_repeats_the_last_user_message() {
        let request = ModelRequest {
            model: None,
            messages: vec![
                UiMessage::text("u0", Role::User, "old"),
                UiMessage::text("a0", Role::Assistant, "old"),
                UiMessage::text("u1", Role::User, "hello big world"),
            ],
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
                    reason: "stop".into()
                },
            ]
        );
    }
}
