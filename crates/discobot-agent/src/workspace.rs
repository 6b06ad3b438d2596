//! The agent's working copy: a clone of the read-only origin (`WORKSPACE_ORIGIN_PATH`) made
//! once at start, and the `git` runner the file, diff, commit and slash-command code shares.
//!
//! The agent drives the `git` CLI on purpose: the sandbox image ships git, the user's own git
//! (hooks aside, config, attributes, LFS filters) then behaves exactly as in a terminal of the
//! same sandbox, and gix stays the host adapter's (`discobot-git`; `xtask/src/deps.rs` forbids
//! it here).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::config::AgentConfig;

/// The ref that records the commit the working copy started from (the clone's checkout, moved
/// by `/discobot-rebase`): the diff base.
pub(crate) const BASE_REF: &str = "refs/discobot/base";

/// How long a `git fetch origin` may take.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// The identity commits get when git has none configured.
const FALLBACK_NAME: &str = "Discobot";
const FALLBACK_EMAIL: &str = "discobot@localhost";

/// Why preparing the working copy or running git failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("cannot run git: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("git {command} failed: {stderr}")]
    Git { command: String, stderr: String },
    #[error("git {command} took longer than {seconds} s")]
    Timeout { command: String, seconds: u64 },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} exists but is not a git working copy")]
    NotAWorkingCopy(PathBuf),
}

impl WorkspaceError {
    fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// What a finished `git` process left.
pub(crate) struct GitOutput {
    pub(crate) success: bool,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: String,
}

impl GitOutput {
    /// Stdout as text (git's output is UTF-8 unless a path or message is not).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `git <args>` in `dir` and returns whatever it did, failed or not. The environment
/// never prompts, never takes optional locks (a diff must not block a concurrent commit) and
/// ignores a `GIT_DIR`/`GIT_WORK_TREE` the agent might have inherited.
pub(crate) async fn run_git<I, S>(
    dir: &Path,
    args: I,
    timeout: Option<Duration>,
) -> Result<GitOutput, WorkspaceError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let command_text = || {
        args.iter()
            .take(3)
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut command = tokio::process::Command::new("git");
    command
        .args(&args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_EDITOR", "true")
        .env("LC_ALL", "C")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = command.output();
    let output = match timeout {
        Some(limit) => {
            tokio::time::timeout(limit, output)
                .await
                .map_err(|_| WorkspaceError::Timeout {
                    command: command_text(),
                    seconds: limit.as_secs(),
                })?
        }
        None => output.await,
    }
    .map_err(WorkspaceError::Spawn)?;
    Ok(GitOutput {
        success: output.status.success(),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}

/// Runs `git <args>` in `dir`; a non-zero exit is an error carrying git's stderr.
pub(crate) async fn git<I, S>(dir: &Path, args: I) -> Result<GitOutput, WorkspaceError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let output = run_git(dir, &args, None).await?;
    if output.success {
        Ok(output)
    } else {
        Err(WorkspaceError::Git {
            command: args
                .iter()
                .take(3)
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" "),
            stderr: output.stderr,
        })
    }
}

/// `-c user.name=… -c user.email=…` for whichever of the two git has no value for in `dir`,
/// so a commit never fails for want of an identity.
pub(crate) async fn identity_args(dir: &Path) -> Vec<String> {
    let mut args = Vec::new();
    for (key, fallback) in [("user.name", FALLBACK_NAME), ("user.email", FALLBACK_EMAIL)] {
        let configured = run_git(dir, ["config", "--get", key], None)
            .await
            .is_ok_and(|out| out.success && !out.text().trim().is_empty());
        if !configured {
            args.push("-c".to_owned());
            args.push(format!("{key}={fallback}"));
        }
    }
    args
}

/// `git fetch origin` in the working copy, bounded by [`FETCH_TIMEOUT`]. The origin belongs to
/// another user in a container, hence `safe.directory`.
pub(crate) async fn fetch_origin(work_dir: &Path) -> Result<(), WorkspaceError> {
    let output = run_git(
        work_dir,
        ["-c", "safe.directory=*", "fetch", "--quiet", "origin"],
        Some(FETCH_TIMEOUT),
    )
    .await?;
    if output.success {
        Ok(())
    } else {
        Err(WorkspaceError::Git {
            command: "fetch origin".into(),
            stderr: output.stderr,
        })
    }
}

/// The full sha `rev` names as a commit, `None` when it names none. Refuses revisions that
/// look like options.
pub(crate) async fn resolve_commit(
    dir: &Path,
    rev: &str,
) -> Result<Option<String>, WorkspaceError> {
    if rev.is_empty() || rev.starts_with('-') {
        return Ok(None);
    }
    let output = run_git(
        dir,
        [
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
        None,
    )
    .await?;
    Ok(output
        .success
        .then(|| output.text().trim().to_owned())
        .filter(|sha| !sha.is_empty()))
}

/// Makes sure `config.work_dir()` is a git working copy, before the agent serves. A working
/// copy that exists is kept as it is (the agent restarted). Otherwise the origin is cloned
/// (or, when it is no git repository, copied and committed) into a sibling staging directory
/// that is renamed into place only once complete: a clone cut off half-way never counts.
pub async fn prepare(config: &AgentConfig) -> Result<(), WorkspaceError> {
    let work_dir = config.work_dir();
    if tokio::fs::symlink_metadata(work_dir.join(".git"))
        .await
        .is_ok()
    {
        return Ok(());
    }
    match tokio::fs::read_dir(&work_dir).await {
        Ok(mut entries) => {
            let empty = entries
                .next_entry()
                .await
                .map_err(WorkspaceError::io(format!(
                    "cannot read {}",
                    work_dir.display()
                )))?
                .is_none();
            if !empty {
                return Err(WorkspaceError::NotAWorkingCopy(work_dir));
            }
            tokio::fs::remove_dir(&work_dir)
                .await
                .map_err(WorkspaceError::io(format!(
                    "cannot replace {}",
                    work_dir.display()
                )))?;
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(WorkspaceError::Io {
                context: format!("cannot read {}", work_dir.display()),
                source: error,
            });
        }
    }
    let parent = work_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    tokio::fs::create_dir_all(&parent)
        .await
        .map_err(WorkspaceError::io(format!(
            "cannot create {}",
            parent.display()
        )))?;
    let name = work_dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "workspace".into());
    let staging = parent.join(format!(".{name}.staging"));
    remove_if_present(&staging).await?;

    let origin = &config.workspace;
    if tokio::fs::symlink_metadata(origin.join(".git"))
        .await
        .is_ok()
    {
        clone(origin, &staging, config.workspace_commit.as_deref()).await?;
    } else {
        copy_and_init(origin, &staging).await?;
    }
    // An empty origin has no commit yet: then there is no start to record.
    if let Some(head) = resolve_commit(&staging, "HEAD").await? {
        git(&staging, ["update-ref", BASE_REF, &head]).await?;
    }
    tokio::fs::rename(&staging, &work_dir)
        .await
        .map_err(WorkspaceError::io(format!(
            "cannot move the new working copy to {}",
            work_dir.display()
        )))?;
    tracing::info!(
        origin = %origin.display(),
        work_dir = %work_dir.display(),
        "working copy ready"
    );
    Ok(())
}

async fn remove_if_present(path: &Path) -> Result<(), WorkspaceError> {
    match tokio::fs::remove_dir_all(path).await {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(WorkspaceError::Io {
            context: format!("cannot remove the leftover {}", path.display()),
            source: error,
        }),
        _ => Ok(()),
    }
}

/// `git clone --no-hardlinks` (the origin stays untouched and shares no inode with the copy),
/// then the session's commit, on the cloned branch when there is one.
async fn clone(origin: &Path, staging: &Path, commit: Option<&str>) -> Result<(), WorkspaceError> {
    let parent = staging.parent().unwrap_or(Path::new("/"));
    git(
        parent,
        [
            OsStr::new("-c"),
            OsStr::new("safe.directory=*"),
            OsStr::new("clone"),
            OsStr::new("--quiet"),
            OsStr::new("--no-hardlinks"),
            origin.as_os_str(),
            staging.as_os_str(),
        ],
    )
    .await?;
    let Some(commit) = commit else {
        return Ok(());
    };
    let Some(sha) = resolve_commit(staging, commit).await? else {
        return Err(WorkspaceError::Git {
            command: "checkout".into(),
            stderr: format!("WORKSPACE_COMMIT {commit} is not a commit of the origin"),
        });
    };
    let branch = run_git(
        staging,
        ["symbolic-ref", "--quiet", "--short", "HEAD"],
        None,
    )
    .await?;
    let branch = branch.text().trim().to_owned();
    if branch.is_empty() {
        git(staging, ["checkout", "--quiet", &sha]).await?;
    } else {
        git(staging, ["checkout", "--quiet", "-B", &branch, &sha]).await?;
    }
    Ok(())
}

/// A plain folder as origin: copied (symlinks as symlinks), then `git init` and one commit,
/// so diffs and commits have a base.
async fn copy_and_init(origin: &Path, staging: &Path) -> Result<(), WorkspaceError> {
    let (from, to) = (origin.to_owned(), staging.to_owned());
    tokio::task::spawn_blocking(move || copy_tree(&from, &to))
        .await
        .map_err(|error| WorkspaceError::Io {
            context: "copying the origin".into(),
            source: std::io::Error::other(error.to_string()),
        })??;
    git(staging, ["init", "--quiet"]).await?;
    git(staging, ["add", "-A"]).await?;
    let mut args = identity_args(staging).await;
    args.extend(
        [
            "commit",
            "--quiet",
            "--no-verify",
            "--allow-empty",
            "-m",
            "Initial commit",
        ]
        .map(String::from),
    );
    git(staging, &args).await?;
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), WorkspaceError> {
    std::fs::create_dir_all(to).map_err(WorkspaceError::io(format!(
        "cannot create {}",
        to.display()
    )))?;
    let entries = std::fs::read_dir(from).map_err(WorkspaceError::io(format!(
        "cannot read {}",
        from.display()
    )))?;
    for entry in entries {
        let entry = entry.map_err(WorkspaceError::io(format!(
            "cannot read {}",
            from.display()
        )))?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().map_err(WorkspaceError::io(format!(
            "cannot stat {}",
            source.display()
        )))?;
        let copied = if kind.is_symlink() {
            std::fs::read_link(&source).and_then(|link| std::os::unix::fs::symlink(link, &target))
        } else if kind.is_dir() {
            copy_tree(&source, &target)?;
            Ok(())
        } else if kind.is_file() {
            std::fs::copy(&source, &target).map(|_| ())
        } else {
            // Sockets, FIFOs and devices have no place in a repository.
            Ok(())
        };
        copied.map_err(WorkspaceError::io(format!(
            "cannot copy {}",
            source.display()
        )))?;
    }
    Ok(())
}

/// The commit diffs are taken against: the merge-base of HEAD with the commit the working copy
/// started from ([`BASE_REF`], else `WORKSPACE_COMMIT`, `origin/HEAD`, `origin/main`,
/// `origin/master`); HEAD itself when none of them exists, and the empty tree before the first
/// commit.
pub(crate) async fn diff_base(
    work_dir: &Path,
    workspace_commit: Option<&str>,
) -> Result<String, WorkspaceError> {
    let mut candidates = vec![BASE_REF];
    if let Some(commit) = workspace_commit {
        candidates.push(commit);
    }
    candidates.extend(["origin/HEAD", "origin/main", "origin/master"]);
    for candidate in candidates {
        if let Some(start) = resolve_commit(work_dir, candidate).await? {
            let merge_base = run_git(work_dir, ["merge-base", "HEAD", &start], None).await?;
            if merge_base.success {
                return Ok(merge_base.text().trim().to_owned());
            }
        }
    }
    Ok(resolve_commit(work_dir, "HEAD")
        .await?
        .unwrap_or_else(|| EMPTY_TREE.to_owned()))
}

/// The id of git's empty tree (sha1), which every repository knows.
pub(crate) const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
