//! The replay bundle: a session's commits as data (metadata plus full file contents), which
//! the agent produces from its clone and the git adapter re-creates, commit by commit, in the
//! host workspace.

use serde::{Deserialize, Serialize};

/// Version of the bundle format this code writes and reads.
pub const REPLAY_BUNDLE_VERSION: u32 = 1;

/// `GET /commits?parent=` of the agent: `{"replayBundle": "<JSON of ReplayBundle>",
/// "commitCount": N}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitsResponse {
    pub replay_bundle: String,
    pub commit_count: usize,
}

/// The commits of `parent..HEAD`, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayBundle {
    pub version: u32,
    /// The commit the first one descends from (the session's base commit).
    pub parent: String,
    pub commits: Vec<ReplayCommit>,
}

/// One commit: its metadata exactly as in the sandbox, and what it changed against its
/// first parent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayCommit {
    /// The sha in the sandbox (informational: the host commit has a new sha only when its
    /// tree or parent differ).
    pub sha: String,
    /// The raw message, trailing newline included.
    pub message: String,
    pub author_name: String,
    pub author_email: String,
    /// Git's raw date form: `<unix seconds> <+hhmm>`, so time zones survive.
    pub author_date: String,
    pub committer_name: String,
    pub committer_email: String,
    pub committer_date: String,
    pub changes: Vec<ReplayChange>,
}

/// What happened to a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeStatus {
    Added,
    Modified,
    Deleted,
    Renamed,
}

/// One changed path of a commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayChange {
    pub path: String,
    /// For `renamed`: where the file was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    pub status: ChangeStatus,
    /// Git file mode of the new file: `100644`, `100755` or `120000` (symlink; the content
    /// is the link target). Absent for `deleted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default)]
    pub binary: bool,
    /// The new content, base64 (absent for `deleted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The git blob id the old path had in the parent (absent for `added`): the host
    /// checks its own version is the same before touching anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_blob: Option<String>,
}

/// What replaying a bundle onto the host workspace produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayOutcome {
    /// The host's new `HEAD`: the last re-created commit.
    pub head: String,
    /// The re-created commits' ids on the host, oldest first (one per bundle commit).
    pub commits: Vec<String>,
}
