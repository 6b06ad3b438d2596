//! `Glob` and `Grep`: file search that respects `.gitignore` (the `ignore` crate's walker).
//! Grep runs ripgrep when it is in `PATH` (the sandbox image ships it: faster, and exactly the
//! regex syntax models know) and otherwise searches with the `regex` crate, whose syntax is
//! ripgrep's own, so results agree.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::SystemTime;

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::Deserialize;
use serde_json::Value;

use super::{ToolContext, ToolResult, parse};

const MAX_GLOB_RESULTS: usize = 100;
const GREP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Deserialize)]
struct GlobInput {
    pattern: String,
    #[serde(default)]
    path: Option<String>,
}

#[derive(Deserialize)]
struct GrepInput {
    pattern: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    glob: Option<String>,
    #[serde(default)]
    output_mode: Option<OutputMode>,
    #[serde(default, rename = "-i")]
    case_insensitive: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OutputMode {
    Content,
    #[default]
    FilesWithMatches,
    Count,
}

/// `Glob`: files under `path` whose relative path matches, newest first.
pub(crate) async fn glob(context: &ToolContext<'_>, input: Value) -> ToolResult {
    let input: GlobInput = parse("Glob", input)?;
    let base = context.resolve(input.path.as_deref().unwrap_or("."));
    let matcher = GlobBuilder::new(&input.pattern)
        .literal_separator(true)
        .build()
        .map_err(|err| format!("Invalid glob pattern: {err}"))?
        .compile_matcher();
    let found = tokio::task::spawn_blocking(move || glob_blocking(&base, &matcher))
        .await
        .map_err(|err| format!("Glob failed: {err}"))??;
    if found.is_empty() {
        return Ok("No files found".into());
    }
    Ok(found.join("\n"))
}

fn glob_blocking(base: &Path, matcher: &GlobMatcher) -> Result<Vec<String>, String> {
    if !base.is_dir() {
        return Err(format!("{} is not a directory", base.display()));
    }
    let mut found: Vec<(SystemTime, PathBuf)> = walker(base)
        .build()
        .flatten()
        .filter(|entry| entry.file_type().is_some_and(|kind| kind.is_file()))
        .filter(|entry| {
            entry
                .path()
                .strip_prefix(base)
                .is_ok_and(|relative| matcher.is_match(relative))
        })
        .map(|entry| {
            let modified = entry
                .metadata()
                .ok()
                .and_then(|metadata| metadata.modified().ok())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            (modified, entry.into_path())
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let total = found.len();
    let mut lines: Vec<String> = found
        .into_iter()
        .take(MAX_GLOB_RESULTS)
        .map(|(_, path)| path.display().to_string())
        .collect();
    if total > MAX_GLOB_RESULTS {
        lines.push(format!(
            "[{} more files; narrow the pattern]",
            total - MAX_GLOB_RESULTS
        ));
    }
    Ok(lines)
}

/// A walker over `base` that honours `.gitignore` (also outside a git repository), shows
/// dotfiles, and skips `.git` itself.
fn walker(base: &Path) -> ignore::WalkBuilder {
    let mut builder = ignore::WalkBuilder::new(base);
    builder
        .hidden(false)
        .require_git(false)
        .filter_entry(|entry| entry.file_name() != ".git");
    builder
}

/// `Grep`: matching files, lines or counts.
pub(crate) async fn grep(context: &ToolContext<'_>, input: Value) -> ToolResult {
    let input: GrepInput = parse("Grep", input)?;
    let base = context.resolve(input.path.as_deref().unwrap_or("."));
    if !base.exists() {
        return Err(format!("{} does not exist", base.display()));
    }
    let mode = input.output_mode.unwrap_or_default();
    let lines = match find_in_path("rg") {
        Some(rg) => grep_with_rg(&rg, &input, &base, mode).await?,
        None => {
            let regex = regex::RegexBuilder::new(&input.pattern)
                .case_insensitive(input.case_insensitive)
                .build()
                .map_err(|err| format!("Invalid regular expression: {err}"))?;
            let glob = input
                .glob
                .as_deref()
                .map(|glob| Glob::new(glob).map(|glob| glob.compile_matcher()))
                .transpose()
                .map_err(|err| format!("Invalid glob: {err}"))?;
            tokio::task::spawn_blocking(move || grep_blocking(&base, &regex, glob.as_ref(), mode))
                .await
                .map_err(|err| format!("Grep failed: {err}"))?
        }
    };
    if lines.is_empty() {
        return Ok(match mode {
            OutputMode::Content => "No matches found".into(),
            _ => "No files found".into(),
        });
    }
    Ok(lines.join("\n"))
}

async fn grep_with_rg(
    rg: &Path,
    input: &GrepInput,
    base: &Path,
    mode: OutputMode,
) -> Result<Vec<String>, String> {
    let mut command = tokio::process::Command::new(rg);
    command.args([
        "--no-heading",
        "--color",
        "never",
        "--hidden",
        "--glob",
        "!.git",
    ]);
    match mode {
        OutputMode::Content => command.arg("--line-number"),
        OutputMode::FilesWithMatches => command.arg("--files-with-matches"),
        OutputMode::Count => command.arg("--count"),
    };
    if input.case_insensitive {
        command.arg("--ignore-case");
    }
    if let Some(glob) = &input.glob {
        command.arg("--glob").arg(glob);
    }
    command
        .arg("--regexp")
        .arg(&input.pattern)
        .arg(base)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(GREP_TIMEOUT, command.output())
        .await
        .map_err(|_| "Grep timed out".to_owned())?
        .map_err(|err| format!("Could not run rg: {err}"))?;
    // rg exits 1 when nothing matched, 2 on an error.
    match output.status.code() {
        Some(0) | Some(1) => Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect()),
        _ => Err(format!(
            "rg failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}

fn grep_blocking(
    base: &Path,
    regex: &regex::Regex,
    glob: Option<&GlobMatcher>,
    mode: OutputMode,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut files: Vec<PathBuf> = walker(base)
        .build()
        .flatten()
        .filter(|entry| entry.file_type().is_some_and(|kind| kind.is_file()))
        .map(ignore::DirEntry::into_path)
        .filter(|path| {
            // Like rg's --glob: a pattern without `/` matches the file name.
            glob.is_none_or(|glob| {
                path.file_name().is_some_and(|name| glob.is_match(name))
                    || path.strip_prefix(base).is_ok_and(|rel| glob.is_match(rel))
            })
        })
        .collect();
    files.sort();
    for path in files {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        // Binary files are skipped, as rg does by default.
        if bytes.contains(&0) {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        let shown = path.display();
        match mode {
            OutputMode::Content => {
                for (index, line) in text.lines().enumerate() {
                    if regex.is_match(line) {
                        lines.push(format!("{shown}:{}:{line}", index + 1));
                    }
                }
            }
            OutputMode::FilesWithMatches => {
                if text.lines().any(|line| regex.is_match(line)) {
                    lines.push(shown.to_string());
                }
            }
            OutputMode::Count => {
                let n = text.lines().filter(|line| regex.is_match(line)).count();
                if n > 0 {
                    lines.push(format!("{shown}:{n}"));
                }
            }
        }
    }
    lines
}

/// The first executable `name` in `PATH`.
fn find_in_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate).is_ok_and(|metadata| {
                metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_respects_gitignore_and_globs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join(".gitignore"), "ignored.txt\n").unwrap();
        std::fs::write(root.join("a.rs"), "fn main() {}\nlet Needle = 1;\n").unwrap();
        std::fs::write(root.join("b.txt"), "needle\n").unwrap();
        std::fs::write(root.join("ignored.txt"), "needle\n").unwrap();
        let regex = regex::RegexBuilder::new("needle")
            .case_insensitive(true)
            .build()
            .unwrap();
        let files = grep_blocking(root, &regex, None, OutputMode::FilesWithMatches);
        let names: Vec<_> = files
            .iter()
            .map(|f| {
                Path::new(f)
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(names, ["a.rs", "b.txt"]);
        let glob = Glob::new("*.rs").unwrap().compile_matcher();
        let content = grep_blocking(root, &regex, Some(&glob), OutputMode::Content);
        assert_eq!(content.len(), 1);
        assert!(
            content[0].ends_with("a.rs:2:let Needle = 1;"),
            "{content:?}"
        );
        let counts = grep_blocking(root, &regex, None, OutputMode::Count);
        assert!(counts[0].ends_with("a.rs:1"), "{counts:?}");
    }

    #[test]
    fn glob_matches_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/deep")).unwrap();
        std::fs::write(root.join("src/deep/x.rs"), "").unwrap();
        std::fs::write(root.join("top.rs"), "").unwrap();
        let all = GlobBuilder::new("**/*.rs")
            .literal_separator(true)
            .build()
            .unwrap()
            .compile_matcher();
        assert_eq!(glob_blocking(root, &all).unwrap().len(), 2);
        let top = GlobBuilder::new("*.rs")
            .literal_separator(true)
            .build()
            .unwrap()
            .compile_matcher();
        let found = glob_blocking(root, &top).unwrap();
        assert_eq!(found.len(), 1);
        assert!(found[0].ends_with("top.rs"));
    }
}
