//! `GET …/events`: the project event stream (SSE) with replay by `after`, `since` or
//! `Last-Event-ID`, then live events.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeZone, Utc};
use discobot_core::app::{EventCursor, ProjectAccess};
use discobot_core::events::Event;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::dto::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Access, ApiQuery};
use crate::state::AppState;

#[derive(Deserialize)]
pub(crate) struct EventsQuery {
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    since: Option<String>,
}

/// The wire form of an event: `{id, seq, type, timestamp, data}`.
pub(crate) fn event_json(event: &Event) -> serde_json::Value {
    json!({
        "id": event.id.as_str(),
        "seq": event.seq,
        "type": event.event_type,
        "timestamp": rfc3339(event.created_at),
        "data": event.data,
    })
}

/// `since` as RFC 3339 or integer unix seconds.
pub(crate) fn parse_since(raw: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(at.with_timezone(&Utc));
    }
    raw.trim()
        .parse::<i64>()
        .ok()
        .and_then(|secs| Utc.timestamp_opt(secs, 0).single())
        .ok_or_else(|| ApiError::bad_request("invalid since parameter, use RFC3339 format"))
}

pub(crate) async fn events(
    State(state): State<AppState>,
    Access(access): Access,
    ApiQuery(query): ApiQuery<EventsQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let cursor = match (
        query.after.filter(|a| !a.is_empty()).or(last_event_id),
        query.since,
    ) {
        (Some(after), _) => EventCursor::After(after),
        (None, Some(since)) if !since.is_empty() => EventCursor::Since(parse_since(&since)?),
        _ => EventCursor::Live,
    };
    let mut events =
        Box::pin(history_then_live(&state, &access, &cursor, state.0.streams.clone()).await?);
    let project_id = access.project_id.to_string();
    let stream = async_stream::stream! {
        yield Ok::<_, Infallible>(
            SseEvent::default().event("connected").data(json!({"projectId": project_id}).to_string()),
        );
        while let Some(event) = events.next().await {
            yield Ok(sse_frame(&event));
        }
    };
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// The project's events after `cursor`, then its live ones until `stop`, each once: the
/// subscription starts before the history is read, so nothing falls between the two. Shared
/// by the SSE stream and the `/ws` project-events subscription.
pub(crate) async fn history_then_live(
    state: &AppState,
    access: &ProjectAccess,
    cursor: &EventCursor,
    stop: CancellationToken,
) -> discobot_core::Result<impl Stream<Item = Event> + Send + 'static> {
    let mut live = state.0.events.subscribe(&access.project_id);
    let history = state.app().event_history(access, cursor).await?;
    Ok(async_stream::stream! {
        let mut sent = HashSet::new();
        for event in history {
            sent.insert(event.id.clone());
            yield event;
        }
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => None,
                next = live.next_event() => next,
            };
            let Some(event) = next else { break };
            if sent.remove(&event.id) {
                continue;
            }
            yield event;
        }
    })
}

/// `event: <type>`, `id: <event id>` (so that `EventSource` resumes with `Last-Event-ID`),
/// `data: <event JSON>`.
fn sse_frame(event: &Event) -> SseEvent {
    SseEvent::default()
        .event(event.event_type.clone())
        .id(event.id.as_str())
        .data(event_json(event).to_string())
}
