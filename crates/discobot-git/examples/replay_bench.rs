//! The measuring half of `cargo xtask bench git` (xtask depends on no product crate, so it runs
//! this example in release mode and reads the JSON line it prints last).
//!
//! A base repository (many files in nested directories) is cloned as the "sandbox", which makes
//! `--commits` commits changing `--files` files each with the git CLI. That range becomes (a) a
//! replay bundle, as the agent serves it (JSON), and (b) `git format-patch` output. Each run
//! then makes two fresh clones of the base and times, in alternating order, `apply_replay`
//! (JSON parse included) into one and `git am` of the patches into the other; both results
//! are checked against the sandbox's tree. Progress goes to stderr, the result to stdout.

#[path = "../tests/support/bundle.rs"]
mod bundle;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use discobot_core::replay::ReplayBundle;

/// Files of the base repository, spread over `DIRS` directories two levels deep.
const BASE_FILES: usize = 2000;
const DIRS: usize = 40;

struct Options {
    commits: usize,
    files: usize,
    runs: usize,
}

fn main() -> anyhow::Result<()> {
    let options = parse(std::env::args().skip(1))?;
    let scratch = tempfile::tempdir()?;
    let root = scratch.path();
    let origin = root.join("origin");
    let sandbox = root.join("sandbox");

    eprintln!("making a base repository of {BASE_FILES} files");
    std::fs::create_dir_all(&origin)?;
    git(&origin, &["init", "-q", "-b", "main"])?;
    for i in 0..BASE_FILES {
        write_file(&origin, i, 0)?;
    }
    git(&origin, &["add", "-A"])?;
    git(&origin, &["commit", "-q", "-m", "base"])?;
    let base = git(&origin, &["rev-parse", "HEAD"])?;
    clone(&origin, &sandbox)?;

    eprintln!(
        "making {} commits of {} changed files in the sandbox",
        options.commits, options.files
    );
    // A simple LCG picks the files: deterministic, spread over the directories.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for n in 1..=options.commits {
        for _ in 0..options.files {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let file = (seed >> 33) as usize % (BASE_FILES + options.commits);
            write_file(&sandbox, file, n)?;
        }
        git(&sandbox, &["add", "-A"])?;
        git(
            &sandbox,
            &["commit", "-q", "-m", &format!("change {n}\n\nbody of {n}")],
        )?;
    }
    let sandbox_head = git(&sandbox, &["rev-parse", "HEAD"])?;
    let sandbox_tree = git(&sandbox, &["rev-parse", "HEAD^{tree}"])?;

    let bundle_json = serde_json::to_string(&bundle::bundle_from_range(&sandbox, &base, "HEAD"))?;
    let patches = root.join("patches");
    git(
        &sandbox,
        &[
            "format-patch",
            "-q",
            "-o",
            patches.to_str().context("UTF-8 temp path")?,
            &format!("{base}..HEAD"),
        ],
    )?;
    let mut patch_files: Vec<String> = std::fs::read_dir(&patches)?
        .map(|e| Ok(e?.path().to_string_lossy().into_owned()))
        .collect::<anyhow::Result<_>>()?;
    patch_files.sort();
    eprintln!(
        "bundle {} KB, {} patches",
        bundle_json.len() / 1000,
        patch_files.len()
    );

    let mut replay_times = Vec::new();
    let mut am_times = Vec::new();
    for run in 0..options.runs {
        let replay_host = root.join(format!("host-replay-{run}"));
        let am_host = root.join(format!("host-am-{run}"));
        clone(&origin, &replay_host)?;
        clone(&origin, &am_host)?;
        let time_replay = || -> anyhow::Result<Duration> {
            let start = Instant::now();
            let bundle: ReplayBundle = serde_json::from_str(&bundle_json)?;
            let outcome = discobot_git::apply_replay(&replay_host, &bundle)?;
            let took = start.elapsed();
            ensure!(
                outcome.head == sandbox_head,
                "replay made {} instead of the sandbox's {sandbox_head}",
                outcome.head
            );
            Ok(took)
        };
        let time_am = || -> anyhow::Result<Duration> {
            let mut cmd = Command::new("git");
            cmd.current_dir(&am_host)
                .args(["am", "-q"])
                .args(&patch_files);
            let start = Instant::now();
            run_ok(&mut cmd)?;
            Ok(start.elapsed())
        };
        // Alternate who goes first, so neither always gets the warmer caches.
        let (replay, am) = if run % 2 == 0 {
            let r = time_replay()?;
            (r, time_am()?)
        } else {
            let a = time_am()?;
            (time_replay()?, a)
        };
        for host in [&replay_host, &am_host] {
            let tree = git(host, &["rev-parse", "HEAD^{tree}"])?;
            ensure!(
                tree == sandbox_tree,
                "{} ended with another tree",
                host.display()
            );
            let status = git(host, &["status", "--porcelain"])?;
            ensure!(
                status.is_empty(),
                "{} is not clean:\n{status}",
                host.display()
            );
        }
        eprintln!(
            "run {}: apply_replay {:.1} ms, git am {:.1} ms",
            run + 1,
            ms(replay),
            ms(am)
        );
        replay_times.push(replay);
        am_times.push(am);
    }
    let replay = median(&mut replay_times);
    let am = median(&mut am_times);
    println!(
        "{}",
        serde_json::json!({
            "commits": options.commits,
            "files_per_commit": options.files,
            "base_files": BASE_FILES,
            "runs": options.runs,
            "replay_ms": ms(replay),
            "git_am_ms": ms(am),
            "ratio": replay.as_secs_f64() / am.as_secs_f64().max(1e-9),
        })
    );
    Ok(())
}

fn parse(args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut options = Options {
        commits: 100,
        files: 10,
        runs: 5,
    };
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        let n: usize = value
            .parse()
            .with_context(|| format!("{flag}: not a number: {value}"))?;
        ensure!(n > 0, "{flag} must be at least 1");
        match flag.as_str() {
            "--commits" => options.commits = n,
            "--files" => options.files = n,
            "--runs" => options.runs = n,
            other => bail!("unknown flag {other} (expected --commits, --files, --runs)"),
        }
    }
    Ok(options)
}

/// File `i` at version `version`: nested as `dNN/sub/fileNNNN.txt`, about 2 KB.
fn write_file(repo: &Path, i: usize, version: usize) -> anyhow::Result<()> {
    let path = repo
        .join(format!("d{:02}", i % DIRS))
        .join("sub")
        .join(format!("file{i:04}.txt"));
    std::fs::create_dir_all(path.parent().expect("nested path"))?;
    let mut content = String::with_capacity(2100);
    for line in 0..40 {
        let stamp = if line == i % 40 { version } else { 0 };
        content.push_str(&format!(
            "line {line:02} of file {i:04}, version {stamp}, some filler text\n"
        ));
    }
    std::fs::write(path, content)?;
    Ok(())
}

fn clone(from: &Path, to: &Path) -> anyhow::Result<()> {
    run_ok(Command::new("git").args(["clone", "-q"]).arg(from).arg(to))?;
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = run_ok(Command::new("git").current_dir(dir).args(args))?;
    Ok(String::from_utf8(out)?.trim_end().to_string())
}

/// Runs with a fixed identity (git am and commit need one); fails unless it exits 0.
fn run_ok(cmd: &mut Command) -> anyhow::Result<Vec<u8>> {
    let out = cmd
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .output()
        .context("git runs")?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
