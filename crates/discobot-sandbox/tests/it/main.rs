//! The Docker provider against a real Docker daemon: create → ready → exec → stop →
//! on-demand restart → remove with volumes, and nothing left behind; and the local provider
//! (`local.rs`, no Docker needed).
//!
//! The Docker tests need a daemon and the base image of `cargo xtask sandbox-image` (CI sets
//! both up and `DISCOBOT_DOCKER_TESTS=1`). Without them the tests fail and say why, unless
//! `DISCOBOT_SKIP_DOCKER=1`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use discobot_core::ids::{ProjectId, SessionId, WorkspaceId};
use discobot_core::model::{Session, SessionStatus, SourceType, Workspace, WorkspaceStatus};
use discobot_core::ports::{SandboxPort, SandboxState};
use discobot_sandbox::{DockerConfig, DockerProvider, LOCAL_BASE_IMAGE};

mod debug_proxy;
mod local;

const TEST_IMAGE: &str = "discobot-sandbox:it";

/// The provider, or `None` when Docker tests are explicitly skipped.
async fn provider() -> Option<Arc<DockerProvider>> {
    if std::env::var("DISCOBOT_DOCKER_TESTS").as_deref() != Ok("1") {
        if std::env::var("DISCOBOT_SKIP_DOCKER").as_deref() == Ok("1") {
            eprintln!("skipping: DISCOBOT_SKIP_DOCKER=1");
            return None;
        }
        panic!(
            "Docker tests need a daemon and the sandbox base image: run them through \
             `cargo xtask ci` (which sets DISCOBOT_DOCKER_TESTS=1), or set DISCOBOT_SKIP_DOCKER=1"
        );
    }
    let config = DockerConfig {
        image: TEST_IMAGE.into(),
        base_image: LOCAL_BASE_IMAGE.into(),
        agent_binary: Some(agent_binary()),
        memory_mb: 512,
        cpus: 1.0,
        privileged: false,
        network: None,
        health_timeout: Duration::from_secs(30),
    };
    Some(
        DockerProvider::connect(config)
            .await
            .expect("Docker answers"),
    )
}

/// `target/<profile>/discobot-agent`, built by the workspace build that runs these tests.
fn agent_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let binary = profile_dir.join("discobot-agent");
    assert!(
        binary.is_file(),
        "build the agent first: cargo build -p discobot-agent-bin ({})",
        binary.display()
    );
    binary
}

fn fixtures(workspace_dir: &std::path::Path) -> (Session, Workspace) {
    let now = Utc::now();
    let id = format!("it-{}", uuid::Uuid::new_v4().simple());
    let workspace = Workspace {
        id: WorkspaceId::generate(),
        project_id: ProjectId::new("it-project"),
        path: workspace_dir.display().to_string(),
        display_name: None,
        source_type: SourceType::Local,
        provider: String::new(),
        auto_generated: false,
        status: WorkspaceStatus::Ready,
        error_message: None,
        work_dir: Some(workspace_dir.display().to_string()),
        created_at: now,
        updated_at: now,
    };
    let session = Session {
        id: SessionId::new(id),
        project_id: workspace.project_id.clone(),
        workspace_id: workspace.id.clone(),
        name: String::new(),
        display_name: None,
        description: None,
        status: SessionStatus::Initializing,
        commit_status: None,
        commit_operation: None,
        commit_error: None,
        base_commit: None,
        applied_commit: None,
        error_message: None,
        workspace_path: workspace.work_dir.clone(),
        workspace_commit: None,
        chat_settings: Default::default(),
        created_at: now,
        updated_at: now,
    };
    (session, workspace)
}

fn args(command: &[&str]) -> Vec<String> {
    command.iter().map(|arg| arg.to_string()).collect()
}

fn docker(args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn sandbox_lifecycle() {
    let Some(provider) = provider().await else {
        return;
    };
    let workspace_dir = tempfile::tempdir().unwrap();
    std::fs::write(workspace_dir.path().join("hello.txt"), "from the host\n").unwrap();
    let (session, workspace) = fixtures(workspace_dir.path());
    let name = DockerProvider::container_name(&session.id);

    provider
        .ensure_running(&session, &workspace)
        .await
        .expect("sandbox starts");
    let info = provider
        .get(&session.id)
        .await
        .unwrap()
        .expect("sandbox exists");
    assert_eq!(info.state, SandboxState::Running);
    assert_eq!(info.image, TEST_IMAGE);
    assert!(provider.status().await.available);

    // The workspace is there, read-only; the tools are installed.
    let output = provider
        .exec(&session.id, &args(&["cat", "/.workspace/hello.txt"]))
        .await
        .unwrap();
    assert_eq!(
        (output.exit_code, output.stdout.as_slice()),
        (0, b"from the host\n".as_slice())
    );
    let output = provider
        .exec(
            &session.id,
            &args(&["sh", "-c", "echo x > /.workspace/new"]),
        )
        .await
        .unwrap();
    assert_ne!(output.exit_code, 0, "the workspace mount is read-only");
    assert!(!workspace_dir.path().join("new").exists());
    for tool in [
        ["git", "--version"],
        ["rg", "--version"],
        ["bash", "--version"],
    ] {
        let output = provider.exec(&session.id, &args(&tool)).await.unwrap();
        assert_eq!(
            output.exit_code,
            0,
            "{tool:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let output = provider
        .exec(
            &session.id,
            &args(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
        )
        .await
        .unwrap();
    assert_eq!(output.exit_code, 3);
    assert_eq!(output.stdout, b"out\n");
    assert_eq!(output.stderr, b"err\n");

    // The container gets only the salted hash; the raw secret opens the agent.
    let (base, secret) = provider.agent_endpoint(&session.id).await.unwrap();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let output = provider
        .exec(&session.id, &args(&["printenv", "DISCOBOT_SECRET"]))
        .await
        .unwrap();
    let hash = String::from_utf8(output.stdout).unwrap();
    assert!(
        hash.contains(':') && !hash.contains(&secret),
        "the container sees only the hash"
    );
    let client = reqwest::Client::new();
    let user = client.get(format!("{base}/user")).send().await.unwrap();
    assert_eq!(user.status(), 401);
    let user = client
        .get(format!("{base}/user"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(user.status(), 200);

    // Not privileged, no Docker socket inside, limits applied.
    let (_, privileged) = docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.Privileged}} {{.HostConfig.Memory}}",
        &name,
    ]);
    assert_eq!(privileged, format!("false {}", 512 * 1024 * 1024));
    let output = provider
        .exec(&session.id, &args(&["test", "-e", "/var/run/docker.sock"]))
        .await
        .unwrap();
    assert_ne!(output.exit_code, 0);

    // Stop, then an on-demand restart keeps the data volume.
    provider
        .exec(
            &session.id,
            &args(&["sh", "-c", "echo kept > /.data/marker"]),
        )
        .await
        .unwrap();
    provider
        .stop(&session.id, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        provider.get(&session.id).await.unwrap().unwrap().state,
        SandboxState::Stopped
    );
    provider
        .ensure_running(&session, &workspace)
        .await
        .expect("restart");
    let output = provider
        .exec(&session.id, &args(&["cat", "/.data/marker"]))
        .await
        .unwrap();
    assert_eq!(output.stdout, b"kept\n");

    // Remove with volumes: nothing of the session is left.
    provider.remove(&session.id, true).await.unwrap();
    assert!(provider.get(&session.id).await.unwrap().is_none());
    let (found, _) = docker(&[
        "volume",
        "inspect",
        &format!("discobot-data-{}", session.id),
    ]);
    assert!(!found, "the data volume is gone");
    provider
        .remove(&session.id, true)
        .await
        .expect("removing twice is fine");
    let _ = docker(&["volume", "rm", "-f", "discobot-cache-it-project"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn list_shows_managed_sandboxes() {
    let Some(provider) = provider().await else {
        return;
    };
    let workspace_dir = tempfile::tempdir().unwrap();
    let (session, workspace) = fixtures(workspace_dir.path());
    provider.ensure_running(&session, &workspace).await.unwrap();
    let listed: HashMap<_, _> = provider
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|info| (info.session_id.clone(), info))
        .collect();
    assert_eq!(
        listed.get(&session.id).map(|info| info.state),
        Some(SandboxState::Running)
    );
    provider.remove(&session.id, true).await.unwrap();
    let listed = provider.list().await.unwrap();
    assert!(listed.iter().all(|info| info.session_id != session.id));
    let _ = docker(&["volume", "rm", "-f", "discobot-cache-it-project"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn create_then_start() {
    let Some(provider) = provider().await else {
        return;
    };
    let workspace_dir = tempfile::tempdir().unwrap();
    let (session, workspace) = fixtures(workspace_dir.path());
    provider
        .create(&session, &workspace)
        .await
        .expect("created");
    let info = provider.get(&session.id).await.unwrap().expect("exists");
    assert_eq!(info.state, SandboxState::Created);
    let again = provider.create(&session, &workspace).await.unwrap_err();
    assert_eq!(again.kind, discobot_core::ErrorKind::Conflict);
    provider
        .start(&session.id)
        .await
        .expect("started and healthy");
    assert_eq!(
        provider.get(&session.id).await.unwrap().unwrap().state,
        SandboxState::Running
    );
    provider
        .start(&session.id)
        .await
        .expect("starting a running sandbox is fine");
    provider.remove(&session.id, true).await.unwrap();
    let _ = docker(&["volume", "rm", "-f", "discobot-cache-it-project"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_stream_pipes_input_and_output() {
    let Some(provider) = provider().await else {
        return;
    };
    let workspace_dir = tempfile::tempdir().unwrap();
    let (session, workspace) = fixtures(workspace_dir.path());
    provider.ensure_running(&session, &workspace).await.unwrap();
    let request = discobot_core::ports::ExecStreamRequest {
        command: args(&["sh", "-c", "tr a-z A-Z; echo done-$X"]),
        tty: false,
        user: None,
        env: vec![("X".into(), "7".into())],
        working_dir: Some("/.workspace".into()),
    };
    let mut stream = provider.exec_stream(&session.id, request).await.unwrap();
    assert!(stream.replay.is_empty());
    stream.control.write(b"piped text\n").await.unwrap();
    stream.control.close_input().await.unwrap();
    let mut seen = Vec::new();
    while let Some(chunk) =
        tokio::time::timeout(Duration::from_secs(10), stream.output.next_chunk())
            .await
            .expect("output in time")
    {
        seen.extend(chunk);
    }
    assert_eq!(String::from_utf8_lossy(&seen), "PIPED TEXT\ndone-7\n");
    provider.remove(&session.id, true).await.unwrap();
    let _ = docker(&["volume", "rm", "-f", "discobot-cache-it-project"]);
}
