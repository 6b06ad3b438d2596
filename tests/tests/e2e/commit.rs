//! Committing a session's work back (local sandbox provider, the fake LLM as Anthropic): a
//! chat writes a file, CommitSession brings it to the host workspace as a real commit; a
//! second commit without changes fails with a clear error; a host change to a file the
//! session also changed makes the commit fail with the workspace untouched; RebaseSession
//! moves the session onto the host's new HEAD, after which its next commit applies.

use std::path::Path;
use std::time::Duration;

use discobot_fake_llm::{Reply, Step};
use discobot_tests::reqwest::Method;
use discobot_tests::{SseStream, TestServer, git, git_fixture, json, str_field, wait_until};
use serde_json::Value;

use crate::common::{LOCAL, delete_session_and_wait, local_server_with_fake_anthropic};
use crate::sandbox::wait_status;

const WAIT: Duration = Duration::from_secs(90);

/// Runs one chat turn on the session's primary thread and waits until it has ended.
async fn chat_turn(server: &TestServer, session: &str, message_id: &str, text: &str) {
    let s = format!("{LOCAL}/sessions/{session}");
    let response = server
        .client()
        .get(server.url(&format!("{s}/threads/{session}/stream")))
        .send()
        .await
        .expect("stream opens");
    let mut stream = SseStream::new(response);
    stream
        .until("history end", WAIT, |frame| {
            frame.event.as_deref() == Some("history-end")
        })
        .await;
    let message =
        json!({"id": message_id, "role": "user", "parts": [{"type": "text", "text": text}]});
    let started = server
        .expect(
            Method::POST,
            &format!("{s}/threads/{session}/chat"),
            Some(json!({"messages": [message], "model": "anthropic/claude-sonnet-4-5"})),
            200,
        )
        .await;
    assert_eq!(started["status"], "started", "{started}");
    let (_, seen) = stream
        .until("the turn's end", WAIT, |frame| {
            let chunk: Value = serde_json::from_str(&frame.data).unwrap_or_default();
            chunk["type"] == "data-completion-status" && chunk["data"]["isRunning"] == false
        })
        .await;
    assert!(
        !seen
            .iter()
            .any(|frame| frame.data.contains("\"type\":\"error\"")),
        "{seen:?}"
    );
}

/// Starts a commit or rebase and waits for its end state (`committed`, `rebased`, `error`).
async fn operation(server: &TestServer, session: &str, kind: &str) -> Value {
    let s = format!("{LOCAL}/sessions/{session}");
    let started = server
        .expect(Method::POST, &format!("{s}/{kind}"), None, 200)
        .await;
    assert_eq!(started, json!({"success": true}));
    wait_until(WAIT, &format!("{kind} of {session} ends"), || async {
        let (_, body) = server.get(&s).await;
        matches!(
            body["status"].as_str(),
            Some("committed" | "rebased" | "error")
        )
        .then_some(body)
    })
    .await
}

fn write_call(path: &str, content: &str) -> Reply {
    Reply::new(vec![Step::tool_call(
        "Write",
        json!({"file_path": path, "content": content}),
    )])
}

fn host_state(repo: &Path) -> (String, String, String) {
    (
        git(repo, &["rev-parse", "HEAD"]),
        git(repo, &["status", "--porcelain=v2"]),
        git(repo, &["ls-files", "-s"]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_and_rebase_a_sessions_work() {
    let (server, fake) = local_server_with_fake_anthropic(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let repo = git_fixture(&dir.path().join("repo"));
    // The host's identity for this workspace: the agent's commits carry it.
    git(&repo.dir, &["config", "user.name", "Host Person"]);
    git(&repo.dir, &["config", "user.email", "host@example.com"]);
    let workspace = server
        .ready_workspace("local", json!({"path": repo.dir.display().to_string()}))
        .await;
    let session = format!("commit-{}", uuid::Uuid::new_v4().simple());
    server
        .expect(
            Method::POST,
            &format!("{LOCAL}/sessions"),
            Some(json!({"id": session, "workspaceId": str_field(&workspace, "id")})),
            200,
        )
        .await;
    let ready = wait_status(&server, &session, "ready").await;
    assert_eq!(ready["workspaceCommit"], repo.head.as_str(), "{ready}");

    // 1. The agent writes a file; the commit brings it to the host as a real commit.
    fake.push(write_call("feature.txt", "a feature\n"));
    fake.push(Reply::text("Wrote feature.txt."));
    chat_turn(&server, &session, "u1", "Add a feature file").await;
    // The session keeps the model its chat used.
    let (_, chatted) = server.get(&format!("{LOCAL}/sessions/{session}")).await;
    assert_eq!(chatted["model"], "anthropic/claude-sonnet-4-5", "{chatted}");
    // The same prompt again (a client retry) answers the recorded result: no second turn.
    let requests = fake.requests().len();
    let chat = format!("{LOCAL}/sessions/{session}/threads/{session}/chat");
    let message = |text: &str| {
        json!({"messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": text}]}],
               "model": "anthropic/claude-sonnet-4-5"})
    };
    let again = server
        .expect(
            Method::POST,
            &chat,
            Some(message("Add a feature file")),
            200,
        )
        .await;
    let once_more = server
        .expect(
            Method::POST,
            &chat,
            Some(message("Add a feature file")),
            200,
        )
        .await;
    assert_eq!(again, once_more);
    assert_eq!(again["status"], "started", "{again}");
    assert!(
        again["submissionId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    let (status, reused) = server
        .call(Method::POST, &chat, Some(message("something else")))
        .await;
    assert_eq!(status.as_u16(), 502, "{reused}");
    assert_eq!(
        reused["error"],
        "prompt submission key reused with different payload"
    );
    assert_eq!(
        fake.requests().len(),
        requests,
        "no model call for a repeated prompt"
    );
    let committed = operation(&server, &session, "commit").await;
    assert_eq!(committed["status"], "committed", "{committed}");
    assert_eq!(
        std::fs::read_to_string(repo.dir.join("feature.txt")).unwrap(),
        "a feature\n"
    );
    let head = git(&repo.dir, &["rev-parse", "HEAD"]);
    assert_eq!(committed["appliedCommit"], head.as_str());
    assert_eq!(
        git(&repo.dir, &["rev-parse", "HEAD~1"]),
        repo.head,
        "one commit on top of the base"
    );
    assert_eq!(
        git(&repo.dir, &["show", "--name-status", "--format=", "HEAD"]),
        "A\tfeature.txt"
    );
    assert_eq!(git(&repo.dir, &["status", "--porcelain"]), "");
    assert_eq!(
        git(&repo.dir, &["log", "-1", "--format=%an <%ae>"]),
        "Host Person <host@example.com>"
    );
    // The user's request is the commit's subject, the files its body.
    assert_eq!(
        git(&repo.dir, &["log", "-1", "--format=%s%n%b"]),
        "Add a feature file\n- feature.txt"
    );
    git(&repo.dir, &["fsck", "--strict"]);

    // 2. Nothing new: the commit fails with a clear message, the host is untouched.
    let before = host_state(&repo.dir);
    let nothing = operation(&server, &session, "commit").await;
    assert_eq!(nothing["status"], "error", "{nothing}");
    assert!(
        nothing["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("no changes")),
        "{nothing}"
    );
    assert_eq!(host_state(&repo.dir), before);

    // 3. The host changes README.md (committed) and the user has a staged edit elsewhere;
    // the session changes README.md too: the commit fails, the host exactly as before.
    std::fs::write(repo.dir.join("README.md"), "# host edit\n").unwrap();
    git(&repo.dir, &["commit", "-qam", "Host edit"]);
    std::fs::write(repo.dir.join("notes.txt"), "staged by the user\n").unwrap();
    git(&repo.dir, &["add", "notes.txt"]);
    // An existing file is read before it is written (the agent's rule).
    fake.push(Reply::new(vec![Step::tool_call(
        "Read",
        json!({"file_path": "README.md"}),
    )]));
    fake.push(write_call("README.md", "# session edit\n"));
    fake.push(Reply::text("Edited the readme."));
    chat_turn(&server, &session, "u2", "Rewrite the readme").await;
    let before = host_state(&repo.dir);
    let conflict = operation(&server, &session, "commit").await;
    assert_eq!(conflict["status"], "error", "{conflict}");
    assert!(
        conflict["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("README.md")),
        "{conflict}"
    );
    assert_eq!(host_state(&repo.dir), before);
    assert_eq!(
        std::fs::read_to_string(repo.dir.join("README.md")).unwrap(),
        "# host edit\n"
    );

    // 4. A rebase onto the host's HEAD fails on the same conflict, nothing moves.
    let rebased = operation(&server, &session, "rebase").await;
    assert_eq!(rebased["status"], "error", "{rebased}");
    assert!(
        rebased["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("README.md")),
        "{rebased}"
    );
    assert_eq!(host_state(&repo.dir), before);
    delete_session_and_wait(&server, &session, WAIT).await;

    // 5. A second session; the host moves on meanwhile; the rebase succeeds, the session's
    // next commit lands on the new HEAD, and the user's staged edit survives it.
    let second = format!("rebase-{}", uuid::Uuid::new_v4().simple());
    server
        .expect(
            Method::POST,
            &format!("{LOCAL}/sessions"),
            Some(json!({"id": second, "workspaceId": str_field(&workspace, "id")})),
            200,
        )
        .await;
    wait_status(&server, &second, "ready").await;
    std::fs::write(repo.dir.join("other.txt"), "host moved on\n").unwrap();
    git(&repo.dir, &["add", "other.txt"]);
    git(
        &repo.dir,
        &["commit", "-q", "-m", "Host moves on", "--", "other.txt"],
    );
    let moved = git(&repo.dir, &["rev-parse", "HEAD"]);
    let rebased = operation(&server, &second, "rebase").await;
    assert_eq!(rebased["status"], "rebased", "{rebased}");
    assert_eq!(rebased["workspaceCommit"], moved.as_str(), "{rebased}");
    fake.push(write_call("second.txt", "second session\n"));
    fake.push(Reply::text("Wrote second.txt."));
    chat_turn(&server, &second, "v1", "Add a second file").await;
    let committed = operation(&server, &second, "commit").await;
    assert_eq!(committed["status"], "committed", "{committed}");
    assert_eq!(git(&repo.dir, &["rev-parse", "HEAD~1"]), moved);
    assert_eq!(
        std::fs::read_to_string(repo.dir.join("second.txt")).unwrap(),
        "second session\n"
    );
    assert_eq!(
        git(&repo.dir, &["status", "--porcelain"]),
        "A  notes.txt",
        "the user's staged file is still staged, nothing else changed"
    );
    git(&repo.dir, &["fsck", "--strict"]);
    delete_session_and_wait(&server, &second, WAIT).await;
}
