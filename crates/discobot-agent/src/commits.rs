//! `GET /commits?parent=`: the working copy's commits on top of `parent` as a replay bundle
//! (metadata and full contents, see `discobot_core::replay`), for the server to re-create
//! them in the host workspace.

use std::path::Path;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use discobot_core::replay::{
    ChangeStatus, CommitsResponse, REPLAY_BUNDLE_VERSION, ReplayBundle, ReplayChange, ReplayCommit,
};
use serde::Deserialize;
use serde_json::json;

use crate::diff::looks_binary;
use crate::routes::AgentState;
use crate::workspace::{WorkspaceError, git, resolve_commit, run_git};

#[derive(Deserialize)]
pub(crate) struct CommitsQuery {
    parent: Option<String>,
}

/// Why there is no bundle; each maps to the `{error, message, …}` answer the server expects.
#[derive(Debug)]
pub(crate) enum CommitsError {
    InvalidParent(String),
    NotGitRepo,
    ParentMismatch { parent: String },
    NoCommits { is_clean: bool, head: String },
    Git(WorkspaceError),
}

impl From<WorkspaceError> for CommitsError {
    fn from(err: WorkspaceError) -> Self {
        Self::Git(err)
    }
}

impl IntoResponse for CommitsError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Self::InvalidParent(message) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_parent", "message": message}),
            ),
            Self::NotGitRepo => (
                StatusCode::BAD_REQUEST,
                json!({"error": "not_git_repo", "message": "the workspace is not a git repository"}),
            ),
            Self::ParentMismatch { parent } => (
                StatusCode::CONFLICT,
                json!({
                    "error": "parent_mismatch",
                    "message": format!("{parent} is not an ancestor of HEAD"),
                }),
            ),
            Self::NoCommits { is_clean, head } => (
                StatusCode::NOT_FOUND,
                json!({
                    "error": "no_commits",
                    "message": "no commits on top of the parent",
                    "isClean": is_clean,
                    "headCommit": head,
                }),
            ),
            Self::Git(err) => {
                tracing::warn!(%err, "GET /commits failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "git_error", "message": err.to_string()}),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

/// `GET /commits?parent=<sha>` → `{"replayBundle": "<JSON>", "commitCount": N}`.
pub(crate) async fn commits(
    State(state): State<AgentState>,
    Query(query): Query<CommitsQuery>,
) -> Response {
    let parent = query.parent.unwrap_or_default();
    match bundle(state.workspace(), parent.trim()).await {
        Ok(bundle) => {
            let commit_count = bundle.commits.len();
            match serde_json::to_string(&bundle) {
                Ok(replay_bundle) => Json(CommitsResponse {
                    replay_bundle,
                    commit_count,
                })
                .into_response(),
                Err(err) => CommitsError::Git(WorkspaceError::Io {
                    context: "encoding the replay bundle".into(),
                    source: std::io::Error::other(err),
                })
                .into_response(),
            }
        }
        Err(err) => err.into_response(),
    }
}

/// The replay bundle of `parent..HEAD` (first parents, oldest first).
pub(crate) async fn bundle(work_dir: &Path, parent: &str) -> Result<ReplayBundle, CommitsError> {
    if parent.is_empty() {
        return Err(CommitsError::InvalidParent(
            "parent query parameter required".into(),
        ));
    }
    let inside = run_git(work_dir, ["rev-parse", "--is-inside-work-tree"], None).await;
    if !inside.is_ok_and(|out| out.success) {
        return Err(CommitsError::NotGitRepo);
    }
    let Some(parent_sha) = resolve_commit(work_dir, parent).await? else {
        return Err(CommitsError::InvalidParent(format!(
            "parent commit {parent} not found"
        )));
    };
    let head = resolve_commit(work_dir, "HEAD").await?.unwrap_or_default();
    let ancestor = run_git(
        work_dir,
        ["merge-base", "--is-ancestor", &parent_sha, "HEAD"],
        None,
    )
    .await?;
    if !ancestor.success {
        return Err(CommitsError::ParentMismatch {
            parent: parent.to_owned(),
        });
    }
    let list = git(
        work_dir,
        [
            "rev-list",
            "--first-parent",
            "--reverse",
            &format!("{parent_sha}..HEAD"),
        ],
    )
    .await?
    .text();
    let shas: Vec<&str> = list.lines().filter(|l| !l.is_empty()).collect();
    if shas.is_empty() {
        let status = git(
            work_dir,
            ["status", "--porcelain", "--untracked-files=normal"],
        )
        .await?;
        return Err(CommitsError::NoCommits {
            is_clean: status.stdout.is_empty(),
            head,
        });
    }
    let mut commits = Vec::with_capacity(shas.len());
    for sha in shas {
        commits.push(commit(work_dir, sha).await?);
    }
    Ok(ReplayBundle {
        version: REPLAY_BUNDLE_VERSION,
        parent: parent_sha,
        commits,
    })
}

/// One commit: the raw object's metadata and message, and its changes against its first
/// parent.
async fn commit(work_dir: &Path, sha: &str) -> Result<ReplayCommit, WorkspaceError> {
    let raw = git(work_dir, ["cat-file", "commit", sha]).await?.text();
    let (headers, message) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
    let mut first_parent = None;
    let mut author = Signature::default();
    let mut committer = Signature::default();
    for line in headers.lines() {
        if let Some(rest) = line.strip_prefix("parent ") {
            first_parent.get_or_insert_with(|| rest.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("author ") {
            author = Signature::parse(rest);
        } else if let Some(rest) = line.strip_prefix("committer ") {
            committer = Signature::parse(rest);
        }
    }
    let from = first_parent.unwrap_or_else(|| crate::workspace::EMPTY_TREE.to_owned());
    let raw_diff = git(
        work_dir,
        ["diff-tree", "-r", "-M", "-z", "--no-commit-id", &from, sha],
    )
    .await?;
    let mut changes = Vec::new();
    for entry in parse_raw(&raw_diff.text()) {
        changes.push(change(work_dir, entry).await?);
    }
    Ok(ReplayCommit {
        sha: sha.to_owned(),
        message: message.to_owned(),
        author_name: author.name,
        author_email: author.email,
        author_date: author.date,
        committer_name: committer.name,
        committer_email: committer.email,
        committer_date: committer.date,
        changes,
    })
}

/// `Name <email> 1700000000 +0100` of an `author`/`committer` header.
#[derive(Default)]
struct Signature {
    name: String,
    email: String,
    /// `<unix seconds> <+hhmm>`, as `--date=raw` prints it.
    date: String,
}

impl Signature {
    fn parse(text: &str) -> Self {
        let (identity, date) = match text.rfind('>') {
            Some(end) => (&text[..=end], text[end + 1..].trim()),
            None => (text, ""),
        };
        let (name, email) = match identity.rfind('<') {
            Some(start) => (
                identity[..start].trim(),
                identity[start + 1..].trim_end_matches('>'),
            ),
            None => (identity.trim(), ""),
        };
        Self {
            name: name.to_owned(),
            email: email.to_owned(),
            date: date.to_owned(),
        }
    }
}

/// One line of `git diff-tree --raw -z`.
#[derive(Debug, PartialEq)]
struct RawEntry {
    new_mode: String,
    old_blob: String,
    new_blob: String,
    status: u8,
    old_path: Option<String>,
    path: String,
}

/// `:<old mode> <new mode> <old blob> <new blob> <status>\0<path>\0[<new path>\0]`…
fn parse_raw(text: &str) -> Vec<RawEntry> {
    let mut tokens = text.split('\0');
    let mut out = Vec::new();
    while let Some(meta) = tokens.next().filter(|t| t.starts_with(':')) {
        let fields: Vec<&str> = meta[1..].split(' ').collect();
        let [_, new_mode, old_blob, new_blob, status] = fields[..] else {
            break;
        };
        let status = status.as_bytes().first().copied().unwrap_or(b'M');
        let Some(first) = tokens.next() else { break };
        let (old_path, path) = if matches!(status, b'R' | b'C') {
            let Some(second) = tokens.next() else { break };
            (Some(first.to_owned()), second.to_owned())
        } else {
            (None, first.to_owned())
        };
        out.push(RawEntry {
            new_mode: new_mode.to_owned(),
            old_blob: old_blob.to_owned(),
            new_blob: new_blob.to_owned(),
            status,
            old_path,
            path,
        });
    }
    out
}

async fn change(work_dir: &Path, entry: RawEntry) -> Result<ReplayChange, WorkspaceError> {
    let status = match entry.status {
        b'A' | b'C' => ChangeStatus::Added,
        b'D' => ChangeStatus::Deleted,
        b'R' => ChangeStatus::Renamed,
        _ => ChangeStatus::Modified,
    };
    let previous_blob = matches!(
        status,
        ChangeStatus::Modified | ChangeStatus::Deleted | ChangeStatus::Renamed
    )
    .then(|| entry.old_blob.clone());
    let (mode, binary, content) = if status == ChangeStatus::Deleted {
        (None, false, None)
    } else if entry.new_mode == "160000" {
        // A submodule: its "content" is the commit it points at, not a blob here.
        (Some(entry.new_mode), false, None)
    } else {
        let bytes = git(work_dir, ["cat-file", "blob", &entry.new_blob])
            .await?
            .stdout;
        (
            Some(entry.new_mode),
            looks_binary(&bytes),
            Some(BASE64.encode(&bytes)),
        )
    };
    Ok(ReplayChange {
        path: entry.path,
        old_path: if status == ChangeStatus::Renamed {
            entry.old_path
        } else {
            None
        },
        status,
        mode,
        binary,
        content,
        previous_blob,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_signatures() {
        let sig = Signature::parse("Ada Lovelace <ada@example.com> 1700000000 +0130");
        assert_eq!(sig.name, "Ada Lovelace");
        assert_eq!(sig.email, "ada@example.com");
        assert_eq!(sig.date, "1700000000 +0130");
    }

    #[test]
    fn parses_raw_diff_tree() {
        let text = ":100644 100755 aaa bbb M\0run.sh\0:100644 100644 ccc ccc R100\0old\0new\0";
        let entries = parse_raw(text);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].new_mode, "100755");
        assert_eq!(entries[0].path, "run.sh");
        assert_eq!(entries[1].status, b'R');
        assert_eq!(entries[1].old_path.as_deref(), Some("old"));
        assert_eq!(entries[1].path, "new");
    }
}
