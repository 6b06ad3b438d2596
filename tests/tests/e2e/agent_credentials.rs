//! Credentials reach the agent through the `X-Discobot-Credentials` header on its requests
//! (local sandbox provider, the fake LLM as Anthropic): the model call carries the Anthropic
//! key, the Bash tool sees an agent-visible custom credential and not a hidden one, and the
//! agent's own process environment holds neither.

use std::time::Duration;

use discobot_fake_llm::{Reply, Step};
use discobot_tests::reqwest::Method;
use discobot_tests::{SseStream, json};
use serde_json::Value;

use crate::common::{LOCAL, delete_session_and_wait, local_server_with_fake_anthropic};
use crate::sandbox::wait_status;

const WAIT: Duration = Duration::from_secs(90);
const VISIBLE: &str = "visible-token-4d1f9";
const HIDDEN: &str = "hidden-token-77a2c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_visible_credentials_reach_bash_only() {
    let (server, fake) = local_server_with_fake_anthropic(&[]).await;
    let create = |body: Value| {
        let server = &server;
        async move {
            server
                .expect(
                    Method::POST,
                    &format!("{LOCAL}/credentials"),
                    Some(body),
                    200,
                )
                .await
        }
    };
    create(
        json!({"name": "Deploy", "authType": "api_key", "agentVisible": true,
        "envVars": [{"key": "DEPLOY_TOKEN", "value": VISIBLE}]}),
    )
    .await;
    create(
        json!({"name": "Hidden", "authType": "api_key", "agentVisible": false,
        "envVars": [{"key": "HIDDEN_TOKEN", "value": HIDDEN}]}),
    )
    .await;

    let session = format!("creds-{}", uuid::Uuid::new_v4().simple());
    let s = format!("{LOCAL}/sessions/{session}");
    server
        .expect(
            Method::POST,
            &format!("{s}/threads/{session}/chat"),
            Some(json!({"messages": []})),
            200,
        )
        .await;
    wait_status(&server, &session, "ready").await;

    fake.push(Reply::new(vec![Step::tool_call(
        "Bash",
        json!({"command": "echo \"deploy=[$DEPLOY_TOKEN] hidden=[$HIDDEN_TOKEN]\""}),
    )]));
    fake.push(Reply::text("Checked the environment."));
    let response = server
        .client()
        .get(server.url(&format!("{s}/threads/{session}/stream")))
        .send()
        .await
        .expect("stream opens");
    let mut stream = SseStream::new(response);
    stream
        .until("history end", WAIT, |f| {
            f.event.as_deref() == Some("history-end")
        })
        .await;
    let message = json!({"id": "u1", "role": "user", "parts": [{"type": "text", "text": "env?"}]});
    server
        .expect(
            Method::POST,
            &format!("{s}/threads/{session}/chat"),
            Some(json!({"messages": [message], "model": "anthropic/claude-sonnet-4-5"})),
            200,
        )
        .await;
    let (tool_output, _) = stream
        .until("the tool's output", WAIT, |f| {
            f.data.contains("\"type\":\"tool-output-available\"")
        })
        .await;
    let output: Value = serde_json::from_str(&tool_output.data).unwrap();
    let text = output["output"].to_string();
    assert!(
        text.contains(&format!("deploy=[{VISIBLE}]")),
        "the visible credential is in Bash's environment: {text}"
    );
    assert!(
        text.contains("hidden=[]") && !text.contains(HIDDEN),
        "the hidden one is not: {text}"
    );
    stream
        .until("the turn's end", WAIT, |f| {
            f.data.contains("\"type\":\"finish\"")
        })
        .await;

    // The model call authenticated with the Anthropic key from the header.
    let requests = fake.requests();
    assert!(!requests.is_empty());
    assert_eq!(requests[0].x_api_key_last4.as_deref(), Some("6789"));

    // Neither value is in the agent process's own environment.
    let needle = format!("DISCOBOT_SESSION_ID={session}");
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|b| *b == 0)
            .any(|var| var == needle.as_bytes())
        {
            let environ = String::from_utf8_lossy(&environ);
            assert!(!environ.contains(VISIBLE) && !environ.contains(HIDDEN));
        }
    }
    delete_session_and_wait(&server, &session, WAIT).await;
}
