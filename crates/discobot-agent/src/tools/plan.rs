//! `EnterPlanMode` and `ExitPlanMode`: plan mode lets the model explore with read-only tools
//! and write only its plan file (`plans/plan.md` in the thread dir); leaving it saves the plan
//! and switches the thread to `build`. Each switch is announced on the stream.

use discobot_agent_api::{Mode, UiChunk};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ToolContext, ToolResult, parse};

#[derive(Deserialize)]
struct ExitInput {
    plan: String,
}

/// Switches the thread to plan mode.
pub(crate) fn enter(context: &ToolContext<'_>) -> ToolResult {
    set_mode(context, Mode::Plan)?;
    Ok(format!(
        "Entered plan mode. Explore with Read, Glob and Grep (Bash, Write and Edit are blocked), \
         then call ExitPlanMode with your plan; it is saved to {}.",
        context.plan_file().display()
    ))
}

/// Saves the plan and switches the thread to build mode.
pub(crate) fn exit(context: &ToolContext<'_>, input: Value) -> ToolResult {
    let input: ExitInput = parse("ExitPlanMode", input)?;
    let plan_file = context.plan_file();
    let plan = if input.plan.trim().is_empty() {
        // The model may have written the plan file itself.
        std::fs::read_to_string(&plan_file).unwrap_or_default()
    } else {
        input.plan
    };
    if plan.trim().is_empty() {
        return Err("ExitPlanMode needs the plan: pass it as `plan`".into());
    }
    if let Some(dir) = plan_file.parent() {
        std::fs::create_dir_all(dir).map_err(|err| format!("Cannot save the plan: {err}"))?;
    }
    std::fs::write(&plan_file, &plan).map_err(|err| format!("Cannot save the plan: {err}"))?;
    set_mode(context, Mode::Build)?;
    Ok(format!(
        "The plan is saved to {} and the thread is in build mode: carry out the plan now.",
        plan_file.display()
    ))
}

fn set_mode(context: &ToolContext<'_>, mode: Mode) -> Result<(), String> {
    let config = context
        .store
        .update(context.thread_id, |config| config.mode = mode)
        .map_err(|err| format!("Cannot change the mode: {err}"))?;
    (context.emit)(UiChunk::data(
        "thread-update",
        json!({"thread": config.to_thread()}),
    ));
    // The server keeps the session's mode in step from this chunk.
    (context.emit)(UiChunk::data("mode-change", json!({"mode": mode})));
    Ok(())
}
