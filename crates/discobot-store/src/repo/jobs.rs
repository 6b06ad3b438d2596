//! `JobQueue`: a durable job queue with leases, safe for several server replicas on one
//! PostgreSQL database (row locks with `SKIP LOCKED` plus a per-resource advisory lock) and
//! for the single writer connection of SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use discobot_core::Result;
use discobot_core::ids::JobId;
use discobot_core::jobs::{Job, JobOutcome, JobStatus, NewJob};
use discobot_core::ports::JobQueue;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait, Value,
};

use super::stored;
use crate::Store;
use crate::entity::jobs;
use crate::error::{DbResultExt, StoreError};
use crate::store::{Backend, ts};

/// How many due jobs one claim looks at before giving up.
const CLAIM_CANDIDATES: usize = 10;
/// The error a job gets when its lease ran out during its last allowed attempt.
const LEASE_EXPIRED_LAST_ATTEMPT: &str = "lease expired after the last attempt";

/// The conflict message of `enqueue` when the resource already has a job.
const RESOURCE_TAKEN: &str = "job already exists for resource";

const PENDING: &str = "pending";
const RUNNING: &str = "running";

fn job_from_row(row: jobs::Model) -> Result<Job, StoreError> {
    Ok(Job {
        id: JobId::new(row.id),
        job_type: row.job_type,
        payload: serde_json::from_str(&row.payload)
            .map_err(|e| StoreError::corrupt("job payload", e))?,
        status: stored("job status", JobStatus::parse(&row.status))?,
        priority: row.priority,
        attempts: row.attempts,
        max_attempts: row.max_attempts,
        error: row.error,
        worker_id: row.worker_id,
        lease_expires_at: row.lease_expires_at,
        scheduled_at: row.scheduled_at,
        started_at: row.started_at,
        completed_at: row.completed_at,
        created_at: row.created_at,
        resource_type: row.resource_type,
        resource_id: row.resource_id,
    })
}

/// `WHERE id = ? AND worker_id = ? AND status = 'running'`: the worker still holds the lease.
fn held_by(
    update: sea_orm::UpdateMany<jobs::Entity>,
    id: &JobId,
    worker: &str,
) -> sea_orm::UpdateMany<jobs::Entity> {
    update
        .filter(jobs::Column::Id.eq(id.as_str()))
        .filter(jobs::Column::WorkerId.eq(worker))
        .filter(jobs::Column::Status.eq(RUNNING))
}

impl Store {
    /// The due candidates, most urgent first. A candidate is pending and due, or running
    /// with an expired lease; jobs whose resource has another job running under a live
    /// lease are left out here already, so they cannot crowd out claimable ones.
    async fn claim_candidates(
        &self,
        txn: &DatabaseTransaction,
        job_types: &[&str],
        now: DateTime<Utc>,
    ) -> Result<Vec<jobs::Model>, StoreError> {
        let mut values: Vec<Value> = vec![now.into()];
        let mut placeholders = Vec::with_capacity(job_types.len());
        for job_type in job_types {
            values.push((*job_type).into());
            placeholders.push(format!("${}", values.len()));
        }
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "SELECT * FROM jobs j \
             WHERE j.type IN ({types}) \
               AND ((j.status = 'pending' AND j.scheduled_at <= $1) \
                 OR (j.status = 'running' AND j.lease_expires_at < $1)) \
               AND NOT EXISTS (SELECT 1 FROM jobs o \
                 WHERE o.resource_type = j.resource_type AND o.resource_id = j.resource_id \
                   AND o.id <> j.id AND o.status = 'running' AND o.lease_expires_at >= $1) \
             ORDER BY j.priority DESC, j.scheduled_at ASC, j.created_at ASC \
             LIMIT {CLAIM_CANDIDATES}{lock}",
            types = placeholders.join(", "),
        );
        jobs::Entity::find()
            .from_raw_sql(self.statement(sql, values))
            .all(txn)
            .await
            .db()
    }

    /// Whether another job of the candidate's resource runs under a live lease. On
    /// PostgreSQL this first takes the resource's transaction-scoped advisory lock, so two
    /// replicas never check-and-claim the same resource at once; `None` means another
    /// transaction holds it (skip the candidate).
    async fn resource_busy(
        &self,
        txn: &DatabaseTransaction,
        job: &jobs::Model,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>, StoreError> {
        if self.backend == Backend::Postgres {
            let key = format!("{}:{}", job.resource_type, job.resource_id);
            let statement = self.statement(
                "SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || ':' || $1)) AS locked",
                [key.into()],
            );
            let row = txn
                .query_one_raw(statement)
                .await
                .db()?
                .ok_or_else(|| StoreError::other("advisory lock query gave no row"))?;
            let locked: bool = row.try_get("", "locked").db()?;
            if !locked {
                return Ok(None);
            }
        }
        let other = jobs::Entity::find()
            .filter(jobs::Column::ResourceType.eq(job.resource_type.as_str()))
            .filter(jobs::Column::ResourceId.eq(job.resource_id.as_str()))
            .filter(jobs::Column::Id.ne(job.id.as_str()))
            .filter(jobs::Column::Status.eq(RUNNING))
            .filter(jobs::Column::LeaseExpiresAt.gte(now))
            .one(txn)
            .await
            .db()?;
        Ok(Some(other.is_some()))
    }

    async fn claim_in(
        &self,
        txn: &DatabaseTransaction,
        worker: &str,
        job_types: &[&str],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<jobs::Model>, StoreError> {
        for candidate in self.claim_candidates(txn, job_types, now).await? {
            let expired_lease = candidate.status == RUNNING;
            if expired_lease && candidate.attempts >= candidate.max_attempts {
                // Its worker died during the last attempt it had: give up on it.
                jobs::Entity::update_many()
                    .col_expr(
                        jobs::Column::Status,
                        Expr::value(JobStatus::Failed.as_str()),
                    )
                    .col_expr(jobs::Column::Error, Expr::value(LEASE_EXPIRED_LAST_ATTEMPT))
                    .col_expr(jobs::Column::CompletedAt, Expr::value(Some(now)))
                    .col_expr(
                        jobs::Column::LeaseExpiresAt,
                        Expr::value(None::<DateTime<Utc>>),
                    )
                    .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
                    .filter(jobs::Column::Id.eq(candidate.id.as_str()))
                    .filter(jobs::Column::Status.eq(RUNNING))
                    .exec(txn)
                    .await
                    .db()?;
                tracing::warn!(
                    job.id = candidate.id,
                    job.type = candidate.job_type,
                    worker = candidate.worker_id.as_deref().unwrap_or(""),
                    "{LEASE_EXPIRED_LAST_ATTEMPT}"
                );
                continue;
            }
            match self.resource_busy(txn, &candidate, now).await? {
                Some(false) => {}
                Some(true) | None => continue,
            }
            let result = jobs::Entity::update_many()
                .col_expr(jobs::Column::Status, Expr::value(RUNNING))
                .col_expr(jobs::Column::WorkerId, Expr::value(Some(worker.to_owned())))
                .col_expr(jobs::Column::StartedAt, Expr::value(Some(now)))
                .col_expr(
                    jobs::Column::Attempts,
                    Expr::col(jobs::Column::Attempts).add(1),
                )
                .col_expr(jobs::Column::LeaseExpiresAt, Expr::value(Some(lease_until)))
                .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
                .filter(jobs::Column::Id.eq(candidate.id.as_str()))
                .filter(jobs::Column::Status.eq(candidate.status.as_str()))
                .exec(txn)
                .await
                .db()?;
            if result.rows_affected != 1 {
                continue;
            }
            if expired_lease {
                tracing::warn!(
                    job.id = candidate.id,
                    job.type = candidate.job_type,
                    previous_worker = candidate.worker_id.as_deref().unwrap_or(""),
                    worker,
                    "took over a job whose lease expired"
                );
            }
            let claimed = jobs::Entity::find_by_id(candidate.id.as_str())
                .one(txn)
                .await
                .db()?;
            return Ok(claimed);
        }
        Ok(None)
    }
}

#[async_trait]
impl JobQueue for Store {
    async fn enqueue(&self, job: &NewJob) -> Result<()> {
        let payload = serde_json::to_string(&job.payload)
            .map_err(|e| StoreError::other(format!("cannot encode job payload: {e}")))?;
        let created_at = ts(job.created_at);
        let row = jobs::ActiveModel {
            id: Set(job.id.as_str().to_owned()),
            job_type: Set(job.job_type.as_str().to_owned()),
            payload: Set(payload),
            status: Set(PENDING.to_owned()),
            priority: Set(job.priority),
            attempts: Set(0),
            max_attempts: Set(job.max_attempts),
            error: Set(None),
            worker_id: Set(None),
            lease_expires_at: Set(None),
            scheduled_at: Set(ts(job.scheduled_at)),
            started_at: Set(None),
            completed_at: Set(None),
            created_at: Set(created_at),
            updated_at: Set(created_at),
            resource_type: Set(job.resource_type.clone()),
            resource_id: Set(job.resource_id.clone()),
            allow_duplicates: Set(job.allow_duplicates),
        };
        let txn = self.writer.begin().await.db()?;
        if self.backend == Backend::Postgres {
            // Enqueues of one resource take turns, so the check below sees every job
            // committed before it (SQLite's single writer gives the same order).
            let key = format!("enqueue:{}:{}", job.resource_type, job.resource_id);
            let statement = self.statement(
                "SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':' || $1))",
                [key.into()],
            );
            txn.execute_raw(statement).await.db()?;
        }
        if !job.allow_duplicates {
            let active = jobs::Entity::find()
                .filter(jobs::Column::ResourceType.eq(job.resource_type.as_str()))
                .filter(jobs::Column::ResourceId.eq(job.resource_id.as_str()))
                .filter(jobs::Column::Status.is_in([PENDING, RUNNING]))
                .one(&txn)
                .await
                .db()?;
            if active.is_some() {
                return Err(discobot_core::Error::conflict(RESOURCE_TAKEN));
            }
        }
        match jobs::Entity::insert(row)
            .exec_without_returning(&txn)
            .await
            .db()
        {
            Ok(_) => {}
            // The partial unique index on (resource_type, resource_id) backs the check up;
            // a clash on the primary key is a reused job id.
            Err(StoreError::Conflict(message)) if is_primary_key_clash(&message) => {
                return Err(StoreError::Conflict("job id already exists".into()).into());
            }
            Err(StoreError::Conflict(_)) => {
                return Err(discobot_core::Error::conflict(RESOURCE_TAKEN));
            }
            Err(other) => return Err(other.into()),
        }
        txn.commit().await.db()?;
        Ok(())
    }

    async fn claim(
        &self,
        worker: &str,
        job_types: &[&str],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Job>> {
        if job_types.is_empty() {
            return Ok(None);
        }
        let now = ts(now);
        let lease_until = ts(lease_until);
        let txn = self.writer.begin().await.db()?;
        let claimed = self
            .claim_in(&txn, worker, job_types, now, lease_until)
            .await?;
        txn.commit().await.db()?;
        Ok(claimed.map(job_from_row).transpose()?)
    }

    async fn renew_lease(
        &self,
        id: &JobId,
        worker: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool> {
        let update = jobs::Entity::update_many()
            .col_expr(
                jobs::Column::LeaseExpiresAt,
                Expr::value(Some(ts(lease_until))),
            )
            .col_expr(jobs::Column::UpdatedAt, Expr::value(ts(Utc::now())));
        let result = held_by(update, id, worker).exec(&self.writer).await.db()?;
        Ok(result.rows_affected == 1)
    }

    async fn finish(
        &self,
        id: &JobId,
        worker: &str,
        outcome: &JobOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let now = ts(now);
        let none_time = || Expr::value(None::<DateTime<Utc>>);
        let update =
            jobs::Entity::update_many().col_expr(jobs::Column::UpdatedAt, Expr::value(now));
        let update = match outcome {
            JobOutcome::Completed => update
                .col_expr(
                    jobs::Column::Status,
                    Expr::value(JobStatus::Completed.as_str()),
                )
                .col_expr(jobs::Column::CompletedAt, Expr::value(Some(now)))
                .col_expr(jobs::Column::LeaseExpiresAt, none_time()),
            JobOutcome::Failed { error } => update
                .col_expr(
                    jobs::Column::Status,
                    Expr::value(JobStatus::Failed.as_str()),
                )
                .col_expr(jobs::Column::CompletedAt, Expr::value(Some(now)))
                .col_expr(jobs::Column::Error, Expr::value(Some(error.clone())))
                .col_expr(jobs::Column::LeaseExpiresAt, none_time()),
            JobOutcome::Retry { at, error } => update
                .col_expr(jobs::Column::Status, Expr::value(PENDING))
                .col_expr(jobs::Column::ScheduledAt, Expr::value(ts(*at)))
                .col_expr(jobs::Column::Error, Expr::value(Some(error.clone())))
                .col_expr(jobs::Column::WorkerId, Expr::value(None::<String>))
                .col_expr(jobs::Column::LeaseExpiresAt, none_time())
                .col_expr(jobs::Column::StartedAt, none_time()),
            JobOutcome::Deferred { at } => update
                .col_expr(jobs::Column::Status, Expr::value(PENDING))
                .col_expr(jobs::Column::ScheduledAt, Expr::value(ts(*at)))
                .col_expr(
                    jobs::Column::Attempts,
                    Expr::col(jobs::Column::Attempts).sub(1),
                )
                .col_expr(jobs::Column::WorkerId, Expr::value(None::<String>))
                .col_expr(jobs::Column::LeaseExpiresAt, none_time())
                .col_expr(jobs::Column::StartedAt, none_time()),
        };
        let result = held_by(update, id, worker).exec(&self.writer).await.db()?;
        Ok(result.rows_affected == 1)
    }

    async fn get_job(&self, id: &JobId) -> Result<Option<Job>> {
        let row = jobs::Entity::find_by_id(id.as_str())
            .one(&self.reader)
            .await
            .db()?;
        Ok(row.map(job_from_row).transpose()?)
    }

    async fn latest_job_for_resource(
        &self,
        resource_type: &str,
        resource_id: &str,
    ) -> Result<Option<Job>> {
        let row = jobs::Entity::find()
            .filter(jobs::Column::ResourceType.eq(resource_type))
            .filter(jobs::Column::ResourceId.eq(resource_id))
            .order_by_desc(jobs::Column::CreatedAt)
            .order_by_desc(jobs::Column::ScheduledAt)
            .one(&self.reader)
            .await
            .db()?;
        Ok(row.map(job_from_row).transpose()?)
    }

    async fn release_all_leases(&self) -> Result<u64> {
        if self.backend != Backend::Sqlite {
            tracing::warn!("release_all_leases on a database other processes may share");
        }
        let now = ts(Utc::now());
        let txn = self.writer.begin().await.db()?;
        // A job interrupted during its last allowed attempt fails, as a lease takeover
        // would make it; the others go back to the queue with their attempt counted.
        let failed = jobs::Entity::update_many()
            .col_expr(
                jobs::Column::Status,
                Expr::value(JobStatus::Failed.as_str()),
            )
            .col_expr(jobs::Column::Error, Expr::value(LEASE_EXPIRED_LAST_ATTEMPT))
            .col_expr(jobs::Column::CompletedAt, Expr::value(Some(now)))
            .col_expr(
                jobs::Column::LeaseExpiresAt,
                Expr::value(None::<DateTime<Utc>>),
            )
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
            .filter(jobs::Column::Status.eq(RUNNING))
            .filter(Expr::col(jobs::Column::Attempts).gte(Expr::col(jobs::Column::MaxAttempts)))
            .exec(&txn)
            .await
            .db()?;
        let released = jobs::Entity::update_many()
            .col_expr(jobs::Column::Status, Expr::value(PENDING))
            .col_expr(jobs::Column::WorkerId, Expr::value(None::<String>))
            .col_expr(
                jobs::Column::LeaseExpiresAt,
                Expr::value(None::<DateTime<Utc>>),
            )
            .col_expr(jobs::Column::StartedAt, Expr::value(None::<DateTime<Utc>>))
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
            .filter(jobs::Column::Status.eq(RUNNING))
            .exec(&txn)
            .await
            .db()?;
        txn.commit().await.db()?;
        Ok(failed.rows_affected + released.rows_affected)
    }
}

/// Whether a unique-violation message names the primary key of `jobs` rather than the
/// partial resource index.
fn is_primary_key_clash(message: &str) -> bool {
    // PostgreSQL: `... unique constraint "jobs_pkey"`; SQLite: `UNIQUE constraint failed: jobs.id`.
    message.contains("jobs_pkey") || message.contains("jobs.id")
}
