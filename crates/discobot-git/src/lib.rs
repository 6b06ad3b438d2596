//! The git adapter: implements `discobot_core::ports::GitPort` with gix.
#![doc = include_str!("../README.md")]

mod diff;
mod error;
mod ops;
pub mod paths;
mod replay;
mod workspace;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use discobot_core::Result;
use discobot_core::git::{Branch, Commit, DiffQuery, FileDiff, FileEntry, GitStatus, NewCommit};
use discobot_core::model::{DirSuggestion, PathCheck, PathClass};
use discobot_core::ports::GitPort;
use discobot_core::replay::{ReplayBundle, ReplayOutcome};

pub use error::GitError;
pub use replay::apply_replay;

/// Settings of the git adapter.
#[derive(Clone, Debug)]
pub struct GitConfig {
    /// Author and committer name of the initial commit when git config has no `user.name`.
    pub default_author_name: String,
    /// Author and committer email of the initial commit when git config has no `user.email`.
    pub default_author_email: String,
    /// What `~` expands to; `None` leaves `~` paths unexpandable (and so invalid).
    pub home_dir: Option<PathBuf>,
}

impl Default for GitConfig {
    fn default() -> Self {
        GitConfig {
            default_author_name: "Discobot".to_string(),
            default_author_email: "discobot@localhost".to_string(),
            home_dir: dirs::home_dir(),
        }
    }
}

/// Host-side git and filesystem work for workspaces. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct GitAdapter {
    config: GitConfig,
}

impl GitAdapter {
    pub fn new(config: GitConfig) -> Self {
        GitAdapter { config }
    }

    pub fn config(&self) -> &GitConfig {
        &self.config
    }

    fn home(&self) -> Option<&Path> {
        self.config.home_dir.as_deref()
    }

    /// Makes `path` usable as a workspace; see [`GitPort::prepare_local`].
    pub async fn prepare_local_path(&self, path: &Path) -> Result<(), GitError> {
        let raw = path
            .to_str()
            .ok_or_else(|| {
                GitError::InvalidPath(format!("path is not valid UTF-8: {}", path.display()))
            })?
            .to_string();
        let home = self.config.home_dir.clone();
        let name = self.config.default_author_name.clone();
        let email = self.config.default_author_email.clone();
        blocking(move || {
            let check = paths::check(&raw, home.as_deref());
            let dir = PathBuf::from(&check.path);
            match check.class {
                PathClass::ExistingGit => Ok(()),
                PathClass::Invalid => Err(GitError::InvalidPath(
                    check.error.unwrap_or_else(|| "invalid path".to_string()),
                )),
                PathClass::New => {
                    std::fs::create_dir(&dir).map_err(|e| {
                        GitError::Other(format!("cannot create directory {}: {e}", dir.display()))
                    })?;
                    init_or_undo(&dir, &name, &email, || std::fs::remove_dir_all(&dir))
                }
                PathClass::Empty => init_or_undo(&dir, &name, &email, || {
                    std::fs::remove_dir_all(dir.join(".git"))
                }),
            }
        })
        .await
    }

    /// Clones `url` into `dest`; see [`GitPort::clone_repo`].
    pub async fn clone_into(&self, url: &str, dest: &Path) -> Result<(), GitError> {
        if url.trim().is_empty() {
            return Err(GitError::Remote("repository URL is required".to_string()));
        }
        if !dest.is_absolute() {
            return Err(GitError::InvalidPath(format!(
                "clone destination must be absolute: {}",
                dest.display()
            )));
        }
        let url = url.to_string();
        let dest = paths::clean(dest);
        blocking(move || clone_blocking(&url, &dest)).await
    }

    /// Lists the remote's references without cloning; see [`GitPort::check_remote`].
    pub async fn ls_remote(&self, url: &str) -> Result<usize, GitError> {
        if url.trim().is_empty() {
            return Err(GitError::Remote("repository URL is required".to_string()));
        }
        let url = url.to_string();
        blocking(move || ops::ls_remote(&url)).await
    }
}

/// Runs `git init` + the initial commit; on failure calls `undo` so the path is as before.
fn init_or_undo(
    dir: &Path,
    name: &str,
    email: &str,
    undo: impl FnOnce() -> std::io::Result<()>,
) -> Result<(), GitError> {
    match ops::init_with_initial_commit(dir, name, email) {
        Ok(id) => {
            tracing::info!(path = %dir.display(), commit = %id, "initialised repository");
            Ok(())
        }
        Err(err) => {
            if let Err(e) = undo() {
                tracing::warn!(path = %dir.display(), error = %e, "could not undo failed git init");
            }
            Err(err)
        }
    }
}

fn clone_blocking(url: &str, dest: &Path) -> Result<(), GitError> {
    let existed = match std::fs::symlink_metadata(dest) {
        Ok(meta) if meta.is_dir() => true,
        Ok(_) => {
            return Err(GitError::InvalidPath(format!(
                "clone destination is not a directory: {}",
                dest.display()
            )));
        }
        Err(e) if e.kind() == ErrorKind::NotFound => false,
        Err(e) => {
            return Err(GitError::Other(format!(
                "cannot access {}: {e}",
                dest.display()
            )));
        }
    };
    if existed {
        if std::fs::symlink_metadata(dest.join(".git")).is_ok() {
            return match ops::origin_url(dest)? {
                Some(origin) if ops::same_url(&origin, url) => {
                    tracing::debug!(dest = %dest.display(), "reusing existing clone");
                    Ok(())
                }
                Some(origin) => Err(GitError::InvalidPath(format!(
                    "{} already holds a clone of {}, not {url}",
                    dest.display(),
                    origin.to_bstring()
                ))),
                None => Err(GitError::InvalidPath(format!(
                    "{} already holds a git repository without an origin remote",
                    dest.display()
                ))),
            };
        }
        let non_empty = std::fs::read_dir(dest)
            .map_err(|e| GitError::Other(format!("cannot read {}: {e}", dest.display())))?
            .next()
            .is_some();
        if non_empty {
            return Err(GitError::InvalidPath(format!(
                "clone destination is not empty: {}",
                dest.display()
            )));
        }
    } else if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| {
            GitError::Other(format!("cannot create directory {}: {e}", parent.display()))
        })?;
    }
    let result = ops::clone(url, dest);
    if result.is_err() {
        // Leave the destination as it was so a retry starts clean.
        // gix removes a destination it found empty, too: put that back.
        let cleanup = if existed {
            std::fs::create_dir_all(dest).and_then(|()| clear_dir(dest))
        } else {
            match std::fs::remove_dir_all(dest) {
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                other => other,
            }
        };
        if let Err(e) = cleanup {
            tracing::warn!(dest = %dest.display(), error = %e, "could not clean up failed clone");
        }
    } else {
        tracing::info!(url, dest = %dest.display(), "cloned repository");
    }
    result
}

/// Empties a directory without removing it.
fn clear_dir(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Runs blocking work (gix, filesystem) off the async runtime.
async fn blocking<T, F>(f: F) -> Result<T, GitError>
where
    F: FnOnce() -> Result<T, GitError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| GitError::Other(format!("git worker failed: {e}")))?
}

#[async_trait]
impl GitPort for GitAdapter {
    async fn check_local_path(&self, raw: &str) -> Result<PathCheck> {
        let raw = raw.to_string();
        let home = self.config.home_dir.clone();
        Ok(blocking(move || Ok(paths::check(&raw, home.as_deref()))).await?)
    }

    async fn prepare_local(&self, path: &Path) -> Result<()> {
        Ok(self.prepare_local_path(path).await?)
    }

    async fn clone_repo(&self, url: &str, dest: &Path) -> Result<()> {
        Ok(self.clone_into(url, dest).await?)
    }

    async fn check_remote(&self, url: &str) -> Result<()> {
        self.ls_remote(url).await?;
        Ok(())
    }

    async fn suggest_dirs(&self, query: &str) -> Result<Vec<DirSuggestion>> {
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let query = query.to_string();
        let home = self.home().map(Path::to_path_buf);
        Ok(blocking(move || Ok(paths::suggest(&query, home.as_deref()))).await?)
    }

    async fn remove_dir(&self, path: &Path) -> Result<()> {
        if !path.is_absolute() || path.parent().is_none() {
            return Err(GitError::InvalidPath(format!(
                "refusing to remove {}: not an absolute sub-directory",
                path.display()
            ))
            .into());
        }
        match tokio::fs::remove_dir_all(path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(GitError::Other(format!("cannot remove {}: {e}", path.display())).into()),
        }
    }

    async fn apply_replay(&self, repo: &Path, bundle: &ReplayBundle) -> Result<ReplayOutcome> {
        let (repo, bundle) = (repo.to_path_buf(), bundle.clone());
        Ok(blocking(move || replay::apply_replay(&repo, &bundle)).await?)
    }

    async fn git_status(&self, repo: &Path) -> Result<GitStatus> {
        let repo = repo.to_path_buf();
        Ok(blocking(move || workspace::status(&repo)).await?)
    }

    async fn git_fetch(&self, repo: &Path) -> Result<()> {
        let repo = repo.to_path_buf();
        Ok(blocking(move || workspace::fetch(&repo)).await?)
    }

    async fn git_checkout(&self, repo: &Path, reference: &str) -> Result<()> {
        let (repo, reference) = (repo.to_path_buf(), reference.to_string());
        Ok(blocking(move || workspace::checkout(&repo, &reference)).await?)
    }

    async fn git_branches(&self, repo: &Path) -> Result<Vec<Branch>> {
        let repo = repo.to_path_buf();
        Ok(blocking(move || workspace::branches(&repo)).await?)
    }

    async fn git_diff(&self, repo: &Path, query: &DiffQuery) -> Result<Vec<FileDiff>> {
        let (repo, query) = (repo.to_path_buf(), query.clone());
        Ok(blocking(move || diff::diff(&repo, &query)).await?)
    }

    async fn git_file_tree(&self, repo: &Path, reference: Option<&str>) -> Result<Vec<FileEntry>> {
        let (repo, reference) = (repo.to_path_buf(), reference.map(str::to_string));
        Ok(blocking(move || workspace::file_tree(&repo, reference.as_deref())).await?)
    }

    async fn git_read_file(
        &self,
        repo: &Path,
        path: &str,
        reference: Option<&str>,
    ) -> Result<Vec<u8>> {
        let (repo, path) = (repo.to_path_buf(), path.to_string());
        let reference = reference.map(str::to_string);
        Ok(blocking(move || workspace::read_file(&repo, &path, reference.as_deref())).await?)
    }

    async fn git_write_file(&self, repo: &Path, path: &str, content: &[u8]) -> Result<()> {
        let (repo, path, content) = (repo.to_path_buf(), path.to_string(), content.to_vec());
        Ok(blocking(move || workspace::write_file(&repo, &path, &content)).await?)
    }

    async fn git_stage(&self, repo: &Path, paths: &[String]) -> Result<()> {
        let (repo, paths) = (repo.to_path_buf(), paths.to_vec());
        Ok(blocking(move || workspace::stage(&repo, &paths)).await?)
    }

    async fn git_commit(&self, repo: &Path, commit: &NewCommit) -> Result<Commit> {
        let (repo, commit) = (repo.to_path_buf(), commit.clone());
        let fallback = (
            self.config.default_author_name.clone(),
            self.config.default_author_email.clone(),
        );
        Ok(blocking(move || workspace::commit(&repo, &commit, &fallback)).await?)
    }

    async fn user_identity(&self, repo: &Path) -> Result<Option<(String, String)>> {
        let repo = repo.to_path_buf();
        Ok(blocking(move || workspace::user_identity(&repo)).await?)
    }

    async fn git_log(
        &self,
        repo: &Path,
        reference: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Commit>> {
        let (repo, reference) = (repo.to_path_buf(), reference.map(str::to_string));
        Ok(blocking(move || workspace::log(&repo, reference.as_deref(), limit)).await?)
    }
}
