//! Session use cases: create (with an automatic workspace when none is named), list, read,
//! update, delete.

use std::path::Path;

use chrono::Utc;
use serde_json::json;

use super::{App, ProjectAccess, check_text};
use crate::error::{Error, Result};
use crate::events::EventPayload;
use crate::ids::{SessionId, WorkspaceId};
use crate::jobs::JobType;
use crate::model::{
    Session, SessionStatus, SourceType, TerminalHistoryEntry, Workspace, WorkspaceStatus,
};

/// A change to a session; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct SessionPatch {
    /// An empty name means "no change", as upstream.
    pub name: Option<String>,
    /// `Some(None)` (or an empty string) clears the display name.
    pub display_name: Option<Option<String>>,
    pub status: Option<String>,
}

/// A workspace with its live sessions.
#[derive(Clone, Debug)]
pub struct WorkspaceView {
    pub workspace: Workspace,
    pub sessions: Vec<Session>,
}

/// The session list with the version it was read at; `sessions` is `None` when the
/// caller's known version is still current.
#[derive(Clone, Debug)]
pub struct VersionedSessions {
    pub version: i64,
    pub sessions: Option<Vec<Session>>,
}

impl App {
    /// The project's sessions unless `known_version` is still current.
    ///
    /// The version is the project's latest event sequence number. Every change to a session
    /// is written before its event is appended, and the version is read before the list, so
    /// a list is never labelled with a version newer than its content.
    pub async fn list_sessions_versioned(
        &self,
        access: &ProjectAccess,
        known_version: Option<i64>,
    ) -> Result<VersionedSessions> {
        let version = self
            .ports
            .events
            .max_project_event_seq(&access.project_id)
            .await?;
        if known_version == Some(version) {
            return Ok(VersionedSessions {
                version,
                sessions: None,
            });
        }
        let sessions = self
            .ports
            .sessions
            .list_sessions(&access.project_id)
            .await?;
        Ok(VersionedSessions {
            version,
            sessions: Some(sessions),
        })
    }

    pub async fn list_sessions(&self, access: &ProjectAccess) -> Result<Vec<Session>> {
        self.ports.sessions.list_sessions(&access.project_id).await
    }

    pub async fn get_workspace_view(
        &self,
        access: &ProjectAccess,
        id: &WorkspaceId,
    ) -> Result<WorkspaceView> {
        let workspace = self.get_workspace(access, id).await?;
        let sessions = self.ports.sessions.list_workspace_sessions(id).await?;
        Ok(WorkspaceView {
            workspace,
            sessions,
        })
    }

    /// A live session of this project: 404 when absent or deleted, 403 for another
    /// project's.
    pub async fn get_session(&self, access: &ProjectAccess, id: &SessionId) -> Result<Session> {
        if id.as_str().is_empty() {
            return Err(Error::invalid("Session ID required"));
        }
        let session = self
            .ports
            .sessions
            .get_session(id)
            .await?
            .ok_or_else(|| Error::not_found("Session not found"))?;
        if session.project_id != access.project_id {
            return Err(Error::forbidden("Session does not belong to this project"));
        }
        Ok(session)
    }

    /// Creates a session on `workspace_id`, or on a fresh automatic workspace when none is
    /// given, and queues its sandbox start.
    pub async fn create_session(
        &self,
        access: &ProjectAccess,
        raw_id: &str,
        workspace_id: Option<&str>,
    ) -> Result<Session> {
        let id = SessionId::parse(raw_id.trim())?;
        if self.ports.sessions.session_id_taken(&id).await? {
            return Err(Error::conflict(format!("session {id} already exists")));
        }
        let workspace = match workspace_id.map(str::trim).filter(|id| !id.is_empty()) {
            Some(workspace_id) => {
                let workspace = self
                    .ports
                    .workspaces
                    .get_workspace(&WorkspaceId::new(workspace_id))
                    .await?
                    .ok_or_else(|| Error::invalid("workspace not found"))?;
                if workspace.project_id != access.project_id {
                    return Err(Error::invalid("workspace does not belong to this project"));
                }
                workspace
            }
            None => self.create_automatic_workspace(access).await?,
        };
        let now = Utc::now();
        let session = Session {
            id,
            project_id: access.project_id.clone(),
            workspace_id: workspace.id.clone(),
            name: String::new(),
            display_name: None,
            description: None,
            status: SessionStatus::Initializing,
            commit_status: None,
            commit_operation: None,
            commit_error: None,
            base_commit: None,
            applied_commit: None,
            error_message: None,
            workspace_path: workspace.work_dir.clone(),
            workspace_commit: None,
            chat_settings: Default::default(),
            created_at: now,
            updated_at: now,
        };
        self.ports.sessions.create_session(&session).await?;
        self.publish_session_status(&session.project_id, &session.id, session.status)
            .await;
        self.enqueue(
            JobType::SessionInit,
            session.id.as_str(),
            json!({
                "projectId": session.project_id.as_str(),
                "sessionId": session.id.as_str(),
                "workspaceId": workspace.id.as_str(),
            }),
            None,
        )
        .await?;
        Ok(session)
    }

    pub async fn update_session(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        patch: SessionPatch,
    ) -> Result<Session> {
        let mut session = self.get_session(access, id).await?;
        let status = match patch.status.as_deref() {
            None | Some("") => None,
            Some(raw) => {
                let status = SessionStatus::parse_client(raw)?;
                if status.is_terminal() {
                    return Err(Error::invalid(format!(
                        "status {status} cannot be set; delete the session instead"
                    )));
                }
                Some(status)
            }
        };
        if let Some(name) = patch.name.filter(|name| !name.is_empty()) {
            check_text(&name, "name", 200)?;
            session.name = name;
        }
        if let Some(display_name) = patch.display_name {
            let display_name = display_name.filter(|name| !name.is_empty());
            if let Some(name) = &display_name {
                check_text(name, "displayName", 200)?;
            }
            session.display_name = display_name;
        }
        let now = Utc::now();
        session.updated_at = now;
        self.ports.sessions.update_session_fields(&session).await?;
        if let Some(status) = status {
            if !self
                .ports
                .sessions
                .set_session_status(id, status, None, false, now)
                .await?
            {
                return Err(Error::conflict("the session is being removed"));
            }
            session.status = status;
            session.error_message = None;
        }
        self.publish(
            &session.project_id,
            EventPayload::SessionUpdated {
                session_id: session.id.clone(),
                status: session.status.as_str().into(),
                commit_status: session
                    .commit_status
                    .map(|status| status.as_str().to_owned()),
            },
        )
        .await;
        Ok(session)
    }

    /// Marks the session `removing` and queues its deletion; deleting a session that is
    /// already being removed succeeds without doing anything.
    pub async fn delete_session(&self, access: &ProjectAccess, id: &SessionId) -> Result<()> {
        let session = self.get_session(access, id).await?;
        if session.status == SessionStatus::Removing {
            return Ok(());
        }
        self.ports
            .sessions
            .set_session_status(id, SessionStatus::Removing, None, true, Utc::now())
            .await?;
        self.publish(
            &session.project_id,
            EventPayload::SessionUpdated {
                session_id: session.id.clone(),
                status: SessionStatus::Removing.as_str().into(),
                commit_status: session
                    .commit_status
                    .map(|status| status.as_str().to_owned()),
            },
        )
        .await;
        self.enqueue(
            JobType::SessionDelete,
            id.as_str(),
            json!({"projectId": session.project_id.as_str(), "sessionId": id.as_str()}),
            None,
        )
        .await
    }

    pub async fn terminal_history(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        limit: Option<u64>,
    ) -> Result<Vec<TerminalHistoryEntry>> {
        self.get_session(access, id).await?;
        self.ports.sessions.list_terminal_history(id, limit).await
    }

    /// A new managed workspace under the workspace dir for a session created without one.
    async fn create_automatic_workspace(&self, access: &ProjectAccess) -> Result<Workspace> {
        let id = WorkspaceId::generate();
        let dir = self
            .config
            .workspace_dir
            .join(format!("empty-workspace-{id}"));
        let path = dir.to_string_lossy().into_owned();
        self.ports
            .git
            .prepare_local(Path::new(&path))
            .await
            .map_err(|error| error.context("failed to create automatic workspace"))?;
        let now = Utc::now();
        let workspace = Workspace {
            id,
            project_id: access.project_id.clone(),
            path: path.clone(),
            display_name: None,
            source_type: SourceType::Managed,
            provider: String::new(),
            auto_generated: true,
            status: WorkspaceStatus::Initializing,
            error_message: None,
            work_dir: Some(path),
            created_at: now,
            updated_at: now,
        };
        self.insert_workspace(&workspace).await?;
        Ok(workspace)
    }

    pub(crate) async fn publish_session_status(
        &self,
        project: &crate::ids::ProjectId,
        id: &SessionId,
        status: SessionStatus,
    ) {
        self.publish(
            project,
            EventPayload::SessionUpdated {
                session_id: id.clone(),
                status: status.as_str().into(),
                commit_status: None,
            },
        )
        .await;
    }
}
