//! The debug Docker proxy with the real `docker` CLI against a real daemon: a project's
//! sandbox is listed, inspected and exec'ed into (with stdin and a TTY); other containers,
//! images and `docker run` are refused; one request per connection.

use std::time::Duration;

use discobot_sandbox::{DebugDockerConfig, DebugDockerServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The image `cargo xtask sandbox-image` builds; the containers only run `sleep`.
const IMAGE: &str = concat!("discobot-sandbox:", env!("CARGO_PKG_VERSION"));

fn docker_tests_enabled() -> bool {
    if std::env::var("DISCOBOT_DOCKER_TESTS").as_deref() == Ok("1") {
        return true;
    }
    if std::env::var("DISCOBOT_SKIP_DOCKER").as_deref() == Ok("1") {
        eprintln!("skipping: DISCOBOT_SKIP_DOCKER=1");
        return false;
    }
    panic!(
        "Docker tests need a daemon and the sandbox image: run them through `cargo xtask ci` \
         (which sets DISCOBOT_DOCKER_TESTS=1), or set DISCOBOT_SKIP_DOCKER=1"
    );
}

/// Containers removed when the test ends, passed or not.
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f"])
            .args(&self.0)
            .output();
    }
}

/// `(success, stdout, stderr)` of the docker CLI, talking to `host` when given.
async fn docker(host: Option<&str>, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut command = tokio::process::Command::new("docker");
    command
        .args(args)
        .env_remove("DOCKER_CONTEXT")
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(host) = host {
        command.env("DOCKER_HOST", host);
    }
    let mut child = command.spawn().expect("docker CLI");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).await.unwrap();
        drop(pipe);
    }
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("docker CLI finished in time")
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    )
}

/// Sends `raw` on one connection and reads everything until the proxy closes it.
async fn raw_exchange(port: u16, raw: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the proxy closes the connection after one answer")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn debug_docker_proxy_serves_one_projects_sandboxes() {
    if !docker_tests_enabled() {
        return;
    }
    let (found, _, _) = docker(None, &["image", "inspect", IMAGE], None).await;
    assert!(
        found,
        "build the sandbox image first: cargo xtask sandbox-image"
    );

    let run = uuid::Uuid::new_v4().simple().to_string();
    let project = format!("dbg-{}", &run[..12]);
    let inside = format!("discobot-it-dbg-in-{run}");
    let outside = format!("discobot-it-dbg-out-{run}");
    let other = format!("discobot-it-dbg-other-{run}");
    let _containers = Containers(vec![inside.clone(), outside.clone(), other.clone()]);
    let label = format!("discobot.project.id={project}");
    let other_label = format!("discobot.project.id={project}-other");
    for (name, labels) in [
        (&inside, vec!["--label", label.as_str()]),
        (&outside, vec![]),
        (&other, vec!["--label", other_label.as_str()]),
    ] {
        let mut args = vec!["run", "-d", "--init", "--name", name.as_str()];
        args.extend(labels);
        args.extend([IMAGE, "sleep", "300"]);
        let (started, _, stderr) = docker(None, &args, None).await;
        assert!(started, "docker run {name}: {stderr}");
    }

    let server = DebugDockerServer::start(DebugDockerConfig {
        port: 0,
        project: project.clone(),
        socket: None,
    })
    .await
    .expect("the proxy starts");
    let address = server.local_addr();
    assert!(address.ip().is_loopback());
    let host = format!("tcp://{address}");

    // `docker ps` shows the project's sandbox only, whatever filters are given.
    let (ok, names, stderr) = docker(Some(&host), &["ps", "--format", "{{.Names}}"], None).await;
    assert!(ok, "docker ps: {stderr}");
    assert_eq!(names.lines().collect::<Vec<_>>(), [inside.as_str()]);
    let (ok, names, stderr) = docker(
        Some(&host),
        &[
            "ps",
            "-a",
            "--filter",
            &format!("label={other_label}"),
            "--format",
            "{{.Names}}",
        ],
        None,
    )
    .await;
    assert!(ok, "docker ps --filter: {stderr}");
    assert_eq!(names, "", "a filter cannot widen the project's filter");

    // Inspect and exec, by name and by id; stdin and a TTY through the hijacked stream.
    let (ok, id, stderr) = docker(Some(&host), &["inspect", "-f", "{{.Id}}", &inside], None).await;
    assert!(ok, "docker inspect: {stderr}");
    let (ok, out, stderr) = docker(Some(&host), &["exec", &inside, "echo", "hi"], None).await;
    assert!(ok, "docker exec: {stderr}");
    assert_eq!(out, "hi");
    let (ok, out, stderr) = docker(
        Some(&host),
        &["exec", "-i", &id[..12], "sh", "-c", "cat; echo done"],
        Some("piped in\n"),
    )
    .await;
    assert!(ok, "docker exec -i: {stderr}");
    assert_eq!(out, "piped in\ndone");
    let (ok, out, stderr) = docker(Some(&host), &["exec", "-t", &inside, "tty"], None).await;
    assert!(ok, "docker exec -t: {stderr}");
    assert!(out.starts_with("/dev/pts/"), "{out}");
    let (ok, out, _) = docker(
        Some(&host),
        &["exec", &inside, "sh", "-c", "echo err >&2; exit 3"],
        None,
    )
    .await;
    assert!(!ok, "the exit code comes through");
    assert_eq!(out, "");

    // Everything else is refused.
    for name in [&outside, &other] {
        let (ok, _, stderr) = docker(Some(&host), &["inspect", name], None).await;
        assert!(!ok, "docker inspect {name} must fail");
        assert!(stderr.contains("is not a sandbox of project"), "{stderr}");
        let (ok, _, _) = docker(Some(&host), &["exec", name, "true"], None).await;
        assert!(!ok, "docker exec {name} must fail");
    }
    let (ok, _, stderr) = docker(Some(&host), &["images"], None).await;
    assert!(!ok, "docker images must fail");
    assert!(stderr.contains("is not allowed"), "{stderr}");
    let (ok, _, stderr) = docker(Some(&host), &["run", "--rm", IMAGE, "true"], None).await;
    assert!(!ok, "docker run must fail");
    assert!(stderr.contains("is not allowed"), "{stderr}");
    let (ok, _, stderr) = docker(
        Some(&host),
        &["exec", "--privileged", &inside, "true"],
        None,
    )
    .await;
    assert!(!ok, "a privileged exec must fail");
    assert!(stderr.contains("privileged"), "{stderr}");
    let (ok, _, _) = docker(Some(&host), &["network", "ls"], None).await;
    assert!(!ok, "docker network ls must fail");

    // One request per connection: a second request on it never reaches the daemon, even
    // after a request that asked for an upgrade it does not get.
    let port = address.port();
    let answer = raw_exchange(
        port,
        "GET /_ping HTTP/1.1\r\nHost: x\r\n\r\nGET /images/json HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    let answer = raw_exchange(
        port,
        &format!(
            "GET /containers/{inside}/json HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
             Upgrade: tcp\r\n\r\nGET /images/json HTTP/1.1\r\nHost: x\r\n\r\n"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    let answer = raw_exchange(port, "GET /containers/../images/json HTTP/1.1\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");

    server.stop().await;
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "nothing listens after stop"
    );
}
