//! The local provider with the real agent binary as a child process: start → health and
//! auth → exec on the host → terminal round trip → stop → restart → remove, with no process
//! left behind. Needs no Docker.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use discobot_core::ErrorKind;
use discobot_core::ids::SessionId;
use discobot_core::ports::{PtyRequest, SandboxPort, SandboxState, TerminalAttachment};
use discobot_sandbox::{LOCAL_IMAGE, LocalConfig, LocalProvider};

use super::{agent_binary, args, fixtures};

/// Where the provider keeps each session's agent data (and working copy).
fn local_data_dir() -> PathBuf {
    std::env::temp_dir().join(format!("discobot-local-it-{}", std::process::id()))
}

fn provider_with(binary: Option<PathBuf>) -> Arc<LocalProvider> {
    LocalProvider::new(LocalConfig {
        agent_binary: binary,
        health_timeout: Duration::from_secs(30),
        reason: Some("testing".into()),
        data_dir: local_data_dir(),
    })
    .unwrap()
}

/// A temporary git repository with one committed file, and its resolved path.
fn git_workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "from the host\n").unwrap();
    for command in [
        &["init", "-q"][..],
        &["add", "hello.txt"],
        &[
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@localhost",
            "commit",
            "-qm",
            "hello",
        ],
    ] {
        let status = std::process::Command::new("git")
            .args(command)
            .current_dir(dir.path())
            .status()
            .expect("git");
        assert!(status.success());
    }
    let resolved = dir.path().canonicalize().unwrap();
    (dir, resolved)
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

async fn assert_gone(pid: u32) {
    for _ in 0..200 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("process {pid} is still there");
}

/// Reads terminal output until it contains `needle`; returns everything read.
async fn read_until(attachment: &mut TerminalAttachment, needle: &str) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, attachment.output.next_chunk())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in terminal output: {seen:?}"))
            .unwrap_or_else(|| panic!("the terminal ended before {needle:?}: {seen:?}"));
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

fn terminal_request() -> PtyRequest {
    PtyRequest {
        rows: 24,
        cols: 80,
        user: None,
        env: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn local_sandbox_lifecycle() {
    let provider = provider_with(Some(agent_binary()));
    let status = provider.status().await;
    assert!(status.available, "{status:?}");
    assert_eq!(status.state, "ready");
    assert_eq!(status.message.as_deref(), Some("testing"));
    assert_eq!(provider.name(), "local");

    let (_dir, workspace_dir) = git_workspace();
    let (session, workspace) = fixtures(&workspace_dir);
    provider
        .ensure_running(&session, &workspace)
        .await
        .expect("the agent starts");
    let info = provider.get(&session.id).await.unwrap().expect("sandbox");
    assert_eq!(info.state, SandboxState::Running);
    assert_eq!(info.image, LOCAL_IMAGE);
    assert!(info.started_at.is_some());
    let pid = provider.agent_pid(&session.id).expect("agent pid");
    assert!(alive(pid));
    // Asking again while it runs is a no-op.
    provider.ensure_running(&session, &workspace).await.unwrap();
    assert_eq!(provider.agent_pid(&session.id), Some(pid));

    // Health and auth through the endpoint; the process only has the salted hash.
    let (base, secret) = provider.agent_endpoint(&session.id).await.unwrap();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{base}/health"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // The agent has a writable data dir of its own: its thread store works.
    let threads = client
        .get(format!("{base}/threads"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(
        threads.status(),
        200,
        "{}",
        threads.text().await.unwrap_or_default()
    );
    let user = client
        .get(format!("{base}/user"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(user.status(), 200);
    let user = client.get(format!("{base}/user")).send().await.unwrap();
    assert_eq!(user.status(), 401);
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ: Vec<String> = environ
        .split(|byte| *byte == 0)
        .map(|var| String::from_utf8_lossy(var).into_owned())
        .collect();
    let hash = environ
        .iter()
        .find_map(|var| var.strip_prefix("DISCOBOT_SECRET="))
        .expect("DISCOBOT_SECRET set");
    assert!(
        hash.contains(':') && !hash.contains(&secret),
        "only the hash"
    );
    let origin = format!("WORKSPACE_ORIGIN_PATH={}", workspace_dir.display());
    assert!(environ.contains(&origin), "{environ:?}");
    assert!(environ.contains(&"DISCOBOT_HOST=127.0.0.1".to_owned()));
    assert!(environ.contains(&format!("DISCOBOT_SESSION_ID={}", session.id)));
    assert!(environ.contains(&format!("SESSION_ID={}", session.id)));

    // Commands run on the host, in the agent's clone of the workspace folder.
    let agent_cwd = local_data_dir()
        .canonicalize()
        .unwrap()
        .join(session.id.as_str())
        .join("workspace");
    assert!(
        environ.iter().any(|var| var
            .strip_prefix("DISCOBOT_AGENT_CWD=")
            .is_some_and(|dir| Path::new(dir).ends_with(format!("{}/workspace", session.id)))),
        "{environ:?}"
    );
    let output = provider.exec(&session.id, &args(&["pwd"])).await.unwrap();
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("{}\n", agent_cwd.display())
    );
    let output = provider
        .exec(&session.id, &args(&["cat", "hello.txt"]))
        .await
        .unwrap();
    assert_eq!(output.stdout, b"from the host\n");
    provider
        .exec(&session.id, &args(&["sh", "-c", "echo x > made-here.txt"]))
        .await
        .unwrap();
    assert!(agent_cwd.join("made-here.txt").is_file());
    assert!(
        !workspace_dir.join("made-here.txt").exists(),
        "the workspace folder is only read"
    );
    let output = provider
        .exec(
            &session.id,
            &args(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            output.exit_code,
            output.stdout.as_slice(),
            output.stderr.as_slice()
        ),
        (3, b"out\n".as_slice(), b"err\n".as_slice())
    );
    let error = provider.exec(&session.id, &[]).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidInput);

    // Terminal: a command and its output, a resize, the replay on reconnect.
    let terminals = provider.terminals().expect("terminals");
    let mut terminal = terminals
        .attach(&session.id, "t:default", terminal_request())
        .await
        .unwrap();
    terminal.control.write(b"echo hi-$((2+2))\n").await.unwrap();
    read_until(&mut terminal, "hi-4").await;
    terminal.control.resize(40, 120).await.unwrap();
    terminal
        .control
        .write(b"echo \"size=$(stty size) dir=$(pwd)\"\n")
        .await
        .unwrap();
    // The typed line echoes unexpanded: only the command's output matches.
    let expanded = format!("size=40 120 dir={}", agent_cwd.display());
    read_until(&mut terminal, &expanded).await;
    drop(terminal);
    let mut terminal = terminals
        .attach(&session.id, "t:default", terminal_request())
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&terminal.replay).contains("hi-4"),
        "the replay has the earlier output"
    );
    terminal
        .control
        .write(b"echo again-$((1+1))\n")
        .await
        .unwrap();
    read_until(&mut terminal, "again-2").await;
    let error = terminals
        .attach(
            &session.id,
            "t:root",
            PtyRequest {
                user: Some("nobody-special".into()),
                ..terminal_request()
            },
        )
        .await
        .err()
        .expect("another user is refused");
    assert_eq!(error.kind, ErrorKind::InvalidInput);

    // Stop: the agent goes, the terminal ends, the state says stopped.
    provider
        .stop(&session.id, Duration::from_secs(5))
        .await
        .unwrap();
    assert_gone(pid).await;
    let info = provider
        .get(&session.id)
        .await
        .unwrap()
        .expect("still known");
    assert_eq!(info.state, SandboxState::Stopped, "{info:?}");
    assert!(info.stopped_at.is_some());
    assert_eq!(info.error, None);
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while terminal.output.next_chunk().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the terminal's output ends with the sandbox");
    assert!(provider.exec(&session.id, &args(&["true"])).await.is_err());
    assert!(provider.agent_endpoint(&session.id).await.is_err());
    provider
        .stop(&session.id, Duration::from_secs(5))
        .await
        .expect("stopping twice is fine");

    // On-demand restart: a new process, the same secret.
    provider
        .ensure_running(&session, &workspace)
        .await
        .expect("restart");
    let restarted = provider.agent_pid(&session.id).expect("agent pid");
    assert_ne!(restarted, pid);
    assert_eq!(
        provider.get(&session.id).await.unwrap().unwrap().state,
        SandboxState::Running
    );
    let (base, again) = provider.agent_endpoint(&session.id).await.unwrap();
    assert_eq!(again, secret);
    let health = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let listed = provider.list().await.unwrap();
    assert!(listed.iter().any(|info| info.session_id == session.id));

    // Remove: forgotten, and no process left.
    provider.remove(&session.id, true).await.unwrap();
    assert!(provider.get(&session.id).await.unwrap().is_none());
    assert_gone(restarted).await;
    assert!(provider.list().await.unwrap().is_empty());
    provider
        .remove(&session.id, true)
        .await
        .expect("removing twice is fine");
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_stops_every_agent() {
    let provider = provider_with(Some(agent_binary()));
    let (_dir, workspace_dir) = git_workspace();
    let mut pids = Vec::new();
    for _ in 0..2 {
        let (session, workspace) = fixtures(&workspace_dir);
        provider.ensure_running(&session, &workspace).await.unwrap();
        pids.push(provider.agent_pid(&session.id).unwrap());
    }
    provider.shutdown(Duration::from_secs(5)).await;
    for pid in pids {
        assert_gone(pid).await;
    }
    assert!(provider.list().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_provider_kills_its_agents() {
    let provider = provider_with(Some(agent_binary()));
    let (_dir, workspace_dir) = git_workspace();
    let (session, workspace) = fixtures(&workspace_dir);
    provider.ensure_running(&session, &workspace).await.unwrap();
    let pid = provider.agent_pid(&session.id).unwrap();
    drop(provider);
    assert_gone(pid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_binary_makes_the_provider_unavailable() {
    let missing = PathBuf::from("/nonexistent/discobot-agent");
    let provider = provider_with(Some(missing));
    let status = provider.status().await;
    assert!(!status.available);
    assert_eq!(status.state, "not_available");
    let message = status.message.unwrap();
    assert!(message.contains("/nonexistent/discobot-agent"), "{message}");
    let (_dir, workspace_dir) = git_workspace();
    let (session, workspace) = fixtures(&workspace_dir);
    let error = provider
        .ensure_running(&session, &workspace)
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unavailable);

    let provider = provider_with(None);
    assert!(!provider.status().await.available);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_that_dies_fails_with_its_exit_status_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bad-agent");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"cannot do it on port $DISCOBOT_PORT\" >&2\nexit 7\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let provider = provider_with(Some(script));
    let (_ws, workspace_dir) = git_workspace();
    let (session, workspace) = fixtures(&workspace_dir);
    let error = provider
        .ensure_running(&session, &workspace)
        .await
        .unwrap_err();
    assert!(
        error.message.contains("exit status: 7") && error.message.contains("cannot do it"),
        "{}",
        error.message
    );
    let info = provider.get(&session.id).await.unwrap().unwrap();
    assert_eq!(info.state, SandboxState::Failed);
    assert!(info.error.unwrap().contains("cannot do it"));
    provider.remove(&session.id, false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_workspace_folder_is_refused() {
    let provider = provider_with(Some(agent_binary()));
    let (session, workspace) = fixtures(Path::new("/nonexistent/workspace"));
    let error = provider
        .ensure_running(&session, &workspace)
        .await
        .unwrap_err();
    assert!(error.message.contains("/nonexistent/workspace"), "{error}");
    assert!(
        provider
            .get(&SessionId::new("nope"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn create_then_start() {
    let provider = provider_with(Some(agent_binary()));
    let (_dir, workspace_dir) = git_workspace();
    let (session, workspace) = fixtures(&workspace_dir);
    let error = provider.start(&session.id).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound, "{error}");
    provider
        .create(&session, &workspace)
        .await
        .expect("created");
    let info = provider.get(&session.id).await.unwrap().expect("exists");
    assert_eq!(info.state, SandboxState::Created);
    assert_eq!(provider.agent_pid(&session.id), None, "not started");
    let again = provider.create(&session, &workspace).await.unwrap_err();
    assert_eq!(again.kind, ErrorKind::Conflict);
    provider
        .start(&session.id)
        .await
        .expect("started and healthy");
    let pid = provider.agent_pid(&session.id).expect("running");
    assert_eq!(
        provider.get(&session.id).await.unwrap().unwrap().state,
        SandboxState::Running
    );
    provider
        .start(&session.id)
        .await
        .expect("starting a running sandbox is fine");
    assert_eq!(provider.agent_pid(&session.id), Some(pid));
    provider.remove(&session.id, true).await.unwrap();
    assert_gone(pid).await;
}
