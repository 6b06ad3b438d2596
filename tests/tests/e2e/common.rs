//! Helpers shared by the scenarios: contract checks and small flows (make a workspace,
//! make a session, wait for a status).

use std::path::Path;

use discobot_tests::reqwest::{Method, StatusCode};
use discobot_tests::{Reply, SseFrame, TestServer, WAIT, json, wait_until};
use serde_json::Value;

pub const ANONYMOUS_ID: &str = "00000000-0000-0000-0000-000000000001";

/// `P` for project `local`.
pub const LOCAL: &str = "/api/projects/local";

/// Asserts that no object key anywhere in `value` has an upper-case letter (snake_case).
pub fn assert_no_upper_case_keys(value: &Value) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                assert!(
                    !key.chars().any(|c| c.is_ascii_uppercase()),
                    "key {key:?} is not snake_case"
                );
                assert_no_upper_case_keys(value);
            }
        }
        Value::Array(items) => items.iter().for_each(assert_no_upper_case_keys),
        _ => {}
    }
}

/// `YYYY-MM-DDThh:mm:ssZ` exactly (second precision, UTC).
pub fn is_rfc3339_secs(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 20 && rfc3339_prefix(b) && b[19] == b'Z'
}

/// RFC 3339 in UTC with optional fractional seconds.
pub fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() < 20 || !rfc3339_prefix(b) || !text.ends_with('Z') {
        return false;
    }
    let rest = &text[19..text.len() - 1];
    rest.is_empty()
        || (rest.starts_with('.')
            && rest.len() > 1
            && rest[1..].bytes().all(|c| c.is_ascii_digit()))
}

fn rfc3339_prefix(b: &[u8]) -> bool {
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
}

/// Asserts the error envelope of a client error: 4xx, JSON content type, `{"error": "…"}`.
pub fn assert_client_error(reply: &Reply, what: &str) {
    assert!(
        reply.status.is_client_error(),
        "{what}: expected a 4xx, got {} {:?}",
        reply.status,
        reply.text
    );
    assert_json_error(reply, what);
}

/// Asserts `Content-Type: application/json` and a body `{"error": "<non-empty>"}`.
pub fn assert_json_error(reply: &Reply, what: &str) {
    assert!(
        reply.content_type().starts_with("application/json"),
        "{what}: content type {:?} (body {:?})",
        reply.content_type(),
        reply.text
    );
    let body = reply
        .json
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: body is not JSON: {:?}", reply.text));
    let message = body["error"].as_str().unwrap_or_default();
    assert!(
        !message.trim().is_empty(),
        "{what}: no error message in {body}"
    );
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "{what}: the error body has extra fields: {body}"
    );
}

/// Creates a workspace on a new folder `name` under `parent` and waits until it is ready.
pub async fn new_dir_workspace(server: &TestServer, parent: &Path, name: &str) -> Value {
    let path = parent.join(name);
    server
        .ready_workspace("local", json!({"path": path.display().to_string()}))
        .await
}

/// Creates session `id` (on `workspace`, or an automatic workspace) and returns it.
pub async fn create_session(server: &TestServer, id: &str, workspace: Option<&str>) -> Value {
    let mut body = json!({"id": id});
    if let Some(workspace) = workspace {
        body["workspaceId"] = json!(workspace);
    }
    let created = server
        .expect(Method::POST, &format!("{LOCAL}/sessions"), Some(body), 200)
        .await;
    assert_eq!(created, json!({"id": id}));
    server
        .expect(Method::GET, &format!("{LOCAL}/sessions/{id}"), None, 200)
        .await
}

/// Polls `GET S` until `done` holds for it; returns that session.
pub async fn wait_session(
    server: &TestServer,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("{LOCAL}/sessions/{id}");
    wait_until(WAIT, &format!("session {id}: {what}"), || async {
        let (status, body) = server.get(&path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        done(&body).then_some(body)
    })
    .await
}

/// Waits until the session's initialisation has finished. With no sandbox provider in this
/// version that is `error`, with a message naming the missing provider.
pub async fn wait_session_settled(server: &TestServer, id: &str) -> Value {
    let session = wait_session(server, id, "initialisation finished", |s| {
        !matches!(
            s["status"].as_str(),
            Some(
                "initializing"
                    | "reinitializing"
                    | "cloning"
                    | "pulling_image"
                    | "creating_sandbox"
            )
        )
    })
    .await;
    assert_eq!(session["status"], "error", "{session}");
    let message = session["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.to_lowercase().contains("sandbox provider"),
        "the error should name the missing sandbox provider: {session}"
    );
    session
}

/// Checks the envelope of an event frame: `{id, seq, type, timestamp, data}`.
pub fn check_event_frame(frame: &SseFrame) -> Value {
    let event = frame.json();
    let object = event.as_object().expect("event is an object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["data", "id", "seq", "timestamp", "type"], "{event}");
    assert_eq!(
        Some(event["type"].as_str().unwrap()),
        frame.event.as_deref()
    );
    let id = event["id"].as_str().expect("id");
    assert!(!id.is_empty());
    if let Some(frame_id) = &frame.id {
        assert_eq!(frame_id, id, "the SSE id line matches the event id");
    }
    assert!(event["seq"].is_i64(), "{event}");
    assert!(
        is_rfc3339(event["timestamp"].as_str().unwrap_or_default()),
        "timestamp: {event}"
    );
    assert!(event["data"].is_object(), "{event}");
    event
}

/// Whether `frame` is `event_type` with `data[key] == value` (and every pair of `more`).
pub fn is_event(frame: &SseFrame, event_type: &str, pairs: &[(&str, &str)]) -> bool {
    if frame.event_type() != event_type {
        return false;
    }
    let event = frame.json();
    pairs
        .iter()
        .all(|(key, value)| event["data"][*key] == *value)
}

/// Deletes a session and waits (up to `deadline`) until it answers 404: its deletion job,
/// sandbox removal included, has run.
pub async fn delete_session_and_wait(server: &TestServer, id: &str, deadline: std::time::Duration) {
    let path = format!("{LOCAL}/sessions/{id}");
    server.expect(Method::DELETE, &path, None, 200).await;
    wait_until(deadline, "session removed", || async {
        let (status, _) = server.get(&path).await;
        (status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
}

/// A server with the local sandbox provider (agents as child processes, no Docker) and a
/// fake LLM on loopback that project `local` reaches as Anthropic through a credential.
/// `extra_args` go to the server's command line.
pub async fn local_server_with_fake_anthropic(
    extra_args: &[&str],
) -> (TestServer, discobot_fake_llm::FakeLlm) {
    let fake = discobot_fake_llm::FakeLlm::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("fake LLM starts");
    let mut options = discobot_tests::ServerOptions::new(discobot_tests::Backend::Sqlite);
    // Keeps the test support from adding `--sandbox-provider none`.
    options.docker = true;
    options.extra_args = vec!["--sandbox-provider".into(), "local".into()];
    options
        .extra_args
        .extend(extra_args.iter().map(|arg| (*arg).to_owned()));
    let server = TestServer::start_with(options)
        .await
        .expect("server starts");
    server
        .expect(
            Method::POST,
            &format!("{LOCAL}/credentials"),
            Some(json!({
                "provider": "anthropic", "name": "Fake Anthropic", "authType": "api_key",
                "envVars": [
                    {"key": "ANTHROPIC_API_KEY", "value": "sk-ant-fake-e2e-0123456789"},
                    {"key": "ANTHROPIC_BASE_URL", "value": fake.base_url_anthropic()},
                ],
            })),
            200,
        )
        .await;
    (server, fake)
}
