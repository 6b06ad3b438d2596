//! The use-case layer: `App` holds the ports and exposes one method per user action.
//!
//! Handlers call exactly one `App` method; the method checks access, validates input,
//! talks to the ports and announces every state change as a project event.

mod agent;
mod chat;
mod commit;
mod credentials;
pub mod jobs;
mod lifecycle;
mod members;
mod preferences;
mod projects;
pub use projects::EventCursor;
mod sessions;
mod workspace_git;
mod workspaces;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use chat::{ChatInput, ChatStarted, ChatStream, ChatStreamItem, SessionFileRead};
pub use credentials::{
    AssignmentInput, CredentialInfo, CredentialInput, EnvVarInput, KeyCheck, McpTokenInput,
    SessionCredentialView,
};
pub use members::NewInvitation;
pub use sessions::{SessionPatch, VersionedSessions, WorkspaceView};
pub use workspace_git::{DEFAULT_LOG_LIMIT, WorkspaceFile};
pub use workspaces::{NewWorkspace, WorkspacePatch, WorkspaceValidation};

use crate::error::{Error, ErrorKind, Result};
use crate::events::{EventPayload, NewEvent, event_id_for};
use crate::ids::{ProjectId, UserId};
use crate::jobs::{JobType, NewJob};
use crate::model::{Member, Role};
use crate::ports::{
    AgentPort, CredentialRepo, EventLog, EventNotifier, GitPort, JobQueue, JobWaker, MemberRepo,
    PreferenceRepo, ProjectRepo, SandboxPort, SessionRepo, SettingsRepo, Sleeper, UserRepo,
    WorkspaceRepo,
};
use crate::secrets::Sealer;

/// The adapters the use cases run against, as trait objects built by the binary.
#[derive(Clone)]
pub struct Ports {
    pub users: Arc<dyn UserRepo>,
    pub projects: Arc<dyn ProjectRepo>,
    pub members: Arc<dyn MemberRepo>,
    pub preferences: Arc<dyn PreferenceRepo>,
    pub workspaces: Arc<dyn WorkspaceRepo>,
    pub sessions: Arc<dyn SessionRepo>,
    pub submissions: Arc<dyn crate::ports::PromptSubmissionRepo>,
    pub credentials: Arc<dyn CredentialRepo>,
    pub settings: Arc<dyn SettingsRepo>,
    pub events: Arc<dyn EventLog>,
    pub jobs: Arc<dyn JobQueue>,
    pub git: Arc<dyn GitPort>,
    pub sandbox: Arc<dyn SandboxPort>,
    pub event_notifier: Arc<dyn EventNotifier>,
    pub job_waker: Arc<dyn JobWaker>,
    /// The sessions' agents (chat, threads, files, diff).
    pub agent: Arc<dyn AgentPort>,
    pub sleeper: Arc<dyn Sleeper>,
}

/// Settings of the use-case layer.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// Where clones of git workspaces and auto-generated workspaces live.
    pub workspace_dir: PathBuf,
    /// Base delay between job attempts (multiplied by the attempt number).
    pub job_retry_backoff: Duration,
    /// How long an invitation token stays valid.
    pub invitation_ttl: Duration,
    /// Whether `GET …/suggestions` lists directories of the server's filesystem.
    pub suggestions_enabled: bool,
    /// Seals credentials at rest (AES-256-GCM under the server's encryption key).
    pub sealer: Sealer,
}

/// Who is making a request.
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    pub user_id: UserId,
}

impl Principal {
    pub fn anonymous() -> Self {
        Principal {
            user_id: UserId::anonymous(),
        }
    }
}

/// Proof that a principal is a member of a project; every project-scoped use case takes one.
#[derive(Clone, Debug)]
pub struct ProjectAccess {
    pub project_id: ProjectId,
    pub principal: Principal,
    pub role: Role,
}

impl ProjectAccess {
    /// The access of the server's own background work on a project (jobs): no user asks.
    pub(crate) fn system(project_id: &ProjectId) -> Self {
        ProjectAccess {
            project_id: project_id.clone(),
            principal: Principal::anonymous(),
            role: Role::Owner,
        }
    }

    fn require_admin(&self) -> Result<()> {
        if self.role.is_admin() {
            Ok(())
        } else {
            Err(Error::forbidden("Admin access required"))
        }
    }
    fn require_owner(&self) -> Result<()> {
        if self.role == Role::Owner {
            Ok(())
        } else {
            Err(Error::forbidden("Owner access required"))
        }
    }
}

/// The use cases of discobot.
pub struct App {
    pub(crate) ports: Ports,
    pub(crate) config: AppConfig,
    /// When each session's sandbox was last used, for the idle monitor (this process only).
    pub(crate) activity:
        std::sync::Mutex<std::collections::HashMap<crate::ids::SessionId, DateTime<Utc>>>,
}

impl App {
    pub fn new(ports: Ports, config: AppConfig) -> Self {
        App {
            ports,
            config,
            activity: Default::default(),
        }
    }

    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    pub fn sandbox(&self) -> &Arc<dyn SandboxPort> {
        &self.ports.sandbox
    }

    /// The one membership check of every project-scoped route: 404 when the project does
    /// not exist, 403 when the principal is not a member.
    pub async fn authorize_project(
        &self,
        principal: &Principal,
        project_id: &ProjectId,
    ) -> Result<ProjectAccess> {
        if project_id.as_str().is_empty() {
            return Err(Error::invalid("Project ID required"));
        }
        let membership: Option<Member> = self
            .ports
            .members
            .get_membership(project_id, &principal.user_id)
            .await?;
        match membership {
            Some(member) => Ok(ProjectAccess {
                project_id: project_id.clone(),
                principal: principal.clone(),
                role: member.role,
            }),
            None => match self.ports.projects.get_project(project_id).await? {
                None => Err(Error::not_found("Project not found")),
                Some(_) => Err(Error::forbidden("Access denied")),
            },
        }
    }

    /// Stores an event and wakes local delivery. A failure is logged, not returned: the
    /// state change it describes has already happened and must not be reported as failed.
    pub(crate) async fn publish(&self, project_id: &ProjectId, payload: EventPayload) {
        let now = Utc::now();
        let event = NewEvent {
            id: event_id_for(now),
            project_id: project_id.clone(),
            event_type: payload.event_type().to_owned(),
            data: payload.data(),
            created_at: now,
        };
        match self.ports.events.append_event(&event).await {
            Ok(_) => self.ports.event_notifier.notify(),
            Err(error) => tracing::error!(
                event.type = event.event_type,
                project.id = %project_id,
                %error,
                "failed to store event"
            ),
        }
    }

    /// Enqueues a job with its type's rules and wakes the dispatcher. A clash with a job
    /// already queued for the resource is not an error: that job will do the work.
    pub(crate) async fn enqueue(
        &self,
        job_type: JobType,
        resource_id: &str,
        payload: Value,
        run_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let now = Utc::now();
        let mut job = NewJob::new(job_type, resource_id, payload, now);
        if let Some(run_at) = run_at {
            job.scheduled_at = run_at;
        }
        match self.ports.jobs.enqueue(&job).await {
            Ok(()) => {
                self.ports.job_waker.wake();
                Ok(())
            }
            Err(error) if error.kind == ErrorKind::Conflict => {
                tracing::debug!(job.type = job_type.as_str(), resource.id = resource_id, "job already queued");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }
}

/// Trims a required text field, naming it in the error when empty.
pub(crate) fn required(value: &str, error: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::invalid(error));
    }
    Ok(value.to_owned())
}

/// Rejects text longer than `max` characters or holding control characters.
pub(crate) fn check_text(value: &str, field: &str, max: usize) -> Result<()> {
    if value.chars().count() > max {
        return Err(Error::invalid(format!(
            "{field} must be at most {max} characters"
        )));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}
