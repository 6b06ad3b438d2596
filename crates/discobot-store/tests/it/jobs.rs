//! The job queue: de-duplication, priorities, per-resource serialisation, leases, retries.

use chrono::{DateTime, Duration, Utc};
use discobot_core::ErrorKind;
use discobot_core::ids::JobId;
use discobot_core::jobs::{JobOutcome, JobStatus, JobType, NewJob};
use discobot_core::ports::JobQueue;
use serde_json::json;

use crate::common::{Ctx, now};
use crate::store_test;

store_test!(
    enqueue_dedup_is_atomic_per_resource,
    claim_follows_priority_and_schedule,
    resource_jobs_run_one_at_a_time,
    expired_lease_is_taken_over,
    last_attempt_lease_expiry_fails_the_job,
    finish_outcomes,
    release_all_leases_requeues,
);

const ALL_TYPES: &[&str] = &[
    "workspace_init",
    "session_init",
    "session_delete",
    "session_sandbox_delete",
    "session_commit",
    "session_rebase",
];

fn job(job_type: JobType, resource: &str, at: DateTime<Utc>) -> NewJob {
    NewJob::new(
        job_type,
        resource,
        json!({"projectId": "local", "resource": resource}),
        at,
    )
}

/// A job of `job_type` that refuses to share its resource, whatever the type's spec says.
fn exclusive(job_type: JobType, resource: &str, at: DateTime<Utc>) -> NewJob {
    NewJob {
        allow_duplicates: false,
        ..job(job_type, resource, at)
    }
}

/// A job of `job_type` that may share its resource.
fn duplicable(job_type: JobType, resource: &str, at: DateTime<Utc>) -> NewJob {
    NewJob {
        allow_duplicates: true,
        ..job(job_type, resource, at)
    }
}

async fn enqueue_dedup_is_atomic_per_resource(ctx: Ctx) {
    let store = &ctx.store;
    let t = now();
    let first = exclusive(JobType::SessionInit, "s1", t);
    store.enqueue(&first).await.unwrap();
    let stored = store.get_job(&first.id).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Pending);
    assert_eq!(stored.attempts, 0);
    assert_eq!(stored.payload, first.payload);
    assert_eq!(stored.scheduled_at, t);
    assert_eq!(
        (stored.resource_type.as_str(), stored.resource_id.as_str()),
        ("session", "s1")
    );

    // Same resource, same kind of exclusive job: refused, whatever the job type.
    for clash in [
        exclusive(JobType::SessionInit, "s1", t),
        exclusive(JobType::SessionDelete, "s1", t),
    ] {
        let error = store.enqueue(&clash).await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::Conflict);
        assert_eq!(error.message, "job already exists for resource");
        assert!(store.get_job(&clash.id).await.unwrap().is_none());
    }
    // Another resource, or another resource type with the same id, is fine.
    store
        .enqueue(&job(JobType::SessionInit, "s2", t))
        .await
        .unwrap();
    store
        .enqueue(&job(JobType::WorkspaceInit, "s1", t))
        .await
        .unwrap();
    // Reusing a job id is a conflict too.
    let mut same_id = job(JobType::SessionInit, "s3", t);
    same_id.id = first.id.clone();
    assert_eq!(
        store.enqueue(&same_id).await.unwrap_err().kind,
        ErrorKind::Conflict
    );

    // Running still blocks; finished frees the resource.
    let claimed = store
        .claim("w", &["session_init"], t, t + Duration::minutes(1))
        .await
        .unwrap();
    let claimed = claimed.expect("a session_init is due");
    let resource = claimed.resource_id.clone();
    let error = store
        .enqueue(&exclusive(JobType::SessionDelete, &resource, t))
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Conflict);
    // A job that allows duplicates joins the running one...
    let extra = duplicable(JobType::SessionRebase, &resource, t);
    store.enqueue(&extra).await.unwrap();
    // ...and, while it is pending, an exclusive job is refused even after the first ends.
    assert!(
        store
            .finish(&claimed.id, "w", &JobOutcome::Completed, t)
            .await
            .unwrap()
    );
    let error = store
        .enqueue(&exclusive(JobType::SessionDelete, &resource, t))
        .await
        .unwrap_err();
    assert_eq!(error.message, "job already exists for resource");
    let rebase = store
        .claim("w", &["session_rebase"], t, t + Duration::minutes(1))
        .await
        .unwrap()
        .expect("the rebase is due");
    assert_eq!(rebase.id, extra.id);
    assert!(
        store
            .finish(&rebase.id, "w", &JobOutcome::Completed, t)
            .await
            .unwrap()
    );
    store
        .enqueue(&exclusive(JobType::SessionDelete, &resource, t))
        .await
        .unwrap();

    // Jobs that allow duplicates stack up on one resource.
    let commits: Vec<NewJob> = (0..3)
        .map(|_| duplicable(JobType::SessionCommit, "ws1", t))
        .collect();
    for commit in &commits {
        store.enqueue(commit).await.unwrap();
    }
    let latest = store
        .latest_job_for_resource("workspace", "ws1")
        .await
        .unwrap()
        .unwrap();
    assert!(commits.iter().any(|c| c.id == latest.id));
    assert!(
        store
            .latest_job_for_resource("workspace", "nothing")
            .await
            .unwrap()
            .is_none()
    );
}

async fn claim_follows_priority_and_schedule(ctx: Ctx) {
    let store = &ctx.store;
    let t = now();
    // Long enough that no lease expires during the test (expired ones would be taken over).
    let lease = t + Duration::hours(3);
    let low = job(JobType::SessionSandboxDelete, "r-low", t); // priority 1
    let mid = job(JobType::SessionDelete, "r-mid", t); // priority 5
    let high_late = job(
        JobType::WorkspaceInit,
        "r-high-late",
        t + Duration::seconds(1),
    );
    let high_early = job(
        JobType::WorkspaceInit,
        "r-high-early",
        t - Duration::seconds(1),
    );
    let future = job(JobType::WorkspaceInit, "r-future", t + Duration::hours(1));
    for j in [&low, &mid, &high_late, &high_early, &future] {
        store.enqueue(j).await.unwrap();
    }
    assert!(store.claim("w", &[], t, lease).await.unwrap().is_none());
    assert!(
        store
            .claim("w", &["unknown_type"], t, lease)
            .await
            .unwrap()
            .is_none()
    );

    let at = t + Duration::seconds(2);
    let order: Vec<JobId> = {
        let mut ids = Vec::new();
        while let Some(j) = store.claim("w", ALL_TYPES, at, lease).await.unwrap() {
            assert_eq!(j.status, JobStatus::Running);
            assert_eq!(j.worker_id.as_deref(), Some("w"));
            assert_eq!(j.attempts, 1);
            assert_eq!(j.started_at, Some(at));
            assert_eq!(j.lease_expires_at, Some(lease));
            ids.push(j.id);
        }
        ids
    };
    assert_eq!(
        order,
        vec![high_early.id, high_late.id, mid.id, low.id.clone()]
    );
    assert_eq!(
        store.get_job(&future.id).await.unwrap().unwrap().status,
        JobStatus::Pending
    );

    // Only the asked-for types are claimed.
    let other = job(JobType::SessionInit, "typed", t);
    store.enqueue(&other).await.unwrap();
    assert!(
        store
            .claim("w", &["workspace_init"], at, lease)
            .await
            .unwrap()
            .is_none()
    );
    let got = store
        .claim("w", &["workspace_init", "session_init"], at, lease)
        .await
        .unwrap();
    assert_eq!(got.map(|j| j.id), Some(other.id));
    let got = store
        .claim(
            "w",
            ALL_TYPES,
            t + Duration::hours(2),
            t + Duration::hours(4),
        )
        .await;
    assert_eq!(got.unwrap().map(|j| j.id), Some(future.id));
}

async fn resource_jobs_run_one_at_a_time(ctx: Ctx) {
    let store = &ctx.store;
    let t = now();
    let lease = t + Duration::minutes(5);
    let first = duplicable(JobType::SessionCommit, "ws", t);
    let second = duplicable(JobType::SessionCommit, "ws", t + Duration::seconds(1));
    let elsewhere = duplicable(JobType::SessionCommit, "ws-other", t + Duration::seconds(2));
    for j in [&first, &second, &elsewhere] {
        store.enqueue(j).await.unwrap();
    }
    let at = t + Duration::seconds(5);
    let a = store
        .claim("w1", ALL_TYPES, at, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.id, first.id);
    // The second job of "ws" waits while the first runs; the other resource goes ahead.
    let b = store
        .claim("w2", ALL_TYPES, at, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.id, elsewhere.id);
    assert!(
        store
            .claim("w2", ALL_TYPES, at, lease)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .finish(&a.id, "w1", &JobOutcome::Completed, at)
            .await
            .unwrap()
    );
    let c = store
        .claim("w2", ALL_TYPES, at, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.id, second.id);
}

async fn expired_lease_is_taken_over(ctx: Ctx) {
    let store = &ctx.store;
    let t = now();
    let j = job(JobType::WorkspaceInit, "ws", t);
    store.enqueue(&j).await.unwrap();
    let a = store
        .claim("w1", ALL_TYPES, t, t + Duration::seconds(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.attempts, 1);
    // Renewing works while the lease is held.
    assert!(
        store
            .renew_lease(&j.id, "w1", t + Duration::seconds(60))
            .await
            .unwrap()
    );
    assert!(
        !store
            .renew_lease(&j.id, "w2", t + Duration::seconds(60))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_job(&j.id)
            .await
            .unwrap()
            .unwrap()
            .lease_expires_at,
        Some(t + Duration::seconds(60))
    );
    // Not expired yet: nobody takes it.
    assert!(
        store
            .claim(
                "w2",
                ALL_TYPES,
                t + Duration::seconds(59),
                t + Duration::hours(1)
            )
            .await
            .unwrap()
            .is_none()
    );

    let later = t + Duration::seconds(61);
    let b = store
        .claim("w2", ALL_TYPES, later, later + Duration::seconds(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.id, j.id);
    assert_eq!(b.worker_id.as_deref(), Some("w2"));
    assert_eq!(b.attempts, 2);
    assert_eq!(b.started_at, Some(later));

    // The old worker lost the lease: it can neither renew nor record an outcome.
    assert!(
        !store
            .renew_lease(&j.id, "w1", later + Duration::hours(1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish(&j.id, "w1", &JobOutcome::Completed, later)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_job(&j.id).await.unwrap().unwrap().status,
        JobStatus::Running
    );
    assert!(
        store
            .finish(&j.id, "w2", &JobOutcome::Completed, later)
            .await
            .unwrap()
    );
    let done = store.get_job(&j.id).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.completed_at, Some(later));
    assert_eq!(done.lease_expires_at, None);
    // Finishing twice does nothing.
    assert!(
        !store
            .finish(&j.id, "w2", &JobOutcome::Completed, later)
            .await
            .unwrap()
    );
}

async fn last_attempt_lease_expiry_fails_the_job(ctx: Ctx) {
    let store = &ctx.store;
    let t = now();
    // A commit gets one attempt.
    let commit = NewJob {
        max_attempts: 1,
        ..duplicable(JobType::SessionCommit, "ws", t)
    };
    store.enqueue(&commit).await.unwrap();
    let a = store
        .claim("w1", ALL_TYPES, t, t + Duration::seconds(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a.attempts, a.max_attempts), (1, 1));
    let later = t + Duration::seconds(20);
    assert!(
        store
            .claim("w2", ALL_TYPES, later, later + Duration::seconds(10))
            .await
            .unwrap()
            .is_none()
    );
    let failed = store.get_job(&commit.id).await.unwrap().unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(
        failed.error.as_deref(),
        Some("lease expired after the last attempt")
    );
    assert_eq!(failed.completed_at, Some(later));
    assert!(
        !store
            .finish(&commit.id, "w1", &JobOutcome::Completed, later)
            .await
            .unwrap()
    );

    // A job waiting behind the dead one is not blocked by it.
    let next = duplicable(JobType::SessionCommit, "ws", later);
    store.enqueue(&next).await.unwrap();
    let got = store
        .claim("w2", ALL_TYPES, later, later + Duration::seconds(10))
        .await
        .unwrap();
    assert_eq!(got.map(|j| j.id), Some(next.id));
}

async fn finish_outcomes(ctx: Ctx) {
    let store = &ctx.store;
    let t = now();
    let lease = t + Duration::minutes(1);
    let j = job(JobType::WorkspaceInit, "ws", t);
    store.enqueue(&j).await.unwrap();

    // Retry: back to pending at the given time, with the error, without a worker.
    store
        .claim("w", ALL_TYPES, t, lease)
        .await
        .unwrap()
        .unwrap();
    let retry_at = t + Duration::seconds(10);
    let retry = JobOutcome::Retry {
        at: retry_at,
        error: "network down".into(),
    };
    assert!(!store.finish(&j.id, "intruder", &retry, t).await.unwrap());
    assert!(store.finish(&j.id, "w", &retry, t).await.unwrap());
    let pending = store.get_job(&j.id).await.unwrap().unwrap();
    assert_eq!(pending.status, JobStatus::Pending);
    assert_eq!(pending.scheduled_at, retry_at);
    assert_eq!(pending.error.as_deref(), Some("network down"));
    assert_eq!(
        (
            pending.worker_id,
            pending.lease_expires_at,
            pending.started_at
        ),
        (None, None, None)
    );
    assert_eq!(pending.attempts, 1);
    assert!(
        store
            .claim("w", ALL_TYPES, retry_at - Duration::seconds(1), lease)
            .await
            .unwrap()
            .is_none()
    );

    // Deferred: pending again and the attempt does not count.
    let second = store
        .claim("w", ALL_TYPES, retry_at, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.attempts, 2);
    let defer_at = retry_at + Duration::seconds(5);
    assert!(
        store
            .finish(&j.id, "w", &JobOutcome::Deferred { at: defer_at }, retry_at)
            .await
            .unwrap()
    );
    let deferred = store.get_job(&j.id).await.unwrap().unwrap();
    assert_eq!(deferred.status, JobStatus::Pending);
    assert_eq!(deferred.attempts, 1);
    assert_eq!(deferred.scheduled_at, defer_at);
    assert_eq!(
        deferred.error.as_deref(),
        Some("network down"),
        "the error is left as it was"
    );

    // Failed: for good.
    let third = store
        .claim("w", ALL_TYPES, defer_at, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(third.attempts, 2);
    let fail = JobOutcome::Failed {
        error: "bad input".into(),
    };
    assert!(store.finish(&j.id, "w", &fail, defer_at).await.unwrap());
    let failed = store.get_job(&j.id).await.unwrap().unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("bad input"));
    assert_eq!(failed.completed_at, Some(defer_at));
    assert!(
        store
            .claim("w", ALL_TYPES, defer_at + Duration::hours(1), lease)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .latest_job_for_resource("workspace", "ws")
            .await
            .unwrap()
            .unwrap()
            .id,
        j.id
    );
}

async fn release_all_leases_requeues(ctx: Ctx) {
    let store = &ctx.store;
    let t = now();
    let lease = t + Duration::minutes(10);
    let a = job(JobType::WorkspaceInit, "a", t);
    let b = job(JobType::SessionInit, "b", t);
    let last_try = NewJob {
        max_attempts: 1,
        ..duplicable(JobType::SessionCommit, "c", t)
    };
    let waiting = job(JobType::SessionDelete, "d", t);
    for j in [&a, &b, &last_try, &waiting] {
        store.enqueue(j).await.unwrap();
    }
    for _ in 0..3 {
        store
            .claim(
                "dead-worker",
                &["workspace_init", "session_init", "session_commit"],
                t,
                lease,
            )
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(store.release_all_leases().await.unwrap(), 3);
    for id in [&a.id, &b.id] {
        let j = store.get_job(id).await.unwrap().unwrap();
        assert_eq!(j.status, JobStatus::Pending);
        assert_eq!(
            (j.worker_id, j.lease_expires_at, j.started_at),
            (None, None, None)
        );
        assert_eq!(j.attempts, 1, "the interrupted attempt still counts");
    }
    let c = store.get_job(&last_try.id).await.unwrap().unwrap();
    assert_eq!(
        c.status,
        JobStatus::Failed,
        "its only attempt was interrupted"
    );
    assert_eq!(
        store.get_job(&waiting.id).await.unwrap().unwrap().status,
        JobStatus::Pending
    );
    assert_eq!(store.release_all_leases().await.unwrap(), 0);

    // The released jobs are claimable again at once.
    let again = store
        .claim("new-worker", ALL_TYPES, t, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.attempts, 2);
    assert_eq!(again.worker_id.as_deref(), Some("new-worker"));
}
