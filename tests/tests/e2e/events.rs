//! The project event stream (SSE): framing, the events of workspace, session and job
//! changes, replay with `since` / `after` / `Last-Event-ID` without duplicates, errors,
//! and the stream ending at shutdown.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use discobot_tests::reqwest::{Method, StatusCode};
use discobot_tests::{Body, SseFrame, SseStream, TestServer, WAIT, e2e_tests, json, str_field};

use crate::common::{
    LOCAL, assert_client_error, check_event_frame, create_session, is_event, new_dir_workspace,
};

e2e_tests! {
    event_stream_frames => event_stream_frames_sqlite, event_stream_frames_postgres;
    event_replay => event_replay_sqlite, event_replay_postgres;
    event_replay_during_writes_has_no_duplicates => event_replay_during_writes_has_no_duplicates_sqlite, event_replay_during_writes_has_no_duplicates_postgres;
    event_stream_errors => event_stream_errors_sqlite, event_stream_errors_postgres;
    event_stream_ends_at_shutdown => event_stream_ends_at_shutdown_sqlite, event_stream_ends_at_shutdown_postgres;
}

/// Reads the `connected` frame every stream starts with.
async fn expect_connected(stream: &mut SseStream, project: &str) {
    let first = stream.next_frame(WAIT).await.expect("a first frame");
    assert_eq!(first.event.as_deref(), Some("connected"), "{first:?}");
    assert_eq!(first.json(), json!({"projectId": project}));
}

async fn event_stream_frames(server: &TestServer) {
    let mut stream = server.events("local", &[]).await;
    expect_connected(&mut stream, "local").await;

    let tmp = tempfile::tempdir().unwrap();
    let workspace = server
        .expect(
            Method::POST,
            &format!("{LOCAL}/workspaces"),
            Some(json!({"path": tmp.path().join("w").display().to_string()})),
            201,
        )
        .await;
    let workspace_id = str_field(&workspace, "id").to_owned();
    let (ready, _) = stream
        .until("workspace_updated ready", WAIT, |f| {
            is_event(
                f,
                "workspace_updated",
                &[("workspaceId", &workspace_id), ("status", "ready")],
            )
        })
        .await;
    let event = check_event_frame(&ready);
    assert_eq!(
        event["data"],
        json!({"workspaceId": workspace_id, "status": "ready"})
    );
    let (done, _) = stream
        .until("job_completed of workspace_init", WAIT, |f| {
            is_event(
                f,
                "job_completed",
                &[("jobType", "workspace_init"), ("resourceId", &workspace_id)],
            )
        })
        .await;
    let event = check_event_frame(&done);
    assert_eq!(event["data"]["status"], "completed", "{event}");
    assert_eq!(event["data"]["resourceType"], "workspace", "{event}");
    assert!(event["data"]["jobId"].is_string(), "{event}");
    assert!(event["data"].get("error").is_none(), "{event}");

    create_session(server, "evented", Some(&workspace_id)).await;
    let (initializing, _) = stream
        .until("session_updated initializing", WAIT, |f| {
            f.event_type() == "session_updated" && f.json()["data"]["sessionId"] == "evented"
        })
        .await;
    let event = check_event_frame(&initializing);
    assert_eq!(
        event["data"],
        json!({"sessionId": "evented", "status": "initializing"})
    );
    // The session's initialisation job ends (failing: no sandbox provider) and says so.
    let (session_error, _) = stream
        .until("session_updated error", WAIT, |f| {
            is_event(
                f,
                "session_updated",
                &[("sessionId", "evented"), ("status", "error")],
            )
        })
        .await;
    check_event_frame(&session_error);
    let (job, _) = stream
        .until("job_completed of session_init", WAIT, |f| {
            is_event(
                f,
                "job_completed",
                &[("jobType", "session_init"), ("resourceId", "evented")],
            )
        })
        .await;
    let event = check_event_frame(&job);
    assert_eq!(event["data"]["status"], "failed", "{event}");
    assert!(
        !event["data"]["error"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );

    // Another project's events do not reach `local` subscribers.
    let other = server
        .expect(
            Method::POST,
            "/api/projects",
            Some(json!({"name": "Elsewhere"})),
            201,
        )
        .await;
    let other_id = str_field(&other, "id").to_owned();
    let mut other_stream = server.events(&other_id, &[]).await;
    expect_connected(&mut other_stream, &other_id).await;
    let other_workspace = server
        .expect(
            Method::POST,
            &format!("/api/projects/{other_id}/workspaces"),
            Some(json!({"path": tmp.path().join("o").display().to_string()})),
            201,
        )
        .await;
    let other_workspace_id = str_field(&other_workspace, "id").to_owned();
    other_stream
        .until("the other project's workspace ready", WAIT, |f| {
            is_event(
                f,
                "workspace_updated",
                &[("workspaceId", &other_workspace_id), ("status", "ready")],
            )
        })
        .await;
    // A marker in `local` after it: nothing of the other project may come before.
    let marker = mark(server).await;
    let (_, skipped) = stream
        .until("the marker", WAIT, |f| is_marker(f, &marker))
        .await;
    for frame in &skipped {
        let data = &frame.json()["data"];
        assert_ne!(
            data["workspaceId"],
            other_workspace_id.as_str(),
            "{frame:?}"
        );
    }
}

/// Publishes a `project_updated` event in `local` by renaming it; returns the new name.
async fn mark(server: &TestServer) -> String {
    let name = format!("marker-{}", uuid_like());
    server
        .expect(Method::PUT, LOCAL, Some(json!({"name": name})), 200)
        .await;
    name
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn is_marker(frame: &SseFrame, name: &str) -> bool {
    frame.event_type() == "project_updated" && frame.json()["data"]["name"] == name
}

/// Event ids of frames (checking each frame's envelope).
fn ids(frames: &[SseFrame]) -> Vec<String> {
    frames
        .iter()
        .map(|frame| str_field(&check_event_frame(frame), "id").to_owned())
        .collect()
}

fn assert_unique(ids: &[String], what: &str) {
    let set: HashSet<&String> = ids.iter().collect();
    assert_eq!(set.len(), ids.len(), "{what}: duplicate events in {ids:#?}");
}

/// Opens a stream with `query`, publishes a marker, and returns every event frame before it.
async fn replay(server: &TestServer, query: &[(&str, &str)]) -> Vec<SseFrame> {
    let mut stream = server.events("local", query).await;
    expect_connected(&mut stream, "local").await;
    let marker = mark(server).await;
    let (_, before) = stream
        .until("the marker", WAIT, |f| is_marker(f, &marker))
        .await;
    before
}

async fn event_replay(server: &TestServer) {
    let tmp = tempfile::tempdir().unwrap();
    let mut live = server.events("local", &[]).await;
    expect_connected(&mut live, "local").await;

    // Some history: a workspace (initializing, ready, job_completed), a rename, another
    // workspace.
    let first = new_dir_workspace(server, tmp.path(), "one").await;
    let first_id = str_field(&first, "id").to_owned();
    let (first_done, mut history) = live
        .until("job_completed of the first workspace", WAIT, |f| {
            is_event(f, "job_completed", &[("resourceId", &first_id)])
        })
        .await;
    history.push(first_done);
    let rename = mark(server).await;
    let (pivot, mut between) = live
        .until("the rename", WAIT, |f| is_marker(f, &rename))
        .await;
    history.append(&mut between);
    history.push(pivot.clone());
    let second = new_dir_workspace(server, tmp.path(), "two").await;
    let second_id = str_field(&second, "id").to_owned();
    let (last, mut between) = live
        .until("job_completed of the second workspace", WAIT, |f| {
            is_event(f, "job_completed", &[("resourceId", &second_id)])
        })
        .await;
    history.append(&mut between);
    history.push(last);
    let all_ids = ids(&history);
    assert_unique(&all_ids, "live stream");
    let pivot_event = pivot.json();
    let pivot_index = all_ids
        .iter()
        .position(|id| id == str_field(&pivot_event, "id"))
        .unwrap();
    let later: Vec<String> = all_ids[pivot_index + 1..].to_vec();
    assert!(later.len() >= 3, "{later:?}");

    // `after=<id>`: exactly the events after that one, then live ones, no duplicates.
    let after = replay(server, &[("after", str_field(&pivot_event, "id"))]).await;
    let after_ids = ids(&after);
    assert_unique(&after_ids, "after");
    assert_eq!(
        after_ids, later,
        "after= replays exactly the later events, in order"
    );
    let seqs: Vec<i64> = after
        .iter()
        .map(|f| f.json()["seq"].as_i64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "history in order: {seqs:?}"
    );

    // `Last-Event-ID` (what EventSource sends on reconnect) works like `after`.
    let response = server
        .client()
        .get(server.url(&format!("{LOCAL}/events")))
        .header("Last-Event-ID", str_field(&pivot_event, "id"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = SseStream::new(response);
    expect_connected(&mut stream, "local").await;
    let marker = mark(server).await;
    let (_, resumed) = stream
        .until("the marker", WAIT, |f| is_marker(f, &marker))
        .await;
    let resumed_ids = ids(&resumed);
    // The history now also holds the marker published by the `after` replay.
    assert_eq!(resumed_ids[..later.len()], later[..], "{resumed_ids:#?}");
    assert_unique(&resumed_ids, "Last-Event-ID");

    // `since=<timestamp of the pivot>`: the same events (plus markers published since).
    let since = replay(server, &[("since", str_field(&pivot_event, "timestamp"))]).await;
    let since_ids = ids(&since);
    assert_unique(&since_ids, "since");
    assert_eq!(since_ids[..later.len()], later[..], "{since_ids:#?}");
    for frame in &since[later.len()..] {
        assert_eq!(
            frame.event_type(),
            "project_updated",
            "only markers follow: {frame:?}"
        );
    }

    // Unix seconds, and an unknown id: everything.
    let everything = ids(&replay(server, &[("since", "0")]).await);
    assert_unique(&everything, "since=0");
    for id in &all_ids {
        assert!(everything.contains(id), "since=0 lacks {id}");
    }
    let unknown = ids(&replay(server, &[("after", "19990101000000.000000000")]).await);
    for id in &everything {
        assert!(
            unknown.contains(id),
            "an unknown after= id replays everything; lacks {id}"
        );
    }

    // A `since` in the future replays nothing.
    let none = replay(server, &[("since", "2999-01-01T00:00:00Z")]).await;
    assert!(none.is_empty(), "{none:#?}");
}

async fn event_replay_during_writes_has_no_duplicates(server: &TestServer) {
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().to_path_buf();
    // Write events while a subscriber connects with a replay, so that some events are both
    // in its history and in its live feed.
    let writer = async {
        for i in 0..6 {
            new_dir_workspace(server, &parent, &format!("w{i}")).await;
        }
    };
    let reader = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let mut stream = server.events("local", &[("since", "0")]).await;
        expect_connected(&mut stream, "local").await;
        stream
    };
    let ((), mut stream) = tokio::join!(writer, reader);
    let marker = mark(server).await;
    let (marker_frame, frames) = stream
        .until("the marker", WAIT, |f| is_marker(f, &marker))
        .await;
    let seen = ids(&frames);
    assert_unique(&seen, "history + live");
    let ready = frames
        .iter()
        .filter(|f| is_event(f, "workspace_updated", &[("status", "ready")]))
        .count();
    assert_eq!(ready, 6, "one ready event per workspace");
    // Everything stored before the marker was delivered, exactly once.
    let mut stored = ids(&replay(server, &[("since", "0")]).await);
    assert_eq!(
        stored.pop().as_deref(),
        Some(str_field(&marker_frame.json(), "id")),
        "the marker is the last stored event"
    );
    let mut seen_sorted = seen.clone();
    seen_sorted.sort();
    stored.sort();
    assert_eq!(seen_sorted, stored, "delivered events = stored events");
}

async fn event_stream_errors(server: &TestServer) {
    for query in ["since=garbage", "since=2024-13-45T99:00:00Z"] {
        let reply = server
            .send(Method::GET, &format!("{LOCAL}/events?{query}"), Body::None)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.text
        );
        assert_client_error(&reply, query);
    }
    let reply = server
        .send(
            Method::GET,
            "/api/projects/no-such-project/events",
            Body::None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
    assert_client_error(&reply, "events of an unknown project");
    // SSE headers.
    let response = server
        .client()
        .get(server.url(&format!("{LOCAL}/events")))
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert!(header("content-type").starts_with("text/event-stream"));
    assert_eq!(header("cache-control"), "no-cache");
    assert_eq!(header("x-accel-buffering"), "no");
}

async fn event_stream_ends_at_shutdown(server: &TestServer) {
    let mut first = server.events("local", &[]).await;
    expect_connected(&mut first, "local").await;
    let mut second = server.events("local", &[("since", "0")]).await;
    expect_connected(&mut second, "local").await;
    let start = Instant::now();
    server.stop().await.expect("the server stops");
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "stopping with open event streams took {took:?}"
    );
    first.expect_end(Duration::from_secs(5)).await;
    second.expect_end(Duration::from_secs(5)).await;
    // And the server is gone.
    let gone = server
        .client()
        .get(server.url("/health"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(gone.is_err(), "the server still answers after stop");
}
