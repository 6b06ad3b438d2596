//! The LLM provider clients behind the [`ModelClient`] port: [`Providers`] picks the provider
//! of a `provider/model` reference, takes its key and base URL from the request's credentials,
//! and streams the answer over the Anthropic Messages API or OpenAI Chat Completions (which
//! also serves every OpenAI-compatible vendor).
//!
//! SSE is parsed by `eventsource-stream` (over reqwest's `bytes_stream`) rather than by hand:
//! it already handles the parts of the format that are easy to get wrong (CR/LF variants,
//! multi-line `data`, comments, events split across chunks, UTF-8 split across chunks), and it
//! is small (nom, no second HTTP stack, unlike `reqwest-eventsource`).

mod anthropic;
pub(crate) mod models;
mod openai;
mod retry;

use std::collections::HashMap;
use std::time::Duration;

use eventsource_stream::{EventStreamError, Eventsource};
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

pub use retry::RetryPolicy;

use crate::model::{ModelClient, ModelError, ModelEvent, ModelRequest};

/// The model of a request that names none, when `DISCOBOT_MODEL` is not set and Anthropic
/// credentials exist.
pub const DEFAULT_ANTHROPIC_MODEL: &str = "anthropic/claude-sonnet-4-5";
/// The model of a request that names none, when only OpenAI credentials exist.
pub const DEFAULT_OPENAI_MODEL: &str = "openai/gpt-5";

const ANTHROPIC_DEFAULT_BASE: &str = "https://api.anthropic.com";
const OPENAI_DEFAULT_BASE: &str = "https://api.openai.com/v1";

/// The [`ModelClient`] of the agent: every provider, chosen per request from `request.model`
/// and authenticated with `request.credentials` (the latest `X-Discobot-Credentials`).
#[derive(Debug, Clone)]
pub struct Providers {
    /// `Err` with the reason when the HTTP client could not be built (its TLS setup): every
    /// call then fails with that reason instead of the agent failing to start.
    client: Result<reqwest::Client, String>,
    /// `DISCOBOT_MODEL`, read once at start.
    default_model: Option<String>,
    retry: RetryPolicy,
}

impl Providers {
    /// The providers with `DISCOBOT_MODEL` (when set and not empty) as the default model.
    pub fn from_env() -> Self {
        Self::new(std::env::var("DISCOBOT_MODEL").ok())
    }

    /// The providers with `default_model` (a `provider/model` reference) for requests that
    /// name no model; `None` picks by the credentials present.
    pub fn new(default_model: Option<String>) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            // Between two reads of the body: Anthropic pings every few seconds and OpenAI
            // streams tokens, so a stream silent this long is dead.
            .read_timeout(Duration::from_secs(300))
            .build()
            .map_err(|err| format!("the HTTP client could not be set up: {err}"));
        Self {
            client,
            default_model: default_model.filter(|model| !model.trim().is_empty()),
            retry: RetryPolicy::default(),
        }
    }

    /// The same providers with another retry policy (tests use short delays).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// What `request` resolves to: the wire format, the endpoint and the key.
    fn resolve(&self, request: &ModelRequest) -> Result<Target, ModelError> {
        let env = &request.credentials;
        let reference = match request.model.as_deref().map(str::trim) {
            Some(model) if !model.is_empty() => model.to_owned(),
            _ => match &self.default_model {
                Some(model) => model.clone(),
                None => default_model(env)?.to_owned(),
            },
        };
        let Some((provider, model)) = reference.split_once('/') else {
            return Err(ModelError(format!(
                "model \"{reference}\" must be written provider/model"
            )));
        };
        if provider.is_empty() || model.is_empty() {
            return Err(ModelError(format!(
                "model \"{reference}\" must be written provider/model"
            )));
        }
        let wire = match provider {
            "anthropic" => {
                let base = base_url(env, "ANTHROPIC_BASE_URL", Some(ANTHROPIC_DEFAULT_BASE))?;
                let auth = if let Some(key) = credential(env, "ANTHROPIC_API_KEY") {
                    AnthropicAuth::ApiKey(key.to_owned())
                } else if let Some(token) = credential(env, "CLAUDE_CODE_OAUTH_TOKEN") {
                    AnthropicAuth::OAuth(token.to_owned())
                } else {
                    return Err(ModelError(
                        "no Anthropic credential: add ANTHROPIC_API_KEY or \
                         CLAUDE_CODE_OAUTH_TOKEN to the project's credentials"
                            .to_owned(),
                    ));
                };
                Wire::Anthropic { base, auth }
            }
            "openai" => Wire::OpenAi {
                base: base_url(env, "OPENAI_BASE_URL", Some(OPENAI_DEFAULT_BASE))?,
                key: required_key(env, "OPENAI_API_KEY")?,
            },
            other => {
                if !other
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(ModelError(format!("unknown model provider \"{other}\"")));
                }
                let prefix = other.to_ascii_uppercase().replace('-', "_");
                Wire::OpenAi {
                    base: base_url(env, &format!("{prefix}_BASE_URL"), None)?,
                    key: required_key(env, &format!("{prefix}_API_KEY"))?,
                }
            }
        };
        Ok(Target {
            label: provider_label(provider),
            model: model.to_owned(),
            wire,
        })
    }
}

impl Default for Providers {
    fn default() -> Self {
        Self::from_env()
    }
}

impl ModelClient for Providers {
    fn stream(&self, request: ModelRequest) -> BoxStream<'static, Result<ModelEvent, ModelError>> {
        let prepared = self.client.clone().map_err(ModelError).and_then(|client| {
            let target = self.resolve(&request)?;
            let secret = target.secret().to_owned();
            let (call, parser) = target.prepare(&request)?;
            Ok((client, call, parser, target.label, secret))
        });
        let retry = self.retry;
        Box::pin(async_stream::stream! {
            let (client, call, mut parser, label, secret) = match prepared {
                Ok(prepared) => prepared,
                Err(err) => {
                    yield Err(err);
                    return;
                }
            };
            let redact = |err: ModelError| ModelError(redact(&err.0, &secret));
            // Dropping this stream drops the response (or the pending send, or the backoff
            // sleep), which closes the connection: that is how cancel stops the request.
            let response = match retry::send(&client, &call, &retry, &label).await {
                Ok(response) => response,
                Err(err) => {
                    yield Err(redact(err));
                    return;
                }
            };
            let mut events = response.bytes_stream().eventsource();
            let mut out = Vec::new();
            loop {
                match events.next().await {
                    Some(Ok(event)) => {
                        let done = parser.on_event(&event.data, &mut out);
                        for event in out.drain(..) {
                            yield Ok(event);
                        }
                        match done {
                            Ok(false) => {}
                            Ok(true) => return,
                            Err(err) => {
                                yield Err(redact(err));
                                return;
                            }
                        }
                    }
                    Some(Err(err)) => {
                        let reason = match err {
                            EventStreamError::Transport(err) => retry::describe(&err),
                            EventStreamError::Utf8(err) => err.to_string(),
                            EventStreamError::Parser(err) => err.to_string(),
                        };
                        yield Err(redact(ModelError(format!(
                            "reading the {label} stream failed: {reason}"
                        ))));
                        return;
                    }
                    None => {
                        let end = parser.on_end(&mut out);
                        for event in out.drain(..) {
                            yield Ok(event);
                        }
                        if let Err(err) = end {
                            yield Err(redact(err));
                        }
                        return;
                    }
                }
            }
        })
    }
}

/// The providers whose models can be called with `env` (the credentials' env vars), in the
/// catalogue's terms: `anthropic` and/or `openai`.
pub fn available_providers(env: &HashMap<String, String>) -> Vec<&'static str> {
    let mut providers = Vec::new();
    if credential(env, "ANTHROPIC_API_KEY").is_some()
        || credential(env, "CLAUDE_CODE_OAUTH_TOKEN").is_some()
    {
        providers.push("anthropic");
    }
    if credential(env, "OPENAI_API_KEY").is_some() {
        providers.push("openai");
    }
    providers
}

/// The model of a request that names none and runs without `DISCOBOT_MODEL`.
fn default_model(env: &HashMap<String, String>) -> Result<&'static str, ModelError> {
    let providers = available_providers(env);
    if providers.contains(&"anthropic") {
        Ok(DEFAULT_ANTHROPIC_MODEL)
    } else if providers.contains(&"openai") {
        Ok(DEFAULT_OPENAI_MODEL)
    } else {
        Err(ModelError(
            "no model credentials: add an Anthropic or OpenAI credential to the project".to_owned(),
        ))
    }
}

/// A non-blank credential value.
fn credential<'a>(env: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    env.get(name)
        .map(|value| value.trim())
        .filter(|value| !value.is_empty())
}

fn required_key(env: &HashMap<String, String>, name: &str) -> Result<String, ModelError> {
    credential(env, name).map(str::to_owned).ok_or_else(|| {
        ModelError(format!(
            "no {name} in the project's credentials: add it to use this model"
        ))
    })
}

/// The base URL from `name`, else `default`; without a trailing `/` so paths append cleanly.
fn base_url(
    env: &HashMap<String, String>,
    name: &str,
    default: Option<&str>,
) -> Result<String, ModelError> {
    let base = credential(env, name).or(default).ok_or_else(|| {
        ModelError(format!(
            "no {name} in the project's credentials: an OpenAI-compatible provider needs its \
             base URL"
        ))
    })?;
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(ModelError(format!("{name} must be an http(s) URL")));
    }
    Ok(base.trim_end_matches('/').to_owned())
}

/// The name of a provider in messages: `Anthropic`, `OpenAI`, or the id itself.
fn provider_label(provider: &str) -> String {
    discobot_core::credentials::provider_info(provider)
        .map_or_else(|| provider.to_owned(), |info| info.name.to_owned())
}

/// Replaces every occurrence of the key in a message (a provider may quote it back).
fn redact(message: &str, secret: &str) -> String {
    // Very short values would redact ordinary words; no real key is that short.
    if secret.len() < 8 {
        return message.to_owned();
    }
    message.replace(secret, "[redacted]")
}

/// A resolved request: which API, which model, which key.
struct Target {
    /// The provider's name for messages.
    label: String,
    /// The model id without the provider.
    model: String,
    wire: Wire,
}

enum Wire {
    Anthropic { base: String, auth: AnthropicAuth },
    OpenAi { base: String, key: String },
}

enum AnthropicAuth {
    /// `x-api-key`.
    ApiKey(String),
    /// A Claude Code OAuth token: `Authorization: Bearer` plus the OAuth beta header.
    OAuth(String),
}

impl Target {
    fn secret(&self) -> &str {
        match &self.wire {
            Wire::Anthropic {
                auth: AnthropicAuth::ApiKey(key) | AnthropicAuth::OAuth(key),
                ..
            } => key,
            Wire::OpenAi { key, .. } => key,
        }
    }

    /// The HTTP call and the parser of its answer.
    fn prepare(&self, request: &ModelRequest) -> Result<(Call, Box<dyn StreamParser>), ModelError> {
        match &self.wire {
            Wire::Anthropic { base, auth } => {
                let mut headers = HeaderMap::new();
                match auth {
                    AnthropicAuth::ApiKey(key) => {
                        insert_secret(&mut headers, "x-api-key", key, "ANTHROPIC_API_KEY")?;
                    }
                    AnthropicAuth::OAuth(token) => {
                        insert_secret(
                            &mut headers,
                            "authorization",
                            &format!("Bearer {token}"),
                            "CLAUDE_CODE_OAUTH_TOKEN",
                        )?;
                        headers.insert(
                            "anthropic-beta",
                            HeaderValue::from_static(anthropic::OAUTH_BETA),
                        );
                    }
                }
                headers.insert(
                    "anthropic-version",
                    HeaderValue::from_static(anthropic::API_VERSION),
                );
                let oauth = matches!(auth, AnthropicAuth::OAuth(_));
                let body = anthropic::request_body(&self.model, request, oauth);
                Ok((
                    Call::new(format!("{base}/v1/messages"), headers, &body),
                    Box::new(anthropic::Parser::default()),
                ))
            }
            Wire::OpenAi { base, key } => {
                let mut headers = HeaderMap::new();
                insert_secret(
                    &mut headers,
                    "authorization",
                    &format!("Bearer {key}"),
                    "the API key",
                )?;
                let body = openai::request_body(&self.model, request);
                Ok((
                    Call::new(format!("{base}/chat/completions"), headers, &body),
                    Box::new(openai::Parser::new(self.label.clone())),
                ))
            }
        }
    }
}

/// Inserts a header holding a secret, marked sensitive so that reqwest never prints it.
fn insert_secret(
    headers: &mut HeaderMap,
    name: &'static str,
    value: &str,
    what: &str,
) -> Result<(), ModelError> {
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| ModelError(format!("{what} contains characters a header cannot carry")))?;
    value.set_sensitive(true);
    headers.insert(HeaderName::from_static(name), value);
    Ok(())
}

/// A request ready to send, and to send again on a retry.
struct Call {
    url: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Call {
    fn new(url: String, mut headers: HeaderMap, body: &serde_json::Value) -> Self {
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        Self {
            url,
            headers,
            body: serde_json::to_vec(body).unwrap_or_default(),
        }
    }
}

/// Turns one wire format's SSE events into [`ModelEvent`]s.
trait StreamParser: Send {
    /// One event's `data`; pushes what it yields to `out`. `Ok(true)`: the answer is complete
    /// (the last event pushed is `Finish`).
    fn on_event(&mut self, data: &str, out: &mut Vec<ModelEvent>) -> Result<bool, ModelError>;
    /// The body ended before `on_event` said the answer was complete.
    fn on_end(&mut self, out: &mut Vec<ModelEvent>) -> Result<(), ModelError>;
}

/// Splits a `data:` URL into its media type and base64 payload; `None` for other URLs and
/// for non-base64 data URLs.
fn base64_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, data))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn request(model: Option<&str>, env: &[(&str, &str)]) -> ModelRequest {
        ModelRequest {
            model: model.map(str::to_owned),
            reasoning: None,
            system: String::new(),
            messages: Vec::new(),
            tools: Vec::new(),
            credentials: Arc::new(
                env.iter()
                    .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                    .collect(),
            ),
        }
    }

    fn resolve(
        default: Option<&str>,
        model: Option<&str>,
        env: &[(&str, &str)],
    ) -> Result<Target, ModelError> {
        Providers::new(default.map(str::to_owned)).resolve(&request(model, env))
    }

    #[test]
    fn the_default_model_follows_the_credentials() {
        let target = resolve(None, None, &[("OPENAI_API_KEY", "sk-o")]).unwrap();
        assert_eq!(target.model, "gpt-5");
        assert!(
            matches!(target.wire, Wire::OpenAi { ref base, .. } if base == OPENAI_DEFAULT_BASE)
        );
        let both = [
            ("OPENAI_API_KEY", "sk-o"),
            ("CLAUDE_CODE_OAUTH_TOKEN", "oat"),
        ];
        let target = resolve(None, None, &both).unwrap();
        assert_eq!(target.model, "claude-sonnet-4-5");
        assert!(matches!(
            target.wire,
            Wire::Anthropic { auth: AnthropicAuth::OAuth(_), ref base } if base == ANTHROPIC_DEFAULT_BASE
        ));
        // DISCOBOT_MODEL wins over the guess, and the request's own model over both.
        let target = resolve(Some("openai/gpt-5-mini"), None, &both).unwrap();
        assert_eq!(target.model, "gpt-5-mini");
        let target = resolve(Some("openai/gpt-5-mini"), Some("anthropic/x"), &both).unwrap();
        assert_eq!(target.model, "x");
        let err = resolve(None, None, &[("TAVILY_API_KEY", "t")])
            .err()
            .unwrap();
        assert_eq!(
            err.0,
            "no model credentials: add an Anthropic or OpenAI credential to the project"
        );
    }

    #[test]
    fn keys_and_base_urls_come_from_the_credentials() {
        let env = [
            ("ANTHROPIC_API_KEY", "sk-ant-1234567890"),
            ("CLAUDE_CODE_OAUTH_TOKEN", "oat"),
            ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/"),
        ];
        let target = resolve(None, Some("anthropic/claude-haiku-4-5"), &env).unwrap();
        assert!(matches!(
            target.wire,
            Wire::Anthropic { auth: AnthropicAuth::ApiKey(ref key), ref base }
                if key == "sk-ant-1234567890" && base == "http://127.0.0.1:9"
        ));
        let env = [
            ("MY_VENDOR_API_KEY", "k-123456789"),
            ("MY_VENDOR_BASE_URL", "https://vendor.example/v1"),
        ];
        let target = resolve(None, Some("my-vendor/kimi-k2"), &env).unwrap();
        assert_eq!(target.label, "my-vendor");
        assert!(matches!(
            target.wire,
            Wire::OpenAi { ref base, ref key } if base == "https://vendor.example/v1" && key == "k-123456789"
        ));
    }

    #[test]
    fn missing_credentials_name_the_variable_never_a_value() {
        let env = [("ANTHROPIC_API_KEY", "sk-ant-secret-value")];
        let err = resolve(None, Some("openai/gpt-5"), &env).err().unwrap();
        assert!(err.0.contains("OPENAI_API_KEY"), "{err}");
        let err = resolve(None, Some("groq/llama"), &[("GROQ_API_KEY", "gsk-secret")])
            .err()
            .unwrap();
        assert!(err.0.contains("GROQ_BASE_URL"), "{err}");
        assert!(!err.0.contains("gsk-secret"), "{err}");
        let err = resolve(
            None,
            Some("anthropic/claude"),
            &[("OPENAI_API_KEY", "sk-o")],
        )
        .err()
        .unwrap();
        assert!(err.0.contains("ANTHROPIC_API_KEY"), "{err}");
        assert!(
            resolve(None, Some("claude"), &env)
                .err()
                .unwrap()
                .0
                .contains("provider/model")
        );
        assert!(resolve(None, Some("../x/y"), &env).is_err());
    }

    #[test]
    fn data_urls_split_into_media_type_and_payload() {
        assert_eq!(
            base64_data_url("data:image/png;base64,iVBOR="),
            Some(("image/png", "iVBOR="))
        );
        assert_eq!(base64_data_url("data:text/plain,hello"), None);
        assert_eq!(base64_data_url("https://example.com/a.png"), None);
    }

    #[test]
    fn redaction_replaces_the_key() {
        assert_eq!(
            redact("bad key sk-1234567890 given", "sk-1234567890"),
            "bad key [redacted] given"
        );
    }
}
