//! Sending a model request with retries: overload and rate-limit answers (429, 408, 5xx,
//! 529) and failed connections are retried with exponential backoff before the stream
//! starts; other errors become a `ModelError` with the provider's own message.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;

use super::Call;
use crate::model::ModelError;

/// How often and how long to wait before giving up on a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (4).
    pub max_retries: u32,
    /// The wait before the first retry, doubled for each next one (500 ms).
    pub base_delay: Duration,
    /// The longest `retry-after` honoured (30 s); a longer one is cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            base_delay: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt + 1`.
    fn backoff(&self, attempt: u32) -> Duration {
        self.base_delay.saturating_mul(1 << attempt.min(16))
    }
}

/// Longest error body read for its message.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Longest raw error text passed on when the body has no message field.
const MAX_ERROR_TEXT: usize = 500;

/// Sends `call` until it is answered with a success, a non-retryable status, or the retries
/// run out. The successful response's body is not read.
pub(super) async fn send(
    client: &reqwest::Client,
    call: &Call,
    policy: &RetryPolicy,
    label: &str,
) -> Result<reqwest::Response, ModelError> {
    let mut attempt = 0;
    loop {
        let result = client
            .post(&call.url)
            .headers(call.headers.clone())
            .body(call.body.clone())
            .send()
            .await;
        let can_retry = attempt < policy.max_retries;
        let delay = match result {
            Ok(response) if response.status().is_success() => return Ok(response),
            Ok(response) if can_retry && is_retryable(response.status()) => {
                tracing::warn!(
                    provider = label,
                    status = response.status().as_u16(),
                    attempt,
                    "the model provider is busy; retrying"
                );
                retry_after(response.headers(), policy.max_retry_after)
                    .unwrap_or_else(|| policy.backoff(attempt))
            }
            Ok(response) => {
                let status = response.status();
                let message = error_message(response).await;
                return Err(ModelError(format!(
                    "{label} API error ({status}): {message}"
                )));
            }
            Err(err) if can_retry && err.is_connect() => {
                tracing::warn!(provider = label, attempt, err = %describe(&err), "connecting to the model provider failed; retrying");
                policy.backoff(attempt)
            }
            Err(err) => {
                return Err(ModelError(format!(
                    "could not reach the {label} API: {}",
                    describe(&err)
                )));
            }
        };
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// Whether an answer with `status` is worth asking again: rate limits, timeouts, server
/// errors and Anthropic's 529 "overloaded".
fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429) || status.is_server_error() || status.as_u16() == 529
}

/// `retry-after` in (possibly fractional) seconds, at most `max`; the HTTP-date form is not
/// used by the model providers and falls back to the backoff.
fn retry_after(headers: &HeaderMap, max: Duration) -> Option<Duration> {
    let seconds: f64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(seconds.min(max.as_secs_f64())))
}

/// The provider's message from an error body: `error.message` (Anthropic and OpenAI), a
/// top-level `message` or `error` string, else the start of the body text.
async fn error_message(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    if let Ok(value) = serde_json::from_slice::<Value>(&body) {
        let message = value
            .pointer("/error/message")
            .or_else(|| value.get("message"))
            .or_else(|| value.get("error"))
            .and_then(Value::as_str);
        if let Some(message) = message {
            return message.to_owned();
        }
    }
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    if text.is_empty() {
        return "no details".to_owned();
    }
    match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// A reqwest error with its causes, without the URL (a base URL could carry user info).
pub(super) fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_delay() {
        let policy = RetryPolicy::default();
        let delays: Vec<u128> = (0..4).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000]);
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let cap = Duration::from_secs(30);
        let headers = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(RETRY_AFTER, HeaderValue::from_static(value));
            headers
        };
        assert_eq!(
            retry_after(&headers("2"), cap),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&headers("0.5"), cap),
            Some(Duration::from_millis(500))
        );
        assert_eq!(retry_after(&headers("3600"), cap), Some(cap));
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT"), cap),
            None
        );
        assert_eq!(retry_after(&HeaderMap::new(), cap), None);
    }

    #[test]
    fn retryable_statuses() {
        for status in [408, 429, 500, 502, 503, 529] {
            assert!(
                is_retryable(StatusCode::from_u16(status).unwrap()),
                "{status}"
            );
        }
        for status in [400, 401, 403, 404, 413, 422] {
            assert!(
                !is_retryable(StatusCode::from_u16(status).unwrap()),
                "{status}"
            );
        }
    }
}
