//! Many workers on two stores (two replicas on PostgreSQL) claiming at once: every job is
//! claimed exactly once, and jobs of one resource never run at the same time.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{Duration, Utc};
use discobot_core::jobs::{JobOutcome, JobStatus, JobType, NewJob};
use discobot_core::ports::JobQueue;
use discobot_store::Store;
use serde_json::json;

use crate::common::{Ctx, now};
use crate::store_test;

store_test!(
    concurrent_claims_take_each_job_once,
    concurrent_claims_serialise_resources
);

const TYPES: &[&str] = &["workspace_init", "session_commit"];
const WORKERS: usize = 8;
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Claims and completes jobs until `total` were claimed by all workers together.
async fn worker_loop(
    store: Store,
    worker: String,
    total: usize,
    claimed: Arc<Mutex<Vec<(String, String)>>>,
) {
    let started = Instant::now();
    loop {
        if claimed.lock().unwrap().len() >= total {
            return;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "workers did not drain the queue in time"
        );
        let t = Utc::now();
        let job = store
            .claim(&worker, TYPES, t, t + Duration::minutes(5))
            .await
            .unwrap();
        let Some(job) = job else {
            // Others hold the remaining rows right now (or a resource is busy): look again.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            continue;
        };
        assert_eq!(job.worker_id.as_deref(), Some(worker.as_str()));
        claimed
            .lock()
            .unwrap()
            .push((job.id.as_str().to_owned(), worker.clone()));
        let finished = store
            .finish(&job.id, &worker, &JobOutcome::Completed, Utc::now())
            .await;
        assert!(finished.unwrap(), "the worker still holds its lease");
    }
}

async fn concurrent_claims_take_each_job_once(ctx: Ctx) {
    let first = ctx.store.clone();
    let second = ctx.second_store().await;
    let t = now();
    let mut ids = HashSet::new();
    for i in 0..50 {
        let job = NewJob::new(
            JobType::WorkspaceInit,
            &format!("ws-{i}"),
            json!({"i": i}),
            t,
        );
        ids.insert(job.id.as_str().to_owned());
        first.enqueue(&job).await.unwrap();
    }

    let claimed = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let store = if w % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let worker = format!("replica{}-worker{w}", w % 2);
        tasks.push(tokio::spawn(worker_loop(
            store,
            worker,
            50,
            claimed.clone(),
        )));
    }
    for task in tasks {
        task.await.unwrap();
    }

    let claimed = claimed.lock().unwrap().clone();
    assert_eq!(claimed.len(), 50, "every job claimed exactly once");
    let unique: HashSet<String> = claimed.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(unique, ids);
    let replicas: HashSet<&str> = claimed.iter().map(|(_, w)| &w[..8]).collect();
    eprintln!("claims by replica: {replicas:?}");
    for id in &ids {
        let job = first
            .get_job(&discobot_core::ids::JobId::new(id.as_str()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.status, JobStatus::Completed);
        assert_eq!(job.attempts, 1, "no job ran twice");
    }
}

async fn concurrent_claims_serialise_resources(ctx: Ctx) {
    let first = ctx.store.clone();
    let second = ctx.second_store().await;
    let t = now();
    // Jobs that allow duplicates, so several wait on each workspace.
    const JOBS: usize = 24;
    for i in 0..JOBS {
        let job = NewJob::new(
            JobType::SessionCommit,
            &format!("ws-{}", i % 3),
            json!({"i": i}),
            t,
        );
        let job = NewJob {
            allow_duplicates: true,
            max_attempts: 1,
            ..job
        };
        first.enqueue(&job).await.unwrap();
    }
    let running: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let max_seen: Arc<Mutex<usize>> = Arc::default();
    let claimed = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let store = if w % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let (running, max_seen, claimed) = (running.clone(), max_seen.clone(), claimed.clone());
        tasks.push(tokio::spawn(async move {
            let worker = format!("worker{w}");
            let started = Instant::now();
            while claimed.lock().unwrap().len() < JOBS {
                assert!(
                    started.elapsed() < DEADLINE,
                    "workers did not drain the queue in time"
                );
                let at = Utc::now();
                let Some(job) = store
                    .claim(&worker, TYPES, at, at + Duration::minutes(5))
                    .await
                    .unwrap()
                else {
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    continue;
                };
                {
                    let mut running = running.lock().unwrap();
                    let count = running.entry(job.resource_id.clone()).or_default();
                    *count += 1;
                    let mut max = max_seen.lock().unwrap();
                    *max = (*max).max(*count);
                }
                claimed.lock().unwrap().push(job.id.as_str().to_owned());
                tokio::time::sleep(std::time::Duration::from_millis(3)).await;
                // The end is recorded before `finish`, so the count can only under-report
                // an overlap's start, never invent one.
                *running.lock().unwrap().get_mut(&job.resource_id).unwrap() -= 1;
                let finished = store.finish(&job.id, &worker, &JobOutcome::Completed, Utc::now());
                assert!(finished.await.unwrap());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let claimed = claimed.lock().unwrap().clone();
    assert_eq!(claimed.len(), JOBS);
    assert_eq!(
        claimed.iter().collect::<HashSet<_>>().len(),
        JOBS,
        "no job claimed twice"
    );
    assert_eq!(
        *max_seen.lock().unwrap(),
        1,
        "two jobs of one resource ran at once"
    );
}
