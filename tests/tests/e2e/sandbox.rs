//! Sessions in real Docker sandboxes, through the HTTP API: create → ready → terminal round
//! trip (command, output, resize, replay on reconnect) → stop → on-demand restart → delete
//! with the volumes gone; and a server killed with SIGKILL reconciling sessions on restart.
//!
//! Needs a Docker daemon and the sandbox image (`cargo xtask sandbox-image`); `cargo xtask
//! ci` sets both up and `DISCOBOT_DOCKER_TESTS=1`. Without it these tests fail and say why,
//! unless `DISCOBOT_SKIP_DOCKER=1`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use discobot_tests::reqwest::{Method, StatusCode};
use discobot_tests::{Backend, ServerOptions, TestServer, json, str_field, wait_until};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{LOCAL, delete_session_and_wait};

pub(crate) fn docker_wanted() -> bool {
    if std::env::var("DISCOBOT_DOCKER_TESTS").as_deref() == Ok("1") {
        return true;
    }
    if std::env::var("DISCOBOT_SKIP_DOCKER").as_deref() == Ok("1") {
        return false;
    }
    panic!(
        "sandbox tests need Docker and the sandbox image: run them through `cargo xtask ci` \
         (it sets DISCOBOT_DOCKER_TESTS=1), or set DISCOBOT_SKIP_DOCKER=1 to skip them"
    );
}

pub(crate) fn docker(args: &[&str]) -> (bool, String) {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
    )
}

pub(crate) fn container(session: &str) -> String {
    format!("discobot-session-{session}")
}

pub(crate) async fn wait_status(server: &TestServer, session: &str, wanted: &str) -> Value {
    wait_until(
        Duration::from_secs(90),
        &format!("session {session} {wanted}"),
        || async {
            let (status, body) = server.get(&format!("{LOCAL}/sessions/{session}")).await;
            assert!(status == StatusCode::OK, "{status}: {body}");
            assert_ne!(body["status"], "error", "session failed: {body}");
            (body["status"] == wanted).then_some(body)
        },
    )
    .await
}

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn open_terminal(server: &TestServer, session: &str) -> Socket {
    let url = server
        .url(&format!(
            "{LOCAL}/sessions/{session}/terminal/ws?rows=24&cols=80"
        ))
        .replacen("http://", "ws://", 1);
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("terminal upgrade");
    socket
}

/// Reads output frames until their text contains `needle`; returns everything read.
pub(crate) async fn read_until(socket: &mut Socket, needle: &str) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains(needle) {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in terminal output: {seen:?}"))
            .expect("socket open")
            .expect("frame");
        if let Message::Text(text) = frame {
            let frame: Value = serde_json::from_str(&text).expect("JSON frame");
            assert_eq!(frame["type"], "output", "{frame}");
            seen.push_str(frame["data"].as_str().expect("string data"));
        }
    }
    seen
}

/// The terminal round trip every provider must pass: `command` prints `expected`; a resize
/// shows in `stty size`; reconnecting finds the same shell, replays `replayed` and takes
/// input again.
pub(crate) async fn terminal_round_trip(
    server: &TestServer,
    session: &str,
    command: &str,
    expected: &str,
    replayed: &str,
) {
    let mut terminal = open_terminal(server, session).await;
    send(
        &mut terminal,
        json!({"type": "input", "data": format!("{command}\n")}),
    )
    .await;
    read_until(&mut terminal, expected).await;
    send(
        &mut terminal,
        json!({"type": "resize", "data": {"rows": 40, "cols": 120}}),
    )
    .await;
    send(
        &mut terminal,
        json!({"type": "input", "data": "stty size\n"}),
    )
    .await;
    read_until(&mut terminal, "40 120").await;
    drop(terminal);
    let mut terminal = open_terminal(server, session).await;
    read_until(&mut terminal, replayed).await;
    send(
        &mut terminal,
        json!({"type": "input", "data": "echo again-$((3+4))\n"}),
    )
    .await;
    read_until(&mut terminal, "again-7").await;
}

pub(crate) async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .expect("send");
}

/// One test for both scenarios: they share project `local`'s cache volume, which each
/// removes at its end, so they must not run at the same time.
#[tokio::test(flavor = "multi_thread")]
async fn docker_sandboxes() {
    if !docker_wanted() {
        return;
    }
    session_sandbox_lifecycle().await;
    sigkill_then_reconcile().await;
}

async fn session_sandbox_lifecycle() {
    let mut options = ServerOptions::new(Backend::Sqlite);
    options.docker = true;
    let server = TestServer::start_with(options)
        .await
        .expect("server starts");
    let dir = tempfile::tempdir().unwrap();
    let workspace_dir = dir.path().join("ws");
    let workspace = server
        .ready_workspace(
            "local",
            json!({"path": workspace_dir.display().to_string()}),
        )
        .await;
    std::fs::write(
        workspace_dir.join("README.md"),
        "hello from the workspace\n",
    )
    .unwrap();
    let session = format!("sbx-{}", uuid::Uuid::new_v4().simple());
    server
        .expect(
            Method::POST,
            &format!("{LOCAL}/sessions"),
            Some(json!({"id": session, "workspaceId": str_field(&workspace, "id")})),
            200,
        )
        .await;
    wait_status(&server, &session, "ready").await;
    let (running, _) = docker(&["inspect", &container(&session)]);
    assert!(running, "the container exists");
    let status = server
        .expect(
            Method::GET,
            &format!("{LOCAL}/sessions/{session}/terminal/status"),
            None,
            200,
        )
        .await;
    assert_eq!(status["status"], "running", "{status}");

    // Credentials visible to the agent reach the shell's environment; the others never do.
    for (name, key, value, visible) in [
        ("Visible", "VISIBLE_TOKEN", "shown-to-agent", true),
        ("Hidden", "HIDDEN_TOKEN", "kept-from-agent", false),
    ] {
        server
            .expect(
                Method::POST,
                &format!("{LOCAL}/credentials"),
                Some(json!({"name": name, "authType": "api_key", "envVars": [{"key": key, "value": value}], "agentVisible": visible})),
                200,
            )
            .await;
    }

    // Terminal: the credentials visible to the agent are in the shell's environment.
    let mut terminal = open_terminal(&server, &session).await;
    send(
        &mut terminal,
        json!({"type": "input", "data": "echo \"env=[$VISIBLE_TOKEN][$HIDDEN_TOKEN]\"\n"}),
    )
    .await;
    let seen = read_until(&mut terminal, "env=[shown-to-agent][]").await;
    assert!(!seen.contains("kept-from-agent"), "{seen}");
    drop(terminal);
    terminal_round_trip(
        &server,
        &session,
        "echo marker-$((6*7)); cat /.workspace/README.md",
        "hello from the workspace",
        "marker-42",
    )
    .await;

    // Stopped behind our back: the next terminal request restarts it on demand.
    assert!(docker(&["stop", "-t", "1", &container(&session)]).0);
    // The provider's watch notices and the session says so.
    wait_until(Duration::from_secs(30), "session stopped", || async {
        let (_, body) = server.get(&format!("{LOCAL}/sessions/{session}")).await;
        (body["status"] == "stopped").then_some(())
    })
    .await;
    let reply = server
        .client()
        .get(server.url(&format!("{LOCAL}/sessions/{session}/terminal/status")))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let url = server
        .url(&format!("{LOCAL}/sessions/{session}/terminal/ws"))
        .replacen("http://", "ws://", 1);
    let refused = tokio_tungstenite::connect_async(url).await;
    assert!(
        refused.is_err(),
        "a stopped sandbox answers 503 before the upgrade"
    );
    wait_status(&server, &session, "ready").await;
    let mut terminal = open_terminal(&server, &session).await;
    send(
        &mut terminal,
        json!({"type": "input", "data": "echo back-$((2+3))\n"}),
    )
    .await;
    read_until(&mut terminal, "back-5").await;
    drop(terminal);

    // Delete: the container and its data volume go.
    delete_session_and_wait(&server, &session, Duration::from_secs(60)).await;
    assert!(
        !docker(&["inspect", &container(&session)]).0,
        "container removed"
    );
    assert!(
        !docker(&["volume", "inspect", &format!("discobot-data-{session}")]).0,
        "volume removed"
    );
    let volumes = server
        .expect(Method::GET, &format!("{LOCAL}/cache"), None, 200)
        .await;
    assert_eq!(
        volumes["volumes"][0]["name"], "discobot-cache-local",
        "{volumes}"
    );
    server
        .expect(Method::DELETE, &format!("{LOCAL}/cache"), None, 200)
        .await;
    let volumes = server
        .expect(Method::GET, &format!("{LOCAL}/cache"), None, 200)
        .await;
    assert_eq!(volumes["volumes"], json!([]), "{volumes}");
    server.stop().await.unwrap();
    assert_nothing_left(&[&session]);
}

/// A server process killed with SIGKILL while sessions run: after a restart, a session whose
/// container kept running is `ready`, one whose container was stopped meanwhile is `stopped`.
async fn sigkill_then_reconcile() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = spawn_server(data.path(), port);
    wait_healthy(&client, &base).await;
    let workspace: Value = client
        .post(format!("{base}{LOCAL}/workspaces"))
        .json(&json!({"path": dir.path().join("ws").display().to_string()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let workspace_id = str_field(&workspace, "id").to_owned();
    let sessions: Vec<String> = (0..2)
        .map(|n| format!("kill-{n}-{}", uuid::Uuid::new_v4().simple()))
        .collect();
    for session in &sessions {
        let reply = client
            .post(format!("{base}{LOCAL}/sessions"))
            .json(&json!({"id": session, "workspaceId": workspace_id}))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
    }
    for session in &sessions {
        wait_until(Duration::from_secs(90), "ready", || async {
            let body: Value = client
                .get(format!("{base}{LOCAL}/sessions/{session}"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (body["status"] == "ready").then_some(())
        })
        .await;
    }
    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    assert!(docker(&["stop", "-t", "1", &container(&sessions[1])]).0);

    let mut server = spawn_server(data.path(), port);
    wait_healthy(&client, &base).await;
    for (session, wanted) in [(&sessions[0], "ready"), (&sessions[1], "stopped")] {
        wait_until(
            Duration::from_secs(30),
            &format!("{session} {wanted}"),
            || async {
                let body: Value = client
                    .get(format!("{base}{LOCAL}/sessions/{session}"))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                (body["status"] == wanted).then_some(())
            },
        )
        .await;
    }
    for session in &sessions {
        client
            .delete(format!("{base}{LOCAL}/sessions/{session}"))
            .send()
            .await
            .unwrap();
    }
    for session in &sessions {
        wait_until(Duration::from_secs(60), "removed", || async {
            let reply = client
                .get(format!("{base}{LOCAL}/sessions/{session}"))
                .send()
                .await
                .ok()?;
            (reply.status() == StatusCode::NOT_FOUND).then_some(())
        })
        .await;
    }
    client
        .delete(format!("{base}{LOCAL}/cache"))
        .send()
        .await
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let ids: Vec<&str> = sessions.iter().map(String::as_str).collect();
    assert_nothing_left(&ids);
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The server binary cargo built next to this test binary.
pub(crate) fn spawn_server(data_dir: &std::path::Path, port: u16) -> Child {
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
    Command::new(binary)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--dispatcher-poll-interval",
            "200ms",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts")
}

pub(crate) async fn wait_healthy(client: &reqwest::Client, base: &str) {
    wait_until(Duration::from_secs(30), "server health", || async {
        let reply = client.get(format!("{base}/health")).send().await.ok()?;
        reply.status().is_success().then_some(())
    })
    .await;
}

/// No container or volume of these sessions is left.
pub(crate) fn assert_nothing_left(sessions: &[&str]) {
    for session in sessions {
        let (_, containers) = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=discobot.session.id={session}"),
        ]);
        assert!(
            containers.is_empty(),
            "containers of {session} left: {containers}"
        );
        let (_, volumes) = docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("label=discobot.session.id={session}"),
        ]);
        assert!(volumes.is_empty(), "volumes of {session} left: {volumes}");
    }
}
