//! What one model request contributes to its answer: its number, model and size.

use serde_json::Value;

/// The facts about one model request that its answer echoes.
#[derive(Debug, Clone)]
pub(crate) struct Turn {
    /// Counts model requests from 1; makes ids unique within one fake.
    pub(crate) number: u64,
    /// The request's `model`, echoed back like the real APIs do.
    pub(crate) model: String,
    /// A rough token count of the request body.
    pub(crate) input_tokens: u64,
    /// Unix seconds, for OpenAI's `created`.
    pub(crate) created: u64,
}

impl Turn {
    pub(crate) fn new(number: u64, body: &Value, body_len: usize) -> Self {
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        Self {
            number,
            model: body["model"].as_str().unwrap_or("fake-model").to_owned(),
            input_tokens: (body_len as u64).div_ceil(4).max(1),
            created,
        }
    }

    /// An id such as `msg_fake_3`.
    pub(crate) fn message_id(&self, prefix: &str) -> String {
        format!("{prefix}_fake_{}", self.number)
    }
}
