//! `prepare_local`: new and empty directories become repositories with one empty commit.

use std::path::Path;
use std::process::Command;

use discobot_core::ErrorKind;
use discobot_core::ports::GitPort;

use crate::util::{adapter, git, listing};

/// The repository at `dir` has exactly one commit, "Initial commit", with an empty tree,
/// and a clean status; returns the author as `name <email>`.
fn assert_initial_commit(dir: &Path) -> String {
    assert_eq!(git(dir, &["rev-list", "--count", "HEAD"]), "1");
    assert_eq!(git(dir, &["log", "-1", "--format=%s"]), "Initial commit");
    assert_eq!(git(dir, &["log", "-1", "--format=%B"]), "Initial commit");
    assert_eq!(
        git(dir, &["rev-parse", "HEAD^{tree}"]),
        "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
    );
    assert_eq!(git(dir, &["status", "--porcelain"]), "");
    git(dir, &["fsck", "--strict", "--no-progress"]);
    let head = git(dir, &["symbolic-ref", "HEAD"]);
    let configured = git(dir, &["config", "--default", "main", "init.defaultBranch"]);
    assert_eq!(head, format!("refs/heads/{configured}"));
    git(dir, &["log", "-1", "--format=%an <%ae>|%cn <%ce>"])
}

/// What git itself would use as the identity in `dir`, or our defaults.
fn expected_identity(dir: &Path) -> String {
    let get = |key: &str| {
        let out = Command::new("git")
            .current_dir(dir)
            .args(["config", key])
            .output()
            .unwrap();
        let v = String::from_utf8(out.stdout).unwrap().trim().to_string();
        (!v.is_empty()).then_some(v)
    };
    let name = get("user.name").unwrap_or_else(|| "Discobot".into());
    let email = get("user.email").unwrap_or_else(|| "discobot@localhost".into());
    format!("{name} <{email}>|{name} <{email}>")
}

#[tokio::test]
async fn new_directory_gets_repo_and_initial_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fresh");
    adapter(tmp.path()).prepare_local(&dir).await.unwrap();
    assert!(dir.join(".git").is_dir());
    let who = assert_initial_commit(&dir);
    assert_eq!(who, expected_identity(&dir));
}

#[tokio::test]
async fn empty_directory_gets_repo_and_initial_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("empty");
    std::fs::create_dir(&dir).unwrap();
    adapter(tmp.path()).prepare_local(&dir).await.unwrap();
    assert_initial_commit(&dir);
}

#[tokio::test]
async fn tilde_path_is_expanded() {
    let tmp = tempfile::tempdir().unwrap();
    adapter(tmp.path())
        .prepare_local(Path::new("~/via-tilde"))
        .await
        .unwrap();
    assert_initial_commit(&tmp.path().join("via-tilde"));
}

#[tokio::test]
async fn existing_repo_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let head = crate::util::fixture_repo(&dir);
    let before = listing(&dir);
    adapter(tmp.path()).prepare_local(&dir).await.unwrap();
    assert_eq!(git(&dir, &["rev-parse", "HEAD"]), head);
    assert_eq!(listing(&dir), before);
}

#[tokio::test]
async fn invalid_paths_are_refused_and_nothing_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir(root.join("full")).unwrap();
    std::fs::write(root.join("full/notes.txt"), "x").unwrap();
    std::fs::write(root.join("file.txt"), "x").unwrap();
    let before = listing(root);
    let a = adapter(root);

    let err = a.prepare_local(&root.join("full")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert_eq!(
        err.message,
        "not a git repository: directory must contain a .git folder"
    );

    let err = a.prepare_local(&root.join("file.txt")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(
        err.message.starts_with("path is not a directory: "),
        "{}",
        err.message
    );

    let err = a
        .prepare_local(&root.join("missing/child"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(
        err.message.starts_with("parent directory does not exist: "),
        "{}",
        err.message
    );

    let err = a.prepare_local(Path::new("relative")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert_eq!(err.message, "path must be absolute");

    assert_eq!(listing(root), before);
}

/// With no identity anywhere in git config, the initial commit uses the configured defaults.
/// Runs this test binary again with an empty `HOME`, so no process env is mutated here.
#[test]
fn falls_back_to_default_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "prepare::default_identity_child", "--nocapture"])
        .env("HOME", tmp.path())
        .env("XDG_CONFIG_HOME", tmp.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("DISCOBOT_GIT_CHILD_DIR", &dir)
        .env_remove("EMAIL")
        .env_remove("GIT_AUTHOR_NAME")
        .env_remove("GIT_AUTHOR_EMAIL")
        .env_remove("GIT_COMMITTER_NAME")
        .env_remove("GIT_COMMITTER_EMAIL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "child test did not run: {stdout}"
    );
    let who = git(&dir, &["log", "-1", "--format=%an <%ae>|%cn <%ce>"]);
    assert_eq!(
        who,
        "Discobot <discobot@localhost>|Discobot <discobot@localhost>"
    );
}

/// Makes the initial commit in whatever environment it runs in: in the clean one that
/// `falls_back_to_default_identity` gives it (which then checks the identity), or in the
/// developer's own, where it checks that some identity was recorded.
#[test]
fn default_identity_child() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("DISCOBOT_GIT_CHILD_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("repo"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let home = std::env::var_os("HOME").unwrap();
    rt.block_on(adapter(Path::new(&home)).prepare_local(&dir))
        .unwrap();
    let who = git(&dir, &["log", "-1", "--format=%an <%ae>"]);
    assert!(who.len() > "<>".len() + 1, "no identity recorded: {who:?}");
}
