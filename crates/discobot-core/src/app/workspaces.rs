//! Workspace use cases: register a local folder or a git URL, validate, rename, delete.

use std::path::{Path, PathBuf};

use chrono::Utc;
use serde_json::json;

use super::{App, ProjectAccess, check_text, required};
use crate::error::{Error, Result};
use crate::events::EventPayload;
use crate::ids::WorkspaceId;
use crate::jobs::JobType;
use crate::model::{
    DirSuggestion, PathClass, SessionStatus, SourceType, Workspace, WorkspaceStatus,
};

/// The providers a workspace may name; empty means the server default.
const KNOWN_PROVIDERS: &[&str] = &["", "docker", "local"];

/// A request to register a workspace.
#[derive(Clone, Debug, Default)]
pub struct NewWorkspace {
    pub path: String,
    pub display_name: Option<String>,
    /// `local` (default), `git` or `managed`.
    pub source_type: Option<String>,
    pub provider: Option<String>,
}

/// A change to a workspace; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct WorkspacePatch {
    pub path: Option<String>,
    /// `Some(None)` clears the display name.
    pub display_name: Option<Option<String>>,
}

/// The answer of `POST …/workspaces/validate`.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkspaceValidation {
    pub path: String,
    pub source_type: SourceType,
    pub valid: bool,
    pub classification: String,
    pub error: Option<String>,
    pub suggestions: Vec<DirSuggestion>,
}

impl App {
    pub async fn list_workspaces(&self, access: &ProjectAccess) -> Result<Vec<Workspace>> {
        self.ports
            .workspaces
            .list_workspaces(&access.project_id)
            .await
    }

    /// A workspace of this project (404 for another project's).
    pub async fn get_workspace(
        &self,
        access: &ProjectAccess,
        id: &WorkspaceId,
    ) -> Result<Workspace> {
        self.ports
            .workspaces
            .get_workspace(id)
            .await?
            .filter(|workspace| workspace.project_id == access.project_id)
            .ok_or_else(|| Error::not_found("Workspace not found"))
    }

    /// Registers a workspace and queues its initialisation. A local path is checked now
    /// (and a new or empty folder made a repository); a git URL is cloned by the job.
    pub async fn create_workspace(
        &self,
        access: &ProjectAccess,
        request: NewWorkspace,
    ) -> Result<Workspace> {
        let path = required(&request.path, "Path is required")?;
        check_text(&path, "path", 4096)?;
        let source_type = match request.source_type.as_deref().map(str::trim) {
            None | Some("") => SourceType::Local,
            Some(raw) => SourceType::parse(raw)?,
        };
        let provider = request.provider.unwrap_or_default().trim().to_owned();
        if !KNOWN_PROVIDERS.contains(&provider.as_str()) {
            return Err(Error::invalid(format!(
                "unknown provider {provider:?}: expected docker or local"
            )));
        }
        let display_name = normalize_display_name(request.display_name)?;
        let id = WorkspaceId::generate();
        let (path, work_dir) = match source_type {
            SourceType::Git => {
                check_git_url(&path)?;
                let dir = self.clone_dir(access, &id);
                (path, dir.to_string_lossy().into_owned())
            }
            SourceType::Local | SourceType::Managed => {
                let checked = self.checked_local_path(&path).await?;
                self.ports.git.prepare_local(Path::new(&checked)).await?;
                (checked.clone(), checked)
            }
        };
        let now = Utc::now();
        let workspace = Workspace {
            id,
            project_id: access.project_id.clone(),
            path,
            display_name,
            source_type,
            provider,
            auto_generated: false,
            status: WorkspaceStatus::Initializing,
            error_message: None,
            work_dir: Some(work_dir),
            created_at: now,
            updated_at: now,
        };
        self.insert_workspace(&workspace).await?;
        Ok(workspace)
    }

    /// Inserts a workspace row, announces it and queues `workspace_init`.
    pub(crate) async fn insert_workspace(&self, workspace: &Workspace) -> Result<()> {
        self.ports.workspaces.create_workspace(workspace).await?;
        self.publish_workspace(workspace, workspace.status).await;
        self.enqueue(
            JobType::WorkspaceInit,
            workspace.id.as_str(),
            json!({"projectId": workspace.project_id.as_str(), "workspaceId": workspace.id.as_str()}),
            None,
        )
        .await
    }

    pub async fn validate_workspace(
        &self,
        raw_path: &str,
        source_type: Option<&str>,
    ) -> Result<WorkspaceValidation> {
        let source_type = match source_type.map(str::trim) {
            None | Some("") => SourceType::Local,
            Some("local") => SourceType::Local,
            Some("git") => SourceType::Git,
            Some(_) => return Err(Error::invalid("sourceType must be local or git")),
        };
        let raw_path = raw_path.trim();
        if raw_path.is_empty() {
            return Ok(WorkspaceValidation {
                path: String::new(),
                source_type,
                valid: false,
                classification: "invalid".into(),
                error: None,
                suggestions: Vec::new(),
            });
        }
        match source_type {
            SourceType::Git => {
                let url = normalize_git_input(raw_path);
                let checked =
                    match check_git_url(&url) {
                        Err(error) => Err(error.message),
                        Ok(()) => self.ports.git.check_remote(&url).await.map_err(|error| {
                            format!("repository is not cloneable: {}", error.message)
                        }),
                    };
                Ok(WorkspaceValidation {
                    path: url,
                    source_type,
                    valid: checked.is_ok(),
                    classification: if checked.is_ok() {
                        "cloneable"
                    } else {
                        "invalid"
                    }
                    .into(),
                    error: checked.err(),
                    suggestions: Vec::new(),
                })
            }
            SourceType::Local | SourceType::Managed => {
                let check = self.ports.git.check_local_path(raw_path).await?;
                let suggestions = self.ports.git.suggest_dirs(raw_path).await?;
                Ok(WorkspaceValidation {
                    path: check.path,
                    source_type,
                    valid: check.class.is_valid(),
                    classification: check.class.as_str().into(),
                    error: check.error,
                    suggestions,
                })
            }
        }
    }

    /// Directory suggestions for the path picker; empty unless enabled in the config.
    pub async fn suggestions(&self, query: &str, kind: &str) -> Result<Vec<DirSuggestion>> {
        if !self.config.suggestions_enabled || query.trim().is_empty() || kind != "path" {
            return Ok(Vec::new());
        }
        self.ports.git.suggest_dirs(query).await
    }

    pub async fn update_workspace(
        &self,
        access: &ProjectAccess,
        id: &WorkspaceId,
        patch: WorkspacePatch,
    ) -> Result<Workspace> {
        let mut workspace = self.get_workspace(access, id).await?;
        if let Some(path) = patch.path {
            let path = required(&path, "Path is required")?;
            if path != workspace.path {
                if workspace.source_type == SourceType::Git {
                    return Err(Error::invalid(
                        "the URL of a git workspace cannot be changed",
                    ));
                }
                let checked = self.checked_local_path(&path).await?;
                self.ports.git.prepare_local(Path::new(&checked)).await?;
                workspace.work_dir = Some(checked.clone());
                workspace.path = checked;
            }
        }
        if let Some(display_name) = patch.display_name {
            workspace.display_name = normalize_display_name(display_name)?;
        }
        workspace.updated_at = Utc::now();
        self.ports.workspaces.update_workspace(&workspace).await?;
        self.publish_workspace(&workspace, workspace.status).await;
        Ok(workspace)
    }

    /// Deletes the workspace and its sessions, queues removal of their sandboxes, and with
    /// `delete_files` removes the working directory when discobot made it (a clone or an
    /// auto-generated folder). A user's own folder is never deleted.
    pub async fn delete_workspace(
        &self,
        access: &ProjectAccess,
        id: &WorkspaceId,
        delete_files: bool,
    ) -> Result<()> {
        let workspace = self.get_workspace(access, id).await?;
        let sessions = self.ports.sessions.list_workspace_sessions(id).await?;
        self.ports.workspaces.delete_workspace(id).await?;
        for session in &sessions {
            self.publish(
                &access.project_id,
                EventPayload::SessionUpdated {
                    session_id: session.id.clone(),
                    status: SessionStatus::Removed.as_str().into(),
                    commit_status: None,
                },
            )
            .await;
            self.enqueue(
                JobType::SessionSandboxDelete,
                session.id.as_str(),
                json!({"sessionId": session.id.as_str()}),
                None,
            )
            .await?;
        }
        self.publish(
            &access.project_id,
            EventPayload::WorkspaceDeleted {
                workspace_id: id.clone(),
            },
        )
        .await;
        let work_dir = workspace.work_dir.as_deref().map(PathBuf::from);
        if let Some(dir) =
            work_dir.filter(|dir| delete_files && self.is_managed_dir(&workspace, dir))
        {
            self.ports.git.remove_dir(&dir).await?;
        }
        Ok(())
    }

    pub(crate) async fn publish_workspace(&self, workspace: &Workspace, status: WorkspaceStatus) {
        self.publish(
            &workspace.project_id,
            EventPayload::WorkspaceUpdated {
                workspace_id: workspace.id.clone(),
                status: status.as_str().into(),
            },
        )
        .await;
    }

    /// Where the clone of a git workspace lives.
    fn clone_dir(&self, access: &ProjectAccess, id: &WorkspaceId) -> PathBuf {
        self.config
            .workspace_dir
            .join(access.project_id.as_str())
            .join("workspaces")
            .join(id.as_str())
    }

    fn is_managed_dir(&self, workspace: &Workspace, dir: &Path) -> bool {
        let made_by_us = workspace.source_type != SourceType::Local || workspace.auto_generated;
        made_by_us
            && dir.starts_with(&self.config.workspace_dir)
            && dir != self.config.workspace_dir
    }

    /// Classifies a local path and returns it expanded, or the reason it cannot be used.
    async fn checked_local_path(&self, raw: &str) -> Result<String> {
        let check = self.ports.git.check_local_path(raw).await?;
        if check.class == PathClass::Invalid {
            return Err(Error::invalid(
                check
                    .error
                    .unwrap_or_else(|| format!("invalid path: {}", check.path)),
            ));
        }
        Ok(check.path)
    }
}

fn normalize_display_name(display_name: Option<String>) -> Result<Option<String>> {
    match display_name {
        None => Ok(None),
        Some(name) => {
            check_text(&name, "displayName", 200)?;
            let name = name.trim().to_owned();
            Ok(if name.is_empty() { None } else { Some(name) })
        }
    }
}

/// Accepts the URL forms git itself clones: http(s), ssh, git and file URLs, and the
/// scp-like `user@host:path`.
pub(crate) fn check_git_url(url: &str) -> Result<()> {
    const SCHEMES: &[&str] = &["https://", "http://", "ssh://", "git://", "file://"];
    let ok = if let Some(scheme) = SCHEMES.iter().find(|scheme| url.starts_with(**scheme)) {
        url.len() > scheme.len() && !url.contains(char::is_whitespace)
    } else {
        // scp-like syntax: user@host:path
        match url.split_once(':') {
            Some((host, path)) => {
                host.contains('@')
                    && !host.contains('/')
                    && !path.is_empty()
                    && !url.contains(char::is_whitespace)
            }
            None => false,
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "not a git URL: {url:?} (use https://, ssh://, git://, file:// or user@host:path)"
        )))
    }
}

/// Turns the GitHub shorthands `org/repo` and `github.com/org/repo` into URLs.
fn normalize_git_input(raw: &str) -> String {
    let trimmed = raw.trim().trim_end_matches('/');
    for prefix in ["github.com/", "www.github.com/"] {
        if let Some(rest) = trimmed.strip_prefix(prefix) {
            return format!("https://github.com/{rest}");
        }
    }
    let parts: Vec<&str> = trimmed.split('/').collect();
    let is_shorthand = parts.len() == 2
        && parts.iter().all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
        && !trimmed.starts_with('.');
    if is_shorthand {
        return format!("https://github.com/{trimmed}");
    }
    trimmed.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_urls() {
        for ok in [
            "https://github.com/a/b.git",
            "file:///tmp/repo",
            "ssh://git@host/x",
            "git@github.com:a/b.git",
        ] {
            assert!(check_git_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/tmp/repo",
            "ftp://x",
            "https://",
            "hello world",
            "host:path",
        ] {
            assert!(check_git_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn github_shorthands() {
        assert_eq!(
            normalize_git_input("org/repo"),
            "https://github.com/org/repo"
        );
        assert_eq!(
            normalize_git_input("github.com/a/b/"),
            "https://github.com/a/b"
        );
        assert_eq!(normalize_git_input("file:///x"), "file:///x");
    }
}
