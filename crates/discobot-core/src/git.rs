//! Domain types of the workspace git operations (status, branches, diffs, trees, commits)
//! that `GitPort` returns and the workspace git routes show.

use chrono::{DateTime, FixedOffset};

/// One changed path in `git status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStatus {
    /// Repository-relative path, `/`-separated.
    pub path: String,
    /// `added`, `modified`, `deleted`, `renamed`, `copied`, `typechange` or `unmerged`.
    pub status: String,
    /// The path before a rename or copy; empty otherwise.
    pub old_path: String,
}

/// The state of a working tree, like `git status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GitStatus {
    /// The checked-out branch; empty when `HEAD` is detached.
    pub branch: String,
    /// The full id of `HEAD`; empty in a repository without commits.
    pub commit: String,
    pub commit_short: String,
    /// Commits on `HEAD` that its upstream lacks; 0 without an upstream.
    pub ahead: u32,
    /// Commits on the upstream that `HEAD` lacks; 0 without an upstream.
    pub behind: u32,
    /// Index against `HEAD`.
    pub staged: Vec<FileStatus>,
    /// Working tree against the index (tracked files only).
    pub unstaged: Vec<FileStatus>,
    /// Files git does not track and does not ignore.
    pub untracked: Vec<String>,
    pub has_conflicts: bool,
}

impl GitStatus {
    pub fn is_clean(&self) -> bool {
        self.staged.is_empty() && self.unstaged.is_empty() && self.untracked.is_empty()
    }
}

/// A local or remote-tracking branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Branch {
    /// `main` for local branches, `origin/main` for remote-tracking ones.
    pub name: String,
    pub is_remote: bool,
    pub is_current: bool,
    /// The full id of the commit the branch points at.
    pub commit: String,
    /// The upstream of a local branch (`origin/main`); empty when none.
    pub upstream: String,
}

/// What to compare in a diff.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiffQuery {
    /// The old side; with `head` absent the new side is the working tree (`git diff <base>`).
    pub base: Option<String>,
    /// The new side (a revision); the old side defaults to `HEAD`.
    pub head: Option<String>,
    /// Index against `HEAD` (`git diff --staged`); ignored when `base` or `head` is given.
    pub staged: bool,
    /// Limits the diff to these paths (a path or a directory prefix each); empty means all.
    pub paths: Vec<String>,
}

/// The diff of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDiff {
    pub path: String,
    /// The path before a rename; empty otherwise.
    pub old_path: String,
    /// `added`, `modified`, `deleted` or `renamed`.
    pub status: String,
    pub binary: bool,
    pub additions: u32,
    pub deletions: u32,
    /// The unified patch of this file, as `git diff` prints it; empty for binary files.
    pub patch: String,
}

/// One entry of a file tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Repository-relative path, `/`-separated.
    pub path: String,
    /// The last component of `path`.
    pub name: String,
    pub is_dir: bool,
    /// Size in bytes; 0 for directories.
    pub size: u64,
    /// git's octal mode: `100644`, `100755`, `120000`, `040000`, `160000`.
    pub mode: String,
}

/// A commit as the log shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub sha: String,
    pub short_sha: String,
    /// The full message.
    pub message: String,
    pub author: String,
    pub author_email: String,
    pub author_date: DateTime<FixedOffset>,
    pub committer: String,
    pub commit_date: DateTime<FixedOffset>,
    /// Full ids of the parents, in order.
    pub parents: Vec<String>,
}

/// A request to commit the index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewCommit {
    pub message: String,
    /// Author (and committer) name; git configuration, then the adapter's default, otherwise.
    pub author_name: Option<String>,
    pub author_email: Option<String>,
}
