//! The tools the model may call (Claude Code's names and JSON-schema inputs): their specs,
//! the dispatcher the tool loop calls, and the per-thread state they share (the Bash working
//! directory, the read-before-write records, the pending question).
//!
//! A tool answers `Ok(text)` (`tool-output-available`) or `Err(text)` (`tool-output-error`);
//! either goes back to the model as the call's result. Long outputs are spilled to a file.

pub(crate) mod bash;
pub(crate) mod files;
pub(crate) mod plan;
pub(crate) mod question;
pub(crate) mod search;
pub(crate) mod todo;

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use discobot_agent_api::{Mode, UiChunk};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::model::ToolSpec;
use crate::store::ThreadStore;

/// Outputs longer than this (in characters) are written to a file…
pub(crate) const MAX_OUTPUT_CHARS: usize = 30_000;
/// …and replaced by this many leading characters plus the file's path.
pub(crate) const PREVIEW_CHARS: usize = 5_000;

/// What a tool call produced: `Ok` is a result, `Err` an error; both are text for the model.
pub(crate) type ToolResult = Result<String, String>;

/// One thread's tool state, kept in memory across its turns.
#[derive(Debug, Default)]
pub struct ThreadTools {
    /// Where the last Bash call ended (`None`: the working dir).
    cwd: Mutex<Option<PathBuf>>,
    /// What `Read` saw of each file, for the read-before-write check.
    reads: Mutex<HashMap<PathBuf, FileStamp>>,
    /// The question an `AskUserQuestion` call waits on.
    pub(crate) questions: question::Questions,
}

/// A file's identity for the read-before-write check: changed mtime or size = changed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    modified: Option<SystemTime>,
    size: u64,
}

impl FileStamp {
    pub(crate) fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(Self {
            modified: metadata.modified().ok(),
            size: metadata.len(),
        })
    }
}

impl ThreadTools {
    fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The Bash working directory: the last one, unless it vanished since.
    pub(crate) fn cwd(&self, work_dir: &Path) -> PathBuf {
        Self::lock(&self.cwd)
            .clone()
            .filter(|dir| dir.is_dir())
            .unwrap_or_else(|| work_dir.to_owned())
    }

    pub(crate) fn set_cwd(&self, dir: PathBuf) {
        *Self::lock(&self.cwd) = Some(dir);
    }

    /// Records the file as read now (also after this thread wrote it).
    pub(crate) fn record_read(&self, path: &Path) {
        if let Some(stamp) = FileStamp::of(path) {
            Self::lock(&self.reads).insert(path.to_owned(), stamp);
        }
    }

    pub(crate) fn read_stamp(&self, path: &Path) -> Option<FileStamp> {
        Self::lock(&self.reads).get(path).copied()
    }
}

/// What a tool call may use.
pub(crate) struct ToolContext<'a> {
    pub(crate) thread_id: &'a str,
    /// The assistant message the turn is writing (a paused turn re-opens it by this id).
    pub(crate) message_id: &'a str,
    pub(crate) tool_call_id: &'a str,
    /// Relative tool paths resolve against it; Bash starts there.
    pub(crate) work_dir: &'a Path,
    /// `<data dir>/threads/<thread>`: outputs, plans, questions, todos.
    pub(crate) thread_dir: &'a Path,
    pub(crate) tools: &'a ThreadTools,
    pub(crate) store: &'a ThreadStore,
    /// Credentials visible to tools (env var → value), added to Bash's environment only.
    pub(crate) env: &'a HashMap<String, String>,
    /// Cancelled when the user cancels the turn.
    pub(crate) cancel: &'a CancellationToken,
    /// Appends a chunk to the running completion (mode changes).
    pub(crate) emit: &'a (dyn Fn(UiChunk) + Send + Sync),
}

impl ToolContext<'_> {
    /// The thread's mode now (tools can change it mid-turn).
    pub(crate) fn mode(&self) -> Mode {
        self.store
            .get(self.thread_id)
            .map(|config| config.mode)
            .unwrap_or_default()
    }

    /// `path` made absolute (relative to the working dir) and lexically normalized.
    pub(crate) fn resolve(&self, path: &str) -> PathBuf {
        normalize(&self.work_dir.join(path))
    }

    pub(crate) fn plan_file(&self) -> PathBuf {
        plan_file(self.thread_dir)
    }

    /// Plan mode refuses `tool` unless it writes the plan file.
    pub(crate) fn check_plan_mode(&self, tool: &str, path: Option<&Path>) -> Result<(), String> {
        if self.mode() != Mode::Plan || path.is_some_and(|path| path == self.plan_file()) {
            return Ok(());
        }
        Err(format!(
            "{tool} is not available in plan mode: only read-only tools may run, and the plan \
             may be written to {}. Call ExitPlanMode with the plan to start building.",
            self.plan_file().display()
        ))
    }
}

/// Where a thread's plan is written.
pub(crate) fn plan_file(thread_dir: &Path) -> PathBuf {
    thread_dir.join("plans").join("plan.md")
}

/// Runs one tool call. Unknown tools and malformed inputs are errors for the model to fix.
pub(crate) async fn run(context: &ToolContext<'_>, name: &str, input: Value) -> ToolResult {
    let result = match name {
        "Bash" => bash::run(context, input).await,
        "Read" => files::read(context, input),
        "Write" => files::write(context, input),
        "Edit" => files::edit(context, input),
        "Glob" => search::glob(context, input).await,
        "Grep" => search::grep(context, input).await,
        "TodoWrite" => todo::write(context, input),
        "AskUserQuestion" => question::ask(context, input).await,
        "EnterPlanMode" => plan::enter(context),
        "ExitPlanMode" => plan::exit(context, input),
        other => Err(format!("Unknown tool {other:?}")),
    };
    match result {
        Ok(text) => Ok(spill(context, text)),
        Err(text) => Err(spill(context, text)),
    }
}

/// Parses a tool's input, or says what is wrong with it.
pub(crate) fn parse<T: DeserializeOwned>(tool: &str, input: Value) -> Result<T, String> {
    serde_json::from_value(input).map_err(|err| format!("Invalid input for {tool}: {err}"))
}

/// An output over [`MAX_OUTPUT_CHARS`] goes to `output/<toolCallId>.txt` in the thread dir and
/// is replaced by its first [`PREVIEW_CHARS`] characters and the path (the model can Read or
/// Grep the file), so one noisy command does not flood the context.
fn spill(context: &ToolContext<'_>, text: String) -> String {
    let n_chars = text.chars().count();
    if n_chars <= MAX_OUTPUT_CHARS {
        return text;
    }
    let dir = context.thread_dir.join("output");
    let path = dir.join(format!("{}.txt", file_safe(context.tool_call_id)));
    let preview: String = text.chars().take(PREVIEW_CHARS).collect();
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, &text)) {
        Ok(()) => format!(
            "{preview}\n\n[Output truncated: {n_chars} characters in total. The full output is in {}]",
            path.display()
        ),
        Err(err) => {
            tracing::warn!(thread = %context.thread_id, %err, "could not save a long tool output");
            format!("{preview}\n\n[Output truncated: {n_chars} characters in total]")
        }
    }
}

/// A tool call id as a file name (providers' ids are `[A-Za-z0-9_-]` already).
fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Removes `.` and resolves `..` without touching the disk (the file may not exist yet).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut normalized = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normalized.pop();
            }
            other => normalized.push(other),
        }
    }
    normalized
}

/// The tools offered to the model.
pub(crate) fn specs() -> Vec<ToolSpec> {
    let spec = |name: &str, description: &str, input_schema: Value| ToolSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        input_schema,
    };
    vec![
        spec(
            "Bash",
            "Runs a bash command in the working directory and returns its output (stdout and \
             stderr interleaved) and exit code. The working directory persists between calls; \
             shell variables do not. Output over 30000 characters is saved to a file and \
             previewed.",
            json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The command to run"},
                    "timeout": {"type": "number", "description": "Timeout in milliseconds (default 120000, max 600000)"},
                    "description": {"type": "string", "description": "What the command does, in 5-10 words"}
                },
                "required": ["command"],
                "additionalProperties": false
            }),
        ),
        spec(
            "Read",
            "Reads a file and returns its lines numbered from 1 (cat -n style). Read a file \
             before editing or overwriting it.",
            json!({
                "type": "object",
                "properties": {
                    "file_path": {"type": "string", "description": "Absolute path, or relative to the working directory"},
                    "offset": {"type": "number", "description": "The line number to start at (1-based)"},
                    "limit": {"type": "number", "description": "How many lines to read (default 2000)"}
                },
                "required": ["file_path"],
                "additionalProperties": false
            }),
        ),
        spec(
            "Write",
            "Writes a file, replacing it if it exists. An existing file must have been Read \
             first, and not changed since.",
            json!({
                "type": "object",
                "properties": {
                    "file_path": {"type": "string"},
                    "content": {"type": "string"}
                },
                "required": ["file_path", "content"],
                "additionalProperties": false
            }),
        ),
        spec(
            "Edit",
            "Replaces old_string with new_string in a file that was Read first. old_string must \
             occur exactly once unless replace_all is true.",
            json!({
                "type": "object",
                "properties": {
                    "file_path": {"type": "string"},
                    "old_string": {"type": "string"},
                    "new_string": {"type": "string"},
                    "replace_all": {"type": "boolean", "default": false}
                },
                "required": ["file_path", "old_string", "new_string"],
                "additionalProperties": false
            }),
        ),
        spec(
            "Glob",
            "Finds files whose path (relative to `path`, default the working directory) matches \
             a glob such as `**/*.rs`; respects .gitignore; newest first.",
            json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string"},
                    "path": {"type": "string"}
                },
                "required": ["pattern"],
                "additionalProperties": false
            }),
        ),
        spec(
            "Grep",
            "Searches file contents for a regular expression (ripgrep syntax); respects \
             .gitignore. output_mode: files_with_matches (default), content (path:line:text) or \
             count.",
            json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string"},
                    "path": {"type": "string"},
                    "glob": {"type": "string", "description": "Only files matching this glob, e.g. *.ts"},
                    "output_mode": {"type": "string", "enum": ["content", "files_with_matches", "count"]},
                    "-i": {"type": "boolean", "description": "Case insensitive"}
                },
                "required": ["pattern"],
                "additionalProperties": false
            }),
        ),
        spec(
            "TodoWrite",
            "Replaces the task list of this thread; use it to plan and track multi-step work.",
            json!({
                "type": "object",
                "properties": {
                    "todos": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "content": {"type": "string"},
                                "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]},
                                "activeForm": {"type": "string"}
                            },
                            "required": ["content", "status", "activeForm"]
                        }
                    }
                },
                "required": ["todos"],
                "additionalProperties": false
            }),
        ),
        spec(
            "AskUserQuestion",
            "Asks the user one or more multiple-choice questions and waits for the answers.",
            json!({
                "type": "object",
                "properties": {
                    "questions": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 4,
                        "items": {
                            "type": "object",
                            "properties": {
                                "question": {"type": "string"},
                                "header": {"type": "string", "description": "A short label (max 12 chars)"},
                                "options": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "label": {"type": "string"},
                                            "description": {"type": "string"}
                                        },
                                        "required": ["label", "description"]
                                    }
                                },
                                "multiSelect": {"type": "boolean"}
                            },
                            "required": ["question", "header", "options", "multiSelect"]
                        }
                    }
                },
                "required": ["questions"],
                "additionalProperties": false
            }),
        ),
        spec(
            "EnterPlanMode",
            "Switches to plan mode: explore with read-only tools and write a plan before \
             changing anything.",
            json!({"type": "object", "properties": {}, "additionalProperties": false}),
        ),
        spec(
            "ExitPlanMode",
            "Saves the plan (markdown) and switches back to build mode.",
            json!({
                "type": "object",
                "properties": {"plan": {"type": "string"}},
                "required": ["plan"],
                "additionalProperties": false
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_lexically() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/a/../../c")), PathBuf::from("/c"));
    }

    #[test]
    fn tool_call_ids_become_file_names() {
        assert_eq!(file_safe("toolu_01-x"), "toolu_01-x");
        assert_eq!(file_safe("../x/y"), "___x_y");
    }

    #[test]
    fn every_spec_is_an_object_schema() {
        let specs = specs();
        assert_eq!(specs.len(), 10);
        for spec in specs {
            assert_eq!(spec.input_schema["type"], "object", "{}", spec.name);
        }
    }
}
