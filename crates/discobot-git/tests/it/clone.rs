//! `clone_repo` from `file://` URLs: a full clone, reuse, refusal and cleanup.

use discobot_core::ErrorKind;
use discobot_core::ports::GitPort;

use crate::util::{adapter, file_url, fixture_repo, git, git_raw};

#[tokio::test]
async fn clones_with_same_head_and_checked_out_worktree() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream = tmp.path().join("upstream");
    let head = fixture_repo(&upstream);
    let url = file_url(&upstream);
    // The parents of the destination do not exist yet.
    let dest = tmp.path().join("ws/p1/clone");
    adapter(tmp.path()).clone_repo(&url, &dest).await.unwrap();

    assert_eq!(git(&dest, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(&dest, &["rev-list", "--count", "HEAD"]), "2");
    assert_eq!(git(&dest, &["symbolic-ref", "HEAD"]), "refs/heads/main");
    assert_eq!(git(&dest, &["remote", "get-url", "origin"]), url);
    assert_eq!(
        std::fs::read_to_string(dest.join("README.md")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("src/lib.rs")).unwrap(),
        "pub fn x() {}\n"
    );
    assert_eq!(git(&dest, &["status", "--porcelain"]), "");
    git(&dest, &["fsck", "--no-progress"]);
}

#[tokio::test]
async fn second_clone_to_same_dest_is_a_no_op() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream = tmp.path().join("upstream");
    let head = fixture_repo(&upstream);
    let url = file_url(&upstream);
    let dest = tmp.path().join("clone");
    let a = adapter(tmp.path());
    a.clone_repo(&url, &dest).await.unwrap();
    std::fs::write(dest.join("local-change.txt"), "keep me").unwrap();
    // Upstream moves on; a reuse must not fetch or touch the worktree.
    std::fs::write(upstream.join("third.txt"), "3").unwrap();
    git(&upstream, &["add", "-A"]);
    git(&upstream, &["commit", "-q", "-m", "third"]);

    a.clone_repo(&url, &dest).await.unwrap();
    assert_eq!(git(&dest, &["rev-parse", "HEAD"]), head);
    assert_eq!(
        std::fs::read_to_string(dest.join("local-change.txt")).unwrap(),
        "keep me"
    );
}

#[tokio::test]
async fn refuses_a_dest_holding_something_else() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream = tmp.path().join("upstream");
    fixture_repo(&upstream);
    let other = tmp.path().join("other");
    fixture_repo(&other);
    let a = adapter(tmp.path());

    // A clone of another repository.
    let dest = tmp.path().join("clone");
    a.clone_repo(&file_url(&other), &dest).await.unwrap();
    let err = a.clone_repo(&file_url(&upstream), &dest).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(
        err.message.contains("already holds a clone of"),
        "{}",
        err.message
    );

    // A directory with files in it.
    let full = tmp.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("x.txt"), "x").unwrap();
    let err = a.clone_repo(&file_url(&upstream), &full).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.message.contains("not empty"), "{}", err.message);
    assert_eq!(std::fs::read_dir(&full).unwrap().count(), 1);
}

#[tokio::test]
async fn clones_into_an_existing_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream = tmp.path().join("upstream");
    let head = fixture_repo(&upstream);
    let dest = tmp.path().join("empty");
    std::fs::create_dir(&dest).unwrap();
    adapter(tmp.path())
        .clone_repo(&file_url(&upstream), &dest)
        .await
        .unwrap();
    assert_eq!(git(&dest, &["rev-parse", "HEAD"]), head);
}

#[tokio::test]
async fn missing_remote_fails_clearly_and_leaves_no_dest() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("ws/clone");
    let a = adapter(tmp.path());
    let err = a
        .clone_repo("file:///nonexistent", &dest)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(
        err.message
            .starts_with("failed to clone file:///nonexistent: "),
        "{}",
        err.message
    );
    assert!(!dest.exists(), "partial clone left behind");

    // An existing empty destination stays, and stays empty.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    a.clone_repo("file:///nonexistent", &empty)
        .await
        .unwrap_err();
    assert!(empty.is_dir());
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);

    // A retry after the failure works.
    let upstream = tmp.path().join("upstream");
    fixture_repo(&upstream);
    a.clone_repo(&file_url(&upstream), &dest).await.unwrap();
    assert!(git_raw(&dest, &["rev-parse", "HEAD"]).status.success());
}

#[tokio::test]
async fn garbage_url_is_invalid_input() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("clone");
    let err = adapter(tmp.path()).clone_repo("", &dest).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    let err = adapter(tmp.path())
        .clone_repo("ht!tp://::", &dest)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{}", err.message);
    assert!(!dest.exists());
}
