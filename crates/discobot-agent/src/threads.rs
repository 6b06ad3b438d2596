//! Handlers of the thread and chat routes (§4.2–4.3) and the per-thread SSE stream (§5.2).

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use discobot_agent_api::{
    ChatCancelResponse, ChatRequest, ChatStatusResponse, CreateThreadRequest, MessagesResponse,
    SuccessResponse, ThreadList, UpdateThreadRequest,
};
use futures::Stream;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::chat::{ChatError, Hub, parse_event_id};
use crate::routes::{AgentState, error};
use crate::store::{StoreError, valid_id};

impl IntoResponse for StoreError {
    fn into_response(self) -> Response {
        match self {
            StoreError::NotFound => error(StatusCode::NOT_FOUND, "thread not found"),
            StoreError::Exists => error(StatusCode::CONFLICT, "thread already exists"),
            StoreError::InvalidId(_) => error(StatusCode::BAD_REQUEST, "invalid id"),
            // The reason was logged at start.
            StoreError::Unavailable(_) => {
                error(StatusCode::NOT_IMPLEMENTED, "thread store unavailable")
            }
            err => {
                tracing::error!(%err, "thread store failed");
                error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

fn body<T: DeserializeOwned>(bytes: &Bytes) -> Option<T> {
    serde_json::from_slice(bytes).ok()
}

fn invalid_body() -> Response {
    error(StatusCode::BAD_REQUEST, "invalid request body")
}

pub(crate) async fn list(State(state): State<AgentState>) -> Result<Json<ThreadList>, StoreError> {
    let threads = state.chat().store().list()?;
    Ok(Json(ThreadList {
        threads: threads.iter().map(|t| t.to_thread()).collect(),
    }))
}

pub(crate) async fn create(State(state): State<AgentState>, bytes: Bytes) -> Response {
    let Some(request) = body::<CreateThreadRequest>(&bytes) else {
        return invalid_body();
    };
    if request.id.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "id is required");
    }
    match state
        .chat()
        .store()
        .create(&request.id, request.name.as_deref())
    {
        Ok(config) => (StatusCode::CREATED, Json(config.to_thread())).into_response(),
        Err(err) => err.into_response(),
    }
}

pub(crate) async fn get(State(state): State<AgentState>, Path(id): Path<String>) -> Response {
    match state.chat().store().get(&id) {
        Ok(config) => Json(config.to_thread()).into_response(),
        Err(err) => err.into_response(),
    }
}

pub(crate) async fn update(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let Some(request) = body::<UpdateThreadRequest>(&bytes) else {
        return invalid_body();
    };
    let Some(name) = request.name.filter(|name| !name.trim().is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "name is required");
    };
    match state
        .chat()
        .store()
        .update(&id, |config| config.name = name)
    {
        Ok(config) => Json(config.to_thread()).into_response(),
        Err(err) => err.into_response(),
    }
}

pub(crate) async fn delete(State(state): State<AgentState>, Path(id): Path<String>) -> Response {
    match state.chat().delete(&id) {
        Ok(()) => Json(SuccessResponse::ok()).into_response(),
        Err(err) => err.into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct MessagesQuery {
    #[serde(default, rename = "leafId")]
    leaf_id: Option<String>,
}

/// History along the active branch (or from `leafId`); while a turn runs, up to the pre-turn
/// leaf (the turn itself arrives on the stream).
pub(crate) async fn messages(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Query(query): Query<MessagesQuery>,
) -> Response {
    let chat = state.chat();
    let result = (|| {
        let config = chat.store().get(&id)?;
        let leaf = match (query.leaf_id, chat.hub(&id).running()) {
            (Some(leaf), _) => Some(leaf),
            (None, Some(running)) => running.pre_turn_leaf.clone(),
            (None, None) => config.leaf_id,
        };
        chat.store().history(&id, leaf.as_deref())
    })();
    match result {
        Ok(messages) => Json(MessagesResponse { messages }).into_response(),
        Err(err) => err.into_response(),
    }
}

pub(crate) async fn delete_queued(
    State(state): State<AgentState>,
    Path((id, queue_id)): Path<(String, String)>,
) -> Response {
    let mut found = false;
    let result = state.chat().store().update(&id, |config| {
        let before = config.prompt_queue.len();
        config.prompt_queue.retain(|prompt| prompt.id != queue_id);
        found = config.prompt_queue.len() != before;
    });
    match result {
        Ok(_) if found => Json(SuccessResponse::ok()).into_response(),
        Ok(_) => error(StatusCode::NOT_FOUND, "queued prompt not found"),
        Err(err) => err.into_response(),
    }
}

pub(crate) async fn chat(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let Some(request) = body::<ChatRequest>(&bytes) else {
        return invalid_body();
    };
    match state.chat().start(&id, request) {
        Ok(started) => (StatusCode::ACCEPTED, Json(started)).into_response(),
        Err(ChatError::BadRequest(message)) => error(StatusCode::BAD_REQUEST, &message),
        Err(ChatError::InterruptedTurn(completion_id)) => (
            StatusCode::CONFLICT,
            Json(serde_json::json!({
                "error": "interrupted_turn_requires_resume",
                "message": "This thread has an interrupted turn that must resume before sending a new message.",
                "completionId": completion_id,
            })),
        )
            .into_response(),
        Err(ChatError::PendingQuestion(question_id)) => (
            StatusCode::CONFLICT,
            Json(serde_json::json!({
                "error": "pending_question_requires_answer",
                "message": "This thread is waiting for an answer to an earlier question before sending a new message.",
                "questionId": question_id,
            })),
        )
            .into_response(),
        Err(ChatError::Store(err)) => err.into_response(),
    }
}

/// `GET /threads/{id}/chat/question/{questionId}`: `pending` with the questions, else
/// `answered` or `expired` with `question: null`.
pub(crate) async fn question(
    State(state): State<AgentState>,
    Path((id, question_id)): Path<(String, String)>,
) -> Response {
    use crate::tools::question::QuestionStatus;
    match state.chat().question(&id, &question_id) {
        Ok(QuestionStatus::Pending(questions)) => Json(serde_json::json!({
            "status": "pending",
            "question": {"toolUseID": question_id, "questions": questions},
        }))
        .into_response(),
        Ok(status) => Json(serde_json::json!({
            "status": if status == QuestionStatus::Answered { "answered" } else { "expired" },
            "question": null,
        }))
        .into_response(),
        Err(err) => err.into_response(),
    }
}

/// `POST /threads/{id}/chat/answer/{questionId}` body.
#[derive(Deserialize)]
pub(crate) struct AnswerRequest {
    #[serde(default)]
    answers: Option<std::collections::HashMap<String, String>>,
    /// Env var → value; the server may send credentials the question asked for.
    #[serde(default)]
    credentials: Option<std::collections::HashMap<String, String>>,
}

/// Answers the pending question; the paused turn resumes with the answers as the tool result.
pub(crate) async fn answer(
    State(state): State<AgentState>,
    Path((id, question_id)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    let Some(request) = body::<AnswerRequest>(&bytes) else {
        return invalid_body();
    };
    let answers = request.answers.unwrap_or_default();
    if answers.is_empty() && request.credentials.is_none_or(|c| c.is_empty()) {
        return error(
            StatusCode::BAD_REQUEST,
            "answers or credentials is required",
        );
    }
    match state.chat().answer(&id, &question_id, answers) {
        Ok(true) => Json(SuccessResponse::ok()).into_response(),
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            "no pending question for this toolUseID",
        ),
        Err(err) => err.into_response(),
    }
}

pub(crate) async fn status(State(state): State<AgentState>, Path(id): Path<String>) -> Response {
    if let Err(err) = state.chat().store().get(&id) {
        return err.into_response();
    }
    let running = state.chat().hub(&id).running();
    Json(ChatStatusResponse {
        is_running: running.is_some(),
        completion_id: running.map(|c| c.id.clone()),
    })
    .into_response()
}

pub(crate) async fn cancel(State(state): State<AgentState>, Path(id): Path<String>) -> Response {
    if let Err(err) = state.chat().store().get(&id) {
        return err.into_response();
    }
    match state.chat().cancel(&id) {
        Some(completion_id) => Json(ChatCancelResponse::cancelled(completion_id)).into_response(),
        None => error(StatusCode::CONFLICT, "no_active_completion"),
    }
}

/// `GET /threads/{id}/chat/stream`: history replay (unless `Last-Event-ID` names a chunk still
/// in the replay cache), then every chunk of every completion, `ping` when idle.
pub(crate) async fn stream(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    // A client may open the stream of a thread before its first message (the UI does for a
    // new session): the thread is created empty, as the first chat would create it.
    let store = state.chat().store();
    if valid_id(&id) && !store.exists(&id) {
        match store.create(&id, None) {
            Ok(_) | Err(StoreError::Exists) => {}
            Err(err) => return err.into_response(),
        }
    }
    if let Err(err) = store.get(&id) {
        return err.into_response();
    }
    let resume = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_event_id);
    // Opening the stream of an interrupted, idle thread resumes its turn.
    if let Err(err) = state.chat().resume(&id) {
        return err.into_response();
    }
    let hub = state.chat().hub(&id);
    // Subscribed before the snapshot: no change after it goes unnoticed.
    let changes = hub.subscribe();
    let start = match state.chat().stream_start(&hub, resume) {
        Ok(start) => start,
        Err(err) => return err.into_response(),
    };
    let events = events(
        hub,
        changes,
        start,
        state.ping_interval(),
        state.shutdown().clone(),
    );
    (
        [
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONNECTION, "keep-alive"),
        ],
        Sse::new(events),
    )
        .into_response()
}

fn events(
    hub: std::sync::Arc<Hub>,
    mut changes: tokio::sync::watch::Receiver<u64>,
    start: crate::chat::StreamStart,
    ping: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) -> impl Stream<Item = Result<Event, Infallible>> {
    async_stream::stream! {
        if let Some(history) = start.history {
            yield Ok(Event::default().event("history-start").data("{}"));
            for message in history {
                let json = serde_json::to_string(&message).unwrap_or_default();
                yield Ok(Event::default().event("history-message").data(json));
            }
            yield Ok(Event::default().event("history-end").data("{}"));
        }
        let mut cursor = start.cursor;
        loop {
            changes.borrow_and_update();
            if hub.is_closed() || shutdown.is_cancelled() {
                break;
            }
            let chunks = hub.read(&mut cursor);
            if !chunks.is_empty() {
                for chunk in chunks {
                    let event = Event::default().event("chunk");
                    let event = match chunk.id {
                        Some(id) => event.id(id),
                        None => event,
                    };
                    yield Ok(event.data(&*chunk.json));
                }
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = tokio::time::timeout(ping, changes.changed()) => match changed {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break,
                    Err(_) => yield Ok(Event::default().event("ping").data("{}")),
                },
            }
        }
    }
}
