//! The job executors: workspace init, session init, session delete, sandbox delete.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::Value;

use super::App;
use crate::error::{Error, ErrorKind, Result};
use crate::events::EventPayload;
use crate::ids::{JobId, ProjectId, SessionId, WorkspaceId};
use crate::jobs::{Job, JobType};
use crate::model::{SessionStatus, SourceType, WorkspaceStatus};
use crate::ports::{JobHandler, JobRun};

/// How long a session init waits before looking again at a workspace still being cloned.
const WORKSPACE_WAIT: Duration = Duration::from_secs(1);

#[async_trait]
impl JobHandler for App {
    async fn run_job(&self, job: &Job) -> Result<JobRun> {
        let job_type = JobType::parse(&job.job_type).map_err(|_| {
            Error::not_implemented(format!("no executor for job type {}", job.job_type))
        })?;
        match job_type {
            JobType::WorkspaceInit => self.run_workspace_init(job).await,
            JobType::SessionInit => self.run_session_init(job).await,
            JobType::SessionDelete => self.run_session_delete(job).await,
            JobType::SessionSandboxDelete => {
                let session = SessionId::new(field(&job.payload, "sessionId")?);
                self.ports.sandbox.remove(&session, true).await?;
                Ok(JobRun::Done)
            }
            JobType::SessionCommit => self.run_commit_job(job, false).await,
            JobType::SessionRebase => self.run_commit_job(job, true).await,
            JobType::PromptDispatch => self.run_prompt_dispatch(job).await,
        }
    }

    async fn job_finished(&self, job: &Job, error: Option<&str>) {
        if let Some(error) = error
            && matches!(
                JobType::parse(&job.job_type),
                Ok(JobType::SessionCommit | JobType::SessionRebase)
            )
        {
            self.commit_job_failed(job, error).await;
        }
        let Some(project) = job.payload.get("projectId").and_then(Value::as_str) else {
            return;
        };
        self.publish(
            &ProjectId::new(project),
            EventPayload::JobCompleted {
                job_id: JobId::new(job.id.as_str()),
                job_type: job.job_type.clone(),
                resource_type: Some(job.resource_type.clone()),
                resource_id: Some(job.resource_id.clone()),
                failed: error.is_some(),
                error: error.map(str::to_owned),
            },
        )
        .await;
    }
}

impl App {
    /// Clones a git workspace (or re-checks a local one) and marks it ready; on failure the
    /// workspace shows `error` with the message and the job is retried when that can help.
    async fn run_workspace_init(&self, job: &Job) -> Result<JobRun> {
        let id = WorkspaceId::new(field(&job.payload, "workspaceId")?);
        let Some(workspace) = self.ports.workspaces.get_workspace(&id).await? else {
            return Ok(JobRun::Done);
        };
        let result = match workspace.source_type {
            SourceType::Git => {
                self.set_workspace_status(&workspace, WorkspaceStatus::Cloning, None)
                    .await?;
                let dir = workspace.work_dir.clone().unwrap_or_default();
                self.ports
                    .git
                    .clone_repo(&workspace.path, Path::new(&dir))
                    .await
            }
            SourceType::Local | SourceType::Managed => {
                self.ports
                    .git
                    .prepare_local(Path::new(&workspace.path))
                    .await
            }
        };
        match result {
            Ok(()) => {
                self.set_workspace_status(&workspace, WorkspaceStatus::Ready, None)
                    .await?;
                Ok(JobRun::Done)
            }
            Err(error) => {
                let error = error.context("failed to initialize workspace");
                self.set_workspace_status(&workspace, WorkspaceStatus::Error, Some(&error.message))
                    .await?;
                Err(error)
            }
        }
    }

    async fn set_workspace_status(
        &self,
        workspace: &crate::model::Workspace,
        status: WorkspaceStatus,
        error: Option<&str>,
    ) -> Result<()> {
        self.ports
            .workspaces
            .set_workspace_status(&workspace.id, status, error, None, Utc::now())
            .await?;
        self.publish_workspace(workspace, status).await;
        Ok(())
    }

    /// Waits for the workspace, then asks the sandbox provider to run the session's sandbox.
    async fn run_session_init(&self, job: &Job) -> Result<JobRun> {
        let id = SessionId::new(field(&job.payload, "sessionId")?);
        let Some(session) = self.ports.sessions.get_session(&id).await? else {
            return Ok(JobRun::Done);
        };
        if session.status.is_terminal() {
            return Ok(JobRun::Done);
        }
        let Some(workspace) = self
            .ports
            .workspaces
            .get_workspace(&session.workspace_id)
            .await?
        else {
            let message = "workspace not found";
            self.set_session_status(
                &session.project_id,
                &id,
                SessionStatus::Error,
                Some(message),
            )
            .await?;
            return Err(Error::not_found(message));
        };
        match workspace.status {
            WorkspaceStatus::Ready => {}
            WorkspaceStatus::Error => {
                let message = format!(
                    "git setup failed: {}",
                    workspace
                        .error_message
                        .as_deref()
                        .unwrap_or("workspace initialization failed")
                );
                // Said once: the job looks again every few seconds, and an unchanged
                // status is no news for the project's event stream.
                if session.status != SessionStatus::Error
                    || session.error_message.as_deref() != Some(message.as_str())
                {
                    self.set_session_status(
                        &session.project_id,
                        &id,
                        SessionStatus::Error,
                        Some(&message),
                    )
                    .await?;
                }
                // The workspace job may still retry; look again rather than give up.
                return Ok(JobRun::Defer(WORKSPACE_WAIT * 5));
            }
            WorkspaceStatus::Initializing | WorkspaceStatus::Cloning => {
                if workspace.source_type == SourceType::Git
                    && session.status != SessionStatus::Cloning
                {
                    self.set_session_status(&session.project_id, &id, SessionStatus::Cloning, None)
                        .await?;
                }
                return Ok(JobRun::Defer(WORKSPACE_WAIT));
            }
        }
        // The sandbox clones the workspace at a known commit: the base its work is later
        // committed back onto.
        let mut session = session;
        if session.workspace_commit.is_none()
            && let Some(dir) = workspace.work_dir.as_deref().filter(|dir| !dir.is_empty())
            && let Ok(status) = self.ports.git.git_status(Path::new(dir)).await
            && !status.commit.is_empty()
        {
            self.ports
                .sessions
                .set_commit_refs(
                    &id,
                    &crate::ports::CommitRefs {
                        workspace_commit: Some(status.commit.clone()),
                        ..Default::default()
                    },
                    Utc::now(),
                )
                .await?;
            session.workspace_commit = Some(status.commit);
        }
        self.set_session_status(
            &session.project_id,
            &id,
            SessionStatus::CreatingSandbox,
            None,
        )
        .await?;
        match self
            .ports
            .sandbox
            .ensure_running(&session, &workspace)
            .await
        {
            Ok(()) => {
                self.set_session_status(&session.project_id, &id, SessionStatus::Ready, None)
                    .await?;
                Ok(JobRun::Done)
            }
            Err(error) => {
                let error = error.context("sandbox creation failed");
                self.set_session_status(
                    &session.project_id,
                    &id,
                    SessionStatus::Error,
                    Some(&error.message),
                )
                .await?;
                Err(error)
            }
        }
    }

    /// Removes the sandbox with its volumes, soft-deletes the row and announces `removed`.
    async fn run_session_delete(&self, job: &Job) -> Result<JobRun> {
        let id = SessionId::new(field(&job.payload, "sessionId")?);
        let Some(session) = self.ports.sessions.get_session(&id).await? else {
            return Ok(JobRun::Done);
        };
        self.ports.sandbox.remove(&id, true).await?;
        self.ports
            .sessions
            .soft_delete_session(&id, Utc::now())
            .await?;
        self.publish_session_status(&session.project_id, &id, SessionStatus::Removed)
            .await;
        Ok(JobRun::Done)
    }

    /// Writes a status (unless the session is being removed) and announces it.
    async fn set_session_status(
        &self,
        project: &ProjectId,
        id: &SessionId,
        status: SessionStatus,
        error: Option<&str>,
    ) -> Result<()> {
        if self
            .ports
            .sessions
            .set_session_status(id, status, error, false, Utc::now())
            .await?
        {
            self.publish_session_status(project, id, status).await;
        }
        Ok(())
    }
}

/// Whether a failed job should be tried again.
pub fn is_permanent(error: &Error) -> bool {
    matches!(
        error.kind,
        ErrorKind::InvalidInput | ErrorKind::NotFound | ErrorKind::NotImplemented
    )
}

fn field<'a>(payload: &'a Value, name: &str) -> Result<&'a str> {
    payload
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid(format!("job payload lacks {name}")))
}
