//! The server's slash commands, sent as user messages: `/discobot-commit <base>` commits the
//! pending work onto a history that descends from `base`, `/discobot-rebase <newbase>` moves
//! that history onto `newbase` (fetched from the origin). Both run git directly, no model.

use std::path::Path;

use crate::workspace::{
    BASE_REF, WorkspaceError, fetch_origin, git, identity_args, resolve_commit, run_git,
};

const COMMIT: &str = "/discobot-commit ";
const REBASE: &str = "/discobot-rebase ";

/// The longest first line a generated commit message gets.
const SUBJECT_MAX: usize = 72;

/// `None` unless `text` is one of the slash commands; otherwise what it did (`Ok`, a line
/// for the user) or why it failed (`Err`). `request` is what the user last asked for in the
/// thread: the subject of a commit of pending work.
pub(crate) async fn slash_command(
    work_dir: &Path,
    text: &str,
    request: Option<&str>,
) -> Option<Result<String, String>> {
    let (rebase, argument) = if let Some(rest) = text.strip_prefix(COMMIT) {
        (false, rest)
    } else if let Some(rest) = text.strip_prefix(REBASE) {
        (true, rest)
    } else {
        return None;
    };
    let Some(target) = argument.split_whitespace().next() else {
        return Some(Err(format!(
            "usage: {}<commit>",
            if rebase { REBASE } else { COMMIT }
        )));
    };
    // One slash command at a time: two of them interleaving `add`, `commit` and `rebase` in
    // the same repository would trip over each other's index lock.
    static RUNNING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _running = RUNNING.lock().await;
    let result = if rebase {
        rebase_onto(work_dir, target, request).await
    } else {
        commit_onto(work_dir, target, request).await
    };
    Some(result)
}

/// `/discobot-commit <base>`.
async fn commit_onto(work_dir: &Path, base: &str, request: Option<&str>) -> Result<String, String> {
    commit_pending(work_dir, request)
        .await
        .map_err(|err| err.to_string())?;
    let mut base_sha = resolve_commit(work_dir, base)
        .await
        .map_err(|e| e.to_string())?;
    if base_sha.is_none() {
        // The host's HEAD may be newer than the clone; the origin has it.
        if let Err(err) = fetch_origin(work_dir).await {
            tracing::warn!(%err, "git fetch origin failed");
        }
        base_sha = resolve_commit(work_dir, base)
            .await
            .map_err(|e| e.to_string())?;
    }
    let Some(base_sha) = base_sha else {
        return Err(format!("unknown base commit {base}"));
    };
    let ancestor = run_git(
        work_dir,
        ["merge-base", "--is-ancestor", &base_sha, "HEAD"],
        None,
    )
    .await
    .map_err(|e| e.to_string())?;
    if !ancestor.success {
        return Err(format!(
            "base {} is not an ancestor of HEAD; rebase onto it first",
            short(&base_sha)
        ));
    }
    let count = commit_count(work_dir, &base_sha).await?;
    Ok(format!(
        "Committed {count} commit(s) on top of {}",
        short(&base_sha)
    ))
}

/// `/discobot-rebase <newbase>`.
async fn rebase_onto(
    work_dir: &Path,
    new_base: &str,
    request: Option<&str>,
) -> Result<String, String> {
    commit_pending(work_dir, request)
        .await
        .map_err(|err| err.to_string())?;
    fetch_origin(work_dir)
        .await
        .map_err(|err| err.to_string())?;
    let Some(base_sha) = resolve_commit(work_dir, new_base)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Err(format!("unknown base commit {new_base}"));
    };
    let mut args = identity_args(work_dir).await;
    args.extend(["rebase".to_owned(), "--quiet".to_owned()]);
    // Only the session's own commits move: those after the base it started from (a host
    // that rewrote its branch must not get its old commits back as the session's work).
    if resolve_commit(work_dir, BASE_REF)
        .await
        .ok()
        .flatten()
        .is_some()
    {
        args.extend(["--onto".to_owned(), base_sha.clone(), BASE_REF.to_owned()]);
    } else {
        args.push(base_sha.clone());
    }
    let rebased = run_git(work_dir, &args, None)
        .await
        .map_err(|e| e.to_string())?;
    if !rebased.success {
        let conflicted = run_git(
            work_dir,
            ["diff", "--name-only", "--diff-filter=U", "-z"],
            None,
        )
        .await
        .map(|out| out.text())
        .unwrap_or_default();
        let files: Vec<&str> = conflicted.split('\0').filter(|f| !f.is_empty()).collect();
        if let Err(err) = git(work_dir, ["rebase", "--abort"]).await {
            tracing::warn!(%err, "git rebase --abort failed");
        }
        return Err(if files.is_empty() {
            format!("rebase onto {base_sha} failed: {}", rebased.stderr)
        } else {
            format!("rebase onto {base_sha} conflicts in: {}", files.join(", "))
        });
    }
    // The diff base follows: the work is now on top of the new base.
    git(work_dir, ["update-ref", BASE_REF, &base_sha])
        .await
        .map_err(|e| e.to_string())?;
    let count = commit_count(work_dir, &base_sha).await?;
    Ok(format!(
        "Rebased {count} commit(s) onto {}",
        short(&base_sha)
    ))
}

async fn commit_count(work_dir: &Path, base_sha: &str) -> Result<String, String> {
    Ok(git(
        work_dir,
        ["rev-list", "--count", &format!("{base_sha}..HEAD")],
    )
    .await
    .map_err(|e| e.to_string())?
    .text()
    .trim()
    .to_owned())
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

/// Commits every change of the working tree (untracked files included), if there is any, with
/// a message naming the files. `true` when it made a commit.
async fn commit_pending(work_dir: &Path, request: Option<&str>) -> Result<bool, WorkspaceError> {
    let status = git(work_dir, ["status", "--porcelain", "--untracked-files=all"]).await?;
    if status.stdout.is_empty() {
        return Ok(false);
    }
    git(work_dir, ["add", "-A"]).await?;
    let staged = git(work_dir, ["diff", "--cached", "--name-only", "-z"]).await?;
    let staged = staged.text();
    let files: Vec<&str> = staged.split('\0').filter(|f| !f.is_empty()).collect();
    if files.is_empty() {
        return Ok(false);
    }
    let (subject, body) = commit_message(&files, request);
    let mut args = identity_args(work_dir).await;
    args.extend(
        [
            "commit",
            "--quiet",
            "--no-verify",
            "-m",
            &subject,
            "-m",
            &body,
        ]
        .map(String::from),
    );
    git(work_dir, &args).await?;
    Ok(true)
}

/// The first line of what the user asked for when known, else `Update <n> files: a, b, …`
/// (at most [`SUBJECT_MAX`] characters), and a body listing every file.
fn commit_message(files: &[&str], request: Option<&str>) -> (String, String) {
    let body = files
        .iter()
        .map(|file| format!("- {file}"))
        .collect::<Vec<_>>()
        .join("\n");
    let asked = request
        .and_then(|text| text.lines().map(str::trim).find(|line| !line.is_empty()))
        .map(|line| {
            if line.chars().count() <= SUBJECT_MAX {
                line.to_owned()
            } else {
                let cut: String = line.chars().take(SUBJECT_MAX - 1).collect();
                format!("{}…", cut.trim_end())
            }
        });
    if let Some(subject) = asked {
        return (subject, body);
    }
    let head = if files.len() == 1 {
        "Update 1 file: ".to_owned()
    } else {
        format!("Update {} files: ", files.len())
    };
    let mut subject = head.clone();
    for (index, file) in files.iter().enumerate() {
        let separator = if index == 0 { "" } else { ", " };
        let rest = files.len() - index - 1;
        let tail = if rest > 0 {
            format!(", and {rest} more")
        } else {
            String::new()
        };
        let candidate = format!("{subject}{separator}{file}");
        if candidate.chars().count() + tail.chars().count() <= SUBJECT_MAX {
            subject = candidate;
            continue;
        }
        let remaining = files.len() - index;
        if index == 0 {
            subject = head.trim_end_matches([':', ' ']).to_owned();
        } else {
            subject.push_str(&format!(", and {remaining} more"));
        }
        break;
    }
    let subject: String = subject.chars().take(SUBJECT_MAX).collect();
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_request_is_the_subject() {
        let (subject, body) = commit_message(&["a.rs"], Some("\n  Add a feature file  \nmore"));
        assert_eq!(subject, "Add a feature file");
        assert_eq!(body, "- a.rs");
        let long = "x".repeat(100);
        let (subject, _) = commit_message(&["a.rs"], Some(&long));
        assert_eq!(subject.chars().count(), SUBJECT_MAX);
        assert!(subject.ends_with('…'));
        let (subject, _) = commit_message(&["a.rs"], Some("  "));
        assert_eq!(subject, "Update 1 file: a.rs");
    }

    #[test]
    fn messages_stay_short() {
        let (subject, body) = commit_message(&["a.rs", "b.rs"], None);
        assert_eq!(subject, "Update 2 files: a.rs, b.rs");
        assert_eq!(body, "- a.rs\n- b.rs");
        let long: Vec<String> = (0..30).map(|i| format!("src/module_{i}/file.rs")).collect();
        let long: Vec<&str> = long.iter().map(String::as_str).collect();
        let (subject, body) = commit_message(&long, None);
        assert!(subject.chars().count() <= SUBJECT_MAX, "{subject}");
        assert!(subject.starts_with("Update 30 files: src/module_0/file.rs"));
        assert!(subject.ends_with("more"), "{subject}");
        assert_eq!(body.lines().count(), 30);
        let (subject, _) = commit_message(&[&"x".repeat(100)], None);
        assert_eq!(subject, "Update 1 file");
    }

    /// Runs git with a fixed identity; panics when it fails.
    fn sh_git(dir: &Path, args: &[&str]) -> String {
        let output = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "Ada")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_COMMITTER_NAME", "Ada")
            .env("GIT_COMMITTER_EMAIL", "ada@example.com")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    /// An origin with one commit and the agent's working copy of it.
    async fn origin_and_clone() -> (tempfile::TempDir, tempfile::TempDir, std::path::PathBuf) {
        let origin = tempfile::tempdir().unwrap();
        sh_git(origin.path(), &["init", "--quiet", "-b", "main"]);
        std::fs::write(origin.path().join("a.txt"), "one\ntwo\nthree\n").unwrap();
        sh_git(origin.path(), &["add", "-A"]);
        sh_git(origin.path(), &["commit", "--quiet", "-m", "initial"]);
        let data = tempfile::tempdir().unwrap();
        let config = crate::AgentConfig {
            workspace: origin.path().to_owned(),
            data_dir: data.path().to_owned(),
            ..crate::AgentConfig::default()
        };
        crate::workspace::prepare(&config).await.unwrap();
        (origin, data, config.work_dir())
    }

    #[tokio::test]
    async fn commit_commits_pending_work_into_the_bundle() {
        let (origin, _data, work) = origin_and_clone().await;
        let base = sh_git(origin.path(), &["rev-parse", "HEAD"]);
        std::fs::write(work.join("a.txt"), "one\nTWO\nthree\n").unwrap();
        std::fs::write(work.join("new.txt"), "fresh\n").unwrap();

        let done = slash_command(&work, &format!("/discobot-commit {base}"), None).await;
        assert_eq!(
            done,
            Some(Ok(format!(
                "Committed 1 commit(s) on top of {}",
                &base[..7]
            )))
        );
        assert_eq!(sh_git(&work, &["status", "--porcelain"]), "");
        let message = sh_git(&work, &["log", "-1", "--format=%B"]);
        assert_eq!(
            message,
            "Update 2 files: a.txt, new.txt\n\n- a.txt\n- new.txt"
        );
        let bundle = crate::commits::bundle(&work, &base).await.unwrap();
        let paths: Vec<&str> = bundle.commits[0]
            .changes
            .iter()
            .map(|c| c.path.as_str())
            .collect();
        assert_eq!(paths, ["a.txt", "new.txt"]);

        // Nothing pending: no new commit, the count stays.
        let again = slash_command(&work, &format!("/discobot-commit {base}"), None).await;
        assert_eq!(
            again,
            Some(Ok(format!(
                "Committed 1 commit(s) on top of {}",
                &base[..7]
            )))
        );

        let unknown = slash_command(
            &work,
            "/discobot-commit 0123456789abcdef0123456789abcdef01234567",
            None,
        )
        .await;
        assert!(
            matches!(unknown, Some(Err(ref m)) if m.contains("unknown base")),
            "{unknown:?}"
        );
        // A base the work does not descend from.
        let head = sh_git(&work, &["rev-parse", "HEAD"]);
        sh_git(&work, &["checkout", "--quiet", "-b", "side", &base]);
        std::fs::write(work.join("side.txt"), "x\n").unwrap();
        sh_git(&work, &["add", "-A"]);
        sh_git(&work, &["commit", "--quiet", "-m", "side"]);
        let side = sh_git(&work, &["rev-parse", "HEAD"]);
        sh_git(&work, &["checkout", "--quiet", &head]);
        let refused = slash_command(&work, &format!("/discobot-commit {side}"), None).await;
        assert!(
            matches!(refused, Some(Err(ref m)) if m.contains("not an ancestor")),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn rebase_moves_the_work_onto_the_new_origin_commit() {
        let (origin, _data, work) = origin_and_clone().await;
        let old_base = sh_git(origin.path(), &["rev-parse", "HEAD"]);
        // The host moves on after the clone.
        std::fs::write(origin.path().join("host.txt"), "from the host\n").unwrap();
        sh_git(origin.path(), &["add", "-A"]);
        sh_git(origin.path(), &["commit", "--quiet", "-m", "host work"]);
        let new_base = sh_git(origin.path(), &["rev-parse", "HEAD"]);
        std::fs::write(work.join("mine.txt"), "agent work\n").unwrap();

        let done = slash_command(&work, &format!("/discobot-rebase {new_base}"), None).await;
        assert_eq!(
            done,
            Some(Ok(format!("Rebased 1 commit(s) onto {}", &new_base[..7])))
        );
        assert_eq!(sh_git(&work, &["rev-parse", "HEAD~1"]), new_base);
        assert!(work.join("host.txt").is_file() && work.join("mine.txt").is_file());
        let bundle = crate::commits::bundle(&work, &new_base).await.unwrap();
        assert_eq!(bundle.commits.len(), 1);
        assert!(matches!(
            crate::commits::bundle(&work, &old_base).await,
            Ok(ref b) if b.commits.len() == 2
        ));
        // The diff base moved with it: the host's commit is not the agent's change.
        let diff = crate::diff::changes(&work, None).await.unwrap();
        let paths: Vec<&str> = diff.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["mine.txt"]);
    }

    #[tokio::test]
    async fn a_conflicting_rebase_is_aborted_and_names_the_files() {
        let (origin, _data, work) = origin_and_clone().await;
        std::fs::write(origin.path().join("a.txt"), "one\nHOST\nthree\n").unwrap();
        sh_git(origin.path(), &["commit", "--quiet", "-am", "host edit"]);
        let new_base = sh_git(origin.path(), &["rev-parse", "HEAD"]);
        std::fs::write(work.join("a.txt"), "one\nAGENT\nthree\n").unwrap();

        let failed = slash_command(&work, &format!("/discobot-rebase {new_base}"), None).await;
        assert_eq!(
            failed,
            Some(Err(format!("rebase onto {new_base} conflicts in: a.txt")))
        );
        // Aborted: the agent's commit is intact and no rebase is left half-done.
        assert_eq!(
            std::fs::read_to_string(work.join("a.txt")).unwrap(),
            "one\nAGENT\nthree\n"
        );
        assert_eq!(sh_git(&work, &["status", "--porcelain"]), "");
        assert!(!work.join(".git/rebase-merge").exists());
    }

    #[tokio::test]
    async fn other_text_is_no_command() {
        let dir = std::env::temp_dir();
        assert!(slash_command(&dir, "hello", None).await.is_none());
        assert!(
            slash_command(&dir, "/discobot-commitx abc", None)
                .await
                .is_none()
        );
        assert!(
            slash_command(&dir, "/discobot-commit", None)
                .await
                .is_none()
        );
    }
}
