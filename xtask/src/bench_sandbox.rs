//! `cargo xtask bench sandbox`: session start to sandbox ready on Docker, against the floor.
//!
//! One run starts the release server on SQLite with `--sandbox-provider docker`, creates a
//! workspace on a temporary git repository, then, `--runs` times in a row: POST a session and
//! stop the clock when the project event stream says `session_updated` with status `ready`
//! (then delete the session and wait until its container is gone). Interleaved with those runs
//! it measures the floor: the bare Engine API calls the provider cannot avoid for the same image
//! (create with the agent port published on 127.0.0.1, start, inspect for the port) and polling
//! the agent's `/health` every 2 ms until the first 200, then a forced remove.
//! Interleaving keeps both series under the same background load (the machine is shared).
//! One unmeasured warm-up of each comes first. Everything the run made (the server, its
//! containers and volumes, the floor containers, the project cache volume if it was not there
//! before) is removed when the run ends, also on an error or Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::bench::{Scratch, Server, log_tail, make_git_repo, ms, post_json};
use crate::{cargo, deps, output, sandbox_image, succeeds};

const USAGE: &str = "usage: cargo xtask bench sandbox [--runs N] [--no-build] [--image IMAGE] \
                     [--log-level FILTER] [--keep-log FILE]";

/// The agent's port in the image.
const AGENT_PORT_KEY: &str = "3002/tcp";
/// The label on the floor's containers, valued with the run id.
const FLOOR_LABEL: &str = "discobot.bench.run";
/// The project the sessions are created in, and its cache volume.
const PROJECT: &str = "local";
const CACHE_VOLUME: &str = "discobot-cache-local";
/// The Engine API version of the floor's calls (the oldest our machines run).
const API: &str = "v1.41";

const TARGET_RATIO: f64 = 1.2;
const TARGET_P50: Duration = Duration::from_millis(700);

#[derive(Debug, PartialEq)]
struct Options {
    runs: usize,
    build: bool,
    image: String,
    log_level: String,
    keep_log: Option<PathBuf>,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        runs: 20,
        build: true,
        image: format!("discobot-sandbox:{}", env!("CARGO_PKG_VERSION")),
        log_level: "info,sqlx=warn,sea_orm=warn".into(),
        keep_log: None,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || -> anyhow::Result<String> {
            args.next()
                .cloned()
                .with_context(|| format!("`{flag}` needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--runs" => {
                let raw = value()?;
                options.runs = match raw.parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => bail!("`--runs` needs a positive whole number, not `{raw}`"),
                }
            }
            "--no-build" => options.build = false,
            "--image" => options.image = value()?,
            "--log-level" => options.log_level = value()?,
            "--keep-log" => options.keep_log = Some(value()?.into()),
            other => bail!("unknown flag `{other}` for `bench sandbox`\n{USAGE}"),
        }
    }
    Ok(options)
}

/// `cargo xtask bench sandbox`.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    crate::services::ensure_docker()?;
    if options.build {
        crate::run(cargo().args([
            "build",
            "--release",
            "-p",
            "discobot-server",
            "-p",
            "discobot-agent-bin",
        ]))?;
        // Rebuilds the image only where the agent changed (the classic builder's cache).
        sandbox_image::run_sandbox_image(&["--tag".into(), options.image.clone()])?;
    } else if !sandbox_image::image_exists(&options.image) {
        sandbox_image::run_sandbox_image(&["--tag".into(), options.image.clone()])?;
    }
    let metadata = deps::metadata()?;
    let binary = Path::new(
        metadata["target_directory"]
            .as_str()
            .context("`cargo metadata` has no target_directory")?,
    )
    .join("release/discobot-server");
    if !binary.is_file() {
        bail!(
            "{} does not exist; build it with `cargo build --release -p discobot-server`",
            binary.display()
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Declared first, so it is dropped last: after the server has stopped.
    let leftovers = Leftovers::new();
    // Ctrl-C ends the run through the same drops as an error does.
    let report = runtime.block_on(async {
        tokio::select! {
            report = bench(&binary, &options, &leftovers) => report,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        }
    })?;
    report.print(&options);
    Ok(())
}

/// Both series, sorted.
struct Report {
    sessions: Vec<Duration>,
    floor: Vec<Duration>,
    warm_up_session: Duration,
    warm_up_floor: Duration,
    load_before: String,
    load_after: String,
}

async fn bench(binary: &Path, options: &Options, leftovers: &Leftovers) -> anyhow::Result<Report> {
    let scratch = Scratch::named("sandbox")?;
    let repo = scratch.path.join("repo");
    make_git_repo(&repo)?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    let docker = Docker::connect()?;
    docker
        .client
        .get(docker.url("/_ping"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .context("the Docker daemon does not answer on its socket")?;

    let log_path = scratch.path.join("server.log");
    let env: Vec<(&str, String)> = vec![
        (
            "DISCOBOT_DATA_DIR",
            scratch.path.join("data").display().to_string(),
        ),
        ("DISCOBOT_HOST", "127.0.0.1".into()),
        ("DISCOBOT_SANDBOX_PROVIDER", "docker".into()),
        ("DISCOBOT_SANDBOX_IMAGE", options.image.clone()),
        ("DISCOBOT_LOG_LEVEL", options.log_level.clone()),
        ("DISCOBOT_IMPORT_ENV_CREDENTIALS", "false".into()),
        // Nothing is idle for long here; keep the idle monitor out of the measurement.
        ("DISCOBOT_SANDBOX_IDLE_TIMEOUT", "0".into()),
    ];
    let result = async {
        let (server, started) = Server::start(binary, &env, &log_path, &client).await?;
        println!("server started in {}", ms(started));
        let outcome = measure(&server, &client, &docker, &repo, options, leftovers).await;
        if outcome.is_err() {
            eprintln!("the server's log ends with:\n{}", log_tail(&log_path));
        }
        server.stop();
        outcome
    }
    .await;
    if let Some(keep) = &options.keep_log {
        match std::fs::copy(&log_path, keep) {
            Ok(_) => println!("server log kept in {}", keep.display()),
            Err(error) => eprintln!("warning: could not keep the server log: {error}"),
        }
    }
    result
}

async fn measure(
    server: &Server,
    client: &reqwest::Client,
    docker: &Docker,
    repo: &Path,
    options: &Options,
    leftovers: &Leftovers,
) -> anyhow::Result<Report> {
    let base = format!("http://127.0.0.1:{}/api/projects/{PROJECT}", server.port);
    let mut events = Events::open(&format!("{base}/events")).await?;

    let workspace = post_json(
        client,
        &format!("{base}/workspaces"),
        &json!({ "path": repo }),
    )
    .await
    .context("could not create the workspace")?;
    let workspace_id = workspace["id"]
        .as_str()
        .with_context(|| format!("the workspace has no id: {workspace}"))?
        .to_owned();
    wait_workspace_ready(client, &format!("{base}/workspaces/{workspace_id}")).await?;

    let load_before = load_average();
    let prefix = &leftovers.session_prefix;
    let target = Target {
        client,
        base: &base,
        workspace_id: &workspace_id,
        docker,
    };
    // Warm-ups: the first session creates the cache volume, the first container of anything
    // pays for cold page caches.
    let warm_up_session = session_run(&mut events, &target, &format!("{prefix}0")).await?;
    let warm_up_floor = floor_run(docker, &options.image, &leftovers.run_id, 0).await?;
    println!(
        "warm-up: session {}, floor {}",
        ms(warm_up_session),
        ms(warm_up_floor)
    );

    let mut sessions = Vec::with_capacity(options.runs);
    let mut floor = Vec::with_capacity(options.runs);
    for n in 1..=options.runs {
        let took = session_run(&mut events, &target, &format!("{prefix}{n}")).await?;
        let bare = floor_run(docker, &options.image, &leftovers.run_id, n).await?;
        println!(
            "run {n:>2}: session {:>10}   floor {:>10}",
            ms(took),
            ms(bare)
        );
        sessions.push(took);
        floor.push(bare);
    }
    sessions.sort_unstable();
    floor.sort_unstable();
    Ok(Report {
        sessions,
        floor,
        warm_up_session,
        warm_up_floor,
        load_before,
        load_after: load_average(),
    })
}

/// Where sessions are created.
struct Target<'a> {
    client: &'a reqwest::Client,
    base: &'a str,
    workspace_id: &'a str,
    docker: &'a Docker,
}

/// POST the session, wait for `ready` on the event stream, then delete it and wait until its
/// container is gone. Returns the time from the POST being sent to the `ready` event arriving.
async fn session_run(
    events: &mut Events,
    target: &Target<'_>,
    id: &str,
) -> anyhow::Result<Duration> {
    let sessions = format!("{}/sessions", target.base);
    let body = json!({ "id": id, "workspaceId": target.workspace_id });
    let sent = Instant::now();
    post_json(target.client, &sessions, &body)
        .await
        .with_context(|| format!("could not create session {id}"))?;
    let (ready_at, status) = events
        .wait_session(id, &["ready", "error"], Duration::from_secs(60))
        .await?;
    if status != "ready" {
        let session = target
            .client
            .get(format!("{sessions}/{id}"))
            .send()
            .await?
            .text()
            .await?;
        bail!("session {id} failed to start: {session}");
    }
    let took = ready_at - sent;

    let response = target
        .client
        .delete(format!("{sessions}/{id}"))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!(
            "DELETE session {id} answered {}: {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    events
        .wait_session(id, &["removed"], Duration::from_secs(60))
        .await?;
    let container = format!("discobot-session-{id}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while target.docker.container_exists(&container).await? {
        if Instant::now() > deadline {
            bail!("container {container} still exists 30 s after its session was removed");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(took)
}

/// Create + start + inspect of a bare container of `image` publishing the agent port, until
/// the agent's first `/health` 200; then a forced remove (not timed).
async fn floor_run(
    docker: &Docker,
    image: &str,
    run_id: &str,
    n: usize,
) -> anyhow::Result<Duration> {
    let name = format!("discobot-bench-floor-{run_id}-{n}");
    let body = json!({
        "Image": image,
        "Env": ["DISCOBOT_SECRET="],
        "Labels": { FLOOR_LABEL: run_id },
        "ExposedPorts": { AGENT_PORT_KEY: {} },
        "HostConfig": {
            "PortBindings": { AGENT_PORT_KEY: [{ "HostIp": "127.0.0.1", "HostPort": "" }] },
        },
    });
    let health_client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(2))
        .build()?;
    let started = Instant::now();
    let created = docker
        .json(
            docker
                .client
                .post(docker.url(&format!("/containers/create?name={name}")))
                .json(&body),
        )
        .await
        .context("floor: create")?;
    let id = created["Id"]
        .as_str()
        .context("floor: create returned no Id")?
        .to_owned();
    let outcome = async {
        docker
            .send(
                docker
                    .client
                    .post(docker.url(&format!("/containers/{id}/start"))),
            )
            .await
            .context("floor: start")?;
        let inspect = docker
            .json(
                docker
                    .client
                    .get(docker.url(&format!("/containers/{id}/json"))),
            )
            .await
            .context("floor: inspect")?;
        let port = inspect["NetworkSettings"]["Ports"][AGENT_PORT_KEY][0]["HostPort"]
            .as_str()
            .filter(|port| !port.is_empty())
            .context("floor: the container publishes no agent port")?
            .to_owned();
        let health = format!("http://127.0.0.1:{port}/health");
        let deadline = started + Duration::from_secs(30);
        loop {
            if let Ok(response) = health_client.get(&health).send().await
                && response.status() == reqwest::StatusCode::OK
            {
                return anyhow::Ok(started.elapsed());
            }
            if Instant::now() > deadline {
                bail!("floor: the agent did not answer /health within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    .await;
    let removed = docker
        .send(
            docker
                .client
                .delete(docker.url(&format!("/containers/{id}?force=true&v=true"))),
        )
        .await;
    let took = outcome?;
    removed.context("floor: remove")?;
    Ok(took)
}

/// Polls the workspace until it is `ready` (a local repository takes milliseconds).
async fn wait_workspace_ready(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let workspace: Value = client.get(url).send().await?.json().await?;
        match workspace["status"].as_str() {
            Some("ready") => return Ok(()),
            Some("error") => bail!("the workspace failed: {workspace}"),
            _ if Instant::now() > deadline => {
                bail!("the workspace is not ready after 60 s: {workspace}")
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// The project event stream, read by a task of its own that timestamps each event on arrival.
struct Events {
    receiver: mpsc::UnboundedReceiver<(Instant, String, Value)>,
    reader: tokio::task::JoinHandle<()>,
}

impl Events {
    /// Connects and waits for the stream's `connected` event.
    async fn open(url: &str) -> anyhow::Result<Events> {
        // No overall timeout: the stream stays open for the whole run.
        let client = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .build()?;
        let mut response = client
            .get(url)
            .header("accept", "text/event-stream")
            .send()
            .await?
            .error_for_status()
            .context("could not open the project event stream")?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let mut parser = SseParser::default();
            while let Ok(Some(chunk)) = response.chunk().await {
                let now = Instant::now();
                for (event, data) in parser.push(&chunk) {
                    let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                    if sender.send((now, event, data)).is_err() {
                        return;
                    }
                }
            }
        });
        let mut events = Events { receiver, reader };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, event, _) = events.next(deadline).await?;
            if event == "connected" {
                return Ok(events);
            }
        }
    }

    async fn next(&mut self, deadline: Instant) -> anyhow::Result<(Instant, String, Value)> {
        let wait = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(wait, self.receiver.recv()).await {
            Ok(Some(event)) => Ok(event),
            Ok(None) => bail!("the project event stream ended"),
            Err(_) => bail!("no event within the time allowed"),
        }
    }

    /// The arrival time and status of the first `session_updated` of `session` whose status is
    /// one of `statuses`.
    async fn wait_session(
        &mut self,
        session: &str,
        statuses: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<(Instant, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let (at, event, data) = self
                .next(deadline)
                .await
                .with_context(|| format!("waiting for session {session} to reach {statuses:?}"))?;
            let data = &data["data"];
            if event == "session_updated"
                && data["sessionId"].as_str() == Some(session)
                && let Some(status) = data["status"].as_str()
                && statuses.contains(&status)
            {
                return Ok((at, status.to_owned()));
            }
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Splits a `text/event-stream` into `(event, data)` pairs.
#[derive(Default)]
struct SseParser {
    buffer: Vec<u8>,
    event: String,
    data: Vec<String>,
}

impl SseParser {
    fn push(&mut self, chunk: &[u8]) -> Vec<(String, String)> {
        self.buffer.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() || !self.event.is_empty() {
                    let event = std::mem::take(&mut self.event);
                    let event = if event.is_empty() {
                        "message".to_owned()
                    } else {
                        event
                    };
                    out.push((event, self.data.join("\n")));
                    self.data.clear();
                }
            } else if line.starts_with(':') {
                // A comment (keep-alive).
            } else {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => self.event = value.to_owned(),
                    "data" => self.data.push(value.to_owned()),
                    _ => {}
                }
            }
        }
        out
    }
}

/// The Engine API on the daemon's unix socket (`DOCKER_HOST=unix://…` or the default).
struct Docker {
    client: reqwest::Client,
}

impl Docker {
    fn connect() -> anyhow::Result<Docker> {
        let socket = match std::env::var("DOCKER_HOST") {
            Ok(host) if host.starts_with("unix://") => host["unix://".len()..].to_owned(),
            Ok(host) if !host.is_empty() => {
                bail!("bench sandbox speaks to Docker on a unix socket; DOCKER_HOST is `{host}`")
            }
            _ => "/var/run/docker.sock".to_owned(),
        };
        let client = reqwest::Client::builder()
            .unix_socket(socket.as_str())
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Docker { client })
    }

    fn url(&self, path: &str) -> String {
        format!("http://docker/{API}{path}")
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            bail!(
                "Docker answered {status}: {}",
                response.text().await.unwrap_or_default().trim()
            );
        }
        Ok(response)
    }

    async fn json(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        Ok(self.send(request).await?.json().await?)
    }

    async fn container_exists(&self, name: &str) -> anyhow::Result<bool> {
        let response = self
            .client
            .get(self.url(&format!("/containers/{name}/json")))
            .send()
            .await?;
        match response.status() {
            status if status.is_success() => Ok(true),
            reqwest::StatusCode::NOT_FOUND => Ok(false),
            status => bail!("Docker answered {status} to inspect {name}"),
        }
    }
}

/// Removes, when dropped, everything of this run left in Docker: the floor's containers, the
/// sessions' containers and data volumes, and the project cache volume if the run made it.
/// Uses the CLI, synchronously, so it works from `Drop` whatever state the runtime is in.
struct Leftovers {
    run_id: String,
    session_prefix: String,
    cache_volume_existed: bool,
}

impl Leftovers {
    fn new() -> Leftovers {
        let run_id = std::process::id().to_string();
        Leftovers {
            session_prefix: format!("bench-sbx-{run_id}-"),
            run_id,
            cache_volume_existed: succeeds(Command::new("docker").args([
                "volume",
                "inspect",
                CACHE_VOLUME,
            ])),
        }
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let listed = |args: &[&str]| -> Vec<String> {
            output(Command::new("docker").args(args))
                .map(|out| out.lines().map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let session_containers = format!("discobot-session-{}", self.session_prefix);
        let mut containers = listed(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label={FLOOR_LABEL}={}", self.run_id),
        ]);
        containers.extend(
            listed(&[
                "ps",
                "-a",
                "--filter",
                "label=discobot.managed=true",
                "--format",
                "{{.Names}}",
            ])
            .into_iter()
            .filter(|name| name.starts_with(&session_containers)),
        );
        if !containers.is_empty() {
            println!("cleanup: removing {} containers", containers.len());
            let _ = output(
                Command::new("docker")
                    .args(["rm", "-f", "-v"])
                    .args(&containers),
            );
        }
        let data_volumes = format!("discobot-data-{}", self.session_prefix);
        let mut volumes: Vec<String> = listed(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            "label=discobot.managed=true",
        ])
        .into_iter()
        .filter(|name| name.starts_with(&data_volumes))
        .collect();
        if !self.cache_volume_existed {
            volumes.push(CACHE_VOLUME.to_owned());
        }
        if !volumes.is_empty() {
            // The cache volume may be gone already or in use by someone else's sandbox: fine.
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f"])
                .args(&volumes)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// `/proc/loadavg`'s first three fields.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|load| {
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "?".into())
}

/// The nearest-rank percentile `q` (0 < q <= 1) of sorted `values`.
fn percentile(values: &[Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

impl Report {
    fn print(&self, options: &Options) {
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        let (s50, s95) = (
            percentile(&self.sessions, 0.50),
            percentile(&self.sessions, 0.95),
        );
        let (f50, f95) = (percentile(&self.floor, 0.50), percentile(&self.floor, 0.95));
        let ratio = s50.as_secs_f64() / f50.as_secs_f64().max(1e-9);
        println!(
            "\nbench sandbox: {} runs each, image {}, {cores} cores, load {} → {}\n",
            options.runs, options.image, self.load_before, self.load_after
        );
        let rows: [(&str, &[Duration], Duration); 2] = [
            (
                "POST session → ready (event)",
                &self.sessions,
                self.warm_up_session,
            ),
            (
                "floor: create+start → /health",
                &self.floor,
                self.warm_up_floor,
            ),
        ];
        println!(
            "{:<32}{:>12}{:>12}{:>12}{:>12}{:>12}",
            "", "p50", "p95", "min", "max", "warm-up"
        );
        for (label, values, warm_up) in rows {
            println!(
                "{label:<32}{:>12}{:>12}{:>12}{:>12}{:>12}",
                ms(percentile(values, 0.50)),
                ms(percentile(values, 0.95)),
                ms(values.first().copied().unwrap_or_default()),
                ms(values.last().copied().unwrap_or_default()),
                ms(warm_up),
            );
        }
        println!("\nratio of the p50s: {ratio:.2} (p95s: {:.2})", {
            s95.as_secs_f64() / f95.as_secs_f64().max(1e-9)
        });
        let verdict = |pass: bool| if pass { "PASS" } else { "MISS" };
        println!("\ntargets");
        println!(
            "  {}  ratio of the p50s ≤ {TARGET_RATIO}: {ratio:.2}",
            verdict(ratio <= TARGET_RATIO)
        );
        println!(
            "  {}  session p50 ≤ {}: {}",
            verdict(s50 <= TARGET_P50),
            ms(TARGET_P50),
            ms(s50)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_flags() {
        let defaults = parse(&[]).unwrap();
        assert_eq!(defaults.runs, 20);
        assert!(defaults.build);
        assert!(defaults.image.starts_with("discobot-sandbox:"));
        let given = parse(&args(&["--runs", "3", "--no-build", "--image", "x:1"])).unwrap();
        assert_eq!((given.runs, given.build), (3, false));
        assert_eq!(given.image, "x:1");
        assert!(parse(&args(&["--runs", "0"])).is_err());
        assert!(parse(&args(&["--runs"])).is_err());
        assert!(parse(&args(&["--frobnicate"])).is_err());
    }

    #[test]
    fn parses_event_streams_across_chunks() {
        let mut parser = SseParser::default();
        assert!(
            parser
                .push(b"event: connected\ndata: {\"projectId\":\"local\"}\n")
                .is_empty()
        );
        assert_eq!(
            parser.push(b"\n: keep-alive\n\nevent: session_updated\r\ndata: {\"a\""),
            vec![("connected".into(), "{\"projectId\":\"local\"}".into())]
        );
        assert_eq!(
            parser.push(b":1}\r\n\r\n"),
            vec![("session_updated".into(), "{\"a\":1}".into())]
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 0.50), Duration::from_millis(10));
        assert_eq!(percentile(&values, 0.95), Duration::from_millis(19));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
