//! The idle monitor (local sandbox provider, the fake LLM as Anthropic): a sandbox nobody
//! uses is stopped after the idle timeout, but not while its agent runs a turn that nobody
//! watches; the next use starts it again.

use std::time::Duration;

use discobot_fake_llm::{Reply, Step};
use discobot_tests::reqwest::Method;
use discobot_tests::{json, wait_until};

use crate::common::{LOCAL, delete_session_and_wait, local_server_with_fake_anthropic};
use crate::sandbox::wait_status;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sandboxes_stop_unless_a_turn_runs() {
    let (server, fake) = local_server_with_fake_anthropic(&[
        "--sandbox-idle-timeout",
        "1s",
        "--idle-check-interval",
        "200ms",
    ])
    .await;
    let session = format!("idle-{}", uuid::Uuid::new_v4().simple());
    let s = format!("{LOCAL}/sessions/{session}");
    let chat = format!("{s}/threads/{session}/chat");
    server
        .expect(Method::POST, &chat, Some(json!({"messages": []})), 200)
        .await;
    wait_status(&server, &session, "ready").await;

    // A turn that never ends, and nobody reads its stream.
    fake.push(Reply::new(vec![Step::text("thinking hard"), Step::hang()]));
    let message = json!({"id": "u1", "role": "user", "parts": [{"type": "text", "text": "work"}]});
    server
        .expect(
            Method::POST,
            &chat,
            Some(json!({"messages": [message], "model": "anthropic/claude-sonnet-4-5"})),
            200,
        )
        .await;
    // Many idle timeouts later, the sandbox still runs.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_, body) = server.get(&s).await;
    assert_eq!(body["status"], "ready", "a busy agent is not idle: {body}");

    // Once the turn is cancelled, the sandbox is idle and stops.
    server
        .expect(
            Method::POST,
            &format!("{s}/threads/{session}/cancel"),
            None,
            200,
        )
        .await;
    wait_until(WAIT, "the idle sandbox stops", || async {
        let (_, body) = server.get(&s).await;
        (body["status"] == "stopped").then_some(())
    })
    .await;

    // Using it again starts it again.
    let threads = server
        .expect(Method::GET, &format!("{s}/threads"), None, 200)
        .await;
    assert!(
        threads["threads"].as_array().is_some_and(|t| !t.is_empty()),
        "{threads}"
    );
    delete_session_and_wait(&server, &session, WAIT).await;
}
