//! Workspace git use cases (routes #38–#48): status, fetch, checkout, branches, diff, file
//! tree, file read/write, stage, commit and log on a workspace's working tree.
//!
//! Each checks that the workspace belongs to the caller's project and is ready (its
//! repository exists), validates what the adapter cannot, and calls one `GitPort` method.

use std::path::PathBuf;

use super::{App, ProjectAccess};
use crate::error::{Error, Result};
use crate::git::{Branch, Commit, DiffQuery, FileDiff, FileEntry, GitStatus, NewCommit};
use crate::ids::WorkspaceId;
use crate::model::WorkspaceStatus;

/// Commits the log returns when no limit is asked for.
pub const DEFAULT_LOG_LIMIT: usize = 50;
/// The most commits one log request returns, whatever the limit asked for.
pub const MAX_LOG_LIMIT: usize = 10_000;
/// Longest ref name or revision accepted (git itself allows a few KiB).
const MAX_REF_LEN: usize = 1024;

/// A file of the workspace read at a revision (or from the working tree).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceFile {
    pub path: String,
    /// The revision asked for; empty for the working tree.
    pub reference: String,
    /// The file's text (invalid UTF-8 replaced by U+FFFD).
    pub content: String,
}

impl App {
    /// The working tree of a ready workspace of this project.
    async fn workspace_repo(&self, access: &ProjectAccess, id: &WorkspaceId) -> Result<PathBuf> {
        let workspace = self.get_workspace(access, id).await?;
        match workspace.status {
            WorkspaceStatus::Initializing | WorkspaceStatus::Cloning => {
                return Err(Error::conflict(format!(
                    "workspace is still {}: try again when it is ready",
                    workspace.status.as_str()
                )));
            }
            WorkspaceStatus::Ready | WorkspaceStatus::Error => {}
        }
        workspace
            .work_dir
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| Error::conflict("workspace has no working directory yet"))
    }

    pub async fn workspace_git_status(
        &self,
        access: &ProjectAccess,
        id: &WorkspaceId,
    ) -> Result<GitStatus> {
        let repo = self.workspace_repo(access, id).await?;
        self.ports.git.git_status(&repo).await
    }

    pub async fn fetch_workspace(&self, access: &ProjectAccess, id: &WorkspaceId) -> Result<()> {
        let repo = self.workspace_repo(access, id).await?;
        self.ports.git.git_fetch(&repo).await
    }

    pub async fn checkout_workspace(
        &self,
        access: &ProjectAccess,
        id: &WorkspaceId,
        reference: &str,
    ) -> Result<()> {
        let reference = reference.trim();
        if reference.is_empty() {
            return Err(Error::invalid("ref is required"));
        }
        check_ref(reference)?;
        let repo = self.workspace_repo(access, id).await?;
        self.ports.git.git_checkout(&repo, reference).await
    }

    pub async fn workspace_branches(
        &self,
        access: &ProjectAccess,
        id: &WorkspaceId,
    ) -> Result<Vec<Branch>> {
        let repo = self.workspace_repo(access, id).await?;
        self.ports.git.git_branches(&repo).await
    }

    pub async fn workspace_diff(
        &self,
        access: &ProjectAccess,
        id: &WorkspaceId,
        query: DiffQuery,
    ) -> Result<Vec<FileDiff>> {
        let query = DiffQuery {
            base: optional_ref(query.base)?,
            head: optional_ref(query.head)?,
            ..query
        };
        let repo = self.workspace_repo(access, id).await?;
        self.ports.git.git_diff(&repo, &query).await
    }

    pub async fn workspace_file_tree(
        &self,
        access: &ProjectAccess,
        id: &WorkspaceId,
        reference: Option<String>,
    ) -> Result<Vec<FileEntry>> {
        let reference = optional_ref(reference)?;
        let repo = self.workspace_repo(access, id).await?;
        self.ports
            .git
            .git_file_tree(&repo, reference.as_deref())
            .await
    }

    pub async fn workspace_file(
        &self,
        access: &ProjectAccess,
        id: &WorkspaceId,
        path: &str,
        reference: Option<String>,
    ) -> Result<WorkspaceFile> {
        if path.is_empty() {
            return Err(Error::invalid("path is required"));
        }
        let reference = optional_ref(reference)?;
        let repo = self.workspace_repo(access, id).await?;
        let bytes = self
            .ports
            .git
            .git_read_file(&repo, path, reference.as_deref())
            .await?;
        Ok(WorkspaceFile {
            path: path.to_owned(),
            reference: reference.unwrap_or_default(),
            content: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    pub async fn write_workspace_file(
        &self,
        access: &ProjectAccess,
        id: &WorkspaceId,
        path: &str,
        content: &str,
    ) -> Result<()> {
        if path.is_empty() {
            return Err(Error::invalid("path is required"));
        }
        let repo = self.workspace_repo(access, id).await?;
        self.ports
            .git
            .git_write_file(&repo, path, content.as_bytes())
            .await
    }

    /// Stages `paths` (all changes when empty), like `git add -A -- <paths>`.
    pub async fn stage_workspace_files(
        &self,
        access: &ProjectAccess,
        id: &WorkspaceId,
        paths: Vec<String>,
    ) -> Result<()> {
        if paths.iter().any(|path| path.is_empty()) {
            return Err(Error::invalid("paths must not contain empty paths"));
        }
        let repo = self.workspace_repo(access, id).await?;
        self.ports.git.git_stage(&repo, &paths).await
    }

    pub async fn commit_workspace(
        &self,
        access: &ProjectAccess,
        id: &WorkspaceId,
        commit: NewCommit,
    ) -> Result<Commit> {
        if commit.message.trim().is_empty() {
            return Err(Error::invalid("message is required"));
        }
        if commit.message.contains('\0') {
            return Err(Error::invalid("message must not contain NUL bytes"));
        }
        let author_name = identity_part(commit.author_name, "authorName")?;
        let author_email = identity_part(commit.author_email, "authorEmail")?;
        let repo = self.workspace_repo(access, id).await?;
        let commit = NewCommit {
            message: commit.message,
            author_name,
            author_email,
        };
        self.ports.git.git_commit(&repo, &commit).await
    }

    /// The log of `reference` (default `HEAD`), newest first; `limit` is the raw query value
    /// (digits only, > 0; default 50).
    pub async fn workspace_log(
        &self,
        access: &ProjectAccess,
        id: &WorkspaceId,
        reference: Option<String>,
        limit: Option<&str>,
    ) -> Result<Vec<Commit>> {
        let limit = match limit {
            None => DEFAULT_LOG_LIMIT,
            Some(raw) => parse_log_limit(raw)?.min(MAX_LOG_LIMIT),
        };
        let reference = optional_ref(reference)?;
        let repo = self.workspace_repo(access, id).await?;
        self.ports
            .git
            .git_log(&repo, reference.as_deref(), limit)
            .await
    }
}

/// Parses the log's `limit` query value: digits only, greater than zero.
pub fn parse_log_limit(raw: &str) -> Result<usize> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid("limit must be a positive integer"));
    }
    match raw.parse::<usize>() {
        Ok(0) => Err(Error::invalid("limit must be a positive integer")),
        Ok(n) => Ok(n),
        // More digits than fit: as many as we ever return.
        Err(_) => Ok(MAX_LOG_LIMIT),
    }
}

/// A ref or revision a user typed: never an option (`-…`), never control characters.
fn check_ref(reference: &str) -> Result<()> {
    if reference.starts_with('-') {
        return Err(Error::invalid("ref must not start with '-'"));
    }
    if reference.len() > MAX_REF_LEN {
        return Err(Error::invalid(format!(
            "ref must be at most {MAX_REF_LEN} bytes"
        )));
    }
    if reference.chars().any(char::is_control) {
        return Err(Error::invalid("ref must not contain control characters"));
    }
    Ok(())
}

/// An optional ref from a query: blank means absent.
fn optional_ref(reference: Option<String>) -> Result<Option<String>> {
    match reference.map(|r| r.trim().to_owned()) {
        Some(r) if !r.is_empty() => {
            check_ref(&r)?;
            Ok(Some(r))
        }
        _ => Ok(None),
    }
}

/// An author name or email: blank means "from git configuration"; `<`, `>` and control
/// characters would corrupt the commit header.
fn identity_part(value: Option<String>, field: &str) -> Result<Option<String>> {
    match value.map(|v| v.trim().to_owned()) {
        Some(v) if !v.is_empty() => {
            if v.chars().any(|c| c.is_control() || c == '<' || c == '>') {
                return Err(Error::invalid(format!(
                    "{field} must not contain '<', '>' or control characters"
                )));
            }
            Ok(Some(v))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn log_limit_takes_digits_only() {
        assert_eq!(parse_log_limit("7").unwrap(), 7);
        assert_eq!(
            parse_log_limit("99999999999999999999999").unwrap(),
            MAX_LOG_LIMIT
        );
        for bad in ["", "0", "-1", "+3", "1.5", "ten", " 5"] {
            assert_eq!(
                parse_log_limit(bad).unwrap_err().kind,
                ErrorKind::InvalidInput,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refs_that_look_like_options_are_refused() {
        assert!(check_ref("main").is_ok());
        assert!(check_ref("origin/feature~2").is_ok());
        assert_eq!(
            check_ref("--orphan").unwrap_err().kind,
            ErrorKind::InvalidInput
        );
        assert!(check_ref("a\nb").is_err());
        assert_eq!(optional_ref(Some("  ".into())).unwrap(), None);
    }

    #[test]
    fn identity_parts_cannot_break_the_commit_header() {
        assert_eq!(identity_part(Some(" ".into()), "authorName").unwrap(), None);
        assert_eq!(
            identity_part(Some("Ada".into()), "authorName").unwrap(),
            Some("Ada".into())
        );
        assert!(identity_part(Some("a <b>".into()), "authorName").is_err());
        assert!(identity_part(Some("a\nb".into()), "authorEmail").is_err());
    }
}
