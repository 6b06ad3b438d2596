//! Workspace git operations (status, diff, stage, commit, log, checkout, branches, files,
//! fetch) against real repositories, with the git CLI as the oracle.

use std::collections::BTreeSet;
use std::path::Path;

use discobot_core::ErrorKind;
use discobot_core::git::{DiffQuery, NewCommit};
use discobot_core::ports::GitPort;

use crate::util::{adapter, file_url, fixture_repo, git, git_raw, listing};

fn temp_repo() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    fixture_repo(&dir);
    (tmp, dir)
}

/// `git status --porcelain=v2 -uall` as `(staged, unstaged, untracked)` sets of
/// `status path [old]` strings in our vocabulary.
fn oracle_status(dir: &Path) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let word = |c: char| match c {
        'A' => "added",
        'M' => "modified",
        'D' => "deleted",
        'R' => "renamed",
        'C' => "copied",
        'T' => "typechange",
        other => panic!("unexpected status {other}"),
    };
    let (mut staged, mut unstaged, mut untracked) = Default::default();
    let out = git(dir, &["status", "--porcelain=v2", "-uall"]);
    for line in out.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields[0] {
            "1" | "2" => {
                let xy: Vec<char> = fields[1].chars().collect();
                let (path, old) = if fields[0] == "2" {
                    let rest = fields[9..].join(" ");
                    let (p, o) = rest.split_once('\t').unwrap();
                    (p.to_string(), format!(" {o}"))
                } else {
                    (fields[8..].join(" "), String::new())
                };
                if xy[0] != '.' {
                    BTreeSet::insert(&mut staged, format!("{} {path}{old}", word(xy[0])));
                }
                if xy[1] != '.' {
                    BTreeSet::insert(&mut unstaged, format!("{} {path}", word(xy[1])));
                }
            }
            "?" => {
                BTreeSet::insert(&mut untracked, fields[1..].join(" "));
            }
            other => panic!("unexpected porcelain line kind {other}: {line}"),
        }
    }
    (staged, unstaged, untracked)
}

fn ours(list: &[discobot_core::git::FileStatus]) -> BTreeSet<String> {
    list.iter()
        .map(|f| {
            if f.old_path.is_empty() {
                format!("{} {}", f.status, f.path)
            } else {
                format!("{} {} {}", f.status, f.path, f.old_path)
            }
        })
        .collect()
}

#[tokio::test]
async fn status_matches_porcelain_after_edits_stage_rename_and_untracked() {
    let (_tmp, dir) = temp_repo();
    let git_port = adapter(&dir);
    let clean = git_port.git_status(&dir).await.unwrap();
    assert!(clean.is_clean());
    assert_eq!(clean.branch, "main");
    assert_eq!(clean.commit, git(&dir, &["rev-parse", "HEAD"]));
    assert_eq!(clean.commit_short.len(), 7);
    assert_eq!((clean.ahead, clean.behind), (0, 0));

    std::fs::write(dir.join("README.md"), "hello\nworld\n").unwrap();
    std::fs::write(dir.join("staged.txt"), "new\n").unwrap();
    git(&dir, &["add", "staged.txt"]);
    git(&dir, &["mv", "src/lib.rs", "src/moved.rs"]);
    std::fs::create_dir_all(dir.join("notes/deep")).unwrap();
    std::fs::write(dir.join("notes/deep/todo.txt"), "x\n").unwrap();
    std::fs::write(dir.join("staged.txt"), "new\nchanged after staging\n").unwrap();

    let status = git_port.git_status(&dir).await.unwrap();
    let (staged, unstaged, untracked) = oracle_status(&dir);
    assert_eq!(ours(&status.staged), staged);
    assert_eq!(ours(&status.unstaged), unstaged);
    assert_eq!(
        status.untracked.iter().cloned().collect::<BTreeSet<_>>(),
        untracked
    );
    assert!(
        staged.contains("renamed src/moved.rs src/lib.rs"),
        "{staged:?}"
    );
    assert!(!status.is_clean());
    assert!(!status.has_conflicts);
}

#[tokio::test]
async fn ahead_and_behind_count_against_the_upstream() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream = tmp.path().join("upstream");
    fixture_repo(&upstream);
    let clone = tmp.path().join("clone");
    git(tmp.path(), &["clone", "-q", &file_url(&upstream), "clone"]);
    std::fs::write(clone.join("a.txt"), "a\n").unwrap();
    git(&clone, &["add", "-A"]);
    git(&clone, &["commit", "-q", "-m", "local"]);
    std::fs::write(upstream.join("b.txt"), "b\n").unwrap();
    git(&upstream, &["add", "-A"]);
    git(&upstream, &["commit", "-q", "-m", "remote one"]);
    std::fs::write(upstream.join("c.txt"), "c\n").unwrap();
    git(&upstream, &["add", "-A"]);
    git(&upstream, &["commit", "-q", "-m", "remote two"]);

    let port = adapter(tmp.path());
    port.git_fetch(&clone).await.unwrap();
    assert_eq!(
        git(&clone, &["rev-parse", "origin/main"]),
        git(&upstream, &["rev-parse", "main"]),
        "fetch updated the remote-tracking branch"
    );
    let status = port.git_status(&clone).await.unwrap();
    let counts = git(
        &clone,
        &["rev-list", "--left-right", "--count", "HEAD...@{u}"],
    );
    assert_eq!(format!("{}\t{}", status.ahead, status.behind), counts);
    assert_eq!((status.ahead, status.behind), (1, 2));

    let branches = port.git_branches(&clone).await.unwrap();
    let main = branches.iter().find(|b| b.name == "main").unwrap();
    assert!(main.is_current && !main.is_remote);
    assert_eq!(main.upstream, "origin/main");
    assert_eq!(main.commit, git(&clone, &["rev-parse", "main"]));
    let remote = branches.iter().find(|b| b.name == "origin/main").unwrap();
    assert!(remote.is_remote && !remote.is_current);
    assert!(!branches.iter().any(|b| b.name.ends_with("/HEAD")));
}

#[tokio::test]
async fn stage_commit_and_log_agree_with_git() {
    let (_tmp, dir) = temp_repo();
    let port = adapter(&dir);
    let nothing = port
        .git_commit(
            &dir,
            &NewCommit {
                message: "empty".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(nothing.kind, ErrorKind::Conflict);
    assert!(nothing.message.contains("nothing to commit"));

    port.git_write_file(&dir, "docs/new.md", b"# New\n")
        .await
        .unwrap();
    std::fs::write(dir.join("README.md"), "changed\n").unwrap();
    std::fs::write(dir.join("other.txt"), "not staged\n").unwrap();
    port.git_stage(&dir, &["docs".into(), "README.md".into()])
        .await
        .unwrap();
    assert_eq!(
        git(&dir, &["diff", "--cached", "--name-only"]),
        "README.md\ndocs/new.md"
    );
    let commit = port
        .git_commit(
            &dir,
            &NewCommit {
                message: "Add docs\n\nWith a body.".into(),
                author_name: Some("Ada Lovelace".into()),
                author_email: Some("ada@example.com".into()),
            },
        )
        .await
        .unwrap();
    git(&dir, &["fsck", "--strict", "--no-progress"]);
    assert_eq!(commit.sha, git(&dir, &["rev-parse", "HEAD"]));
    assert_eq!(
        git(&dir, &["log", "-1", "--format=%an <%ae>|%s|%b"]),
        "Ada Lovelace <ada@example.com>|Add docs|With a body."
    );
    assert_eq!(commit.message, "Add docs\n\nWith a body.");
    assert_eq!(commit.parents, vec![git(&dir, &["rev-parse", "HEAD~1"])]);
    assert_eq!(git(&dir, &["status", "--porcelain"]), "?? other.txt");

    // Everything else, then a commit with the configured (or default) identity.
    port.git_stage(&dir, &[]).await.unwrap();
    let second = port
        .git_commit(
            &dir,
            &NewCommit {
                message: "rest".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(git(&dir, &["status", "--porcelain"]), "");
    assert!(!second.author.is_empty() && !second.author_email.is_empty());

    let log = port.git_log(&dir, None, 50).await.unwrap();
    let ours: Vec<String> = log
        .iter()
        .map(|c| {
            format!(
                "{}|{}|{}|{}|{}",
                c.sha,
                c.author,
                c.author_email,
                c.author_date.timestamp(),
                c.parents.join(" ")
            )
        })
        .collect();
    let theirs = git(&dir, &["log", "--format=%H|%an|%ae|%at|%P"]);
    assert_eq!(ours.join("\n"), theirs);
    let limited = port.git_log(&dir, Some("HEAD~1"), 2).await.unwrap();
    assert_eq!(
        limited
            .iter()
            .map(|c| c.sha.clone())
            .collect::<Vec<_>>()
            .join("\n"),
        git(&dir, &["log", "-2", "--format=%H", "HEAD~1"])
    );
    let unknown = port
        .git_log(&dir, Some("no-such-ref"), 5)
        .await
        .unwrap_err();
    assert_eq!(unknown.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn diff_counts_match_numstat_in_every_mode() {
    let (_tmp, dir) = temp_repo();
    let port = adapter(&dir);
    let numstat = |args: &[&str]| -> BTreeSet<String> {
        let mut full = vec!["diff", "--numstat", "--no-renames"];
        full.extend_from_slice(args);
        git(&dir, &full).lines().map(str::to_string).collect()
    };
    let ours = |diffs: &[discobot_core::git::FileDiff]| -> BTreeSet<String> {
        diffs
            .iter()
            .map(|d| format!("{}\t{}\t{}", d.additions, d.deletions, d.path))
            .collect()
    };
    std::fs::write(dir.join("README.md"), "hello\nthere\nworld\n").unwrap();
    std::fs::write(dir.join("src/lib.rs"), "pub fn y() {}\n").unwrap();
    git(&dir, &["add", "src/lib.rs"]);
    std::fs::write(dir.join("src/lib.rs"), "pub fn y() {}\npub fn z() {}\n").unwrap();
    std::fs::write(dir.join("untracked.txt"), "not in git diff\n").unwrap();

    let worktree = port.git_diff(&dir, &DiffQuery::default()).await.unwrap();
    assert_eq!(ours(&worktree), numstat(&[]));
    let readme = worktree.iter().find(|d| d.path == "README.md").unwrap();
    assert_eq!(readme.status, "modified");
    assert!(readme.patch.contains("--- a/README.md\n+++ b/README.md\n"));
    assert!(readme.patch.contains("\n+there\n"), "{}", readme.patch);

    let staged = port
        .git_diff(
            &dir,
            &DiffQuery {
                staged: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ours(&staged), numstat(&["--cached"]));

    let against_base = port
        .git_diff(
            &dir,
            &DiffQuery {
                base: Some("HEAD~1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ours(&against_base), numstat(&["HEAD~1"]));

    let commits = port
        .git_diff(
            &dir,
            &DiffQuery {
                base: Some("HEAD~1".into()),
                head: Some("HEAD".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ours(&commits), numstat(&["HEAD~1", "HEAD"]));
    assert_eq!(commits[0].status, "added");
    assert!(
        commits[0]
            .patch
            .contains("--- /dev/null\n+++ b/src/lib.rs\n")
    );

    let only_src = port
        .git_diff(
            &dir,
            &DiffQuery {
                paths: vec!["src".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ours(&only_src), numstat(&["--", "src"]));

    std::fs::write(dir.join("bin.dat"), b"\x00\x01\x02").unwrap();
    git(&dir, &["add", "bin.dat"]);
    let binary = port
        .git_diff(
            &dir,
            &DiffQuery {
                staged: true,
                paths: vec!["bin.dat".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(binary[0].binary);
    assert_eq!((binary[0].additions, binary[0].deletions), (0, 0));

    let bad = port
        .git_diff(
            &dir,
            &DiffQuery {
                base: Some("nope".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn the_patch_is_the_one_git_prints() {
    let (_tmp, dir) = temp_repo();
    let port = adapter(&dir);
    let body: String = (1..=20).map(|i| format!("line {i}\n")).collect();
    std::fs::write(dir.join("README.md"), &body).unwrap();
    git(&dir, &["commit", "-q", "-am", "twenty lines"]);
    let edited = body
        .replace("line 3\n", "line three\n")
        .replace("line 18\n", "")
        + "tail";
    std::fs::write(dir.join("README.md"), edited).unwrap();
    std::fs::write(dir.join("src/lib.rs"), "").unwrap();
    std::fs::write(dir.join("mid.txt"), "a\nb\nc\nd\n").unwrap();
    git(&dir, &["add", "mid.txt"]);
    std::fs::write(dir.join("mid.txt"), "a\nb\nc\nnew\nlines\nd\n").unwrap();

    for diff in port.git_diff(&dir, &DiffQuery::default()).await.unwrap() {
        let theirs = git(&dir, &["diff", "--", &diff.path]);
        let from = |text: &str| text[text.find("--- ").unwrap()..].trim_end().to_string();
        assert_eq!(from(&diff.patch), from(&theirs), "patch of {}", diff.path);
    }
}

#[tokio::test]
async fn checkout_switches_branches_and_refuses_to_overwrite_changes() {
    let (_tmp, dir) = temp_repo();
    let port = adapter(&dir);
    git(&dir, &["switch", "-q", "-c", "feature"]);
    std::fs::write(dir.join("README.md"), "feature text\n").unwrap();
    git(&dir, &["commit", "-q", "-am", "on feature"]);
    git(&dir, &["switch", "-q", "main"]);

    port.git_checkout(&dir, "feature").await.unwrap();
    assert_eq!(git(&dir, &["symbolic-ref", "--short", "HEAD"]), "feature");
    assert_eq!(
        std::fs::read_to_string(dir.join("README.md")).unwrap(),
        "feature text\n"
    );

    // A local change to a file the checkout would rewrite: refused, nothing touched.
    std::fs::write(dir.join("README.md"), "my edit\n").unwrap();
    let before = listing(&dir);
    let err = port.git_checkout(&dir, "main").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict, "{}", err.message);
    assert!(err.message.contains("README.md"), "{}", err.message);
    assert_eq!(git(&dir, &["symbolic-ref", "--short", "HEAD"]), "feature");
    assert_eq!(
        std::fs::read_to_string(dir.join("README.md")).unwrap(),
        "my edit\n"
    );
    assert_eq!(listing(&dir), before);
    git(&dir, &["checkout", "-q", "--", "README.md"]);

    let missing = port.git_checkout(&dir, "no-such-branch").await.unwrap_err();
    assert_eq!(missing.kind, ErrorKind::NotFound);
    // A file name is never taken for a path to restore.
    std::fs::write(dir.join("README.md"), "edit kept\n").unwrap();
    let as_path = port.git_checkout(&dir, "README.md").await.unwrap_err();
    assert_eq!(as_path.kind, ErrorKind::NotFound);
    assert_eq!(
        std::fs::read_to_string(dir.join("README.md")).unwrap(),
        "edit kept\n"
    );

    let first = git(&dir, &["rev-parse", "main~1"]);
    git(&dir, &["checkout", "-q", "--", "README.md"]);
    port.git_checkout(&dir, &first).await.unwrap();
    assert_eq!(git(&dir, &["rev-parse", "HEAD"]), first);
    let status = port.git_status(&dir).await.unwrap();
    assert_eq!(status.branch, "", "detached HEAD has no branch");
}

#[tokio::test]
async fn files_at_refs_and_in_the_working_tree() {
    let (_tmp, dir) = temp_repo();
    let port = adapter(&dir);
    std::fs::write(dir.join("README.md"), "edited\n").unwrap();
    std::fs::write(dir.join("new.txt"), "twelve bytes").unwrap();

    assert_eq!(
        port.git_read_file(&dir, "README.md", None).await.unwrap(),
        b"edited\n"
    );
    assert_eq!(
        port.git_read_file(&dir, "README.md", Some("HEAD"))
            .await
            .unwrap(),
        b"hello\n"
    );
    assert_eq!(
        port.git_read_file(&dir, "src/lib.rs", Some("HEAD~1"))
            .await
            .unwrap_err()
            .kind,
        ErrorKind::NotFound
    );
    assert_eq!(
        port.git_read_file(&dir, "absent.txt", None)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::NotFound
    );

    let at_head = port.git_file_tree(&dir, Some("HEAD")).await.unwrap();
    let listed: Vec<String> = at_head
        .iter()
        .map(|f| format!("{} {} {}", f.mode, f.path, f.size))
        .collect();
    assert_eq!(
        listed,
        vec!["100644 README.md 6", "040000 src 0", "100644 src/lib.rs 14"]
    );
    assert!(at_head.iter().find(|f| f.path == "src").unwrap().is_dir);
    assert_eq!(
        at_head
            .iter()
            .find(|f| f.path == "src/lib.rs")
            .unwrap()
            .name,
        "lib.rs"
    );

    let worktree = port.git_file_tree(&dir, None).await.unwrap();
    let paths: Vec<&str> = worktree.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, vec!["README.md", "new.txt", "src", "src/lib.rs"]);
    assert_eq!(worktree[1].size, 12);
}

#[tokio::test]
async fn paths_that_leave_the_repository_are_refused() {
    let (tmp, dir) = temp_repo();
    let port = adapter(&dir);
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "secret\n").unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();

    for bad in [
        "../outside/secret.txt",
        "/etc/passwd",
        "a\0b",
        ".git/config",
        "src/../../x",
        "link/secret.txt",
    ] {
        let read = port.git_read_file(&dir, bad, None).await.unwrap_err();
        assert_eq!(
            read.kind,
            ErrorKind::InvalidInput,
            "read {bad:?}: {}",
            read.message
        );
        let write = port.git_write_file(&dir, bad, b"x").await.unwrap_err();
        assert_eq!(
            write.kind,
            ErrorKind::InvalidInput,
            "write {bad:?}: {}",
            write.message
        );
    }
    let stage = port
        .git_stage(&dir, &["link/secret.txt".into()])
        .await
        .unwrap_err();
    assert_eq!(stage.kind, ErrorKind::InvalidInput);
    assert_eq!(
        port.git_read_file(&dir, "x", Some("HEAD"))
            .await
            .unwrap_err()
            .kind,
        ErrorKind::NotFound
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("secret.txt")).unwrap(),
        "secret\n"
    );
    assert!(!git_raw(&dir, &["config", "--get", "x.y"]).status.success());
}
