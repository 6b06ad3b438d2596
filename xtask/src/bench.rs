//! `cargo xtask bench`: measures the release build of `discobot-server` against its targets.
//!
//! `bench api` runs, for SQLite and for PostgreSQL: start-up time on a migrated database, idle RSS,
//! and `GET /api/projects/local/sessions` over 1,000 sessions, both closed-loop (fixed concurrency,
//! as fast as it goes) and open-loop (paced at a fixed rate, latency counted from the time each
//! request was due, so a stalled server cannot hide its stalls by slowing the client down).
//! The client runs on the same machine as the server and competes with it for the cores.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::{cargo, ci::DATABASE_URL_VAR, deps, output, services};

/// `cargo xtask bench <target> [flags]`.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let Some((target, rest)) = args.split_first() else {
        bail!("usage: cargo xtask bench <api|sandbox|chat|git> [flags]");
    };
    match target.as_str() {
        "api" => api(&Options::parse(rest)?),
        "sandbox" => crate::bench_sandbox::run(rest),
        "chat" => crate::bench_chat::run(rest),
        "git" => crate::bench_git::run(rest),
        other => bail!("unknown bench target `{other}`; expected api, sandbox, chat or git"),
    }
}

#[derive(Debug)]
struct Options {
    /// Connections of the closed-loop run.
    concurrency: usize,
    /// Length of each load run.
    seconds: u64,
    /// Requests per second of the paced run.
    rate: u32,
    /// Sessions created before the load runs.
    sessions: usize,
    backends: Vec<Backend>,
    /// Whether to build the release binary first.
    build: bool,
    /// The server binary to measure instead of the workspace's release build.
    server: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            concurrency: 16,
            seconds: 10,
            rate: 2000,
            sessions: 1000,
            backends: vec![Backend::Sqlite, Backend::Postgres],
            build: true,
            server: None,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .with_context(|| format!("`{flag}` needs a value"))
            };
            let number = |value: &String| -> anyhow::Result<u64> {
                match value.parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => bail!("`{flag}` needs a positive whole number, not `{value}`"),
                }
            };
            match flag.as_str() {
                "--concurrency" => options.concurrency = number(value()?)?.try_into()?,
                "--seconds" => options.seconds = number(value()?)?,
                "--rate" => options.rate = number(value()?)?.try_into()?,
                "--sessions" => options.sessions = number(value()?)?.try_into()?,
                "--backend" => {
                    options.backends = match value()?.as_str() {
                        "sqlite" => vec![Backend::Sqlite],
                        "postgres" => vec![Backend::Postgres],
                        "both" => vec![Backend::Sqlite, Backend::Postgres],
                        other => {
                            bail!("unknown backend `{other}`; expected sqlite, postgres or both")
                        }
                    }
                }
                "--no-build" => options.build = false,
                "--server" => {
                    options.server = Some(value()?.into());
                    options.build = false;
                }
                other => bail!("unknown flag `{other}` for `bench api`"),
            }
        }
        Ok(options)
    }
}

/// Everything measured on one backend.
struct Report {
    backend: Backend,
    first_start: Duration,
    start: Duration,
    sessions_took: Duration,
    list_bytes: usize,
    idle_rss: u64,
    closed: Load,
    paced: Load,
}

/// One load run.
struct Load {
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    took: Duration,
    /// Sorted.
    latencies: Vec<Duration>,
    max_rss: u64,
}

impl Load {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.took.as_secs_f64()
    }

    /// The nearest-rank percentile `q` (0 < q <= 1) of the latencies.
    fn percentile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = (q * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }
}

fn api(options: &Options) -> anyhow::Result<()> {
    if options.build {
        crate::run(cargo().args(["build", "--release", "-p", "discobot-server"]))?;
    }
    let binary = match &options.server {
        Some(binary) => binary.clone(),
        None => {
            let metadata = deps::metadata()?;
            let target_dir = metadata["target_directory"]
                .as_str()
                .context("`cargo metadata` has no target_directory")?;
            Path::new(target_dir).join("release/discobot-server")
        }
    };
    if !binary.is_file() {
        bail!(
            "{} does not exist; build it with `cargo build --release -p discobot-server`",
            binary.display()
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut reports = Vec::new();
    for &backend in &options.backends {
        println!("\n==> bench api: {}", backend.name());
        let scratch = Scratch::new(backend)?;
        let mut env: Vec<(&str, String)> = vec![
            (
                "DISCOBOT_DATA_DIR",
                scratch.path.join("data").display().to_string(),
            ),
            // The API bench measures the store and the HTTP layer; 1,000 sessions must not
            // start 1,000 sandboxes (`bench sandbox` measures those).
            ("DISCOBOT_SANDBOX_PROVIDER", "none".to_owned()),
        ];
        if backend == Backend::Postgres {
            env.push(("DISCOBOT_DATABASE_URL", fresh_postgres_database()?));
        }
        let report = runtime.block_on(bench_backend(backend, &binary, &env, &scratch, options))?;
        reports.push(report);
    }
    print_reports(&reports, options);
    Ok(())
}

async fn bench_backend(
    backend: Backend,
    binary: &Path,
    env: &[(&str, String)],
    scratch: &Scratch,
    options: &Options,
) -> anyhow::Result<Report> {
    let repo = scratch.path.join("repo");
    make_git_repo(&repo)?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;

    // a. Start-up: the first start migrates an empty database, the second finds it migrated.
    let (server, first_start) =
        Server::start(binary, env, &scratch.path.join("server-1.log"), &client).await?;
    println!("first start (empty database): {}", ms(first_start));
    server.stop();
    let (server, start) =
        Server::start(binary, env, &scratch.path.join("server-2.log"), &client).await?;
    println!("start to listening (migrated database): {}", ms(start));

    // b. A workspace and the sessions the load lists.
    let base = format!("http://127.0.0.1:{}/api/projects/local", server.port);
    let workspace: Value = post_json(
        &client,
        &format!("{base}/workspaces"),
        &json!({ "path": repo }),
    )
    .await
    .context("could not create the workspace")?;
    let workspace_id = workspace["id"]
        .as_str()
        .with_context(|| format!("the workspace has no id: {workspace}"))?
        .to_owned();
    let sessions_took = create_sessions(&client, &base, &workspace_id, options.sessions).await?;
    println!(
        "created {} sessions in {:.2} s ({:.0}/s, 8 at a time)",
        options.sessions,
        sessions_took.as_secs_f64(),
        options.sessions as f64 / sessions_took.as_secs_f64()
    );
    let list_url = format!("{base}/sessions");
    let list = client
        .get(&list_url)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let listed = serde_json::from_slice::<Value>(&list)?["sessions"]
        .as_array()
        .map_or(0, Vec::len);
    if listed != options.sessions {
        println!(
            "warning: the list has {listed} sessions, expected {}",
            options.sessions
        );
    }

    // c. Idle memory, measured once the sessions' start-up jobs have settled: the load runs
    //    measure the steady state "1,000 sessions in the store", not the job backlog.
    let settled = Instant::now();
    loop {
        let list = client.get(&list_url).send().await?.bytes().await?;
        let sessions = serde_json::from_slice::<Value>(&list)?;
        let busy = sessions["sessions"].as_array().map_or(0, |sessions| {
            sessions
                .iter()
                .filter(|session| {
                    matches!(
                        session["status"].as_str(),
                        Some(
                            "initializing"
                                | "reinitializing"
                                | "cloning"
                                | "creating_sandbox"
                                | "removing"
                        )
                    )
                })
                .count()
        });
        if busy == 0 {
            break;
        }
        if settled.elapsed() > Duration::from_secs(120) {
            println!("warning: {busy} sessions still starting after 120 s; measuring anyway");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("sessions settled in {:.1?}", settled.elapsed());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = rss_bytes(server.pid).context("could not read the server's VmRSS")?;
    println!("idle RSS: {}", mb(idle_rss));

    // d. Load.
    let seconds = Duration::from_secs(options.seconds);
    println!(
        "closed loop: {} connections for {seconds:?}",
        options.concurrency
    );
    let closed = closed_loop(&client, &list_url, options.concurrency, seconds, server.pid).await;
    print_load(&closed);
    println!("paced: {} req/s for {seconds:?}", options.rate);
    let paced = paced(&client, &list_url, options.rate, seconds, server.pid).await?;
    print_load(&paced);
    server.stop();

    Ok(Report {
        backend,
        first_start,
        start,
        sessions_took,
        list_bytes: list.len(),
        idle_rss,
        closed,
        paced,
    })
}

/// A running `discobot-server`, stopped when dropped (also when the bench fails).
pub(crate) struct Server {
    child: Child,
    pub(crate) pid: u32,
    pub(crate) port: u16,
}

impl Server {
    /// Spawns the server on a free port and returns it with the time from spawn to the first
    /// `200` on `/health`.
    pub(crate) async fn start(
        binary: &Path,
        env: &[(&str, String)],
        log_path: &Path,
        client: &reqwest::Client,
    ) -> anyhow::Result<(Server, Duration)> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = fs::File::create(log_path)?;
        let mut cmd = Command::new(binary);
        cmd.env_remove("DISCOBOT_DATABASE_URL")
            .env("PORT", port.to_string())
            .envs(env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let health = format!("http://127.0.0.1:{port}/health");

        let spawned = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("could not start {}", binary.display()))?;
        let mut server = Server {
            pid: child.id(),
            child,
            port,
        };
        loop {
            if let Ok(response) = client.get(&health).send().await
                && response.status() == reqwest::StatusCode::OK
            {
                return Ok((server, spawned.elapsed()));
            }
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "discobot-server exited ({status}) before answering /health; its log:\n{}",
                    log_tail(log_path)
                );
            }
            if spawned.elapsed() > Duration::from_secs(60) {
                bail!(
                    "discobot-server did not answer /health within 60 s; its log:\n{}",
                    log_tail(log_path)
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub(crate) fn stop(self) {
        drop(self);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// Stops a child process of a bench: SIGTERM, up to 5 s to shut down, then SIGKILL.
pub(crate) fn terminate(child: &mut std::process::Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A temporary directory for one backend's run, removed when dropped.
pub(crate) struct Scratch {
    pub(crate) path: PathBuf,
}

impl Scratch {
    fn new(backend: Backend) -> anyhow::Result<Scratch> {
        Scratch::named(&backend.name().to_lowercase())
    }

    /// `<temp>/discobot-bench-<pid>-<name>`, empty.
    pub(crate) fn named(name: &str) -> anyhow::Result<Scratch> {
        let path =
            std::env::temp_dir().join(format!("discobot-bench-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(path.join("data"))?;
        Ok(Scratch { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A git repository with one commit, made with the git CLI.
pub(crate) fn make_git_repo(repo: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(repo)?;
    fs::write(repo.join("README.md"), "# bench\n")?;
    let git = |args: &[&str]| {
        output(
            Command::new("git")
                .args([
                    "-c",
                    "user.name=discobot bench",
                    "-c",
                    "user.email=bench@localhost",
                ])
                .args(args)
                .current_dir(repo),
        )
    };
    git(&["init", "-q"])?;
    git(&["add", "README.md"])?;
    git(&["commit", "-q", "-m", "Initial commit"])?;
    Ok(())
}

/// `postgres://…/discobot_bench`, dropped and created anew, on the test database's server.
fn fresh_postgres_database() -> anyhow::Result<String> {
    let url = match std::env::var(DATABASE_URL_VAR) {
        Ok(url) => url,
        Err(_) => services::ensure_postgres().context(
            "PostgreSQL is not available; set DISCOBOT_TEST_DATABASE_URL or use `--backend sqlite`",
        )?,
    };
    let psql = |sql: &str| {
        output(Command::new("psql").args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &url, "-c", sql]))
    };
    psql("DROP DATABASE IF EXISTS discobot_bench WITH (FORCE)")?;
    psql("CREATE DATABASE discobot_bench")?;
    with_database(&url, "discobot_bench")
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let (without_query, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let authority_start = without_query.find("://").context("not a URL")? + 3;
    let base = match without_query[authority_start..].find('/') {
        Some(slash) => &without_query[..authority_start + slash],
        None => without_query,
    };
    Ok(match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    })
}

pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let response = client.post(url).json(body).send().await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("POST {url} answered {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("POST {url} answered non-JSON: {text}"))
}

/// Creates `count` sessions, 8 at a time, and returns how long it took.
async fn create_sessions(
    client: &reqwest::Client,
    base: &str,
    workspace_id: &str,
    count: usize,
) -> anyhow::Result<Duration> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let url = format!("{base}/sessions");
    let start = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (client, next, url) = (client.clone(), next.clone(), url.clone());
            let workspace_id = workspace_id.to_owned();
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= count {
                        return anyhow::Ok(());
                    }
                    let body =
                        json!({ "id": format!("bench-{n:05}"), "workspaceId": workspace_id });
                    post_json(&client, &url, &body).await?;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    Ok(start.elapsed())
}

/// One request: `Ok` for a `200` with its whole body read, else what went wrong.
async fn get(client: &reqwest::Client, url: &str) -> Result<(), String> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|err| err.to_string())?;
    let status = response.status();
    let body = response.bytes().await.map_err(|err| err.to_string())?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
    }
    Ok(())
}

/// `concurrency` connections, each sending its next request when the last one is answered.
async fn closed_loop(
    client: &reqwest::Client,
    url: &str,
    concurrency: usize,
    length: Duration,
    pid: u32,
) -> Load {
    let start = Instant::now();
    let end = start + length;
    let sampler = tokio::spawn(sample_rss(pid, end));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url) = (client.clone(), url.to_owned());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = Vec::new();
                while Instant::now() < end {
                    let sent = Instant::now();
                    match get(&client, &url).await {
                        Ok(()) => latencies.push(sent.elapsed()),
                        Err(err) => errors.push(err),
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for worker in workers {
        if let Ok((mut l, mut e)) = worker.await {
            latencies.append(&mut l);
            errors.append(&mut e);
        }
    }
    let took = start.elapsed();
    latencies.sort_unstable();
    Load {
        ok: latencies.len(),
        errors: errors.len(),
        first_error: errors.into_iter().next(),
        took,
        latencies,
        max_rss: sampler.await.unwrap_or(0),
    }
}

/// Requests due at a fixed `rate`, whatever the server does; latency counts from when each was due.
async fn paced(
    client: &reqwest::Client,
    url: &str,
    rate: u32,
    length: Duration,
    pid: u32,
) -> anyhow::Result<Load> {
    // Enough connections for any sane latency; past this, requests queue and their wait counts.
    const MAX_IN_FLIGHT: usize = 256;
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let interval = Duration::from_secs(1) / rate;
    let total = (u128::from(rate) * length.as_millis() / 1000) as u32;
    let start = Instant::now();
    let sampler = tokio::spawn(sample_rss(pid, start + length));

    // The schedule is kept by a thread of its own: `thread::sleep` is finer than tokio's 1 ms timer.
    let runtime = tokio::runtime::Handle::current();
    let (client, url) = (client.clone(), url.to_owned());
    let dispatcher = tokio::task::spawn_blocking(move || {
        let mut requests = Vec::with_capacity(total as usize);
        for i in 0..total {
            let due = start + interval * i;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let (client, url, in_flight) = (client.clone(), url.clone(), in_flight.clone());
            requests.push(runtime.spawn(async move {
                let _permit = in_flight.acquire_owned().await;
                get(&client, &url).await.map(|()| due.elapsed())
            }));
        }
        requests
    });
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for request in dispatcher.await? {
        match request.await? {
            Ok(latency) => latencies.push(latency),
            Err(err) => errors.push(err),
        }
    }
    let took = start.elapsed();
    latencies.sort_unstable();
    Ok(Load {
        ok: latencies.len(),
        errors: errors.len(),
        first_error: errors.into_iter().next(),
        took,
        latencies,
        max_rss: sampler.await.unwrap_or(0),
    })
}

/// The largest RSS of `pid` seen every 100 ms until `end`.
async fn sample_rss(pid: u32, end: Instant) -> u64 {
    let mut max = 0;
    while Instant::now() < end {
        max = max.max(rss_bytes(pid).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    max
}

/// The resident set size of `pid`, from `/proc/<pid>/status`.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

pub(crate) fn log_tail(path: &Path) -> String {
    let log = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Megabytes of 10^6 bytes.
fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn print_load(load: &Load) {
    println!(
        "  {:.0} req/s, p50 {}, p99 {}, max RSS {}, {} errors{}",
        load.rate(),
        ms(load.percentile(0.50)),
        ms(load.percentile(0.99)),
        mb(load.max_rss),
        load.errors,
        load.first_error
            .as_deref()
            .map(|err| format!(" (first: {err})"))
            .unwrap_or_default()
    );
}

const TARGET_P99: Duration = Duration::from_millis(10);
const TARGET_RATE: u32 = 2000;
const TARGET_IDLE_RSS: u64 = 30_000_000;
const TARGET_START: Duration = Duration::from_millis(200);

fn print_reports(reports: &[Report], options: &Options) {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "\nbench api: {} sessions, {} s per load run, client and server sharing {cores} cores\n",
        options.sessions, options.seconds
    );
    let mut rows: Vec<(String, Vec<String>)> = vec![
        (
            "".into(),
            reports.iter().map(|r| r.backend.name().into()).collect(),
        ),
        (
            "first start (empty database)".into(),
            reports.iter().map(|r| ms(r.first_start)).collect(),
        ),
        (
            "start to listening (migrated)".into(),
            reports.iter().map(|r| ms(r.start)).collect(),
        ),
        (
            "idle RSS".into(),
            reports.iter().map(|r| mb(r.idle_rss)).collect(),
        ),
        (
            format!("create {} sessions", options.sessions),
            reports
                .iter()
                .map(|r| format!("{:.2} s", r.sessions_took.as_secs_f64()))
                .collect(),
        ),
        (
            "list response".into(),
            reports
                .iter()
                .map(|r| format!("{} KB", r.list_bytes / 1000))
                .collect(),
        ),
    ];
    let closed: Vec<&Load> = reports.iter().map(|r| &r.closed).collect();
    let paced: Vec<&Load> = reports.iter().map(|r| &r.paced).collect();
    for (label, loads) in [
        (
            format!("closed loop, {} conns", options.concurrency),
            closed,
        ),
        (format!("paced, {} req/s", options.rate), paced),
    ] {
        let cells = |f: fn(&Load) -> String| loads.iter().map(|load| f(load)).collect();
        rows.push((
            format!("{label}: req/s"),
            cells(|l| format!("{:.1}", l.rate())),
        ));
        rows.push(("  p50".into(), cells(|l| ms(l.percentile(0.50)))));
        rows.push(("  p99".into(), cells(|l| ms(l.percentile(0.99)))));
        rows.push(("  max RSS".into(), cells(|l| mb(l.max_rss))));
        rows.push(("  errors".into(), cells(|l| l.errors.to_string())));
    }
    for (label, cells) in &rows {
        print!("{label:<34}");
        for cell in cells {
            print!("{cell:>14}");
        }
        println!();
    }

    println!("\ntargets");
    let verdict = |pass: bool| if pass { "PASS" } else { "MISS" };
    for r in reports {
        let name = r.backend.name();
        if r.backend == Backend::Sqlite {
            let p99 = r.paced.percentile(0.99);
            let kept_pace = r.paced.rate() >= 0.98 * f64::from(options.rate) && r.paced.errors == 0;
            let rate_note = if options.rate == TARGET_RATE {
                String::new()
            } else {
                format!(" (run at {} req/s, not {TARGET_RATE})", options.rate)
            };
            println!(
                "  {}  p99 < 10 ms at {TARGET_RATE} req/s ({name}, paced): p99 {} at {:.1} req/s, {} errors{rate_note}",
                verdict(p99 < TARGET_P99 && kept_pace && options.rate >= TARGET_RATE),
                ms(p99),
                r.paced.rate(),
                r.paced.errors,
            );
        }
        println!(
            "  {}  idle RSS < 30 MB ({name}): {}",
            verdict(r.idle_rss < TARGET_IDLE_RSS),
            mb(r.idle_rss)
        );
        println!(
            "  {}  start to listening < 200 ms ({name}, migrated database): {}",
            verdict(r.start < TARGET_START),
            ms(r.start)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database(
                "postgres://u:p@127.0.0.1:5432/discobot_test",
                "discobot_bench"
            )
            .unwrap(),
            "postgres://u:p@127.0.0.1:5432/discobot_bench"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x").unwrap(),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:1", "x").unwrap(),
            "postgres://h:1/x"
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let load = Load {
            ok: 100,
            errors: 0,
            first_error: None,
            took: Duration::from_secs(1),
            latencies: (1..=100).map(Duration::from_millis).collect(),
            max_rss: 0,
        };
        assert_eq!(load.percentile(0.50), Duration::from_millis(50));
        assert_eq!(load.percentile(0.99), Duration::from_millis(99));
        assert_eq!(load.percentile(1.0), Duration::from_millis(100));
    }

    #[test]
    fn parses_flags() {
        let args: Vec<String> = ["--concurrency", "4", "--backend", "sqlite", "--no-build"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let options = Options::parse(&args).unwrap();
        assert_eq!(options.concurrency, 4);
        assert_eq!(options.backends, [Backend::Sqlite]);
        assert!(!options.build);
        assert!(Options::parse(&["--rate".to_string(), "0".to_string()]).is_err());
    }
}
