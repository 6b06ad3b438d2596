//! Sessions with the local sandbox provider (`--sandbox-provider local`), through the HTTP
//! API: the provider is reported, a session reaches `ready` with its agent as a child process
//! of the server, the terminal round trip works in the workspace folder, and deleting the
//! session leaves no process behind. Needs no Docker: only the agent binary the workspace
//! build puts next to the test binaries.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use discobot_tests::reqwest::{Method, StatusCode};
use discobot_tests::{Backend, ServerOptions, TestServer, json, str_field, wait_until};
use serde_json::Value;

use crate::common::{LOCAL, delete_session_and_wait};
use crate::sandbox::{read_until, send, terminal_round_trip, wait_status};

/// `target/<profile>/discobot-agent`, which the server finds next to the test binary's
/// directory.
fn agent_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let binary = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("discobot-agent");
    assert!(
        binary.is_file(),
        "build the agent first: cargo build -p discobot-agent-bin ({})",
        binary.display()
    );
    binary
}

/// The pids of this user's processes whose environment names the session (its agent, and
/// the shells of its terminals).
fn session_processes(session: &str) -> Vec<u32> {
    let needle = format!("DISCOBOT_SESSION_ID={session}");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        // Processes of other users, or gone meanwhile, cannot be read: not ours.
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|byte| *byte == 0)
            .any(|var| var == needle.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_sandbox_session() {
    agent_binary();
    let mut options = ServerOptions::new(Backend::Sqlite);
    // Keeps the test support from adding `--sandbox-provider none`.
    options.docker = true;
    options.extra_args = vec!["--sandbox-provider".into(), "local".into()];
    let server = TestServer::start_with(options)
        .await
        .expect("server starts");

    // The provider in use is reported.
    let status = server.expect(Method::GET, "/api/status", None, 200).await;
    assert_eq!(status["sandboxProvider"]["name"], "local", "{status}");
    assert_eq!(status["sandboxProvider"]["available"], true, "{status}");
    let providers = server
        .expect(
            Method::GET,
            &format!("{LOCAL}/workspaces/providers"),
            None,
            200,
        )
        .await;
    assert_eq!(providers["default"], "local", "{providers}");
    assert_eq!(
        providers["providers"]["local"]["state"], "ready",
        "{providers}"
    );
    let message = providers["providers"]["local"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("local processes"), "{providers}");

    let dir = tempfile::tempdir().unwrap();
    let workspace_dir = dir.path().join("ws");
    let workspace = server
        .ready_workspace(
            "local",
            json!({"path": workspace_dir.display().to_string()}),
        )
        .await;
    // Committed: the agent works in a clone of the workspace's HEAD.
    std::fs::write(workspace_dir.join("NOTES.md"), "local notes\n").unwrap();
    discobot_tests::git(&workspace_dir, &["add", "NOTES.md"]);
    discobot_tests::git(&workspace_dir, &["commit", "-q", "-m", "Notes"]);
    let session = format!("loc-{}", uuid::Uuid::new_v4().simple());
    server
        .expect(
            Method::POST,
            &format!("{LOCAL}/sessions"),
            Some(json!({"id": session, "workspaceId": str_field(&workspace, "id")})),
            200,
        )
        .await;
    wait_status(&server, &session, "ready").await;
    let terminal_status: Value = server
        .expect(
            Method::GET,
            &format!("{LOCAL}/sessions/{session}/terminal/status"),
            None,
            200,
        )
        .await;
    assert_eq!(terminal_status["status"], "running", "{terminal_status}");
    assert_eq!(terminal_status["image"], "local", "{terminal_status}");
    assert!(
        !session_processes(&session).is_empty(),
        "the agent runs as a local process"
    );

    // Terminal: a command and its output in the workspace folder, a resize, the replay.
    terminal_round_trip(
        &server,
        &session,
        "echo hi-$((2+2)); cat NOTES.md",
        "local notes",
        "hi-4",
    )
    .await;

    // Delete: the session goes, and with it every process of its sandbox.
    delete_session_and_wait(&server, &session, Duration::from_secs(60)).await;
    wait_until(
        Duration::from_secs(10),
        "no process of the session",
        || async { session_processes(&session).is_empty().then_some(()) },
    )
    .await;
    let (status, _) = server
        .get(&format!("{LOCAL}/sessions/{session}/terminal/status"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await.unwrap();
}

/// Stopping the server stops the agents it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_shutdown_stops_local_agents() {
    agent_binary();
    let mut options = ServerOptions::new(Backend::Sqlite);
    options.docker = true;
    options.extra_args = vec!["--sandbox-provider".into(), "local".into()];
    let server = TestServer::start_with(options)
        .await
        .expect("server starts");
    let dir = tempfile::tempdir().unwrap();
    let workspace = server
        .ready_workspace(
            "local",
            json!({"path": dir.path().join("ws").display().to_string()}),
        )
        .await;
    let session = format!("down-{}", uuid::Uuid::new_v4().simple());
    server
        .expect(
            Method::POST,
            &format!("{LOCAL}/sessions"),
            Some(json!({"id": session, "workspaceId": str_field(&workspace, "id")})),
            200,
        )
        .await;
    wait_status(&server, &session, "ready").await;
    assert!(!session_processes(&session).is_empty());
    server.stop().await.unwrap();
    assert!(
        session_processes(&session).is_empty(),
        "no agent outlives the server"
    );
}

/// A server process, killed when dropped, so a failing test does not leave it running.
struct ServerProcess(std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server binary cargo built next to the test binaries, started as a process of its own.
fn spawn_server(data_dir: &std::path::Path, port: u16, args: &[&str]) -> ServerProcess {
    let exe = std::env::current_exe().unwrap();
    let binary = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("discobot-server");
    assert!(
        binary.is_file(),
        "build the server first ({})",
        binary.display()
    );
    let child = Command::new(binary)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--import-env-credentials=false",
            "--dispatcher-poll-interval",
            "200ms",
        ])
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        // No daemon: `auto` must fall back (a running daemon would win otherwise).
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env_remove("DISCOBOT_SANDBOX_PROVIDER")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    ServerProcess(child)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn get_json(client: &reqwest::Client, url: &str) -> Option<Value> {
    let reply = client.get(url).send().await.ok()?;
    if !reply.status().is_success() {
        return None;
    }
    reply.json().await.ok()
}

/// `auto` without a Docker daemon falls back to the local provider and says so; a server
/// killed with SIGKILL, which cannot stop its agents, still leaves none behind: they see their
/// stdin close and exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_to_local_and_agents_die_with_the_server() {
    agent_binary();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = spawn_server(data.path(), port, &["--sandbox-provider", "auto"]);
    let client = reqwest::Client::new();
    let status_url = format!("{base}/api/status");
    let status = wait_until(Duration::from_secs(30), "server status", || {
        get_json(&client, &status_url)
    })
    .await;
    assert_eq!(status["sandboxProvider"]["name"], "local", "{status}");
    assert_eq!(status["sandboxProvider"]["available"], true, "{status}");
    let note = status["messages"]
        .as_array()
        .and_then(|messages| {
            messages
                .iter()
                .find(|message| message["id"] == "sandbox-provider-choice")
        })
        .unwrap_or_else(|| panic!("no provider note: {status}"));
    assert_eq!(note["level"], "info", "{note}");
    let text = note["message"].as_str().unwrap_or_default();
    assert!(text.contains("no Docker daemon answers"), "{note}");
    assert_eq!(status["ok"], true, "{status}");

    // A running session with an open terminal, then SIGKILL.
    let dir = tempfile::tempdir().unwrap();
    let workspace: Value = client
        .post(format!("{base}{LOCAL}/workspaces"))
        .json(&json!({"path": dir.path().join("ws").display().to_string()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = format!("kill-{}", uuid::Uuid::new_v4().simple());
    let reply = client
        .post(format!("{base}{LOCAL}/sessions"))
        .json(&json!({"id": session, "workspaceId": str_field(&workspace, "id")}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    wait_until(Duration::from_secs(60), "session ready", || async {
        let body = get_json(&client, &format!("{base}{LOCAL}/sessions/{session}")).await?;
        assert_ne!(body["status"], "error", "{body}");
        (body["status"] == "ready").then_some(())
    })
    .await;
    let url = format!("ws://127.0.0.1:{port}{LOCAL}/sessions/{session}/terminal/ws");
    let (mut terminal, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("terminal upgrade");
    send(
        &mut terminal,
        json!({"type": "input", "data": "echo up-$((1+2))\n"}),
    )
    .await;
    read_until(&mut terminal, "up-3").await;
    assert!(
        session_processes(&session).len() >= 2,
        "the agent and the terminal's shell run"
    );
    server.0.kill().expect("SIGKILL");
    server.0.wait().unwrap();
    drop(terminal);
    wait_until(
        Duration::from_secs(15),
        "no process of the session",
        || async { session_processes(&session).is_empty().then_some(()) },
    )
    .await;
}
