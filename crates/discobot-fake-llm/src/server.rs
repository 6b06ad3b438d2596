//! The HTTP side: the model endpoints of both vendors, the control API, and the request log.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::frames;
use crate::script::Reply;
use crate::summary::{Ending, Summary};
use crate::turn::Turn;
use crate::{anthropic, openai};

/// Model requests carry whole conversations (and images), far beyond axum's 2 MB default.
const BODY_LIMIT_BYTES: usize = 64 * 1024 * 1024;

/// Which vendor API a model request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    Anthropic,
    Openai,
}

/// One model request as the fake received it, without credential values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    pub api: Api,
    pub method: String,
    pub path: String,
    /// Every header except `x-api-key` and `authorization` (lower-case names; repeated headers
    /// joined with `, `).
    pub headers: BTreeMap<String, String>,
    /// `Some` when `x-api-key` was sent: its last 4 characters (empty for a value shorter than
    /// 12 characters, so a short key is never revealed).
    pub x_api_key_last4: Option<String>,
    /// `Some` when `authorization` was sent: its last 4 characters, as for `x_api_key_last4`.
    pub authorization_last4: Option<String>,
    /// The JSON body; `null` when it was not JSON.
    pub body: Value,
}

/// The state shared by the handlers and [`crate::FakeLlm`].
pub(crate) struct Shared {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<RecordedRequest>>,
    model_requests: AtomicU64,
    pub(crate) shutdown: CancellationToken,
}

impl Shared {
    pub(crate) fn new(shutdown: CancellationToken) -> Self {
        Self {
            replies: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            model_requests: AtomicU64::new(0),
            shutdown,
        }
    }

    pub(crate) fn push(&self, replies: impl IntoIterator<Item = Reply>) -> usize {
        let mut queue = lock(&self.replies);
        queue.extend(replies);
        queue.len()
    }

    pub(crate) fn pending(&self) -> Vec<Reply> {
        lock(&self.replies).iter().cloned().collect()
    }

    pub(crate) fn clear_replies(&self) -> usize {
        let mut queue = lock(&self.replies);
        let cleared = queue.len();
        queue.clear();
        cleared
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    pub(crate) fn clear_requests(&self) -> usize {
        let mut requests = lock(&self.requests);
        let cleared = requests.len();
        requests.clear();
        cleared
    }

    fn next_reply(&self) -> Reply {
        lock(&self.replies)
            .pop_front()
            .unwrap_or_else(Reply::default_reply)
    }
}

/// A panic while a lock was held leaves plain data behind, still usable: keep serving.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/messages", post(anthropic_messages))
        .route("/v1/chat/completions", post(openai_chat_completions))
        .route("/chat/completions", post(openai_chat_completions))
        .route(
            "/_fake/replies",
            get(list_replies).post(push_replies).delete(clear_replies),
        )
        .route("/_fake/requests", get(list_requests).delete(clear_requests))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(shared)
}

async fn anthropic_messages(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    model_request(&shared, Api::Anthropic, method, uri, headers, body).await
}

async fn openai_chat_completions(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    model_request(&shared, Api::Openai, method, uri, headers, body).await
}

/// Records the request, checks it like the vendor would, and answers with the next reply.
async fn model_request(
    shared: &Shared,
    api: Api,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json_body: Option<Value> = serde_json::from_slice(&body).ok();
    let x_api_key = header_text(&headers, "x-api-key");
    let authorization = header_text(&headers, header::AUTHORIZATION.as_str());
    lock(&shared.requests).push(RecordedRequest {
        api,
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers: recorded_headers(&headers),
        x_api_key_last4: x_api_key.as_deref().map(last4),
        authorization_last4: authorization.as_deref().map(last4),
        body: json_body.clone().unwrap_or(Value::Null),
    });
    let number = shared.model_requests.fetch_add(1, Ordering::Relaxed) + 1;
    let empty = Value::Null;
    let turn = Turn::new(number, json_body.as_ref().unwrap_or(&empty), body.len());

    let has_key = x_api_key.is_some_and(|key| !key.trim().is_empty())
        || authorization.is_some_and(|value| {
            value
                .strip_prefix("Bearer ")
                .is_some_and(|token| !token.trim().is_empty())
        });
    if !has_key {
        let message = match api {
            Api::Anthropic => "x-api-key header is required",
            Api::Openai => {
                "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            }
        };
        return vendor_error(api, 401, None, message, None, &turn);
    }
    let Some(json_body) = json_body.filter(Value::is_object) else {
        return vendor_error(
            api,
            400,
            None,
            "the request body must be a JSON object",
            None,
            &turn,
        );
    };

    let reply = shared.next_reply();
    let summary = Summary::of(&reply);
    if let Some(error) = reply.error_step() {
        // Pauses before the error step delay the answer: slow failures for timeout tests.
        let delay_ms = reply.delay_before_error_ms();
        if !pause(shared, delay_ms).await {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        return vendor_error(
            api,
            error.status,
            error.error_type.as_deref(),
            &error.message,
            error.retry_after,
            &turn,
        );
    }

    if json_body["stream"].as_bool() != Some(true) {
        return non_streaming(shared, api, &reply, &summary, &turn).await;
    }
    let frames = match api {
        Api::Anthropic => anthropic::render_stream(&reply, &turn),
        Api::Openai => openai::render_stream(&reply, &turn),
    };
    let mut response = frames::body(frames, shared.shutdown.clone()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    insert_request_id(headers, api, &turn);
    response
}

/// The whole answer as one JSON document, after the reply's pauses.
async fn non_streaming(
    shared: &Shared,
    api: Api,
    reply: &Reply,
    summary: &Summary,
    turn: &Turn,
) -> Response {
    let ending_ok = match &summary.ending {
        Ending::Hang => {
            shared.shutdown.cancelled().await;
            false
        }
        _ => pause(shared, summary.delay_ms).await,
    };
    if !ending_ok {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if let Ending::StreamError(message) = &summary.ending {
        return vendor_error(api, 500, None, message, None, turn);
    }
    let body = match api {
        Api::Anthropic => anthropic::render_message(summary, reply, turn),
        Api::Openai => openai::render_completion(summary, reply, turn),
    };
    let mut response = axum::Json(body).into_response();
    insert_request_id(response.headers_mut(), api, turn);
    response
}

/// Sleeps `ms`; false when the fake shut down first.
async fn pause(shared: &Shared, ms: u64) -> bool {
    if ms == 0 {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(Duration::from_millis(ms)) => true,
        () = shared.shutdown.cancelled() => false,
    }
}

/// The vendor's error JSON with `status` (500 when the script named an impossible status).
fn vendor_error(
    api: Api,
    status: u16,
    error_type: Option<&str>,
    message: &str,
    retry_after: Option<u64>,
    turn: &Turn,
) -> Response {
    let status_code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match api {
        Api::Anthropic => anthropic::error_body(status_code.as_u16(), error_type, message, turn),
        Api::Openai => openai::error_body(status_code.as_u16(), error_type, message),
    };
    let mut response = (status_code, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    if let Some(seconds) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    insert_request_id(headers, api, turn);
    response
}

fn insert_request_id(headers: &mut HeaderMap, api: Api, turn: &Turn) {
    let (name, id) = match api {
        Api::Anthropic => ("request-id", turn.message_id("req")),
        Api::Openai => ("x-request-id", turn.message_id("req")),
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(name, value);
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

fn recorded_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .keys()
        .filter(|name| *name != "x-api-key" && *name != header::AUTHORIZATION)
        .filter_map(|name| {
            Some((
                name.as_str().to_owned(),
                header_text(headers, name.as_str())?,
            ))
        })
        .collect()
}

/// The last 4 characters of a credential, or nothing for one too short to show any of.
fn last4(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 12 {
        return String::new();
    }
    chars[chars.len() - 4..].iter().collect()
}

/// `POST /_fake/replies`: a JSON array of replies (or one reply) joins the queue.
async fn push_replies(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match crate::parse_script(&body) {
        Ok(replies) => {
            let added = replies.len();
            let pending = shared.push(replies);
            axum::Json(json!({"added": added, "pending": pending})).into_response()
        }
        Err(error) => control_error(StatusCode::BAD_REQUEST, &error.to_string()),
    }
}

async fn list_replies(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.pending()).into_response()
}

async fn clear_replies(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(json!({"cleared": shared.clear_replies()})).into_response()
}

async fn list_requests(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.requests()).into_response()
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(json!({"cleared": shared.clear_requests()})).into_response()
}

async fn not_found(method: Method, uri: Uri) -> Response {
    control_error(
        StatusCode::NOT_FOUND,
        &format!("the fake LLM has no route {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    control_error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("{} does not accept {method}", uri.path()),
    )
}

fn control_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last4_hides_short_credentials() {
        assert_eq!(last4("sk-ant-0123456789abcd"), "abcd");
        assert_eq!(last4("Bearer sk-0123456789wxyz"), "wxyz");
        assert_eq!(last4("short-key"), "");
    }

    #[test]
    fn recorded_headers_drop_credentials() {
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("secret-value-1234"));
        headers.insert(
            "authorization",
            HeaderValue::from_static("Bearer secret-5678"),
        );
        headers.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        let recorded = recorded_headers(&headers);
        assert_eq!(
            recorded,
            BTreeMap::from([("anthropic-version".to_owned(), "2023-06-01".to_owned())])
        );
    }
}
