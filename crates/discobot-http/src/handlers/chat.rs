//! Chat and threads: send a message (creating the session when new), the resumable chat
//! stream (SSE), cancel, questions and answers, thread CRUD, the session's models and the
//! auth providers.

use std::convert::Infallible;

use bytes::{Bytes, BytesMut};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use discobot_core::app::{ChatInput, ChatStreamItem};
use discobot_core::ids::SessionId;
use discobot_core::ports::SseFrame;
use serde_json::{Value, json};

use crate::dto::{
    AuthProvidersResponse, ChatAnswerRequest, ChatRequest, ChatResponse, CreateThreadRequest,
    SessionModelsResponse, SuccessResponse, ThreadDto, ThreadsResponse, UpdateThreadRequest,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Access, ApiPath, JsonBody};
use crate::state::AppState;

type SessionPath = ApiPath<(String, String)>;
type ThreadPath = ApiPath<(String, String, String)>;
type ThreadItemPath = ApiPath<(String, String, String, String)>;

pub(crate) async fn chat(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id, thread_id)): ThreadPath,
    JsonBody(request): JsonBody<ChatRequest>,
) -> ApiResult<Json<ChatResponse>> {
    let input = ChatInput {
        messages: request.messages.unwrap_or_default(),
        model: request.model,
        reasoning: request.reasoning,
        mode: request.mode,
        workspace_id: request.workspace_id,
    };
    let started = state
        .app()
        .chat(&access, &session_id, &thread_id, input)
        .await?;
    Ok(Json(ChatResponse {
        workspace_id: started.workspace_id,
        session_id: started.session_id,
        thread_id: started.thread_id,
        submission_id: started.submission_id,
        message_id: started.message_id,
        completion_id: started.completion_id,
        status: started.status,
        queued_prompt_id: started.queued_prompt_id,
    }))
}

/// The thread's live stream: every agent frame re-emitted as it came (`id:`, `event:`,
/// `data:`), until the agent closes it, the client goes or the server shuts down.
pub(crate) async fn chat_stream(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id, thread_id)): ThreadPath,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let mut stream = state
        .app()
        .open_chat_stream(
            &access,
            &SessionId::new(session_id),
            &thread_id,
            last_event_id,
        )
        .await?;
    let shutdown = state.0.streams.clone();
    // A task reads the agent and formats frames; the body takes whatever has piled up as one
    // write. Under load (a model streaming thousands of tiny deltas) that batches many frames
    // per write, so the relay keeps up with reading the agent directly; idle, each frame is
    // written at once. A client that goes away closes the channel, which ends the task and
    // with it the agent request.
    let (frames, mut formatted) = tokio::sync::mpsc::channel::<Bytes>(RELAY_QUEUE);
    tokio::spawn(async move {
        loop {
            let item = tokio::select! {
                _ = shutdown.cancelled() => None,
                item = stream.next() => item,
            };
            let bytes = match item {
                None => break,
                Some(ChatStreamItem::Frame(frame)) => sse_bytes(&frame),
                Some(ChatStreamItem::Failed(text)) => {
                    let error = json!({"type": "error", "errorText": text}).to_string();
                    sse_bytes(&SseFrame {
                        data: error,
                        ..SseFrame::default()
                    })
                }
            };
            if frames.send(bytes).await.is_err() {
                break;
            }
        }
    });
    let body = async_stream::stream! {
        let mut batch = Vec::with_capacity(RELAY_BATCH);
        while formatted.recv_many(&mut batch, RELAY_BATCH).await > 0 {
            let bytes = if batch.len() == 1 {
                batch.pop().unwrap_or_default()
            } else {
                let mut joined = BytesMut::with_capacity(batch.iter().map(Bytes::len).sum());
                for part in batch.drain(..) {
                    joined.extend_from_slice(&part);
                }
                joined.freeze()
            };
            yield Ok::<_, Infallible>(bytes);
        }
    };
    // No keep-alive of our own: the agent pings idle streams itself.
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    headers.insert(
        "x-vercel-ai-ui-message-stream",
        HeaderValue::from_static("v1"),
    );
    Ok(response)
}

/// Frames formatted but not yet written.
const RELAY_QUEUE: usize = 1024;
/// Most frames joined into one write.
const RELAY_BATCH: usize = 256;

/// One agent frame as it came: `id:` and `event:` when it had them, then its data (a
/// multi-line `data` becomes several `data:` lines, which the client joins back). The
/// parser's lines never hold a newline, so id and event are always valid here.
fn sse_bytes(frame: &SseFrame) -> Bytes {
    let mut out = BytesMut::with_capacity(frame.data.len() + 64);
    if let Some(id) = &frame.id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"\n");
    }
    if let Some(event) = &frame.event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.extend_from_slice(b"\n");
    }
    for line in frame.data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"\n");
    out.freeze()
}

pub(crate) async fn chat_cancel(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id, thread_id)): ThreadPath,
) -> ApiResult<Json<Value>> {
    let answer = state
        .app()
        .cancel_chat(&access, &SessionId::new(session_id), &thread_id)
        .await?;
    Ok(Json(answer))
}

pub(crate) async fn chat_question(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id, thread_id, question_id)): ThreadItemPath,
) -> ApiResult<Json<Value>> {
    let answer = state
        .app()
        .chat_question(
            &access,
            &SessionId::new(session_id),
            &thread_id,
            &question_id,
        )
        .await?;
    Ok(Json(answer))
}

pub(crate) async fn chat_answer(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id, thread_id, question_id)): ThreadItemPath,
    JsonBody(request): JsonBody<ChatAnswerRequest>,
) -> ApiResult<Json<SuccessResponse>> {
    let answers = request
        .answers
        .filter(|answers| !answers.is_null())
        .ok_or_else(|| ApiError::bad_request("answers is required"))?;
    state
        .app()
        .chat_answer(
            &access,
            &SessionId::new(session_id),
            &thread_id,
            &question_id,
            answers,
            request.credentials,
        )
        .await?;
    Ok(Json(SuccessResponse::OK))
}

/// The agent's thread JSON in the documented shape.
fn thread_dto(value: Value) -> ApiResult<ThreadDto> {
    serde_json::from_value(value).map_err(|error| {
        ApiError(discobot_core::Error::bad_gateway(format!(
            "the agent answered an unreadable thread: {error}"
        )))
    })
}

pub(crate) async fn list_threads(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id)): SessionPath,
) -> ApiResult<Json<ThreadsResponse>> {
    let answer = state
        .app()
        .list_threads(&access, &SessionId::new(session_id))
        .await?;
    let threads = match answer.get("threads") {
        Some(Value::Array(threads)) => threads.clone(),
        _ => Vec::new(),
    };
    Ok(Json(ThreadsResponse {
        threads: threads
            .into_iter()
            .map(thread_dto)
            .collect::<ApiResult<_>>()?,
    }))
}

pub(crate) async fn create_thread(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id)): SessionPath,
    JsonBody(request): JsonBody<CreateThreadRequest>,
) -> ApiResult<(StatusCode, Json<ThreadDto>)> {
    let answer = state
        .app()
        .create_thread(
            &access,
            &SessionId::new(session_id),
            request.id.trim(),
            request.name.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(thread_dto(answer)?)))
}

pub(crate) async fn get_thread(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id, thread_id)): ThreadPath,
) -> ApiResult<Json<ThreadDto>> {
    let answer = state
        .app()
        .get_thread(&access, &SessionId::new(session_id), &thread_id)
        .await?;
    Ok(Json(thread_dto(answer)?))
}

pub(crate) async fn update_thread(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id, thread_id)): ThreadPath,
    JsonBody(request): JsonBody<UpdateThreadRequest>,
) -> ApiResult<Json<ThreadDto>> {
    let answer = state
        .app()
        .update_thread(
            &access,
            &SessionId::new(session_id),
            &thread_id,
            &request.name,
        )
        .await?;
    Ok(Json(thread_dto(answer)?))
}

pub(crate) async fn delete_thread(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id, thread_id)): ThreadPath,
) -> ApiResult<Json<SuccessResponse>> {
    state
        .app()
        .delete_thread(&access, &SessionId::new(session_id), &thread_id)
        .await?;
    Ok(Json(SuccessResponse::OK))
}

pub(crate) async fn delete_queued_prompt(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id, thread_id, queue_id)): ThreadItemPath,
) -> ApiResult<Json<SuccessResponse>> {
    state
        .app()
        .delete_queued_prompt(&access, &SessionId::new(session_id), &thread_id, &queue_id)
        .await?;
    Ok(Json(SuccessResponse::OK))
}

pub(crate) async fn session_models(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, session_id)): SessionPath,
) -> ApiResult<Json<SessionModelsResponse>> {
    let models = state
        .app()
        .session_models(&access, &SessionId::new(session_id))
        .await?;
    Ok(Json(SessionModelsResponse { models }))
}

pub(crate) async fn auth_providers(
    State(state): State<AppState>,
    Access(access): Access,
) -> Json<AuthProvidersResponse> {
    Json(AuthProvidersResponse {
        auth_providers: state.app().auth_providers(&access),
    })
}
