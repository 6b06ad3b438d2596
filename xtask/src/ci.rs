//! `cargo xtask ci`: everything CI runs, in order, failing fast; also the README's test command.
//!
//! The steps: set up PostgreSQL (and Docker, once the sandbox crate has tests), Node.js and the
//! packages of the Node client test (`tests/node-client`), then `cargo fmt --check`, clippy with
//! warnings denied, the `deps` and `tidy` checks, and the tests.

use std::ffi::OsString;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::{cargo, deps, project_root, run, services, tidy};

/// The variable that hands the tests their PostgreSQL database.
pub(crate) const DATABASE_URL_VAR: &str = "DISCOBOT_TEST_DATABASE_URL";
/// Set to `1` to run CI without PostgreSQL where it cannot be set up.
const SKIP_POSTGRES_VAR: &str = "DISCOBOT_SKIP_POSTGRES";
/// `0` turns the Docker tests off; CI sets it to `1` once Docker answers.
const DOCKER_TESTS_VAR: &str = "DISCOBOT_DOCKER_TESTS";
/// Set to `1` to run CI without Node.js (the AI SDK client test is then skipped).
const SKIP_NODE_VAR: &str = "DISCOBOT_SKIP_NODE";

/// `cargo xtask ci`.
pub(crate) fn run_ci() -> anyhow::Result<()> {
    let root = project_root();
    // Variables the services step hands to every later command.
    let mut env: Vec<(&str, OsString)> = Vec::new();
    let ci_start = Instant::now();

    step("services", || {
        if let Some(url) = postgres_url()? {
            env.push((DATABASE_URL_VAR, url.into()));
        }
        if docker_tests_wanted(&root) {
            services::ensure_docker()?;
            // The sandbox tests run real containers of the sandbox image; no registry is
            // reachable, so its base is made with debootstrap (once; later runs reuse it).
            crate::sandbox_image::run_sandbox_image(&[])?;
            env.push((DOCKER_TESTS_VAR, "1".into()));
        }
        Ok(())
    })?;
    if std::env::var_os(SKIP_NODE_VAR).is_some_and(|value| value == "1") {
        println!("warning: {SKIP_NODE_VAR}=1: the AI SDK client test will be skipped");
    } else {
        // The e2e test `ai_sdk_client` runs the `ai` npm package on our chat stream.
        step("node client", || {
            services::ensure_node_client(&root.join("tests/node-client"))
        })?;
    }
    let cargo_with_env = || {
        let mut cmd = cargo();
        cmd.envs(env.iter().map(|(key, value)| (*key, value)));
        cmd
    };
    step("fmt", || {
        run(cargo_with_env().args(["fmt", "--all", "--check"]))
    })?;
    step("clippy", || {
        run(cargo_with_env().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    step("deps", deps::run)?;
    step("tidy", tidy::run)?;
    step("tests", || {
        // Tests start the real binaries (the agent in sandboxes, the server for the SIGKILL
        // test); test builds only build the binaries of the package under test.
        run(cargo_with_env().args(["build", "--workspace", "--bins"]))?;
        if crate::succeeds(cargo_with_env().args(["nextest", "--version"])) {
            run(cargo_with_env().args(["nextest", "run", "--workspace", "--no-fail-fast"]))?;
            // nextest does not run doctests.
            run(cargo_with_env().args(["test", "--workspace", "--doc"]))
        } else {
            run(cargo_with_env().args(["test", "--workspace"]))
        }
    })?;
    if env.iter().any(|(key, _)| *key == DOCKER_TESTS_VAR) {
        step("leftovers", docker_leftovers)?;
    }

    println!("\nci: all steps passed in {:.1?}", ci_start.elapsed());
    Ok(())
}

/// Fails if the tests left a container, volume or network with our label behind.
fn docker_leftovers() -> anyhow::Result<()> {
    let mut left = Vec::new();
    for (kind, args) in [
        ("container", &["ps", "-aq"][..]),
        ("volume", &["volume", "ls", "-q"][..]),
        ("network", &["network", "ls", "-q"][..]),
    ] {
        let output = std::process::Command::new("docker")
            .args(args)
            .args(["--filter", "label=discobot.managed=true"])
            .output()
            .context("docker CLI")?;
        let listed = String::from_utf8_lossy(&output.stdout);
        left.extend(listed.split_whitespace().map(|id| format!("{kind} {id}")));
    }
    if !left.is_empty() {
        bail!("the tests left Docker objects behind: {}", left.join(", "));
    }
    Ok(())
}

/// Prints a header, runs `body`, and prints how long it took and whether it passed.
fn step(name: &str, body: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    println!("\n==> {name}");
    let start = Instant::now();
    let result = body();
    let took = start.elapsed();
    match &result {
        Ok(()) => println!("<== {name}: ok ({took:.1?})"),
        Err(_) => println!("<== {name}: FAILED ({took:.1?})"),
    }
    result.with_context(|| format!("ci step `{name}` failed"))
}

/// The test database's URL: the one given, or a local one we set up; `None` if skipping is asked.
fn postgres_url() -> anyhow::Result<Option<String>> {
    if let Some(url) = std::env::var_os(DATABASE_URL_VAR) {
        println!("{DATABASE_URL_VAR} is set; using that database");
        return Ok(Some(url.to_string_lossy().into_owned()));
    }
    if services::can_manage_services() {
        let url = services::ensure_postgres()?;
        println!("{DATABASE_URL_VAR}={url}");
        return Ok(Some(url));
    }
    if std::env::var_os(SKIP_POSTGRES_VAR).is_some_and(|value| value == "1") {
        println!(
            "warning: {SKIP_POSTGRES_VAR}=1 and {DATABASE_URL_VAR} is not set: \
             the PostgreSQL tests will be skipped"
        );
        return Ok(None);
    }
    bail!(
        "PostgreSQL is needed for the tests. Set {DATABASE_URL_VAR} to a database the tests may use \
         (e.g. postgres://discobot:discobot@127.0.0.1:5432/discobot_test), or run as root on Debian \
         so CI can install and start it, or set {SKIP_POSTGRES_VAR}=1 to skip those tests"
    )
}

/// Docker is set up only when the sandbox crate has tests and nobody turned them off.
fn docker_tests_wanted(root: &Path) -> bool {
    let turned_off = std::env::var_os(DOCKER_TESTS_VAR).is_some_and(|value| value == "0");
    !turned_off && root.join("crates/discobot-sandbox/tests").is_dir()
}
