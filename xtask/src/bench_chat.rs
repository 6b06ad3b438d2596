//! `cargo xtask bench chat`: the chat stream relay against reading the agent directly.
//!
//! The release builds of `discobot-fake-llm`, `discobot-agent` and `discobot-server` run as
//! processes; everything is driven over HTTP. The fake answers every model call with one bulk
//! reply of `--chunks` one-character text deltas (pre-rendered, as fast as the socket takes
//! them), so what is measured is the agent and the relay, not the model.
//!
//! 1. **Idle.** A standalone agent (no secret, a temporary git repository as its origin): its
//!    RSS before any chat.
//! 2. **Throughput.** A server with the local sandbox provider, a project credential pointing
//!    its agent at the fake, a session. Then `--runs` times, interleaved so that both see the
//!    same background load: one chat read from the standalone agent's thread stream, one read
//!    from the server's thread stream (the ChatStream relay). The medians are compared.
//! 3. **Latency.** Chats read from both the server's stream and the session agent's stream of
//!    the same thread at once: the relay adds, per chunk, its arrival at the server's reader
//!    minus its arrival at the agent's reader (matched by chunk id). The target applies to a
//!    paced chat (one delta a millisecond, the pace of a fast model): at full speed every
//!    process is saturated and the difference is mostly the depth of the socket buffers
//!    between them, which is printed too.
//!    To read the session's agent directly, the server runs it through a wrapper script that
//!    reports its port and drops its secret (the server still sends its bearer, which the
//!    agent then does not check).
//!
//! Throughput is chunk frames (the ones with an id) over the time from the first to the last.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::bench::{Scratch, Server, log_tail, make_git_repo, ms, post_json};
use crate::{cargo, deps};

const USAGE: &str =
    "usage: cargo xtask bench chat [--chunks N] [--paced-chunks N] [--runs N] [--no-build]";

/// The model every chat asks for; the fake echoes any.
const MODEL: &str = "anthropic/claude-sonnet-4-5";
/// A key the fake accepts (it takes any non-empty one).
const FAKE_KEY: &str = "sk-ant-bench-fake-key";
/// How long one chat of the bench may take before it counts as stuck.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

const TARGET_RATIO: f64 = 0.90;
const TARGET_ADDED_P50: Duration = Duration::from_millis(1);
const TARGET_IDLE_RSS: u64 = 20_000_000;

#[derive(Debug, PartialEq)]
struct Options {
    /// Text deltas of the full-speed chats.
    chunks: u64,
    /// Text deltas of the paced chat (one a millisecond) that the latency target applies to.
    paced_chunks: u64,
    /// Full-speed chats of each kind (direct, relayed) for the throughput.
    runs: usize,
    build: bool,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        chunks: 100_000,
        paced_chunks: 2_000,
        runs: 3,
        build: true,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut number = || -> anyhow::Result<u64> {
            let raw = args
                .next()
                .with_context(|| format!("`{flag}` needs a value\n{USAGE}"))?;
            match raw.parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => bail!("`{flag}` needs a positive whole number, not `{raw}`"),
            }
        };
        match flag.as_str() {
            "--chunks" => options.chunks = number()?,
            "--paced-chunks" => options.paced_chunks = number()?,
            "--runs" => options.runs = usize::try_from(number()?)?,
            "--no-build" => options.build = false,
            other => bail!("unknown flag `{other}` for `bench chat`\n{USAGE}"),
        }
    }
    Ok(options)
}

/// The release binaries the bench runs.
struct Binaries {
    server: PathBuf,
    agent: PathBuf,
    fake_llm: PathBuf,
}

/// `cargo xtask bench chat`.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    if options.build {
        crate::run(cargo().args([
            "build",
            "--release",
            "-p",
            "discobot-server",
            "-p",
            "discobot-agent-bin",
            "-p",
            "discobot-fake-llm",
        ]))?;
    }
    let metadata = deps::metadata()?;
    let release = Path::new(
        metadata["target_directory"]
            .as_str()
            .context("`cargo metadata` has no target_directory")?,
    )
    .join("release");
    let binaries = Binaries {
        server: release.join("discobot-server"),
        agent: release.join("discobot-agent"),
        fake_llm: release.join("discobot-fake-llm"),
    };
    for binary in [&binaries.server, &binaries.agent, &binaries.fake_llm] {
        if !binary.is_file() {
            bail!(
                "{} does not exist; build it with `cargo build --release -p discobot-server \
                 -p discobot-agent-bin -p discobot-fake-llm`",
                binary.display()
            );
        }
    }

    let scratch = Scratch::named("chat")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(bench(&binaries, &scratch, &options))?;
    report.print(&options);
    Ok(())
}

/// Everything measured.
struct Report {
    idle_rss: u64,
    /// Chunks/s of each run.
    direct: Vec<f64>,
    relayed: Vec<f64>,
    /// Of the paced chat: sorted, in seconds (negative when the relayed copy was read first).
    added: Vec<f64>,
    /// The same at full speed.
    added_full_speed: Vec<f64>,
}

async fn bench(
    binaries: &Binaries,
    scratch: &Scratch,
    options: &Options,
) -> anyhow::Result<Report> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()?;
    let fake = FakeLlm::start(&binaries.fake_llm, &scratch.path.join("fake-llm.log"))?;
    println!("fake LLM on {}", fake.base_url);

    // 1. A standalone agent, idle.
    println!("\n==> a standalone agent");
    let origin = scratch.path.join("origin");
    make_git_repo(&origin)?;
    let agent_port = free_port()?;
    let agent = Process::spawn(
        Command::new(&binaries.agent)
            .env("DISCOBOT_HOST", "127.0.0.1")
            .env("DISCOBOT_PORT", agent_port.to_string())
            .env("DISCOBOT_DATA_DIR", scratch.path.join("agent-data"))
            .env("WORKSPACE_ORIGIN_PATH", &origin)
            .env_remove("DISCOBOT_SECRET")
            .env("RUST_LOG", "warn"),
        &scratch.path.join("agent.log"),
    )?;
    let agent_base = format!("http://127.0.0.1:{agent_port}");
    wait_healthy(&client, &format!("{agent_base}/health"), &agent).await?;
    // Idle: listening, working copy made, nothing asked yet; a moment for start-up to settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = rss_bytes(agent.pid).context("could not read the agent's VmRSS")?;
    println!("agent idle RSS: {}", mb(idle_rss));

    // 2. A server with the local provider, its session's agent at `session_agent`.
    println!("\n==> discobot-server with the local provider");
    let wrapper = write_agent_wrapper(scratch, &binaries.agent)?;
    let env: Vec<(&str, String)> = vec![
        (
            "DISCOBOT_DATA_DIR",
            scratch.path.join("server-data").display().to_string(),
        ),
        ("DISCOBOT_SANDBOX_PROVIDER", "local".to_owned()),
        ("DISCOBOT_AGENT_BINARY", wrapper.display().to_string()),
        ("DISCOBOT_IMPORT_ENV_CREDENTIALS", "false".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let (server, _) = Server::start(
        &binaries.server,
        &env,
        &scratch.path.join("server.log"),
        &client,
    )
    .await?;
    let project = format!("http://127.0.0.1:{}/api/projects/local", server.port);
    post_json(
        &client,
        &format!("{project}/credentials"),
        &json!({
            "provider": "anthropic", "name": "Fake Anthropic", "authType": "api_key",
            "envVars": [
                {"key": "ANTHROPIC_API_KEY", "value": FAKE_KEY},
                {"key": "ANTHROPIC_BASE_URL", "value": fake.base_url},
            ],
        }),
    )
    .await
    .context("could not create the credential")?;
    let workspace = post_json(
        &client,
        &format!("{project}/workspaces"),
        &json!({"path": origin}),
    )
    .await
    .context("could not create the workspace")?;
    let workspace_id = workspace["id"]
        .as_str()
        .with_context(|| format!("the workspace has no id: {workspace}"))?;
    let session = "bench-chat";
    post_json(
        &client,
        &format!("{project}/sessions"),
        &json!({"id": session, "workspaceId": workspace_id}),
    )
    .await
    .context("could not create the session")?;
    let session_url = format!("{project}/sessions/{session}");
    wait_session_ready(&client, &session_url, &scratch.path.join("server.log")).await?;
    let port: u16 = fs::read_to_string(scratch.path.join("agent-port"))
        .context("the agent wrapper wrote no port")?
        .trim()
        .parse()
        .context("the agent wrapper wrote no port number")?;
    let session_agent = format!("http://127.0.0.1:{port}");

    // 2a. Throughput: the standalone agent's stream and the server's stream, one chat each per
    //     run, interleaved so that both see the same background load.
    let mut direct = Vec::new();
    let mut relayed = Vec::new();
    for run in 1..=options.runs {
        println!("\n--> run {run} of {}", options.runs);
        let arrivals = direct_chat(
            &client,
            &fake,
            &agent_base,
            &format!("direct-{run}"),
            options.chunks,
        )
        .await?;
        arrivals.print("direct", options.chunks);
        direct.push(arrivals.rate());
        let arrivals = relayed_chat(
            &client,
            &fake,
            &session_url,
            &format!("relayed-{run}"),
            bulk_reply(options.chunks),
            None,
        )
        .await?
        .0;
        arrivals.print("relayed", options.chunks);
        relayed.push(arrivals.rate());
    }
    agent.stop();

    // 2b. Both streams of one completion at once, at full speed and paced.
    let mut added = Vec::new();
    for (thread, reply) in [
        ("latency-full-speed", bulk_reply(options.chunks)),
        ("latency-paced", paced_reply(options.paced_chunks)),
    ] {
        let (through_server, direct_copy) = relayed_chat(
            &client,
            &fake,
            &session_url,
            thread,
            reply,
            Some(&session_agent),
        )
        .await?;
        let direct_copy = direct_copy.context("the agent's stream was not read")?;
        let latencies = added_latencies(&direct_copy, &through_server);
        if latencies.is_empty() {
            bail!("the two streams of one completion have no chunk id in common");
        }
        println!(
            "{thread}: {} chunks read from both streams; the server's copy came {} after the \
             agent's (p50)",
            latencies.len(),
            seconds(percentile(&latencies, 0.50))
        );
        added.push(latencies);
    }
    server.stop();
    let added_paced = added.pop().unwrap_or_default();
    Ok(Report {
        idle_rss,
        direct,
        relayed,
        added: added_paced,
        added_full_speed: added.pop().unwrap_or_default(),
    })
}

/// `chunks` one-character text deltas, as fast as the socket takes them.
fn bulk_reply(chunks: u64) -> Value {
    json!({"bulkText": {"chunks": chunks, "chunkText": "x"}})
}

/// `chunks` one-character text deltas, one a millisecond.
fn paced_reply(chunks: u64) -> Value {
    let text = "x".repeat(usize::try_from(chunks).unwrap_or(usize::MAX));
    json!({"chunkDelayMs": 1, "chunkChars": 1, "steps": [{"text": text}]})
}

/// One chat on a new `thread` of the standalone agent, read from its stream.
async fn direct_chat(
    client: &reqwest::Client,
    fake: &FakeLlm,
    agent_base: &str,
    thread: &str,
    chunks: u64,
) -> anyhow::Result<Arrivals> {
    post_json(
        client,
        &format!("{agent_base}/threads"),
        &json!({"id": thread}),
    )
    .await?;
    let thread_url = format!("{agent_base}/threads/{thread}");
    let reader = tokio::spawn(read_chunks(
        open_stream(client, &format!("{thread_url}/chat/stream")).await?,
    ));
    fake.push(client, bulk_reply(chunks)).await?;
    // What the server would send: the credentials of the project, in the agent's header.
    let credentials = json!([
        {"envVar": "ANTHROPIC_API_KEY", "value": FAKE_KEY, "provider": "anthropic",
         "authType": "api_key", "agentVisible": false, "consoleVisible": false,
         "serviceVisible": false, "hookVisible": false},
        {"envVar": "ANTHROPIC_BASE_URL", "value": fake.base_url, "provider": "anthropic",
         "authType": "api_key", "agentVisible": false, "consoleVisible": false,
         "serviceVisible": false, "hookVisible": false},
    ]);
    let response = client
        .post(format!("{thread_url}/chat"))
        .header("x-discobot-credentials", credentials.to_string())
        .json(&chat_body(thread))
        .send()
        .await?;
    let status = response.status();
    if !status.is_success() {
        bail!(
            "the agent's chat answered {status}: {}",
            response.text().await?
        );
    }
    reader.await?
}

/// One chat through the server on a new `thread`, read from the server's stream (and, when
/// `agent` is given, from that agent's stream of the same thread too, at the same time).
async fn relayed_chat(
    client: &reqwest::Client,
    fake: &FakeLlm,
    session_url: &str,
    thread: &str,
    reply: Value,
    agent: Option<&str>,
) -> anyhow::Result<(Arrivals, Option<Arrivals>)> {
    let response = client
        .post(format!("{session_url}/threads"))
        .json(&json!({"id": thread}))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!(
            "POST threads answered {}: {}",
            response.status(),
            response.text().await?
        );
    }
    let relayed = tokio::spawn(read_chunks(
        open_stream(client, &format!("{session_url}/threads/{thread}/stream")).await?,
    ));
    let direct = match agent {
        Some(agent) => Some(tokio::spawn(read_chunks(
            open_stream(client, &format!("{agent}/threads/{thread}/chat/stream")).await?,
        ))),
        None => None,
    };
    fake.push(client, reply).await?;
    let started = post_json(
        client,
        &format!("{session_url}/threads/{thread}/chat"),
        &chat_body(thread),
    )
    .await
    .context("the server's chat failed")?;
    if started["status"] != "started" {
        bail!("the chat did not start a completion: {started}");
    }
    let relayed = relayed.await??;
    let direct = match direct {
        Some(reader) => Some(reader.await??),
        None => None,
    };
    Ok((relayed, direct))
}

fn chat_body(thread: &str) -> Value {
    json!({
        "messages": [{
            "id": format!("{thread}-user"), "role": "user",
            "parts": [{"type": "text", "text": "Stream the bench reply."}],
        }],
        "model": MODEL,
    })
}

/// A shell script that runs the agent like the server asks, except that it writes the
/// agent's port to `<scratch>/agent-port` and drops `DISCOBOT_SECRET`, so that the bench
/// can read the session's agent directly.
fn write_agent_wrapper(scratch: &Scratch, agent: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = scratch.path.join("agent-wrapper.sh");
    let port_file = scratch.path.join("agent-port");
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$DISCOBOT_PORT\" > {}\nunset DISCOBOT_SECRET\nexec {} \"$@\"\n",
        crate::shell_quote(&port_file.display().to_string()),
        crate::shell_quote(&agent.display().to_string()),
    );
    fs::write(&path, script)?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

async fn wait_session_ready(client: &reqwest::Client, url: &str, log: &Path) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let session: Value = client.get(url).send().await?.json().await?;
        match session["status"].as_str() {
            Some("ready") => return Ok(()),
            Some("error") => bail!(
                "the session failed: {session}; the server's log:\n{}",
                log_tail(log)
            ),
            _ => {}
        }
        if start.elapsed() > Duration::from_secs(120) {
            bail!(
                "the session was not ready within 120 s: {session}; the server's log:\n{}",
                log_tail(log)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn open_stream(client: &reqwest::Client, url: &str) -> anyhow::Result<reqwest::Response> {
    let response = client
        .get(url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    if !response.status().is_success() {
        bail!(
            "GET {url} answered {}: {}",
            response.status(),
            response.text().await?
        );
    }
    Ok(response)
}

/// When each chunk of one completion arrived.
struct Arrivals {
    /// (offset from the chunk's `<completionId>:<offset>` id, arrival), in arrival order.
    chunks: Vec<(u64, Instant)>,
}

impl Arrivals {
    fn span(&self) -> Duration {
        match (self.chunks.first(), self.chunks.last()) {
            (Some((_, first)), Some((_, last))) => last.duration_since(*first),
            _ => Duration::ZERO,
        }
    }

    fn rate(&self) -> f64 {
        let span = self.span().as_secs_f64();
        if span == 0.0 {
            return 0.0;
        }
        self.chunks.len() as f64 / span
    }

    fn print(&self, what: &str, expected: u64) {
        println!(
            "{what}: {} chunks in {} ({:.0} chunks/s)",
            self.chunks.len(),
            ms(self.span()),
            self.rate()
        );
        if (self.chunks.len() as u64) < expected {
            println!(
                "warning: fewer chunks than the {expected} text deltas the fake sent: the agent \
                 merged some"
            );
        }
    }
}

/// Reads a thread stream until its completion ends (`data-completion-status` with
/// `isRunning: false`), noting when each chunk with an id arrived.
async fn read_chunks(mut response: reqwest::Response) -> anyhow::Result<Arrivals> {
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut scanner = FrameScanner::default();
    let mut chunks = Vec::new();
    let mut ended = false;
    while !ended {
        let left = deadline.saturating_duration_since(Instant::now());
        let bytes = match tokio::time::timeout(left, response.chunk()).await {
            Ok(Ok(Some(bytes))) => bytes,
            Ok(Ok(None)) => bail!("the stream ended before the completion did"),
            Ok(Err(error)) => bail!("the stream broke: {error}"),
            Err(_) => bail!("the completion did not end within {READ_TIMEOUT:?}"),
        };
        let now = Instant::now();
        scanner.push(&bytes, |frame| {
            match frame_kind(frame) {
                Frame::Chunk(offset) => chunks.push((offset, now)),
                Frame::End => ended = true,
                Frame::Error => bail!(
                    "the stream carries an error: {}",
                    String::from_utf8_lossy(frame)
                ),
                Frame::Other => {}
            }
            Ok(())
        })?;
    }
    Ok(Arrivals { chunks })
}

/// Splits a byte stream into SSE frames (the text up to a blank line).
#[derive(Default)]
struct FrameScanner {
    buffer: Vec<u8>,
}

impl FrameScanner {
    fn push(
        &mut self,
        bytes: &[u8],
        mut on_frame: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        // Only the tail of the old data can hold the first half of a `\n\n`.
        let search_from = self.buffer.len().saturating_sub(1);
        self.buffer.extend_from_slice(bytes);
        let mut start = 0;
        let mut at = search_from;
        while let Some(found) = find(&self.buffer[at..], b"\n\n") {
            let end = at + found;
            on_frame(&self.buffer[start..end])?;
            start = end + 2;
            at = start;
        }
        self.buffer.drain(..start);
        Ok(())
    }
}

#[derive(Debug, PartialEq)]
enum Frame {
    /// A chunk with an id, at this offset of its completion.
    Chunk(u64),
    /// `data-completion-status` with `isRunning: false`.
    End,
    /// An `error` chunk (the agent's, or the relay's own when the agent stream broke).
    Error,
    /// History, pings, chunks without an id.
    Other,
}

fn frame_kind(frame: &[u8]) -> Frame {
    if find(frame, b"\"type\":\"error\"").is_some() {
        return Frame::Error;
    }
    for line in frame.split(|byte| *byte == b'\n') {
        if let Some(id) = line.strip_prefix(b"id: ")
            && let Some(colon) = id.iter().rposition(|byte| *byte == b':')
            && let Some(offset) = std::str::from_utf8(&id[colon + 1..])
                .ok()
                .and_then(|digits| digits.trim().parse().ok())
        {
            return Frame::Chunk(offset);
        }
    }
    if find(frame, b"data-completion-status").is_some()
        && find(frame, b"\"isRunning\":false").is_some()
    {
        return Frame::End;
    }
    Frame::Other
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// For each chunk both readers saw: its arrival through the server minus its arrival from the
/// agent, in seconds, sorted.
fn added_latencies(direct: &Arrivals, relayed: &Arrivals) -> Vec<f64> {
    let direct: std::collections::HashMap<u64, Instant> = direct.chunks.iter().copied().collect();
    let mut added: Vec<f64> = relayed
        .chunks
        .iter()
        .filter_map(|(offset, at)| {
            let first = direct.get(offset)?;
            Some(if at >= first {
                at.duration_since(*first).as_secs_f64()
            } else {
                -first.duration_since(*at).as_secs_f64()
            })
        })
        .collect();
    added.sort_by(f64::total_cmp);
    added
}

/// The median of `values` (the upper one of an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// The nearest-rank percentile `q` (0 < q <= 1) of sorted `values`.
fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let rank = (q * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

fn seconds(value: f64) -> String {
    format!("{:.3} ms", value * 1000.0)
}

/// Megabytes of 10^6 bytes.
fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The resident set size of `pid`, from `/proc/<pid>/status`.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Report {
    fn print(&self, options: &Options) {
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        let direct = median(&self.direct);
        let relayed = median(&self.relayed);
        let ratio = if direct > 0.0 { relayed / direct } else { 0.0 };
        let p50 = percentile(&self.added, 0.50);
        println!(
            "\nbench chat: {} one-character text deltas per chat; fake LLM, agent, server and \
             readers sharing {cores} cores\n",
            options.chunks
        );
        let runs = |rates: &[f64]| {
            rates
                .iter()
                .map(|rate| format!("{rate:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "  direct (agent stream)          {direct:>10.0} chunks/s (median of {})",
            runs(&self.direct)
        );
        println!(
            "  relayed (server ChatStream)    {relayed:>10.0} chunks/s (median of {})",
            runs(&self.relayed)
        );
        println!("  relayed / direct               {:>10.1} %", ratio * 100.0);
        for (label, added) in [
            ("added latency, paced", &self.added),
            ("added latency, full speed", &self.added_full_speed),
        ] {
            println!(
                "  {label:<30} p50 {}, p90 {}, p99 {} ({} chunks)",
                seconds(percentile(added, 0.50)),
                seconds(percentile(added, 0.90)),
                seconds(percentile(added, 0.99)),
                added.len()
            );
        }
        println!("  agent idle RSS                 {}", mb(self.idle_rss));

        println!("\ntargets");
        let verdict = |pass: bool| if pass { "PASS" } else { "FAIL" };
        println!(
            "  {}  relayed throughput >= 90 % of direct: {:.1} %",
            verdict(ratio >= TARGET_RATIO),
            ratio * 100.0
        );
        println!(
            "  {}  added latency per chunk p50 <= 1 ms (paced, 1 delta/ms): {}",
            verdict(p50 <= TARGET_ADDED_P50.as_secs_f64()),
            seconds(p50)
        );
        println!(
            "  {}  agent idle RSS < 20 MB: {}",
            verdict(self.idle_rss < TARGET_IDLE_RSS),
            mb(self.idle_rss)
        );
    }
}

/// A child process, stopped (SIGTERM, then SIGKILL after 5 s) when dropped.
struct Process {
    child: Child,
    pid: u32,
    log: PathBuf,
}

impl Process {
    fn spawn(cmd: &mut Command, log_path: &Path) -> anyhow::Result<Process> {
        let log = fs::File::create(log_path)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("could not start {}", cmd.get_program().display()))?;
        Ok(Process {
            pid: child.id(),
            child,
            log: log_path.to_path_buf(),
        })
    }

    fn stop(self) {
        drop(self);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        crate::bench::terminate(&mut self.child);
    }
}

async fn wait_healthy(
    client: &reqwest::Client,
    url: &str,
    process: &Process,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if let Ok(response) = client.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!(
                "{url} did not answer within 30 s; the log:\n{}",
                log_tail(&process.log)
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The fake LLM binary, listening on a free loopback port.
struct FakeLlm {
    _process: Process,
    base_url: String,
}

impl FakeLlm {
    fn start(binary: &Path, log_path: &Path) -> anyhow::Result<FakeLlm> {
        let log = fs::File::create(log_path)?;
        let mut child = Command::new(binary)
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("could not start {}", binary.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().context("the fake's stdout")?;
        let process = Process {
            child,
            pid,
            log: log_path.to_path_buf(),
        };
        // Its first stdout line is `listening on <addr>`.
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .with_context(|| {
                format!(
                    "the fake LLM printed {line:?}, not its address; its log:\n{}",
                    log_tail(log_path)
                )
            })?
            .to_owned();
        Ok(FakeLlm {
            _process: process,
            base_url: format!("http://{addr}"),
        })
    }

    /// Queues `reply` for the next model call.
    async fn push(&self, client: &reqwest::Client, reply: Value) -> anyhow::Result<()> {
        post_json(client, &format!("{}/_fake/replies", self.base_url), &reply)
            .await
            .context("could not queue the fake's reply")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags() {
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse(&args(&[])).unwrap(),
            Options {
                chunks: 100_000,
                paced_chunks: 2_000,
                runs: 3,
                build: true
            }
        );
        assert_eq!(
            parse(&args(&[
                "--chunks",
                "10",
                "--paced-chunks",
                "5",
                "--runs",
                "1",
                "--no-build"
            ]))
            .unwrap(),
            Options {
                chunks: 10,
                paced_chunks: 5,
                runs: 1,
                build: false
            }
        );
        assert!(parse(&args(&["--chunks", "0"])).is_err());
        assert!(parse(&args(&["--seconds", "3"])).is_err());
    }

    #[test]
    fn frames_are_split_across_network_chunks() {
        let stream = b"event: history-start\ndata: {}\n\nevent: chunk\nid: c1:0\ndata: {\"type\":\"start\"}\n\nevent: chunk\nid: c1:1\ndata: {\"type\":\"text-delta\",\"id\":\"t\",\"delta\":\"x\"}\n\nevent: chunk\ndata: {\"type\":\"data-completion-status\",\"data\":{\"completionId\":\"c1\",\"isRunning\":false}}\n\n";
        for split in [1, 2, 7, 40, stream.len()] {
            let mut scanner = FrameScanner::default();
            let mut kinds = Vec::new();
            for piece in stream.chunks(split) {
                scanner
                    .push(piece, |frame| {
                        kinds.push(frame_kind(frame));
                        Ok(())
                    })
                    .unwrap();
            }
            assert_eq!(
                kinds,
                [Frame::Other, Frame::Chunk(0), Frame::Chunk(1), Frame::End],
                "split every {split} bytes"
            );
        }
    }

    #[test]
    fn error_frames_and_running_status_are_told_apart() {
        assert_eq!(
            frame_kind(b"data: {\"type\":\"error\",\"errorText\":\"failed to read chat stream\"}"),
            Frame::Error
        );
        assert_eq!(
            frame_kind(
                b"event: chunk\ndata: {\"type\":\"data-completion-status\",\"data\":{\"isRunning\":true}}"
            ),
            Frame::Other
        );
    }

    #[test]
    fn added_latency_matches_chunks_by_offset() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let direct = Arrivals {
            chunks: vec![(0, at(10)), (1, at(20)), (2, at(30))],
        };
        let relayed = Arrivals {
            chunks: vec![(1, at(21)), (2, at(33)), (3, at(40))],
        };
        let added = added_latencies(&direct, &relayed);
        assert_eq!(added.len(), 2);
        assert!((added[0] - 0.001).abs() < 1e-9 && (added[1] - 0.003).abs() < 1e-9);
        assert!((percentile(&added, 0.5) - 0.001).abs() < 1e-9);
    }
}
