//! The job dispatcher: claims jobs within per-type limits, runs them, keeps their leases
//! alive and records outcomes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use discobot_core::app::jobs::is_permanent;
use discobot_core::jobs::{Job, JobOutcome, JobType, outcome_after_failure};
use discobot_core::ports::{JobHandler, JobQueue, JobRun, JobWaker};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Settings of the dispatcher.
#[derive(Clone, Debug)]
pub struct DispatcherConfig {
    /// This process's id in the `worker_id` column.
    pub worker_id: String,
    /// How often the queue is polled when nothing wakes the dispatcher.
    pub poll_interval: Duration,
    /// How long a claim is valid without renewal; renewed every third of it.
    pub lease: Duration,
    /// Base delay between attempts (multiplied by the attempt number).
    pub retry_backoff: Duration,
    /// An attempt running longer than this fails.
    pub job_timeout: Duration,
    /// How long shutdown waits for running jobs before abandoning them to lease expiry.
    pub drain_timeout: Duration,
}

/// Wakes the dispatcher when a job is enqueued; shared between `App` and `Dispatcher`.
#[derive(Clone, Default)]
pub struct JobWakeup(Arc<Notify>);

impl JobWaker for JobWakeup {
    fn wake(&self) {
        self.0.notify_one();
    }
}

/// Runs queued jobs.
pub struct Dispatcher {
    queue: Arc<dyn JobQueue>,
    handler: Arc<dyn JobHandler>,
    config: DispatcherConfig,
    wakeup: JobWakeup,
    running: Mutex<HashMap<JobType, usize>>,
    tasks: TaskTracker,
}

impl Dispatcher {
    pub fn new(
        queue: Arc<dyn JobQueue>,
        handler: Arc<dyn JobHandler>,
        config: DispatcherConfig,
        wakeup: JobWakeup,
    ) -> Arc<Self> {
        Arc::new(Dispatcher {
            queue,
            handler,
            config,
            wakeup,
            running: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
        })
    }

    /// Claims and runs jobs until `shutdown`; then waits for running jobs to finish (up to
    /// the drain timeout) and returns. Jobs cut off by the timeout keep their lease until it
    /// expires, and are then taken over by another process (or this one after a restart).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let cancel_jobs = CancellationToken::new();
        while !shutdown.is_cancelled() {
            self.claim_available(&cancel_jobs).await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wakeup.0.notified() => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
        self.tasks.close();
        if tokio::time::timeout(self.config.drain_timeout, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("jobs still running at shutdown; leaving them to lease expiry");
            cancel_jobs.cancel();
            self.tasks.wait().await;
        }
    }

    /// Claims jobs while some type has spare capacity and the queue has due work.
    async fn claim_available(self: &Arc<Self>, cancel_jobs: &CancellationToken) {
        loop {
            let types = self.types_with_capacity();
            if types.is_empty() {
                return;
            }
            let names: Vec<&str> = types.iter().map(|job_type| job_type.as_str()).collect();
            let now = Utc::now();
            let claimed = self
                .queue
                .claim(
                    &self.config.worker_id,
                    &names,
                    now,
                    now + chrono_duration(self.config.lease),
                )
                .await;
            let job = match claimed {
                Ok(Some(job)) => job,
                Ok(None) => return,
                Err(error) => {
                    tracing::error!(%error, "failed to claim a job");
                    return;
                }
            };
            let Ok(job_type) = JobType::parse(&job.job_type) else {
                // Claimed only by type, so this cannot happen unless the table was edited.
                tracing::error!(job.id = %job.id, job.type = job.job_type, "unknown job type");
                return;
            };
            *self.lock_running().entry(job_type).or_default() += 1;
            let dispatcher = Arc::clone(self);
            let cancel = cancel_jobs.child_token();
            self.tasks.spawn(async move {
                dispatcher.run_job(job, cancel).await;
                if let Some(count) = dispatcher.lock_running().get_mut(&job_type) {
                    *count = count.saturating_sub(1);
                }
                // A slot is free again; look for more work.
                dispatcher.wakeup.0.notify_one();
            });
        }
    }

    fn types_with_capacity(&self) -> Vec<JobType> {
        let running = self.lock_running();
        JobType::ALL
            .iter()
            .copied()
            .filter(|job_type| {
                running.get(job_type).copied().unwrap_or(0) < job_type.spec().concurrency
            })
            .collect()
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, HashMap<JobType, usize>> {
        // Counters stay consistent across a panic (single increments), so poisoning is harmless.
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs one claimed job with lease renewal and a timeout, then records the outcome.
    async fn run_job(&self, job: Job, cancel: CancellationToken) {
        let span = tracing::info_span!("job", job.id = %job.id, job.type = job.job_type, job.attempt = job.attempts);
        let _guard = span.enter();
        drop(_guard);
        let started = std::time::Instant::now();
        let result = {
            let work = tokio::time::timeout(self.config.job_timeout, self.handler.run_job(&job));
            let lease_lost = self.keep_lease(&job);
            tokio::select! {
                result = work => Some(result),
                () = lease_lost => None,
                () = cancel.cancelled() => None,
            }
        };
        let Some(result) = result else {
            tracing::warn!(parent: &span, "job abandoned: lease lost or shutdown");
            return;
        };
        let now = Utc::now();
        let (outcome, error) = match result {
            Ok(Ok(JobRun::Done)) => (JobOutcome::Completed, None),
            Ok(Ok(JobRun::Defer(delay))) => (
                JobOutcome::Deferred {
                    at: now + chrono_duration(delay),
                },
                None,
            ),
            Ok(Err(error)) if is_permanent(&error) => (
                JobOutcome::Failed {
                    error: error.message.clone(),
                },
                Some(error.message),
            ),
            Ok(Err(error)) => (
                outcome_after_failure(&job, error.message.clone(), self.config.retry_backoff, now),
                Some(error.message),
            ),
            Err(_elapsed) => {
                let message = format!("job timed out after {:?}", self.config.job_timeout);
                (
                    outcome_after_failure(&job, message.clone(), self.config.retry_backoff, now),
                    Some(message),
                )
            }
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        match &error {
            None => tracing::debug!(parent: &span, duration_ms, "job finished"),
            Some(error) => tracing::warn!(parent: &span, duration_ms, %error, "job failed"),
        }
        match self
            .queue
            .finish(&job.id, &self.config.worker_id, &outcome, now)
            .await
        {
            Ok(true) => {
                if !matches!(outcome, JobOutcome::Deferred { .. }) {
                    self.handler.job_finished(&job, error.as_deref()).await;
                }
            }
            Ok(false) => tracing::warn!(parent: &span, "job outcome not recorded: lease lost"),
            Err(error) => tracing::error!(parent: &span, %error, "failed to record job outcome"),
        }
    }

    /// Renews the lease every third of its length; completes when the lease is lost (taken
    /// over, or not renewable before it expired).
    async fn keep_lease(&self, job: &Job) {
        let lease = self.config.lease;
        let mut valid_until = tokio::time::Instant::now() + lease;
        loop {
            tokio::time::sleep(lease / 3).await;
            let until = Utc::now() + chrono_duration(lease);
            match self
                .queue
                .renew_lease(&job.id, &self.config.worker_id, until)
                .await
            {
                Ok(true) => valid_until = tokio::time::Instant::now() + lease,
                Ok(false) => return,
                Err(error) => {
                    tracing::warn!(job.id = %job.id, %error, "failed to renew job lease");
                    if tokio::time::Instant::now() >= valid_until {
                        return;
                    }
                }
            }
        }
    }
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}
