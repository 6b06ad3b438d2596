//! Support for the end-to-end tests: the real server started in-process on a free port with
//! SQLite or a fresh PostgreSQL schema, HTTP helpers, an SSE reader, git fixtures and polling.
//!
//! Each scenario is written once as `async fn scenario(server: &TestServer)` and run on both
//! backends by [`e2e_tests!`]. PostgreSQL variants need `DISCOBOT_TEST_DATABASE_URL`; without
//! it they fail, unless `DISCOBOT_SKIP_POSTGRES=1` says to skip them deliberately.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use discobot_core::App;
use discobot_server::Server;
use discobot_server::config::Config;
use futures::{Stream, StreamExt};
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use reqwest;
pub use serde_json::json;

/// How long a scenario waits for background work (jobs, events) before failing.
pub const WAIT: Duration = Duration::from_secs(20);

/// The database a test server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for each scenario:
/// `e2e_tests! { scenario => scenario_sqlite, scenario_postgres; }` where
/// `async fn scenario(server: &TestServer)`.
#[macro_export]
macro_rules! e2e_tests {
    ($($scenario:ident => $sqlite:ident, $postgres:ident;)+) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            $crate::run_scenario($crate::Backend::Sqlite, |server| {
                Box::pin(async move { $scenario(&server).await })
            })
            .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            $crate::run_scenario($crate::Backend::Postgres, |server| {
                Box::pin(async move { $scenario(&server).await })
            })
            .await;
        }
    )+};
}

/// A boxed scenario future.
pub type ScenarioFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Starts a server on `backend`, runs `scenario` against it (on its own task, so that a
/// failing assertion still lets the server stop and the schema be dropped), stops it, and
/// re-raises the scenario's panic. Returns at once when PostgreSQL is skipped.
pub async fn run_scenario(
    backend: Backend,
    scenario: impl FnOnce(Arc<TestServer>) -> ScenarioFuture,
) {
    if backend == Backend::Postgres && postgres_url().is_none() {
        return;
    }
    let server = Arc::new(
        TestServer::start(backend)
            .await
            .expect("the test server starts"),
    );
    let outcome = tokio::spawn(scenario(server.clone())).await;
    let stopped = server.stop().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
    stopped.expect("the server stops cleanly");
}

/// The PostgreSQL URL for tests, or `None` when the PostgreSQL tests are skipped on purpose.
///
/// # Panics
/// When `DISCOBOT_TEST_DATABASE_URL` is unset and `DISCOBOT_SKIP_POSTGRES` is not `1`.
pub fn postgres_url() -> Option<String> {
    match std::env::var("DISCOBOT_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("DISCOBOT_SKIP_POSTGRES").as_deref() == Ok("1") => {
            eprintln!(
                "skipping a PostgreSQL test: DISCOBOT_TEST_DATABASE_URL is unset and \
                 DISCOBOT_SKIP_POSTGRES=1"
            );
            None
        }
        _ => panic!(
            "DISCOBOT_TEST_DATABASE_URL is not set, so this PostgreSQL test cannot run. Set it \
             (e.g. postgres://discobot:discobot@127.0.0.1:5432/discobot_test; `cargo xtask ci` \
             does), or set DISCOBOT_SKIP_POSTGRES=1 to skip the PostgreSQL tests deliberately."
        ),
    }
}

/// A PostgreSQL schema of its own for one test; dropped by [`PgSchema::drop_schema`] (called
/// by the last server using it when it stops).
#[derive(Debug)]
pub struct PgSchema {
    pub url: String,
    pub name: String,
    /// The credentials encryption key every server on this schema is started with (each
    /// replica has its own data dir, so a key file would differ between them).
    pub encryption_key: String,
}

impl PgSchema {
    /// A fresh, unique schema name on the test database (created by the first server).
    pub fn fresh(url: String) -> Arc<PgSchema> {
        Arc::new(PgSchema {
            url,
            name: format!("e2e_{}", uuid::Uuid::new_v4().simple()),
            encryption_key: format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
        })
    }

    async fn drop_schema(&self) -> anyhow::Result<()> {
        use sea_orm::{ConnectOptions, ConnectionTrait, Database};
        let mut options = ConnectOptions::new(self.url.clone());
        options.max_connections(1).sqlx_logging(false);
        let db = Database::connect(options).await?;
        db.execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name))
            .await?;
        db.close().await?;
        Ok(())
    }
}

/// Where a server keeps its data.
enum DataDir {
    /// A temporary directory removed with the server.
    Owned(tempfile::TempDir),
    /// A directory owned by the test (to restart a server on the same data).
    Borrowed(PathBuf),
}

impl DataDir {
    fn path(&self) -> &Path {
        match self {
            DataDir::Owned(dir) => dir.path(),
            DataDir::Borrowed(path) => path,
        }
    }
}

/// How to start a test server; [`TestServer::start`] covers the usual case.
pub struct ServerOptions {
    pub backend: Backend,
    /// `None`: a fresh temporary directory.
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL only: the schema to use (shared between replicas); `None`: a fresh one.
    pub pg_schema: Option<Arc<PgSchema>>,
    /// More command-line arguments for the server.
    pub extra_args: Vec<String>,
    /// Run sessions in real Docker sandboxes; off by default, so that tests which do not
    /// need a sandbox neither wait for nor leave containers.
    pub docker: bool,
}

impl ServerOptions {
    pub fn new(backend: Backend) -> Self {
        ServerOptions {
            backend,
            data_dir: None,
            pg_schema: None,
            extra_args: Vec::new(),
            docker: false,
        }
    }
}

struct Running {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// The real discobot server, in this process, on `127.0.0.1:<free port>`.
pub struct TestServer {
    base: String,
    app: Arc<App>,
    client: reqwest::Client,
    backend: Backend,
    data_dir: DataDir,
    /// Released by `stop`, so that only running servers hold the schema.
    pg_schema: Mutex<Option<Arc<PgSchema>>>,
    running: Mutex<Option<Running>>,
}

/// A reply: status, headers and the body as text and (when it parses) JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Option<Value>,
}

impl Reply {
    pub fn content_type(&self) -> &str {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }
}

impl TestServer {
    /// Starts a server on `backend` with a temporary data dir (and a fresh PostgreSQL schema).
    pub async fn start(backend: Backend) -> anyhow::Result<TestServer> {
        TestServer::start_with(ServerOptions::new(backend)).await
    }

    /// Starts a server as `options` say. Errors are the server's own start-up errors.
    pub async fn start_with(options: ServerOptions) -> anyhow::Result<TestServer> {
        init_logging();
        let data_dir = match options.data_dir {
            Some(path) => DataDir::Borrowed(path),
            None => DataDir::Owned(
                tempfile::Builder::new()
                    .prefix("discobot-e2e-")
                    .tempdir()
                    .context("temp dir")?,
            ),
        };
        let mut args: Vec<String> = [
            "discobot-server",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--dispatcher-poll-interval",
            "200ms",
            "--job-retry-backoff",
            "200ms",
            "--event-poll-interval",
            "100ms",
            "--shutdown-timeout",
            "5s",
        ]
        .map(String::from)
        .to_vec();
        args.push("--data-dir".into());
        args.push(data_dir.path().display().to_string());
        let pg_schema = match options.backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let schema = match options.pg_schema {
                    Some(schema) => schema,
                    None => PgSchema::fresh(
                        postgres_url()
                            .context("PostgreSQL tests are skipped (DISCOBOT_SKIP_POSTGRES=1)")?,
                    ),
                };
                if !options
                    .extra_args
                    .iter()
                    .any(|arg| arg.starts_with("--encryption-key"))
                {
                    args.extend(["--encryption-key".to_owned(), schema.encryption_key.clone()]);
                }
                args.extend([
                    "--database-url".to_owned(),
                    schema.url.clone(),
                    "--database-schema".to_owned(),
                    schema.name.clone(),
                    "--database-max-connections".to_owned(),
                    "5".to_owned(),
                ]);
                Some(schema)
            }
        };
        if !options.docker {
            args.extend(["--sandbox-provider".to_owned(), "none".to_owned()]);
        }
        // Credentials in the test process's environment must not leak into test projects.
        if !options
            .extra_args
            .iter()
            .any(|arg| arg.starts_with("--import-env-credentials"))
        {
            args.push("--import-env-credentials=false".to_owned());
        }
        args.extend(options.extra_args);
        let config = Config::try_parse_from(&args).context("server arguments")?;
        let server = Server::start(config).await?;
        let app = server.app();
        let address = server.local_addr()?;
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async move {
            let _ = shutdown_rx.await;
        }));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(TestServer {
            base: format!("http://{address}"),
            app,
            client,
            backend: options.backend,
            data_dir,
            pg_schema: Mutex::new(pg_schema),
            running: Mutex::new(Some(Running { shutdown, task })),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The server's use cases, for what has no HTTP route (e.g. the credentials handed to
    /// an agent).
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The PostgreSQL schema this running server uses, to start a replica on it.
    pub fn pg_schema(&self) -> Option<Arc<PgSchema>> {
        lock(&self.pg_schema).clone()
    }

    /// `http://127.0.0.1:<port>` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Stops the server gracefully (shutdown signal, then waits for `run_until`). Later
    /// calls do nothing. The last server on a PostgreSQL schema drops it.
    pub async fn stop(&self) -> anyhow::Result<()> {
        let running = lock(&self.running).take();
        let Some(Running { shutdown, task }) = running else {
            return Ok(());
        };
        let _ = shutdown.send(());
        let result = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .context("the server did not stop within 30 s")?
            .context("the server task panicked")?;
        let schema = lock(&self.pg_schema).take();
        if let Some(schema) = schema {
            // Other holders are replicas still running, or a test that starts another
            // server on it: the last one drops it.
            if Arc::strong_count(&schema) == 1 {
                schema.drop_schema().await.context("drop the test schema")?;
            }
        }
        result
    }

    /// Sends a request; `body` is sent as JSON when it is a `Value`, as is for raw bytes.
    pub async fn send(&self, method: Method, path: &str, body: Body) -> Reply {
        let mut request = self.client.request(method.clone(), self.url(path));
        request = match body {
            Body::None => request,
            Body::Json(value) => request.json(&value),
            Body::Raw(bytes) => request.header(CONTENT_TYPE, "application/json").body(bytes),
        };
        let response = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("{method} {path}: request failed: {error:?}"));
        let status = response.status();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .unwrap_or_else(|error| panic!("{method} {path}: reading the body failed: {error}"));
        let json = serde_json::from_str(&text).ok();
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    /// Sends a request whose answer must be JSON; returns status and body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map_or(Body::None, Body::Json);
        let reply = self.send(method.clone(), path, body).await;
        let json = reply.json.unwrap_or_else(|| {
            panic!(
                "{method} {path}: answer {} is not JSON: {:?}",
                reply.status, reply.text
            )
        });
        (reply.status, json)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// `call`, asserting the status; returns the body.
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let (got, json) = self.call(method.clone(), path, body).await;
        assert_eq!(got.as_u16(), status, "{method} {path} answered {json}");
        json
    }

    /// Opens `GET /api/projects/{project}/events?{query}`, asserting a 200 event stream.
    pub async fn events(&self, project: &str, query: &[(&str, &str)]) -> SseStream {
        let mut path = format!("/api/projects/{project}/events");
        for (i, (key, value)) in query.iter().enumerate() {
            path.push(if i == 0 { '?' } else { '&' });
            path.push_str(&format!("{}={}", encode(key), encode(value)));
        }
        let response = self
            .client
            .get(self.url(&path))
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {path}: {error}"));
        let status = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if status != StatusCode::OK {
            let body = response.text().await.unwrap_or_default();
            panic!("GET {path}: {status} {body}");
        }
        assert!(
            content_type.starts_with("text/event-stream"),
            "events content type is {content_type:?}"
        );
        SseStream::new(response)
    }

    /// Creates a workspace in `project` from `body` and waits for it to be `ready`.
    pub async fn ready_workspace(&self, project: &str, body: Value) -> Value {
        let created = self
            .expect(
                Method::POST,
                &format!("/api/projects/{project}/workspaces"),
                Some(body),
                201,
            )
            .await;
        let id = created["id"].as_str().expect("workspace id").to_owned();
        self.wait_workspace_status(project, &id, "ready").await
    }

    /// Polls `GET W` until its status is `status`; fails early on `error` (unless wanted).
    pub async fn wait_workspace_status(&self, project: &str, id: &str, status: &str) -> Value {
        let path = format!("/api/projects/{project}/workspaces/{id}");
        wait_until(WAIT, &format!("workspace {id} to be {status}"), || async {
            let (code, body) = self.get(&path).await;
            assert_eq!(code, StatusCode::OK, "GET {path}: {body}");
            let current = body["status"].as_str().unwrap_or_default();
            if current == "error" && status != "error" {
                panic!("workspace {id} failed: {body}");
            }
            (current == status).then_some(body)
        })
        .await
    }
}

/// With `DISCOBOT_TEST_LOG=<filter>` (e.g. `info`), the servers' logs go to the test output.
fn init_logging() {
    if let Ok(filter) = std::env::var("DISCOBOT_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// Locks a mutex, ignoring poisoning (the data is a plain option).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // A server never stopped (a failing test outside `run_scenario`): signal it at least.
        if let Some(running) = self
            .running
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
        {
            let _ = running.shutdown.send(());
        }
    }
}

/// A request body.
pub enum Body {
    None,
    Json(Value),
    Raw(Vec<u8>),
}

/// Polls `probe` every 50 ms until it yields `Some`, for at most `deadline`.
///
/// # Panics
/// With `what` in the message when the deadline passes.
pub async fn wait_until<T, F, Fut>(deadline: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One server-sent event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SseFrame {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

impl SseFrame {
    /// `data` as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|error| panic!("SSE data is not JSON ({error}): {:?}", self.data))
    }

    pub fn event_type(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }
}

/// Reads server-sent events from a response body: `event:`, `id:` and `data:` lines up to a
/// blank line make a frame; comment lines (keep-alives) are skipped.
pub struct SseStream {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Vec<u8>>> + Send>>,
    buffer: Vec<u8>,
    ended: bool,
}

impl SseStream {
    pub fn new(response: reqwest::Response) -> Self {
        let body = response
            .bytes_stream()
            .map(|chunk| chunk.map(|bytes| bytes.to_vec()));
        SseStream {
            body: Box::pin(body),
            buffer: Vec::new(),
            ended: false,
        }
    }

    /// The next frame, `None` when the stream ended; panics after `timeout`.
    pub async fn next_frame(&mut self, timeout: Duration) -> Option<SseFrame> {
        match tokio::time::timeout(timeout, self.read_frame()).await {
            Ok(frame) => frame,
            Err(_) => panic!("no SSE frame within {timeout:?}"),
        }
    }

    /// The next frame, or `Err(())` if none arrives within `timeout`.
    pub async fn try_next_frame(&mut self, timeout: Duration) -> Result<Option<SseFrame>, ()> {
        tokio::time::timeout(timeout, self.read_frame())
            .await
            .map_err(|_| ())
    }

    /// Reads frames until one satisfies `matches`; returns it with the frames skipped.
    pub async fn until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut matches: impl FnMut(&SseFrame) -> bool,
    ) -> (SseFrame, Vec<SseFrame>) {
        let start = Instant::now();
        let mut skipped = Vec::new();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            match self.try_next_frame(left).await {
                Ok(Some(frame)) if matches(&frame) => return (frame, skipped),
                Ok(Some(frame)) => skipped.push(frame),
                Ok(None) => panic!("event stream ended while waiting for {what}; saw {skipped:#?}"),
                Err(()) => {
                    panic!("timed out after {timeout:?} waiting for {what}; saw {skipped:#?}")
                }
            }
        }
    }

    /// Waits for the end of the stream (skipping frames) within `timeout`.
    pub async fn expect_end(&mut self, timeout: Duration) {
        let start = Instant::now();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            match self.try_next_frame(left).await {
                Ok(None) => return,
                Ok(Some(_)) => {}
                Err(()) => panic!("the event stream did not end within {timeout:?}"),
            }
        }
    }

    async fn read_frame(&mut self) -> Option<SseFrame> {
        loop {
            if let Some(frame) = self.parse_buffered() {
                return Some(frame);
            }
            if self.ended {
                return None;
            }
            match self.body.next().await {
                // Line ends may be CRLF; JSON data never holds a raw CR.
                Some(Ok(chunk)) => self
                    .buffer
                    .extend(chunk.iter().copied().filter(|&b| b != b'\r')),
                // A connection closed by the server's shutdown ends the stream like EOF.
                Some(Err(_)) | None => self.ended = true,
            }
        }
    }

    /// Takes one complete frame out of the buffer, skipping comment-only blocks. Works on
    /// bytes, so that a chunk boundary inside a UTF-8 character does no harm.
    fn parse_buffered(&mut self) -> Option<SseFrame> {
        loop {
            let end = self.buffer.windows(2).position(|pair| pair == b"\n\n")?;
            let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
            let block = String::from_utf8_lossy(&block[..end]).into_owned();
            let mut frame = SseFrame::default();
            let mut data_lines = Vec::new();
            for line in block.lines() {
                if line.starts_with(':') {
                    continue;
                }
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => frame.event = Some(value.to_owned()),
                    "id" => frame.id = Some(value.to_owned()),
                    "data" => data_lines.push(value.to_owned()),
                    _ => {}
                }
            }
            if frame.event.is_none() && data_lines.is_empty() {
                continue;
            }
            frame.data = data_lines.join("\n");
            return Some(frame);
        }
    }
}

/// A git repository made with the git CLI: one commit with a README on branch `main`.
pub struct GitFixture {
    pub dir: PathBuf,
    pub head: String,
}

/// Runs `git` in `dir` (without the user's global config) and returns its trimmed stdout.
///
/// # Panics
/// When git fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=Discobot Tests",
            "-c",
            "user.email=tests@discobot.invalid",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Makes `dir` (created if missing) a git repository with one commit.
pub fn git_fixture(dir: &Path) -> GitFixture {
    std::fs::create_dir_all(dir).expect("fixture dir");
    git(dir, &["init", "-q"]);
    std::fs::write(dir.join("README.md"), "# fixture\n").expect("write README");
    git(dir, &["add", "README.md"]);
    git(dir, &["commit", "-q", "-m", "Initial fixture commit"]);
    let head = git(dir, &["rev-parse", "HEAD"]);
    GitFixture {
        dir: dir.to_path_buf(),
        head,
    }
}

/// A JSON string field, or a panic naming it.
pub fn str_field<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string in {value}"))
}

/// Percent-encodes a query component.
pub fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
