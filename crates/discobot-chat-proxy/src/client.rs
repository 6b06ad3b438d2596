//! `AgentClient`: the `AgentPort` over reqwest, with the agent's auth, credentials and git
//! headers, retries of unreachable agents and 5xx answers, and SSE streams.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use discobot_core::ports::{
    AgentEndpoint, AgentEventStream, AgentMethod, AgentPort, AgentRequest, AgentResponse, SseFrame,
};
use futures::{Stream, StreamExt};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};

use crate::error::ProxyError;
use crate::sse::SseParser;

pub const CREDENTIALS_HEADER: &str = "x-discobot-credentials";
pub const GIT_USER_NAME_HEADER: &str = "x-discobot-git-user-name";
pub const GIT_USER_EMAIL_HEADER: &str = "x-discobot-git-user-email";

/// How often and how patiently a request is repeated while the agent is unreachable or
/// answers 5xx (it may be starting, or restarting inside its sandbox).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 15,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt `attempt` (1-based): doubling, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// The server's client of sandbox agents.
#[derive(Clone, Debug)]
pub struct AgentClient {
    http: reqwest::Client,
    retry: RetryPolicy,
}

/// How long an agent may take to answer a call (or a stream's headers). Generous: a diff of
/// a big repository takes a while. An agent that hangs (a paused container) fails the call
/// instead of hanging the request forever; a timed-out call is not sent again, as it may
/// have been acted on.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

impl Default for AgentClient {
    fn default() -> Self {
        AgentClient::new(RetryPolicy::default())
    }
}

impl AgentClient {
    pub fn new(retry: RetryPolicy) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            // Only fails when the TLS backend cannot start; agents are plain HTTP, so a
            // default client is just as good.
            .unwrap_or_default();
        AgentClient { http, retry }
    }

    fn build(
        &self,
        endpoint: &AgentEndpoint,
        request: &AgentRequest,
        stream: bool,
    ) -> reqwest::RequestBuilder {
        let method = match request.method.unwrap_or(AgentMethod::Get) {
            AgentMethod::Get => reqwest::Method::GET,
            AgentMethod::Post => reqwest::Method::POST,
            AgentMethod::Put => reqwest::Method::PUT,
            AgentMethod::Delete => reqwest::Method::DELETE,
        };
        let url = format!(
            "{}{}",
            endpoint.base_url.trim_end_matches('/'),
            request.path
        );
        let mut builder = self.http.request(method, url);
        if let Some(value) = sensitive(&format!("Bearer {}", endpoint.secret)) {
            builder = builder.header(AUTHORIZATION, value);
        }
        if let Some(credentials) = &request.credentials_header
            && !credentials.is_empty()
        {
            match sensitive(credentials.expose()) {
                Some(value) => builder = builder.header(CREDENTIALS_HEADER, value),
                // Never quote the value: it is a secret.
                None => tracing::warn!("credentials header is not ASCII; not sent"),
            }
        }
        for (name, value) in [
            (GIT_USER_NAME_HEADER, &request.git_user_name),
            (GIT_USER_EMAIL_HEADER, &request.git_user_email),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty())
                && let Ok(value) = HeaderValue::from_str(value)
            {
                builder = builder.header(name, value);
            }
        }
        if let Some(body) = &request.body {
            builder = builder
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        if !stream {
            builder = builder.timeout(CALL_TIMEOUT);
        }
        if stream {
            builder = builder.header(ACCEPT, "text/event-stream");
            if let Some(last_event_id) = request.last_event_id.as_deref()
                && let Ok(value) = HeaderValue::from_str(last_event_id)
            {
                builder = builder.header("last-event-id", value);
            }
        }
        builder
    }

    /// Sends until the agent answers something other than a 5xx, or attempts run out.
    async fn send_with_retries(
        &self,
        endpoint: &AgentEndpoint,
        request: &AgentRequest,
        stream: bool,
    ) -> Result<Answer, ProxyError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.max_attempts;
            let sent = match tokio::time::timeout(
                CALL_TIMEOUT,
                self.build(endpoint, request, stream).send(),
            )
            .await
            {
                Ok(sent) => sent,
                Err(_elapsed) => {
                    return Err(ProxyError::Unreachable {
                        attempts: attempt,
                        message: format!("no answer within {}s", CALL_TIMEOUT.as_secs()),
                    });
                }
            };
            let failure = match sent {
                Ok(response) if response.status().is_server_error() => {
                    let status = response.status().as_u16();
                    if last {
                        return Err(ProxyError::RetryableStatus {
                            status,
                            attempts: attempt,
                        });
                    }
                    format!("status {status}")
                }
                Ok(response) if stream => return Ok(Answer::Stream(response)),
                Ok(response) => {
                    let status = response.status().as_u16();
                    match response.bytes().await {
                        Ok(body) => return Ok(Answer::Body(status, body)),
                        Err(error) if last => {
                            return Err(ProxyError::Unreachable {
                                attempts: attempt,
                                message: error.to_string(),
                            });
                        }
                        Err(error) => error.to_string(),
                    }
                }
                Err(error) if error.is_builder() => {
                    return Err(ProxyError::Request(error.to_string()));
                }
                Err(error) if error.is_timeout() => {
                    return Err(ProxyError::Unreachable {
                        attempts: attempt,
                        message: error.to_string(),
                    });
                }
                Err(error) if last => {
                    return Err(ProxyError::Unreachable {
                        attempts: attempt,
                        message: error.to_string(),
                    });
                }
                Err(error) => error.to_string(),
            };
            tracing::debug!(
                agent.path = request.path,
                attempt,
                failure,
                "agent request failed; retrying"
            );
            tokio::time::sleep(self.retry.backoff(attempt)).await;
        }
    }
}

enum Answer {
    Body(u16, Bytes),
    Stream(reqwest::Response),
}

fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(value).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The body as JSON when it parses, else its text as a JSON string.
fn body_json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// The agent's error text: the `error` field of a JSON body, else the body itself.
pub fn error_text(body: &serde_json::Value) -> String {
    match body {
        serde_json::Value::Object(map) => match map.get("error") {
            Some(serde_json::Value::String(text)) => text.clone(),
            _ => body.to_string(),
        },
        serde_json::Value::String(text) => text.trim().to_owned(),
        other => other.to_string(),
    }
}

#[async_trait]
impl AgentPort for AgentClient {
    async fn call(
        &self,
        endpoint: &AgentEndpoint,
        request: AgentRequest,
    ) -> discobot_core::Result<AgentResponse> {
        match self.send_with_retries(endpoint, &request, false).await? {
            Answer::Body(status, body) => Ok(AgentResponse {
                status,
                body: if body.is_empty() {
                    serde_json::Value::Null
                } else {
                    body_json(&body)
                },
            }),
            Answer::Stream(_) => Err(ProxyError::Request("unexpected stream".into()).into()),
        }
    }

    async fn open_stream(
        &self,
        endpoint: &AgentEndpoint,
        request: AgentRequest,
    ) -> discobot_core::Result<Box<dyn AgentEventStream>> {
        let response = match self.send_with_retries(endpoint, &request, true).await? {
            Answer::Stream(response) => response,
            Answer::Body(status, body) => {
                return Err(ProxyError::Status {
                    status,
                    message: error_text(&body_json(&body)),
                }
                .into());
            }
        };
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let body = response.bytes().await.unwrap_or_default();
            return Err(ProxyError::Status {
                status,
                message: error_text(&body_json(&body)),
            }
            .into());
        }
        Ok(Box::new(ReqwestEventStream {
            body: Box::pin(response.bytes_stream()),
            parser: SseParser::new(),
            done: false,
        }))
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// An agent's SSE answer, parsed as it arrives.
struct ReqwestEventStream {
    body: ByteStream,
    parser: SseParser,
    done: bool,
}

#[async_trait]
impl AgentEventStream for ReqwestEventStream {
    async fn next_frame(&mut self) -> Option<discobot_core::Result<SseFrame>> {
        loop {
            if let Some(frame) = self.parser.next_frame() {
                return Some(Ok(frame));
            }
            if self.done {
                return None;
            }
            match self.body.next().await {
                Some(Ok(bytes)) => self.parser.push(&bytes),
                Some(Err(error)) => {
                    self.done = true;
                    return Some(Err(ProxyError::Read(error.to_string()).into()));
                }
                None => {
                    // An unfinished last frame is dropped, as EventSource does.
                    self.done = true;
                    return None;
                }
            }
        }
    }
}
