//! Several servers on one database: replicas sharing a PostgreSQL schema (events reach
//! every replica, each job runs once), a restart keeping the data, and a second server on
//! the same SQLite data dir being refused.

use std::collections::HashMap;
use std::time::Duration;

use discobot_tests::reqwest::Method;
use discobot_tests::{
    Backend, PgSchema, ServerOptions, SseStream, TestServer, WAIT, json, postgres_url, str_field,
};

use crate::common::{LOCAL, create_session, is_event};

/// Starts a second server on the first one's schema.
async fn replica_of(first: &TestServer) -> TestServer {
    let mut options = ServerOptions::new(Backend::Postgres);
    options.pg_schema = first.pg_schema();
    TestServer::start_with(options)
        .await
        .expect("the replica starts")
}

async fn connected(server: &TestServer) -> SseStream {
    let mut stream = server.events("local", &[]).await;
    let first = stream.next_frame(WAIT).await.expect("connected");
    assert_eq!(first.event.as_deref(), Some("connected"));
    stream
}

/// Runs `body` with two replicas, stopping both (and dropping the schema) even if it panics.
async fn with_replicas<F>(body: F)
where
    F: FnOnce(std::sync::Arc<(TestServer, TestServer)>) -> discobot_tests::ScenarioFuture,
{
    if postgres_url().is_none() {
        return;
    }
    let a = TestServer::start(Backend::Postgres)
        .await
        .expect("server A starts");
    let b = replica_of(&a).await;
    let servers = std::sync::Arc::new((a, b));
    let outcome = tokio::spawn(body(servers.clone())).await;
    let stopped_a = servers.0.stop().await;
    let stopped_b = servers.1.stop().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
    stopped_a.expect("A stops");
    stopped_b.expect("B stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_events_postgres() {
    with_replicas(|servers| {
        Box::pin(async move {
            let (a, b) = (&servers.0, &servers.1);
            let mut on_a = connected(a).await;
            let mut on_b = connected(b).await;
            let tmp = tempfile::tempdir().unwrap();

            // Published through A, seen on B (and A).
            let created = a
                .expect(
                    Method::POST,
                    &format!("{LOCAL}/workspaces"),
                    Some(json!({"path": tmp.path().join("from-a").display().to_string()})),
                    201,
                )
                .await;
            let from_a = str_field(&created, "id").to_owned();
            for stream in [&mut on_b, &mut on_a] {
                stream
                    .until("A's workspace ready", WAIT, |f| {
                        is_event(
                            f,
                            "workspace_updated",
                            &[("workspaceId", &from_a), ("status", "ready")],
                        )
                    })
                    .await;
            }
            // Published through B, seen on A; data written on B is readable on A.
            create_session(b, "made-on-b", Some(&from_a)).await;
            on_a.until("B's session", WAIT, |f| {
                is_event(
                    f,
                    "session_updated",
                    &[("sessionId", "made-on-b"), ("status", "initializing")],
                )
            })
            .await;
            let session = a
                .expect(
                    Method::GET,
                    &format!("{LOCAL}/sessions/made-on-b"),
                    None,
                    200,
                )
                .await;
            assert_eq!(session["workspaceId"], from_a.as_str());
            // Replay through B of what happened through A.
            let replay = b.events("local", &[("since", "0")]).await;
            let mut replay = replay;
            replay.next_frame(WAIT).await.expect("connected");
            replay
                .until("A's workspace in B's history", WAIT, |f| {
                    is_event(
                        f,
                        "workspace_updated",
                        &[("workspaceId", &from_a), ("status", "initializing")],
                    )
                })
                .await;
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_run_each_job_once_postgres() {
    with_replicas(|servers| {
        Box::pin(async move {
            let (a, b) = (&servers.0, &servers.1);
            let mut on_a = connected(a).await;
            let mut on_b = connected(b).await;
            let tmp = tempfile::tempdir().unwrap();
            let parent = tmp.path();

            // 20 workspaces, half through each server, all at once.
            let creations = (0..20).map(|i| {
                let server = if i % 2 == 0 { a } else { b };
                let path = parent.join(format!("w{i:02}")).display().to_string();
                async move {
                    let created = server
                        .expect(
                            Method::POST,
                            &format!("{LOCAL}/workspaces"),
                            Some(json!({"path": path})),
                            201,
                        )
                        .await;
                    str_field(&created, "id").to_owned()
                }
            });
            let ids: Vec<String> = futures::future::join_all(creations).await;
            for (i, id) in ids.iter().enumerate() {
                let server = if i % 2 == 0 { b } else { a };
                server.wait_workspace_status("local", id, "ready").await;
            }

            // Rename the project as a marker after every job has completed, then count.
            let mut counts_a = count_job_completions(&mut on_a, &ids).await;
            let mut counts_b = count_job_completions(&mut on_b, &ids).await;
            a.expect(Method::PUT, LOCAL, Some(json!({"name": "after-jobs"})), 200)
                .await;
            for (stream, counts) in [(&mut on_a, &mut counts_a), (&mut on_b, &mut counts_b)] {
                let (_, rest) = stream
                    .until("the marker", WAIT, |f| {
                        f.event_type() == "project_updated"
                            && f.json()["data"]["name"] == "after-jobs"
                    })
                    .await;
                for frame in rest {
                    tally(&frame, &ids, counts);
                }
            }
            for (name, counts) in [("A", &counts_a), ("B", &counts_b)] {
                for id in &ids {
                    assert_eq!(
                        counts.get(id).copied().unwrap_or(0),
                        1,
                        "workspace_init of {id} completed {} times as seen on {name}",
                        counts.get(id).copied().unwrap_or(0)
                    );
                }
            }
        })
    })
    .await;
}

/// Reads until every workspace's `workspace_init` completed once; returns the counts.
async fn count_job_completions(stream: &mut SseStream, ids: &[String]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    while ids.iter().any(|id| !counts.contains_key(id)) {
        let frame = stream
            .next_frame(WAIT)
            .await
            .expect("the stream stays open");
        tally(&frame, ids, &mut counts);
    }
    counts
}

fn tally(frame: &discobot_tests::SseFrame, ids: &[String], counts: &mut HashMap<String, usize>) {
    if !is_event(frame, "job_completed", &[("jobType", "workspace_init")]) {
        return;
    }
    let event = frame.json();
    let id = event["data"]["resourceId"].as_str().unwrap_or_default();
    if ids.iter().any(|known| known == id) {
        assert_eq!(event["data"]["status"], "completed", "{event}");
        *counts.entry(id.to_owned()).or_insert(0) += 1;
    }
}

/// Data survives a restart on the same data dir (and, on PostgreSQL, schema).
async fn restart_keeps_data(backend: Backend) {
    if backend == Backend::Postgres && postgres_url().is_none() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let schema = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(PgSchema::fresh(postgres_url().unwrap())),
    };
    let options = || {
        let mut options = ServerOptions::new(backend);
        options.data_dir = Some(data.path().to_path_buf());
        options.pg_schema = schema.clone();
        options
    };
    let first = TestServer::start_with(options())
        .await
        .expect("first start");
    let workspace = first
        .ready_workspace(
            "local",
            json!({"path": tmp.path().join("kept").display().to_string(), "displayName": "Kept"}),
        )
        .await;
    let id = str_field(&workspace, "id").to_owned();
    first
        .expect(
            Method::PUT,
            "/api/preferences/color",
            Some(json!({"value": "green"})),
            200,
        )
        .await;
    first.stop().await.expect("first stop");
    drop(first);

    let second = std::sync::Arc::new(TestServer::start_with(options()).await.expect("restart"));
    drop(schema);
    let server = second.clone();
    let outcome = tokio::spawn(async move {
        let fetched = server
            .expect(Method::GET, &format!("{LOCAL}/workspaces/{id}"), None, 200)
            .await;
        assert_eq!(fetched["displayName"], "Kept");
        assert_eq!(fetched["status"], "ready");
        let preference = server
            .expect(Method::GET, "/api/preferences/color", None, 200)
            .await;
        assert_eq!(preference["value"], "green");
        let (_, projects) = server.get("/api/projects").await;
        assert_eq!(
            projects
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["id"] == "local")
                .count(),
            1,
            "the default project is not seeded twice"
        );
    })
    .await;
    let stopped = second.stop().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
    stopped.expect("second stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_data_sqlite() {
    restart_keeps_data(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_data_postgres() {
    restart_keeps_data(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_server_on_same_sqlite_data_dir_is_refused_sqlite() {
    let data = tempfile::tempdir().unwrap();
    let options = || {
        let mut options = ServerOptions::new(Backend::Sqlite);
        options.data_dir = Some(data.path().to_path_buf());
        options
    };
    let first = TestServer::start_with(options())
        .await
        .expect("first start");
    let error = match TestServer::start_with(options()).await {
        Ok(second) => {
            second.stop().await.ok();
            panic!("a second server started on a data dir in use");
        }
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("in use"),
        "the error should say the database is in use: {error}"
    );
    // The first server is unaffected.
    let (status, _) = first.get("/health").await;
    assert!(status.is_success());
    first.stop().await.expect("stop");
    // Once it stopped, the data dir can be used again.
    let again = tokio::time::timeout(Duration::from_secs(10), TestServer::start_with(options()))
        .await
        .expect("start in time")
        .expect("a new server starts once the first stopped");
    again.stop().await.expect("stop");
}
