//! `Read`, `Write` and `Edit`, with the read-before-write rule: an existing file may only be
//! overwritten or edited after this thread Read it, and only if it has not changed since
//! (same mtime and size), so the model never clobbers changes it has not seen.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::{FileStamp, ToolContext, ToolResult, parse};

const DEFAULT_READ_LINES: usize = 2000;
const MAX_LINE_CHARS: usize = 2000;

#[derive(Deserialize)]
struct ReadInput {
    file_path: String,
    #[serde(default)]
    offset: Option<f64>,
    #[serde(default)]
    limit: Option<f64>,
}

#[derive(Deserialize)]
struct WriteInput {
    file_path: String,
    content: String,
}

#[derive(Deserialize)]
struct EditInput {
    file_path: String,
    old_string: String,
    new_string: String,
    #[serde(default)]
    replace_all: bool,
}

/// `Read`: the lines `offset..offset+limit` (1-based), numbered like `cat -n`.
pub(crate) fn read(context: &ToolContext<'_>, input: Value) -> ToolResult {
    let input: ReadInput = parse("Read", input)?;
    let path = context.resolve(&input.file_path);
    if path.is_dir() {
        return Err(format!(
            "{} is a directory; use Bash `ls` or Glob to list it",
            path.display()
        ));
    }
    let bytes =
        std::fs::read(&path).map_err(|err| format!("Cannot read {}: {err}", path.display()))?;
    context.tools.record_read(&path);
    let text = String::from_utf8_lossy(&bytes);
    if text.is_empty() {
        return Ok(format!("(the file {} is empty)", path.display()));
    }
    let offset = input.offset.map_or(1, |n| (n.max(1.0)) as usize);
    let limit = input
        .limit
        .map_or(DEFAULT_READ_LINES, |n| n.max(1.0) as usize);
    let n_lines = text.lines().count();
    if offset > n_lines {
        return Err(format!(
            "offset {offset} is past the end of the file ({n_lines} lines)"
        ));
    }
    let mut out = String::new();
    for (index, line) in text.lines().enumerate().skip(offset - 1).take(limit) {
        let line: String = if line.chars().count() > MAX_LINE_CHARS {
            line.chars().take(MAX_LINE_CHARS).collect::<String>() + "…"
        } else {
            line.to_owned()
        };
        out.push_str(&format!("{:>6}\t{line}\n", index + 1));
    }
    let last = (offset - 1).saturating_add(limit).min(n_lines);
    if last < n_lines {
        out.push_str(&format!(
            "\n[Lines {offset}-{last} of {n_lines}; read on with offset {}]\n",
            last + 1
        ));
    }
    Ok(out)
}

/// `Write`: creates or replaces the file (parent directories included).
pub(crate) fn write(context: &ToolContext<'_>, input: Value) -> ToolResult {
    let input: WriteInput = parse("Write", input)?;
    let path = context.resolve(&input.file_path);
    context.check_plan_mode("Write", Some(&path))?;
    let existed = path.exists();
    if existed {
        check_read(context, &path)?;
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|err| format!("Cannot create {}: {err}", parent.display()))?;
    }
    std::fs::write(&path, &input.content)
        .map_err(|err| format!("Cannot write {}: {err}", path.display()))?;
    // The thread knows what it wrote: a following Edit needs no second Read.
    context.tools.record_read(&path);
    Ok(if existed {
        format!("The file {} has been updated", path.display())
    } else {
        format!("File created successfully at: {}", path.display())
    })
}

/// `Edit`: replaces `old_string` (unique unless `replace_all`) with `new_string`. An empty
/// `old_string` on a missing file creates it.
pub(crate) fn edit(context: &ToolContext<'_>, input: Value) -> ToolResult {
    let input: EditInput = parse("Edit", input)?;
    let path = context.resolve(&input.file_path);
    context.check_plan_mode("Edit", Some(&path))?;
    if input.old_string == input.new_string {
        return Err("old_string and new_string are the same: nothing to change".into());
    }
    if !path.exists() {
        if input.old_string.is_empty() {
            return write(
                context,
                serde_json::json!({"file_path": input.file_path, "content": input.new_string}),
            );
        }
        return Err(format!("File does not exist: {}", path.display()));
    }
    check_read(context, &path)?;
    let text = std::fs::read_to_string(&path)
        .map_err(|err| format!("Cannot read {}: {err}", path.display()))?;
    if input.old_string.is_empty() {
        return Err("old_string is empty; the file exists, so say what to replace".into());
    }
    let n_matches = text.matches(&input.old_string).count();
    let updated = match n_matches {
        0 => return Err(format!("old_string was not found in {}", path.display())),
        1 => text.replacen(&input.old_string, &input.new_string, 1),
        _ if input.replace_all => text.replace(&input.old_string, &input.new_string),
        n => {
            return Err(format!(
                "old_string occurs {n} times in {}: add surrounding lines to make it unique, or set replace_all to replace every occurrence",
                path.display()
            ));
        }
    };
    std::fs::write(&path, updated)
        .map_err(|err| format!("Cannot write {}: {err}", path.display()))?;
    context.tools.record_read(&path);
    Ok(format!(
        "The file {} has been updated ({n_matches} replacement{})",
        path.display(),
        if n_matches == 1 { "" } else { "s" }
    ))
}

/// The read-before-write rule for an existing file.
fn check_read(context: &ToolContext<'_>, path: &Path) -> Result<(), String> {
    match context.tools.read_stamp(path) {
        None => Err(format!(
            "{} has not been read yet. Read it first before writing to it.",
            path.display()
        )),
        Some(stamp) if Some(stamp) != FileStamp::of(path) => Err(format!(
            "{} has been modified since it was last read. Read it again before writing to it.",
            path.display()
        )),
        Some(_) => Ok(()),
    }
}
