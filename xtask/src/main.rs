//! Project automation, run as `cargo xtask <command>` (see <https://github.com/matklad/cargo-xtask/>).
//!
//! xtask is a normal Rust binary in the workspace, so every check CI runs is code we can read and
//! run locally: `cargo xtask ci` is the whole CI, `deps` polices the crate layering, `tidy` the
//! file conventions, `bench` measures the product against its stated targets, and
//! `sandbox-image` builds the image every Docker sandbox runs.
//! It depends on no workspace crate, so it builds fast and never breaks because of product code.

mod bench;
mod bench_chat;
mod bench_git;
mod bench_sandbox;
mod ci;
mod deps;
mod sandbox_image;
mod services;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

const HELP: &str = "\
usage: cargo xtask <command>

commands:
  ci                 everything CI runs: services, fmt, clippy, deps, tidy, tests
  deps               check which crate may depend on which (from `cargo metadata`)
  tidy               check file conventions (`//!` first lines, crate READMEs)
  bench api          start discobot-server on SQLite and PostgreSQL and measure it
      [--concurrency N] [--seconds N] [--rate N] [--sessions N]
      [--backend sqlite|postgres|both] [--no-build] [--server PATH]
  bench sandbox      20 sessions POST → ready on Docker beside the bare-container floor
      [--runs N] [--no-build] [--image IMAGE] [--log-level FILTER] [--keep-log FILE]
  bench chat         100k chunks read from the agent directly and through the server's relay
      [--chunks N] [--paced-chunks N] [--runs N] [--no-build]
  bench git          apply_replay of 100 commits × 10 files vs git am of the same patches
      [--commits N] [--files N] [--runs N]
  sandbox-image      build the sandbox image discobot-sandbox:<version> (agent + git, rg, bash)
      [--base IMAGE] [--tag TAG] [--rebuild-base]
      base default discobot-base:bookworm, made with debootstrap + docker import if missing
";

/// An error for a command that exists but is not written yet: `main` exits with 2 for it.
#[derive(Debug)]
pub(crate) struct NotImplemented(pub(crate) String);

impl std::fmt::Display for NotImplemented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotImplemented {}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is::<NotImplemented>() => {
            eprintln!("{err}");
            ExitCode::from(2)
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> anyhow::Result<()> {
    let Some((command, rest)) = args.split_first() else {
        eprint!("{HELP}");
        bail!("no command given");
    };
    let no_more_args = || -> anyhow::Result<()> {
        match rest.first() {
            Some(extra) => bail!("unexpected argument `{extra}` for `{command}`"),
            None => Ok(()),
        }
    };
    match command.as_str() {
        "ci" => {
            no_more_args()?;
            ci::run_ci()
        }
        "deps" => {
            no_more_args()?;
            deps::run()
        }
        "tidy" => {
            no_more_args()?;
            tidy::run()
        }
        // The load generator shares the 2 cores with the server: an unoptimised client would
        // measure itself, so a debug xtask re-runs itself in release mode first.
        "bench" if cfg!(debug_assertions) => run(cargo()
            .args([
                "run",
                "--quiet",
                "--release",
                "--package",
                "xtask",
                "--",
                "bench",
            ])
            .args(rest)),
        "bench" => bench::run(rest),
        "sandbox-image" => sandbox_image::run_sandbox_image(rest),
        // Hidden: the service setup `ci` does, runnable on its own.
        "ensure-postgres" => {
            no_more_args()?;
            let url = services::ensure_postgres()?;
            println!("DISCOBOT_TEST_DATABASE_URL={url}");
            Ok(())
        }
        "ensure-docker" => {
            no_more_args()?;
            services::ensure_docker()
        }
        "ensure-node" => {
            no_more_args()?;
            services::ensure_node_client(&project_root().join("tests/node-client"))
        }
        "help" | "-h" | "--help" => {
            print!("{HELP}");
            Ok(())
        }
        other => {
            eprint!("{HELP}");
            bail!("unknown command `{other}`")
        }
    }
}

/// The workspace root: xtask lives in `<root>/xtask`.
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

/// `cargo` as the one that runs us (falls back to the one on `PATH`), in the workspace root.
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(project_root());
    cmd
}

/// Runs `cmd` with inherited stdio after printing its command line; fails unless it exits 0.
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let line = command_line(cmd);
    println!("$ {line}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its stdout; fails (with its stderr) unless it exits 0.
pub(crate) fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let line = command_line(cmd);
    let out = cmd
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    if !out.status.success() {
        bail!(
            "`{line}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("`{line}` printed non-UTF-8 output"))
}

/// Whether `cmd` can be started and exits 0 (its output is discarded).
pub(crate) fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The command line of `cmd`, quoted for a POSIX shell where needed.
pub(crate) fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|arg| shell_quote(&arg.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `s` as one POSIX shell word.
pub(crate) fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_leaves_plain_words_alone() {
        assert_eq!(shell_quote("--workspace"), "--workspace");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
