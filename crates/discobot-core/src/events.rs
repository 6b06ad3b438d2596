//! Project events: what changed, as persisted in the event log and sent to subscribers.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::ids::{EventId, JobId, ProjectId, SessionId, WorkspaceId};

/// A persisted event as subscribers receive it.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: EventId,
    /// Assigned by the database; increases with insertion order.
    pub seq: i64,
    pub project_id: ProjectId,
    pub event_type: String,
    pub data: Value,
    pub created_at: DateTime<Utc>,
}

/// An event before it is stored.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub id: EventId,
    pub project_id: ProjectId,
    pub event_type: String,
    pub data: Value,
    pub created_at: DateTime<Utc>,
}

/// The kinds of change we announce; payloads are hints, clients re-fetch the resource.
#[derive(Clone, Debug, PartialEq)]
pub enum EventPayload {
    /// `status` is the raw stored status, or `""` for a commit-only change.
    SessionUpdated {
        session_id: SessionId,
        status: String,
        commit_status: Option<String>,
    },
    WorkspaceUpdated {
        workspace_id: WorkspaceId,
        status: String,
    },
    /// The chat stream relayed a thread's new name (`data-thread-update`).
    ThreadUpdated {
        session_id: SessionId,
        thread_id: String,
        name: Option<String>,
    },
    /// Not upstream: a workspace row was deleted.
    WorkspaceDeleted { workspace_id: WorkspaceId },
    /// Not upstream: the project was renamed or is about to be deleted.
    ProjectUpdated {
        project_id: ProjectId,
        name: String,
        deleted: bool,
    },
    /// A start-up task (the sandbox image build) progressed; always on project `local`.
    StartupTask {
        id: String,
        name: String,
        state: String,
        message: Option<String>,
    },
    JobCompleted {
        job_id: JobId,
        job_type: String,
        resource_type: Option<String>,
        resource_id: Option<String>,
        failed: bool,
        error: Option<String>,
    },
}

impl EventPayload {
    pub fn event_type(&self) -> &'static str {
        match self {
            EventPayload::SessionUpdated { .. } => "session_updated",
            EventPayload::WorkspaceUpdated { .. } => "workspace_updated",
            EventPayload::ThreadUpdated { .. } => "thread_updated",
            EventPayload::WorkspaceDeleted { .. } => "workspace_deleted",
            EventPayload::ProjectUpdated { .. } => "project_updated",
            EventPayload::JobCompleted { .. } => "job_completed",
            EventPayload::StartupTask { .. } => "startup_task_updated",
        }
    }

    /// The `data` object of the wire event (camelCase, optional fields omitted).
    pub fn data(&self) -> Value {
        match self {
            EventPayload::SessionUpdated {
                session_id,
                status,
                commit_status,
            } => {
                let mut data = json!({"sessionId": session_id.as_str(), "status": status});
                if let Some(commit_status) = commit_status {
                    data["commitStatus"] = json!(commit_status);
                }
                data
            }
            EventPayload::WorkspaceUpdated {
                workspace_id,
                status,
            } => {
                json!({"workspaceId": workspace_id.as_str(), "status": status})
            }
            EventPayload::ThreadUpdated {
                session_id,
                thread_id,
                name,
            } => {
                let mut data = json!({"sessionId": session_id.as_str(), "threadId": thread_id});
                if let Some(name) = name {
                    data["name"] = json!(name);
                }
                data
            }
            EventPayload::WorkspaceDeleted { workspace_id } => {
                json!({"workspaceId": workspace_id.as_str()})
            }
            EventPayload::ProjectUpdated {
                project_id,
                name,
                deleted,
            } => {
                json!({"projectId": project_id.as_str(), "name": name, "deleted": deleted})
            }
            EventPayload::StartupTask {
                id,
                name,
                state,
                message,
            } => {
                let mut data = json!({"id": id, "name": name, "state": state});
                if let Some(message) = message {
                    data["currentOperation"] = json!(message);
                }
                data
            }
            EventPayload::JobCompleted {
                job_id,
                job_type,
                resource_type,
                resource_id,
                failed,
                error,
            } => {
                let mut data = json!({
                    "jobId": job_id.as_str(),
                    "jobType": job_type,
                    "status": if *failed { "failed" } else { "completed" },
                });
                if let Some(resource_type) = resource_type {
                    data["resourceType"] = json!(resource_type);
                }
                if let Some(resource_id) = resource_id {
                    data["resourceId"] = json!(resource_id);
                }
                if let Some(error) = error {
                    data["error"] = json!(error);
                }
                data
            }
        }
    }
}

/// Event ids are the publish time as `YYYYMMDDhhmmss.nnnnnnnnn` (UTC), like upstream's.
pub fn event_id_for(at: DateTime<Utc>) -> EventId {
    EventId::new(at.format("%Y%m%d%H%M%S.%f").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn event_id_format() {
        let at =
            Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + chrono::Duration::nanoseconds(7);
        assert_eq!(event_id_for(at).as_str(), "20260102030405.000000007");
    }

    #[test]
    fn session_updated_omits_empty_commit_status() {
        let payload = EventPayload::SessionUpdated {
            session_id: SessionId::new("s1"),
            status: "ready".into(),
            commit_status: None,
        };
        assert_eq!(
            payload.data(),
            json!({"sessionId": "s1", "status": "ready"})
        );
    }
}
