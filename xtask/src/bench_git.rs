//! `cargo xtask bench git`: replaying a session's commits onto the host workspace
//! (`discobot_git::apply_replay`) against `git am` of the same range as patches.
//!
//! xtask depends on no product crate, so the measuring runs in the `replay_bench` example of
//! `discobot-git` (release build, `cargo run --example`): it makes a base repository, 100 commits
//! of 10 changed files in a "sandbox" clone, the replay bundle and `git format-patch` of that
//! range, then per run two fresh clones of the base, one replayed into and one `git am`-ed,
//! in alternating order, each checked against the sandbox's tree. It prints one JSON line with
//! the medians; this module prints them and the verdict. Target: not slower than `git am`.

use anyhow::{Context, bail};
use serde_json::Value;

use crate::{cargo, output};

const USAGE: &str = "usage: cargo xtask bench git [--commits N] [--files N] [--runs N]";

/// `apply_replay` time over `git am` time, at most.
const TARGET_RATIO: f64 = 1.0;

pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let forwarded = parse(args)?;
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--quiet",
        "--release",
        "--package",
        "discobot-git",
        "--example",
        "replay_bench",
        "--",
    ])
    .args(&forwarded)
    // Progress lines of the example go straight to the terminal.
    .stderr(std::process::Stdio::inherit());
    println!("$ {}", crate::command_line(&cmd));
    let stdout = output(&mut cmd)?;
    let line = stdout
        .lines()
        .last()
        .context("replay_bench printed no result")?;
    let result: Value = serde_json::from_str(line)
        .with_context(|| format!("replay_bench printed something else than JSON: {line}"))?;
    let number = |key: &str| {
        result[key]
            .as_f64()
            .with_context(|| format!("replay_bench result has no `{key}`: {line}"))
    };
    let (replay_ms, am_ms, ratio) = (number("replay_ms")?, number("git_am_ms")?, number("ratio")?);

    println!(
        "\nbench git: {} commits of {} changed files onto a {}-file repository, median of {} runs\n",
        number("commits")?,
        number("files_per_commit")?,
        number("base_files")?,
        number("runs")?
    );
    println!("  apply_replay (bundle JSON → commits, index, working tree) {replay_ms:>10.1} ms");
    println!("  git am of the format-patch output                         {am_ms:>10.1} ms");
    println!("  ratio                                                     {ratio:>10.2}");
    println!("\ntargets");
    let verdict = if ratio <= TARGET_RATIO {
        "PASS"
    } else {
        "FAIL"
    };
    println!(
        "  {verdict}  apply_replay not slower than git am (ratio ≤ {TARGET_RATIO}): {ratio:.2}"
    );
    Ok(())
}

/// Checks the flags and returns them for the example (which re-checks the numbers).
fn parse(args: &[String]) -> anyhow::Result<Vec<String>> {
    let mut forwarded = Vec::new();
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        match flag.as_str() {
            "--commits" | "--files" | "--runs" => {
                let value = rest
                    .next()
                    .with_context(|| format!("`{flag}` needs a value\n{USAGE}"))?;
                match value.parse::<usize>() {
                    Ok(n) if n > 0 => {}
                    _ => bail!("`{flag}` needs a positive whole number, not `{value}`"),
                }
                forwarded.extend([flag.clone(), value.clone()]);
            }
            other => bail!("unknown flag `{other}` for `bench git`\n{USAGE}"),
        }
    }
    Ok(forwarded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn forwards_known_flags_and_refuses_others() {
        assert_eq!(
            parse(&args(&["--runs", "3", "--commits", "20"])).unwrap(),
            args(&["--runs", "3", "--commits", "20"])
        );
        assert!(parse(&args(&["--runs"])).is_err());
        assert!(parse(&args(&["--runs", "0"])).is_err());
        assert!(parse(&args(&["--fast"])).is_err());
    }
}
