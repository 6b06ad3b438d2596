//! `GET /diff`: what the working copy changed against the commit it started from (the
//! merge-base of HEAD with it), working tree included, untracked files as `added`.

use std::collections::HashMap;
use std::path::Path;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::routes::{AgentState, error};
use crate::workspace::{WorkspaceError, diff_base, git};

/// Git's own limit for calling a file binary: a NUL byte in its first 8000 bytes.
const BINARY_SNIFF_BYTES: usize = 8000;

#[derive(Deserialize)]
pub(crate) struct DiffQuery {
    path: Option<String>,
    format: Option<String>,
}

/// One changed file.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FileDiff {
    pub(crate) path: String,
    pub(crate) status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) old_path: Option<String>,
    pub(crate) additions: u64,
    pub(crate) deletions: u64,
    pub(crate) binary: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) patch: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    files_changed: usize,
    additions: u64,
    deletions: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileName<'a> {
    path: &'a str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    old_path: Option<&'a str>,
}

/// `GET /diff`, `GET /diff?format=files`, `GET /diff?path=X`.
pub(crate) async fn diff(
    State(state): State<AgentState>,
    Query(query): Query<DiffQuery>,
) -> Response {
    let wanted = match query.path.as_deref().filter(|p| !p.is_empty()) {
        Some(path) => match crate::files::confine(state.workspace(), path, false) {
            Ok(confined) if !confined.rel.is_empty() => Some(confined.rel),
            _ => return error(StatusCode::BAD_REQUEST, "Invalid path"),
        },
        None => None,
    };
    let files = match changes(state.workspace(), state.workspace_commit()).await {
        Ok(files) => files,
        Err(err) => {
            tracing::warn!(%err, "diff failed");
            return error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string());
        }
    };
    if let Some(wanted) = wanted {
        let found = files
            .into_iter()
            .find(|file| file.path == wanted || file.old_path.as_deref() == Some(&wanted));
        let file = found.unwrap_or(FileDiff {
            path: wanted,
            status: "unchanged",
            old_path: None,
            additions: 0,
            deletions: 0,
            binary: false,
            patch: None,
        });
        return Json(FileDiff {
            patch: Some(file.patch.clone().unwrap_or_default()),
            ..file
        })
        .into_response();
    }
    let stats = Stats {
        files_changed: files.len(),
        additions: files.iter().map(|f| f.additions).sum(),
        deletions: files.iter().map(|f| f.deletions).sum(),
    };
    if query.format.as_deref() == Some("files") {
        let names: Vec<FileName<'_>> = files
            .iter()
            .map(|file| FileName {
                path: &file.path,
                status: file.status,
                old_path: file.old_path.as_deref(),
            })
            .collect();
        return Json(json!({"files": names, "stats": stats})).into_response();
    }
    Json(json!({"files": files, "stats": stats})).into_response()
}

/// Every changed file of the working copy against its diff base, sorted by path, patches
/// included.
pub(crate) async fn changes(
    work_dir: &Path,
    workspace_commit: Option<&str>,
) -> Result<Vec<FileDiff>, WorkspaceError> {
    let base = diff_base(work_dir, workspace_commit).await?;
    let names = git(work_dir, ["diff", "-M", "--name-status", "-z", &base, "--"]).await?;
    let numstat = git(work_dir, ["diff", "-M", "--numstat", "-z", &base, "--"]).await?;
    let patch = git(work_dir, ["diff", "-M", "--no-color", &base, "--"]).await?;
    let untracked = git(
        work_dir,
        ["ls-files", "-z", "--others", "--exclude-standard"],
    )
    .await?;

    let counts = parse_numstat(&numstat.text());
    let mut files: Vec<FileDiff> = parse_name_status(&names.text())
        .into_iter()
        .map(|(status, old_path, path)| {
            let (additions, deletions, binary) = counts.get(&path).copied().unwrap_or_default();
            FileDiff {
                path,
                status,
                old_path,
                additions,
                deletions,
                binary,
                patch: None,
            }
        })
        .collect();
    let sections = split_patch(&patch.text());
    if sections.len() == files.len() {
        for (file, section) in files.iter_mut().zip(sections) {
            file.patch = Some(section);
        }
    } else {
        // Not one section per file (should not happen): ask git file by file.
        for file in &mut files {
            let mut args = vec!["diff", "-M", "--no-color", base.as_str(), "--"];
            args.extend(file.old_path.as_deref());
            args.push(&file.path);
            file.patch = Some(git(work_dir, &args).await?.text());
        }
    }
    for path in untracked.text().split('\0').filter(|p| !p.is_empty()) {
        files.push(untracked_file(work_dir, path).await);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// `--name-status -z`: `(status, old path, path)`.
fn parse_name_status(text: &str) -> Vec<(&'static str, Option<String>, String)> {
    let mut tokens = text.split('\0');
    let mut out = Vec::new();
    while let Some(code) = tokens.next().filter(|t| !t.is_empty()) {
        let status = match code.as_bytes()[0] {
            b'A' | b'C' => "added",
            b'D' => "deleted",
            b'R' => "renamed",
            _ => "modified",
        };
        if matches!(code.as_bytes()[0], b'R' | b'C') {
            let (Some(old), Some(new)) = (tokens.next(), tokens.next()) else {
                break;
            };
            let old = (status == "renamed").then(|| old.to_owned());
            out.push((status, old, new.to_owned()));
        } else if let Some(path) = tokens.next() {
            out.push((status, None, path.to_owned()));
        }
    }
    out
}

/// `--numstat -z`: path → (additions, deletions, binary).
fn parse_numstat(text: &str) -> HashMap<String, (u64, u64, bool)> {
    let mut tokens = text.split('\0');
    let mut out = HashMap::new();
    while let Some(token) = tokens.next().filter(|t| !t.is_empty()) {
        let mut fields = token.splitn(3, '\t');
        let (Some(added), Some(deleted), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            break;
        };
        let path = if path.is_empty() {
            // A rename: the old and the new path follow as tokens of their own.
            let _old = tokens.next();
            tokens.next().unwrap_or_default().to_owned()
        } else {
            path.to_owned()
        };
        let binary = added == "-" && deleted == "-";
        out.insert(
            path,
            (
                added.parse().unwrap_or(0),
                deleted.parse().unwrap_or(0),
                binary,
            ),
        );
    }
    out
}

/// A full `git diff` split into one section per file (each starting `diff --git `).
fn split_patch(text: &str) -> Vec<String> {
    let mut sections: Vec<String> = Vec::new();
    for line in text.split_inclusive('\n') {
        if line.starts_with("diff --git ") || sections.is_empty() {
            sections.push(String::new());
        }
        if let Some(last) = sections.last_mut() {
            last.push_str(line);
        }
    }
    sections.retain(|s| s.starts_with("diff --git "));
    sections
}

/// `true` when a NUL byte is among the first 8000 bytes, as git decides.
pub(crate) fn looks_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(BINARY_SNIFF_BYTES).any(|b| *b == 0)
}

/// An untracked file as an `added` entry, with a patch like git's for a new file.
async fn untracked_file(work_dir: &Path, path: &str) -> FileDiff {
    let full = work_dir.join(path);
    let (bytes, mode) = match tokio::fs::symlink_metadata(&full).await {
        Ok(meta) if meta.file_type().is_symlink() => (
            tokio::fs::read_link(&full)
                .await
                .map(|target| target.into_os_string().into_encoded_bytes())
                .unwrap_or_default(),
            "120000",
        ),
        Ok(meta) => {
            use std::os::unix::fs::PermissionsExt;
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                "100755"
            } else {
                "100644"
            };
            (tokio::fs::read(&full).await.unwrap_or_default(), mode)
        }
        Err(_) => (Vec::new(), "100644"),
    };
    let binary = looks_binary(&bytes);
    let mut patch = format!("diff --git a/{path} b/{path}\nnew file mode {mode}\n");
    let mut additions = 0;
    if binary {
        patch.push_str(&format!("Binary files /dev/null and b/{path} differ\n"));
    } else if !bytes.is_empty() {
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        additions = lines.len() as u64;
        patch.push_str(&format!("--- /dev/null\n+++ b/{path}\n@@ -0,0 +1"));
        if additions != 1 {
            patch.push_str(&format!(",{additions}"));
        }
        patch.push_str(" @@\n");
        for line in lines {
            patch.push('+');
            patch.push_str(line);
            if !line.ends_with('\n') {
                patch.push_str("\n\\ No newline at end of file\n");
            }
        }
    }
    FileDiff {
        path: path.to_owned(),
        status: "added",
        old_path: None,
        additions,
        deletions: 0,
        binary,
        patch: Some(patch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_git_z_output() {
        let names = parse_name_status("M\0a.txt\0R087\0old.rs\0new.rs\0A\0b c\0");
        assert_eq!(
            names,
            vec![
                ("modified", None, "a.txt".to_owned()),
                ("renamed", Some("old.rs".to_owned()), "new.rs".to_owned()),
                ("added", None, "b c".to_owned()),
            ]
        );
        let counts = parse_numstat("1\t2\ta.txt\0-\t-\tbin\u{0}3\t0\t\0old.rs\0new.rs\0");
        assert_eq!(counts["a.txt"], (1, 2, false));
        assert_eq!(counts["bin"], (0, 0, true));
        assert_eq!(counts["new.rs"], (3, 0, false));
    }

    #[test]
    fn splits_a_patch_per_file() {
        let sections = split_patch("diff --git a/x b/x\n+1\ndiff --git a/y b/y\n-2\n");
        assert_eq!(
            sections,
            vec!["diff --git a/x b/x\n+1\n", "diff --git a/y b/y\n-2\n"]
        );
    }
}
