//! `TodoWrite`: the model's task list for the thread, kept in `todos.json` in the thread dir
//! and echoed back so the model sees what it stored.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ToolContext, ToolResult, parse};

#[derive(Debug, Serialize, Deserialize)]
struct TodoInput {
    todos: Vec<Todo>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Todo {
    content: String,
    status: TodoStatus,
    active_form: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TodoStatus {
    Pending,
    InProgress,
    Completed,
}

/// Replaces the list.
pub(crate) fn write(context: &ToolContext<'_>, input: Value) -> ToolResult {
    let input: TodoInput = parse("TodoWrite", input)?;
    let json = serde_json::to_string_pretty(&input).map_err(|err| err.to_string())?;
    let path = context.thread_dir.join("todos.json");
    std::fs::write(&path, &json).map_err(|err| format!("Cannot save the todos: {err}"))?;
    Ok(format!(
        "Todos have been modified successfully. Keep them up to date as you work.\n{json}"
    ))
}
