//! Background jobs: their types, payloads, queue rules (priority, attempts, concurrency,
//! resource keys) and retry backoff.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::ids::JobId;
use crate::model::string_enum;

string_enum!(
    /// Every kind of job the queue runs.
    JobType, "job type" {
        WorkspaceInit => "workspace_init",
        SessionInit => "session_init",
        SessionDelete => "session_delete",
        SessionSandboxDelete => "session_sandbox_delete",
        SessionCommit => "session_commit",
        SessionRebase => "session_rebase",
        PromptDispatch => "prompt_dispatch",
    }
);

/// The queue rules of one job type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobSpec {
    pub priority: i32,
    pub max_attempts: i32,
    /// How many jobs of this type one process runs at once.
    pub concurrency: usize,
    /// The kind of resource the job is about; jobs on one resource never run at once.
    pub resource_type: &'static str,
    /// When false, enqueueing while a pending or running job exists for the resource fails.
    pub allow_duplicates: bool,
}

impl JobType {
    pub fn spec(self) -> JobSpec {
        let spec = |priority, max_attempts, concurrency, resource_type, allow_duplicates| JobSpec {
            priority,
            max_attempts,
            concurrency,
            resource_type,
            allow_duplicates,
        };
        match self {
            JobType::WorkspaceInit => spec(10, 3, 1, "workspace", false),
            JobType::SessionInit => spec(10, 3, 2, "session", false),
            // A delete must never be swallowed by a pending init of the same session; it
            // still runs after it, one job per resource at a time.
            JobType::SessionDelete => spec(5, 3, 2, "session", true),
            JobType::SessionSandboxDelete => spec(1, 3, 2, "retained_sandbox", false),
            // Commits to one workspace are serialised, whichever session they come from.
            JobType::SessionCommit => spec(10, 1, 1, "workspace", true),
            JobType::SessionRebase => spec(10, 1, 10, "session", true),
            // A prompt the agent did not take at once: tried again while its sandbox restarts.
            JobType::PromptDispatch => spec(10, 5, 4, "prompt_submission", false),
        }
    }
}

string_enum!(
    /// Where a job is in its life.
    JobStatus, "job status" {
        Pending => "pending", Running => "running", Completed => "completed", Failed => "failed",
    }
);

/// A job to be inserted.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    pub id: JobId,
    pub job_type: JobType,
    pub payload: Value,
    pub priority: i32,
    pub max_attempts: i32,
    pub resource_type: String,
    pub resource_id: String,
    pub allow_duplicates: bool,
    pub scheduled_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl NewJob {
    /// A job of `job_type` about `resource_id`, due now, with the type's rules.
    pub fn new(job_type: JobType, resource_id: &str, payload: Value, now: DateTime<Utc>) -> Self {
        let spec = job_type.spec();
        NewJob {
            id: JobId::generate(),
            job_type,
            payload,
            priority: spec.priority,
            max_attempts: spec.max_attempts,
            resource_type: spec.resource_type.to_owned(),
            resource_id: resource_id.to_owned(),
            allow_duplicates: spec.allow_duplicates,
            scheduled_at: now,
            created_at: now,
        }
    }
}

/// A job as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub job_type: String,
    pub payload: Value,
    pub status: JobStatus,
    pub priority: i32,
    pub attempts: i32,
    pub max_attempts: i32,
    pub error: Option<String>,
    pub worker_id: Option<String>,
    /// While running: the time after which another worker may take the job over.
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub scheduled_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub resource_type: String,
    pub resource_id: String,
}

/// How a claimed job ended, as recorded by the worker that held its lease.
#[derive(Clone, Debug, PartialEq)]
pub enum JobOutcome {
    Completed,
    /// Failed, and will be tried again at `at`.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// Failed for good.
    Failed {
        error: String,
    },
    /// Not failed, just not ready to run yet (it waits for another job): back to pending
    /// at `at`, and this attempt does not count (`attempts - 1`); `error` is left as it was.
    Deferred {
        at: DateTime<Utc>,
    },
}

/// The outcome of an attempt that failed with `error`: retry with linear backoff while
/// attempts remain, else fail for good.
pub fn outcome_after_failure(
    job: &Job,
    error: String,
    backoff: Duration,
    now: DateTime<Utc>,
) -> JobOutcome {
    if job.attempts < job.max_attempts {
        let delay = backoff.saturating_mul(job.attempts.max(1) as u32);
        let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        JobOutcome::Retry {
            at: now + delay,
            error,
        }
    } else {
        JobOutcome::Failed { error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(attempts: i32, max_attempts: i32) -> Job {
        let now = Utc::now();
        Job {
            id: JobId::generate(),
            job_type: "workspace_init".into(),
            payload: json!({}),
            status: JobStatus::Running,
            priority: 10,
            attempts,
            max_attempts,
            error: None,
            worker_id: None,
            lease_expires_at: None,
            scheduled_at: now,
            started_at: None,
            completed_at: None,
            created_at: now,
            resource_type: "workspace".into(),
            resource_id: "w".into(),
        }
    }

    #[test]
    fn backoff_is_linear_then_gives_up() {
        let now = Utc::now();
        let backoff = Duration::from_secs(5);
        match outcome_after_failure(&job(2, 3), "boom".into(), backoff, now) {
            JobOutcome::Retry { at, .. } => assert_eq!(at - now, chrono::Duration::seconds(10)),
            other => panic!("expected retry, got {other:?}"),
        }
        assert_eq!(
            outcome_after_failure(&job(3, 3), "boom".into(), backoff, now),
            JobOutcome::Failed {
                error: "boom".into()
            }
        );
    }
}
