//! `apply_replay` against real repositories: a "sandbox" clone commits with the git CLI, the
//! test helper turns the range into a bundle as the agent does, and the git CLI checks the
//! "host" clone afterwards (fsck, log, ls-tree, status, ls-files).

#[path = "support/bundle.rs"]
mod bundle;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use discobot_core::ErrorKind;
use discobot_core::ports::GitPort;
use discobot_core::replay::ReplayBundle;
use discobot_git::{GitAdapter, GitError, apply_replay};
use tempfile::TempDir;

use bundle::bundle_from_range;

/// The `git log` fields the replay must carry over exactly.
const LOG_FORMAT: &str = "--format=%H%n%an%n%ae%n%ad%n%cn%n%ce%n%cd%n%B%n--";

/// An origin with a base commit, and a sandbox and a host clone of it.
struct Fixture {
    _dir: TempDir,
    sandbox: PathBuf,
    host: PathBuf,
    base: String,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let origin = dir.path().join("origin");
        std::fs::create_dir_all(origin.join("src")).unwrap();
        std::fs::create_dir_all(origin.join("docs")).unwrap();
        git(&origin, &["init", "-q", "-b", "main"]);
        write(&origin, "README.md", "hello\n");
        write(&origin, "src/lib.rs", "pub fn x() {}\n");
        write(
            &origin,
            "docs/guide.txt",
            "a long guide\nwith lines\nthat stay\n",
        );
        write(&origin, "notes.md", "notes\n");
        write(&origin, "other.txt", "other\n");
        write(&origin, "build.sh", "#!/bin/sh\necho build\n");
        git(&origin, &["add", "-A"]);
        git(&origin, &["commit", "-q", "-m", "base"]);
        let base = git(&origin, &["rev-parse", "HEAD"]);
        let sandbox = dir.path().join("sandbox");
        let host = dir.path().join("host");
        for clone in [&sandbox, &host] {
            git(
                dir.path(),
                &[
                    "clone",
                    "-q",
                    origin.to_str().unwrap(),
                    clone.to_str().unwrap(),
                ],
            );
        }
        Fixture {
            _dir: dir,
            sandbox,
            host,
            base,
        }
    }

    /// Three sandbox commits covering every kind of change, with distinct identities and
    /// time zones; returns the bundle of them.
    fn sandbox_work(&self) -> ReplayBundle {
        let s = &self.sandbox;
        // 1: modify, nested new dirs with an exec file, a symlink.
        write(s, "README.md", "hello from the session\n");
        write(s, "tools/bin/run.sh", "#!/bin/sh\necho run\n");
        chmod(s, "tools/bin/run.sh", 0o755);
        std::os::unix::fs::symlink("README.md", s.join("latest")).unwrap();
        git(s, &["add", "-A"]);
        commit_as(
            s,
            "Add tools and a link\n\nWith a body line.\n",
            ("Ada Lovelace", "ada@example.com", "1700000000 +0530"),
            ("Sandbox Bot", "bot@sandbox.test", "1700000100 -0700"),
        );
        // 2: binary with NUL bytes, a rename, a mode-only change.
        let binary: Vec<u8> = (0u8..=255).chain([0, 0, 1, 2]).collect();
        std::fs::create_dir_all(s.join("assets")).unwrap();
        std::fs::write(s.join("assets/logo.bin"), &binary).unwrap();
        git(s, &["mv", "docs/guide.txt", "docs/manual.txt"]);
        chmod(s, "build.sh", 0o755);
        git(s, &["add", "-A"]);
        commit_as(
            s,
            "Binary, rename, exec bit\n",
            ("Grace Hopper", "grace@example.com", "1700003600 -0000"),
            ("Grace Hopper", "grace@example.com", "1700003700 +1245"),
        );
        // 3: a deletion that empties a directory, and a file edited twice in the range.
        git(s, &["rm", "-q", "src/lib.rs"]);
        write(s, "README.md", "hello again\n");
        git(s, &["add", "-A"]);
        commit_as(
            s,
            "Remove src\n\n\nTrailing blank lines stay.\n\n",
            ("Ada Lovelace", "ada@example.com", "1700007200 +0000"),
            ("Sandbox Bot", "bot@sandbox.test", "1700007300 +0100"),
        );
        bundle_from_range(s, &self.base, "HEAD")
    }
}

#[test]
fn replay_onto_the_parent_reproduces_the_sandbox_commits_exactly() {
    let fx = Fixture::new();
    let bundle = fx.sandbox_work();
    assert_eq!(bundle.commits.len(), 3);
    assert!(bundle.commits[1].changes.iter().any(|c| c.binary));

    let outcome = apply_replay(&fx.host, &bundle).unwrap();

    let sandbox_shas: Vec<String> = bundle.commits.iter().map(|c| c.sha.clone()).collect();
    assert_eq!(
        outcome.commits, sandbox_shas,
        "same tree, parent and metadata"
    );
    assert_eq!(outcome.head, git(&fx.sandbox, &["rev-parse", "HEAD"]));
    assert_eq!(git(&fx.host, &["rev-parse", "HEAD"]), outcome.head);
    assert_eq!(git(&fx.host, &["symbolic-ref", "HEAD"]), "refs/heads/main");
    let range = format!("{}..HEAD", fx.base);
    assert_eq!(
        git(&fx.host, &["log", LOG_FORMAT, "--date=raw", &range]),
        git(&fx.sandbox, &["log", LOG_FORMAT, "--date=raw", &range]),
    );
    assert_eq!(
        git(&fx.host, &["ls-tree", "-r", "HEAD"]),
        git(&fx.sandbox, &["ls-tree", "-r", "HEAD"])
    );
    assert_fsck_clean(&fx.host);
    assert_worktree_matches_head(&fx.host);
    assert!(
        git(&fx.host, &["reflog", "-1", "main"]).contains("discobot replay: 3 session commits")
    );
    // The objects came as one pack whose `.keep` guard is gone once the branch points into it.
    let packs: Vec<String> = std::fs::read_dir(fx.host.join(".git/objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !packs.iter().any(|name| name.ends_with(".keep")),
        "{packs:?}"
    );
    assert_eq!(
        packs.iter().filter(|name| name.ends_with(".pack")).count(),
        1,
        "a local clone has loose objects only, the replay adds one pack: {packs:?}"
    );

    // What the working tree holds now, file by file.
    let host = &fx.host;
    assert_eq!(read(host, "README.md"), "hello again\n");
    assert!(is_exec(host, "tools/bin/run.sh"));
    assert!(is_exec(host, "build.sh"));
    assert!(!is_exec(host, "README.md"));
    assert_eq!(
        std::fs::read_link(host.join("latest")).unwrap(),
        Path::new("README.md")
    );
    assert_eq!(
        std::fs::read(host.join("assets/logo.bin")).unwrap(),
        std::fs::read(fx.sandbox.join("assets/logo.bin")).unwrap()
    );
    assert!(!host.join("docs/guide.txt").exists());
    assert_eq!(
        read(host, "docs/manual.txt"),
        "a long guide\nwith lines\nthat stay\n"
    );
    assert!(!host.join("src").exists(), "the emptied directory is gone");
}

#[test]
fn replay_onto_a_moved_head_keeps_metadata_and_both_sides_changes() {
    let fx = Fixture::new();
    let bundle = fx.sandbox_work();
    // The host moved on with unrelated work, including a touch of a path next to ours.
    write(&fx.host, "host.txt", "host work\n");
    write(&fx.host, "other.txt", "other, edited on the host\n");
    git(&fx.host, &["add", "-A"]);
    git(&fx.host, &["commit", "-q", "-m", "host work"]);
    let host_head = git(&fx.host, &["rev-parse", "HEAD"]);

    let outcome = apply_replay(&fx.host, &bundle).unwrap();

    assert_eq!(outcome.commits.len(), 3);
    for (new, old) in outcome.commits.iter().zip(&bundle.commits) {
        assert_ne!(*new, old.sha, "a new parent makes a new sha");
    }
    assert_eq!(
        git(
            &fx.host,
            &["rev-parse", &format!("{}^", outcome.commits[0])]
        ),
        host_head
    );
    let without_sha = |repo: &Path, range: &str| {
        git(
            repo,
            &[
                "log",
                "--format=%an%n%ae%n%ad%n%cn%n%ce%n%cd%n%B%n--",
                "--date=raw",
                range,
            ],
        )
    };
    assert_eq!(
        without_sha(&fx.host, &format!("{host_head}..HEAD")),
        without_sha(&fx.sandbox, &format!("{}..HEAD", fx.base))
    );
    let host_tree = git(&fx.host, &["ls-tree", "-r", "HEAD"]);
    let sandbox_tree = git(&fx.sandbox, &["ls-tree", "-r", "HEAD"]);
    for line in sandbox_tree.lines().filter(|l| !l.ends_with("\tother.txt")) {
        assert!(host_tree.contains(line), "missing {line} in\n{host_tree}");
    }
    assert!(host_tree.contains("\thost.txt"));
    assert_eq!(
        git(&fx.host, &["show", "HEAD:other.txt"]),
        "other, edited on the host"
    );
    assert_fsck_clean(&fx.host);
    assert_worktree_matches_head(&fx.host);
}

#[test]
fn replay_onto_a_detached_head_moves_head_only() {
    let fx = Fixture::new();
    let bundle = fx.sandbox_work();
    git(&fx.host, &["checkout", "-q", "--detach"]);
    let outcome = apply_replay(&fx.host, &bundle).unwrap();
    assert_eq!(git(&fx.host, &["rev-parse", "HEAD"]), outcome.head);
    assert_eq!(git(&fx.host, &["rev-parse", "main"]), fx.base);
    assert_worktree_matches_head(&fx.host);
}

#[test]
fn user_changes_to_other_paths_survive_a_replay() {
    let fx = Fixture::new();
    let bundle = fx.sandbox_work();
    let host = &fx.host;
    write(host, "other.txt", "staged edit\n");
    git(host, &["add", "other.txt"]);
    write(host, "other.txt", "staged edit, then more unstaged\n");
    write(host, "notes.md", "unstaged edit\n");
    write(host, "scratch.txt", "untracked\n");
    let status_before = status(host);
    let staged_before = git(host, &["diff", "--cached", "--", "other.txt"]);

    apply_replay(host, &bundle).unwrap();

    assert_eq!(
        status(host),
        status_before,
        "only the replayed paths changed"
    );
    assert_eq!(
        git(host, &["diff", "--cached", "--", "other.txt"]),
        staged_before
    );
    assert_eq!(read(host, "other.txt"), "staged edit, then more unstaged\n");
    assert_eq!(read(host, "notes.md"), "unstaged edit\n");
    assert_eq!(read(host, "scratch.txt"), "untracked\n");
    assert_eq!(read(host, "README.md"), "hello again\n");
    // The replayed paths have exact stat data: git sees them clean without re-reading.
    let unclean = git(host, &["diff-files", "--name-only"]);
    assert_eq!(unclean, "notes.md\nother.txt");
    assert_fsck_clean(host);
}

/// Everything a failed replay must leave exactly as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    head: String,
    main: String,
    status: String,
    index_entries: String,
    index_bytes: Vec<u8>,
    objects: String,
}

fn snapshot(repo: &Path) -> Snapshot {
    Snapshot {
        head: git(repo, &["rev-parse", "HEAD"]),
        main: git(repo, &["rev-parse", "refs/heads/main"]),
        status: status(repo),
        index_entries: git(repo, &["ls-files", "-s", "--debug"]),
        index_bytes: std::fs::read(repo.join(".git/index")).unwrap(),
        objects: git(repo, &["count-objects", "-v"]),
    }
}

/// Replays `bundle` into a host prepared by `prepare`, expects a conflict naming `path`,
/// and checks nothing changed.
fn assert_conflict_changes_nothing(prepare: impl FnOnce(&Path), path: &str) {
    let fx = Fixture::new();
    let bundle = fx.sandbox_work();
    prepare(&fx.host);
    // Refresh the index first so that `git status` below does not rewrite it itself.
    git(&fx.host, &["update-index", "-q", "--refresh"]).to_string();
    let before = snapshot(&fx.host);

    let err = apply_replay(&fx.host, &bundle).unwrap_err();

    let GitError::Conflict(message) = &err else {
        panic!("expected a conflict, got {err:?}");
    };
    assert!(message.contains(path), "{message}");
    assert_eq!(snapshot(&fx.host), before);
}

#[test]
fn a_file_changed_in_host_head_is_a_conflict_and_changes_nothing() {
    assert_conflict_changes_nothing(
        |host| {
            write(host, "README.md", "host's own readme\n");
            git(host, &["commit", "-q", "-am", "host edit"]);
        },
        "README.md",
    );
}

#[test]
fn a_file_changed_in_the_host_worktree_is_a_conflict_and_changes_nothing() {
    assert_conflict_changes_nothing(
        |host| write(host, "README.md", "unsaved work\n"),
        "README.md",
    );
}

#[test]
fn a_file_staged_on_the_host_is_a_conflict_and_changes_nothing() {
    assert_conflict_changes_nothing(
        |host| {
            write(host, "docs/guide.txt", "staged work\n");
            git(host, &["add", "docs/guide.txt"]);
        },
        "docs/guide.txt",
    );
}

#[test]
fn an_untracked_file_in_the_way_is_a_conflict_and_changes_nothing() {
    assert_conflict_changes_nothing(
        |host| {
            std::fs::create_dir_all(host.join("assets")).unwrap();
            write(host, "assets/logo.bin", "mine\n");
        },
        "assets/logo.bin",
    );
}

#[test]
fn an_exec_bit_changed_on_the_host_is_a_conflict() {
    assert_conflict_changes_nothing(|host| chmod(host, "src/lib.rs", 0o755), "src/lib.rs");
}

#[test]
fn a_concurrent_ref_update_fails_cleanly() {
    let fx = Fixture::new();
    let bundle = fx.sandbox_work();
    // Another writer holds the branch's lock, as `git commit` does while it runs.
    std::fs::write(fx.host.join(".git/refs/heads/main.lock"), "").unwrap();
    let status_before = status(&fx.host);
    let index_before = std::fs::read(fx.host.join(".git/index")).unwrap();

    let err = apply_replay(&fx.host, &bundle).unwrap_err();

    assert!(matches!(err, GitError::Conflict(_)), "{err:?}");
    assert_eq!(git(&fx.host, &["rev-parse", "HEAD"]), fx.base);
    assert_eq!(status(&fx.host), status_before);
    assert_eq!(
        std::fs::read(fx.host.join(".git/index")).unwrap(),
        index_before
    );
    assert!(!fx.host.join(".git/index.lock").exists());
}

#[test]
fn a_head_that_does_not_descend_from_the_parent_is_refused() {
    let fx = Fixture::new();
    let bundle = fx.sandbox_work();
    git(&fx.host, &["checkout", "-q", "--orphan", "elsewhere"]);
    git(&fx.host, &["commit", "-q", "-m", "unrelated"]);
    let before = git(&fx.host, &["rev-parse", "HEAD"]);
    let err = apply_replay(&fx.host, &bundle).unwrap_err();
    assert!(
        matches!(err, GitError::Conflict(ref m) if m.contains("does not descend")),
        "{err:?}"
    );
    assert_eq!(git(&fx.host, &["rev-parse", "HEAD"]), before);
}

#[test]
fn unsafe_paths_and_bad_metadata_are_refused_before_writing() {
    let fx = Fixture::new();
    let good = fx.sandbox_work();
    let before = snapshot(&fx.host);
    for path in [
        "../escape",
        ".git/hooks/post-commit",
        "/abs",
        "a//b",
        "docs/.GIT/x",
    ] {
        let mut bundle = good.clone();
        bundle.commits[0].changes[0].path = path.to_string();
        let err = apply_replay(&fx.host, &bundle).unwrap_err();
        assert!(matches!(err, GitError::InvalidInput(_)), "{path}: {err:?}");
    }
    let mut bundle = good.clone();
    bundle.commits[0].author_email = "a>b@example.com".to_string();
    assert!(matches!(
        apply_replay(&fx.host, &bundle),
        Err(GitError::InvalidInput(_))
    ));
    let mut bundle = good.clone();
    bundle.commits[0].committer_date = "yesterday".to_string();
    assert!(matches!(
        apply_replay(&fx.host, &bundle),
        Err(GitError::InvalidInput(_))
    ));
    assert_eq!(snapshot(&fx.host), before);
}

#[tokio::test]
async fn the_port_maps_a_conflict_to_the_conflict_kind() {
    let fx = Fixture::new();
    let bundle = fx.sandbox_work();
    write(&fx.host, "README.md", "unsaved work\n");
    let adapter = GitAdapter::default();
    let err = adapter.apply_replay(&fx.host, &bundle).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);

    write(&fx.host, "README.md", "hello\n");
    let outcome = adapter.apply_replay(&fx.host, &bundle).await.unwrap();
    assert_eq!(outcome.commits.len(), 3);
}

fn assert_fsck_clean(repo: &Path) {
    let out = git_output(repo, &["fsck", "--strict", "--no-dangling"]);
    assert!(
        out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
        "fsck: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn assert_worktree_matches_head(repo: &Path) {
    assert_eq!(status(repo), "", "working tree and index equal HEAD");
    assert_eq!(
        git(repo, &["diff-files", "--name-only"]),
        "",
        "stat data is fresh"
    );
}

fn status(repo: &Path) -> String {
    git(repo, &["status", "--porcelain=v2", "--untracked-files=all"])
}

fn commit_as(
    repo: &Path,
    message: &str,
    author: (&str, &str, &str),
    committer: (&str, &str, &str),
) {
    let out = Command::new("git")
        .current_dir(repo)
        .args(["commit", "-q", "--cleanup=verbatim", "-F", "-"])
        .env("GIT_AUTHOR_NAME", author.0)
        .env("GIT_AUTHOR_EMAIL", author.1)
        .env("GIT_AUTHOR_DATE", format!("@{}", author.2))
        .env("GIT_COMMITTER_NAME", committer.0)
        .env("GIT_COMMITTER_EMAIL", committer.1)
        .env("GIT_COMMITTER_DATE", format!("@{}", committer.2))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(message.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "git commit failed");
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_output(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .to_string()
}

fn git_output(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Fixture")
        .env("GIT_AUTHOR_EMAIL", "fixture@example.com")
        .env("GIT_COMMITTER_NAME", "Fixture")
        .env("GIT_COMMITTER_EMAIL", "fixture@example.com")
        .output()
        .expect("git runs")
}

fn write(repo: &Path, path: &str, content: &str) {
    let full = repo.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, content).unwrap();
}

fn read(repo: &Path, path: &str) -> String {
    std::fs::read_to_string(repo.join(path)).unwrap()
}

fn chmod(repo: &Path, path: &str, mode: u32) {
    std::fs::set_permissions(repo.join(path), std::fs::Permissions::from_mode(mode)).unwrap();
}

fn is_exec(repo: &Path, path: &str) -> bool {
    std::fs::metadata(repo.join(path))
        .unwrap()
        .permissions()
        .mode()
        & 0o111
        != 0
}

#[test]
fn many_new_files_between_modified_ones_get_exact_index_entries() {
    let fx = Fixture::new();
    let s = &fx.sandbox;
    for i in 0..40 {
        write(s, &format!("d{i:02}/kept.txt"), "kept\n");
    }
    git(s, &["add", "-A"]);
    git(s, &["commit", "-q", "-m", "dirs"]);
    git(&fx.host, &["pull", "-q", s.to_str().unwrap(), "main"]);
    let base = git(s, &["rev-parse", "HEAD"]);
    // New files sort before, between and after the modified ones.
    for i in 0..40 {
        write(s, &format!("d{i:02}/kept.txt"), &format!("changed {i}\n"));
        write(s, &format!("d{i:02}/a-new.txt"), "new\n");
        write(s, &format!("d{i:02}/z-new.txt"), "new\n");
    }
    git(s, &["add", "-A"]);
    git(s, &["commit", "-q", "-m", "interleaved"]);
    let bundle = bundle_from_range(s, &base, "HEAD");

    apply_replay(&fx.host, &bundle).unwrap();

    assert_eq!(
        git(&fx.host, &["ls-files", "-s"]),
        git(s, &["ls-files", "-s"])
    );
    assert_worktree_matches_head(&fx.host);
    assert_fsck_clean(&fx.host);
}
