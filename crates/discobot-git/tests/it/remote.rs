//! `check_remote`: a handshake and ref listing without cloning.

use discobot_core::ErrorKind;
use discobot_core::ports::GitPort;

use crate::util::{adapter, file_url, fixture_repo};

#[tokio::test]
async fn reachable_repository_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream = tmp.path().join("upstream");
    fixture_repo(&upstream);
    let a = adapter(tmp.path());
    a.check_remote(&file_url(&upstream)).await.unwrap();
    // A bare path is a local URL too.
    a.check_remote(&upstream.display().to_string())
        .await
        .unwrap();
    // Nothing was written next to it.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn missing_repository_is_a_remote_error() {
    let tmp = tempfile::tempdir().unwrap();
    let a = adapter(tmp.path());
    let err = a.check_remote("file:///nonexistent").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(
        err.message.contains("file:///nonexistent"),
        "{}",
        err.message
    );

    // A directory that exists but is not a repository.
    let err = a.check_remote(&file_url(tmp.path())).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);

    let err = a.check_remote("").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
}

/// Over a network transport (git://), where a missing repository is the server's answer.
#[tokio::test]
async fn git_daemon_remote_clone_and_missing_repo() {
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("served");
    let head = fixture_repo(&served.join("proj"));
    let daemon = crate::util::GitDaemon::start(&served);
    let a = adapter(tmp.path());

    a.check_remote(&daemon.url("proj")).await.unwrap();
    let err = a.check_remote(&daemon.url("missing")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(
        err.message.contains(&daemon.url("missing")),
        "{}",
        err.message
    );

    let dest = tmp.path().join("clone");
    a.clone_repo(&daemon.url("proj"), &dest).await.unwrap();
    assert_eq!(crate::util::git(&dest, &["rev-parse", "HEAD"]), head);

    let dest = tmp.path().join("clone-missing");
    let err = a
        .clone_repo(&daemon.url("missing"), &dest)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(!dest.exists());
}

/// Nothing listens on the port: a connection error, not a panic or a hang.
#[tokio::test]
async fn unreachable_host_is_a_remote_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let err = adapter(tmp.path())
        .check_remote(&format!("http://127.0.0.1:{port}/x.git"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
}
