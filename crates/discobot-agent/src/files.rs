//! The file routes (`/files`, `/files/search`, `/files/read`, `/files/write`,
//! `/files/delete`, `/files/rename`): the working copy as the server's file browser sees it,
//! every path confined to the working copy.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::routes::{AgentState, error};

/// Files larger than this are not read into a JSON answer.
const MAX_READ_BYTES: u64 = 10 * 1024 * 1024;
const DEFAULT_SEARCH_LIMIT: usize = 100;
const MAX_SEARCH_LIMIT: usize = 200;

/// A path the client sent, checked: relative, inside the working copy, never through a
/// symlink that leads out of it.
pub(crate) struct Confined {
    /// The normalised relative path (`a/b`, empty for the root).
    pub(crate) rel: String,
    /// The absolute path (the working copy joined with the normalised relative path).
    full: PathBuf,
    /// `true` for the working copy itself.
    is_root: bool,
}

/// Why a client path was refused: it is not a relative path inside the working copy.
#[derive(Debug)]
pub(crate) struct Escapes;

/// Resolves `rel` inside `root`. Lexically: no NUL, nothing absolute, no `..` above the root,
/// nothing inside `.git`. Then on disk: every existing ancestor (and the path itself, when
/// `follow_last`) must canonicalize to a place inside the canonical root; a dangling or looping
/// symlink on the way counts as outside, as the place it names cannot be checked.
pub(crate) fn confine(root: &Path, rel: &str, follow_last: bool) -> Result<Confined, Escapes> {
    if rel.contains('\0') || rel.starts_with('/') {
        return Err(Escapes);
    }
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in Path::new(rel).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop().ok_or(Escapes)?;
            }
            Component::Normal(part) => parts.push(part),
            Component::RootDir | Component::Prefix(_) => return Err(Escapes),
        }
    }
    if parts.iter().any(|part| *part == ".git") {
        return Err(Escapes);
    }
    let canonical_root = std::fs::canonicalize(root).map_err(|_| Escapes)?;
    let mut full = root.to_path_buf();
    let mut checking = true;
    for (index, part) in parts.iter().enumerate() {
        full.push(part);
        let last = index + 1 == parts.len();
        if !checking || (last && !follow_last) {
            continue;
        }
        match std::fs::symlink_metadata(&full) {
            // Nothing there (yet): nothing below it exists either.
            Err(_) => checking = false,
            // Inside the root, and not into its `.git` (a symlink to it, or a nested one):
            // writing hooks there would run code on the next git command.
            Ok(_) => match std::fs::canonicalize(&full) {
                Ok(real)
                    if real.starts_with(&canonical_root)
                        && !real.strip_prefix(&canonical_root).is_ok_and(|inner| {
                            inner.components().any(|c| c.as_os_str() == ".git")
                        }) => {}
                _ => return Err(Escapes),
            },
        }
    }
    Ok(Confined {
        rel: parts
            .iter()
            .map(|part| part.to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
        full,
        is_root: parts.is_empty(),
    })
}

/// The 4xx/5xx answer for an IO error on a client path; `missing` is the not-found text.
fn io_error(err: &std::io::Error, missing: &str) -> Response {
    let Refused(status, message) = io_refusal(err, missing);
    error(status, &message)
}

/// A refused request: the status and the `error` text (small, unlike a `Response`).
struct Refused(StatusCode, String);

impl Refused {
    fn new(status: StatusCode, message: &str) -> Self {
        Self(status, message.to_owned())
    }

    fn into_response(self) -> Response {
        error(self.0, &self.1)
    }
}

fn io_refusal(err: &std::io::Error, missing: &str) -> Refused {
    match err.kind() {
        ErrorKind::NotFound => Refused::new(StatusCode::NOT_FOUND, missing),
        ErrorKind::PermissionDenied => Refused::new(StatusCode::FORBIDDEN, "Permission denied"),
        ErrorKind::NotADirectory => Refused::new(StatusCode::BAD_REQUEST, "Not a directory"),
        ErrorKind::IsADirectory => Refused::new(StatusCode::BAD_REQUEST, "Is a directory"),
        _ => {
            tracing::warn!(%err, "file route failed");
            Refused(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
        }
    }
}

fn invalid_path() -> Response {
    error(StatusCode::BAD_REQUEST, "Invalid path")
}

/// A JSON body, or 400 `invalid request body`.
fn parse_body<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, Refused> {
    serde_json::from_slice(body)
        .map_err(|_| Refused::new(StatusCode::BAD_REQUEST, "invalid request body"))
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    path: Option<String>,
    hidden: Option<String>,
}

#[derive(Serialize)]
struct Entry {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
}

/// `GET /files?path=.&hidden=true`: one directory, directories first, then by name; dot
/// entries only with `hidden=true`, `.git` never.
pub(crate) async fn list(
    State(state): State<AgentState>,
    Query(query): Query<ListQuery>,
) -> Response {
    let path = query
        .path
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| ".".into());
    let hidden = query.hidden.as_deref() == Some("true");
    let root = state.workspace().to_path_buf();
    let rel = path.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<Vec<Entry>, Refused> {
        let confined = confine(&root, &rel, true)
            .map_err(|_| Refused::new(StatusCode::BAD_REQUEST, "Invalid path"))?;
        let meta = std::fs::metadata(&confined.full)
            .map_err(|err| io_refusal(&err, "Directory not found"))?;
        if !meta.is_dir() {
            return Err(Refused::new(StatusCode::BAD_REQUEST, "Not a directory"));
        }
        let reader = std::fs::read_dir(&confined.full)
            .map_err(|err| io_refusal(&err, "Directory not found"))?;
        let mut entries = Vec::new();
        for entry in reader.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == ".git" || (!hidden && name.starts_with('.')) {
                continue;
            }
            // Symlinks show as what they point to; a dangling one as a file.
            let meta = std::fs::metadata(entry.path()).or_else(|_| entry.metadata());
            let is_dir = meta.as_ref().is_ok_and(|m| m.is_dir());
            entries.push(Entry {
                name,
                kind: if is_dir { "directory" } else { "file" },
                size: if is_dir {
                    None
                } else {
                    meta.ok().map(|m| m.len())
                },
            });
        }
        entries.sort_by(|a, b| {
            (a.kind != "directory", &a.name).cmp(&(b.kind != "directory", &b.name))
        });
        Ok(entries)
    })
    .await;
    match result {
        Ok(Ok(entries)) => Json(json!({"path": path, "entries": entries})).into_response(),
        Ok(Err(refused)) => refused.into_response(),
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
    }
}

#[derive(Deserialize)]
pub(crate) struct ReadQuery {
    path: Option<String>,
}

/// `GET /files/read?path=`: UTF-8 text as is, anything else base64; 413 over 10 MiB.
pub(crate) async fn read(
    State(state): State<AgentState>,
    Query(query): Query<ReadQuery>,
) -> Response {
    let Some(path) = query.path.filter(|p| !p.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "path query parameter required");
    };
    let Ok(confined) = confine(state.workspace(), &path, true) else {
        return invalid_path();
    };
    let meta = match tokio::fs::metadata(&confined.full).await {
        Ok(meta) => meta,
        Err(err) => return io_error(&err, "File not found"),
    };
    if meta.is_dir() {
        return error(StatusCode::BAD_REQUEST, "Is a directory");
    }
    // A FIFO or device would block the read forever.
    if !meta.is_file() {
        return error(StatusCode::BAD_REQUEST, "Not a regular file");
    }
    if meta.len() > MAX_READ_BYTES {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "File too large");
    }
    let bytes = match tokio::fs::read(&confined.full).await {
        Ok(bytes) => bytes,
        Err(err) => return io_error(&err, "File not found"),
    };
    let size = bytes.len();
    let (content, encoding) = match String::from_utf8(bytes) {
        Ok(text) => (text, "utf8"),
        Err(err) => (BASE64.encode(err.into_bytes()), "base64"),
    };
    Json(json!({"path": path, "content": content, "encoding": encoding, "size": size}))
        .into_response()
}

#[derive(Deserialize)]
struct WriteBody {
    path: Option<String>,
    content: Option<String>,
    encoding: Option<String>,
}

/// `POST /files/write {path, content, encoding?}`: creates missing parent directories; an
/// empty `content` writes an empty file, a missing one is refused.
pub(crate) async fn write(State(state): State<AgentState>, body: Bytes) -> Response {
    let body: WriteBody = match parse_body(&body) {
        Ok(body) => body,
        Err(refused) => return refused.into_response(),
    };
    let Some(path) = body.path.filter(|p| !p.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "path is required");
    };
    let Some(content) = body.content else {
        return error(StatusCode::BAD_REQUEST, "content is required");
    };
    let bytes = match body.encoding.as_deref() {
        None | Some("") | Some("utf8") | Some("utf-8") => content.into_bytes(),
        Some("base64") => match BASE64.decode(content.trim()) {
            Ok(bytes) => bytes,
            Err(_) => return error(StatusCode::BAD_REQUEST, "Invalid base64 content"),
        },
        Some(_) => return error(StatusCode::BAD_REQUEST, "Invalid encoding"),
    };
    let Ok(confined) = confine(state.workspace(), &path, true) else {
        return invalid_path();
    };
    if confined.is_root {
        return error(StatusCode::BAD_REQUEST, "Is a directory");
    }
    if let Some(parent) = confined.full.parent()
        && let Err(err) = tokio::fs::create_dir_all(parent).await
    {
        return io_error(&err, "Directory not found");
    }
    // Checked again now the parents exist: one of them could have been created through a
    // path another request just turned into a symlink.
    if confine(state.workspace(), &path, true).is_err() {
        return invalid_path();
    }
    if tokio::fs::metadata(&confined.full)
        .await
        .is_ok_and(|meta| meta.is_dir())
    {
        return error(StatusCode::BAD_REQUEST, "Is a directory");
    }
    let size = bytes.len();
    match tokio::fs::write(&confined.full, bytes).await {
        Ok(()) => Json(json!({"path": path, "size": size})).into_response(),
        Err(err) => io_error(&err, "Directory not found"),
    }
}

#[derive(Deserialize)]
struct DeleteBody {
    path: Option<String>,
}

/// `POST /files/delete {path}`: a file (or a symlink itself) or a whole directory.
pub(crate) async fn delete(State(state): State<AgentState>, body: Bytes) -> Response {
    let body: DeleteBody = match parse_body(&body) {
        Ok(body) => body,
        Err(refused) => return refused.into_response(),
    };
    let Some(path) = body.path.filter(|p| !p.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "path is required");
    };
    let Ok(confined) = confine(state.workspace(), &path, false) else {
        return invalid_path();
    };
    if confined.is_root {
        return error(StatusCode::BAD_REQUEST, "Cannot delete workspace root");
    }
    let meta = match tokio::fs::symlink_metadata(&confined.full).await {
        Ok(meta) => meta,
        Err(err) => return io_error(&err, "File not found"),
    };
    let (removed, kind) = if meta.is_dir() {
        (tokio::fs::remove_dir_all(&confined.full).await, "directory")
    } else {
        (tokio::fs::remove_file(&confined.full).await, "file")
    };
    match removed {
        Ok(()) => Json(json!({"path": path, "type": kind})).into_response(),
        Err(err) => io_error(&err, "File not found"),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RenameBody {
    old_path: Option<String>,
    new_path: Option<String>,
}

/// `POST /files/rename {oldPath, newPath}`: moves a file or directory (a symlink as itself);
/// creates the destination's parents; never replaces what is at the destination.
pub(crate) async fn rename(State(state): State<AgentState>, body: Bytes) -> Response {
    let body: RenameBody = match parse_body(&body) {
        Ok(body) => body,
        Err(refused) => return refused.into_response(),
    };
    let Some(old_path) = body.old_path.filter(|p| !p.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "oldPath is required");
    };
    let Some(new_path) = body.new_path.filter(|p| !p.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "newPath is required");
    };
    let source = match confine(state.workspace(), &old_path, false) {
        Ok(source) if !source.is_root => source,
        _ => return error(StatusCode::BAD_REQUEST, "Invalid source path"),
    };
    let target = match confine(state.workspace(), &new_path, false) {
        Ok(target) if !target.is_root => target,
        _ => return error(StatusCode::BAD_REQUEST, "Invalid destination path"),
    };
    if let Err(err) = tokio::fs::symlink_metadata(&source.full).await {
        return io_error(&err, "File not found");
    }
    if tokio::fs::symlink_metadata(&target.full).await.is_ok() {
        return error(StatusCode::CONFLICT, "Destination already exists");
    }
    if target.full.starts_with(&source.full) {
        return error(StatusCode::BAD_REQUEST, "Invalid destination path");
    }
    if let Some(parent) = target.full.parent()
        && let Err(err) = tokio::fs::create_dir_all(parent).await
    {
        return io_error(&err, "Directory not found");
    }
    match tokio::fs::rename(&source.full, &target.full).await {
        Ok(()) => Json(json!({"oldPath": old_path, "newPath": new_path})).into_response(),
        Err(err) => io_error(&err, "File not found"),
    }
}

#[derive(Deserialize)]
pub(crate) struct SearchQuery {
    q: Option<String>,
    limit: Option<String>,
}

#[derive(Serialize)]
struct SearchResult {
    path: String,
    #[serde(rename = "type")]
    kind: &'static str,
    score: i64,
}

/// `GET /files/search?q=&limit=`: a fuzzy (subsequence) match of `q` over the working copy's
/// files and directories, `.gitignore`d ones left out, best first.
pub(crate) async fn search(
    State(state): State<AgentState>,
    Query(query): Query<SearchQuery>,
) -> Response {
    let q = query.q.unwrap_or_default();
    let limit = query
        .limit
        .and_then(|limit| limit.trim().parse::<i64>().ok())
        .filter(|limit| *limit > 0)
        .map(|limit| (limit as usize).min(MAX_SEARCH_LIMIT))
        .unwrap_or(DEFAULT_SEARCH_LIMIT);
    let listed = crate::workspace::run_git(
        state.workspace(),
        [
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
        None,
    )
    .await;
    let files = match listed {
        Ok(output) if output.success => output.text(),
        Ok(output) => {
            tracing::warn!(stderr = %output.stderr, "git ls-files failed");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Workspace root not accessible",
            );
        }
        Err(err) => {
            tracing::warn!(%err, "git ls-files failed");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Workspace root not accessible",
            );
        }
    };
    let root = state.workspace().to_path_buf();
    let needle = q.clone();
    let results = tokio::task::spawn_blocking(move || rank(&root, &files, &needle, limit))
        .await
        .unwrap_or_default();
    Json(json!({"query": q, "results": results})).into_response()
}

fn rank(root: &Path, files: &str, q: &str, limit: usize) -> Vec<SearchResult> {
    let mut paths: Vec<(String, &'static str)> = Vec::new();
    let mut dirs = BTreeSet::new();
    for file in files.split('\0').filter(|f| !f.is_empty()) {
        // `ls-files --cached` still lists files deleted from the working tree.
        if std::fs::symlink_metadata(root.join(file)).is_err() {
            continue;
        }
        let mut parent = Path::new(file).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            if !dirs.insert(dir.to_string_lossy().into_owned()) {
                break;
            }
            parent = dir.parent();
        }
        paths.push((file.to_owned(), "file"));
    }
    paths.extend(dirs.into_iter().map(|dir| (dir, "directory")));
    let needle: Vec<char> = q
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut results: Vec<SearchResult> = paths
        .into_iter()
        .filter_map(|(path, kind)| {
            fuzzy_score(&needle, &path).map(|score| SearchResult { path, kind, score })
        })
        .collect();
    results.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.path.cmp(&b.path)));
    results.truncate(limit);
    results
}

/// How well `needle` (lower-case) matches `path` as a subsequence; `None` when it does not.
/// Matched characters count, more so in a row, at the start of a word, and in the file name;
/// the name equal to or starting with the query wins outright; shorter paths break ties.
fn fuzzy_score(needle: &[char], path: &str) -> Option<i64> {
    let haystack: Vec<char> = path.to_lowercase().chars().collect();
    let name_start = haystack
        .iter()
        .rposition(|c| *c == '/')
        .map_or(0, |slash| slash + 1);
    let name: String = haystack[name_start..].iter().collect();
    let query: String = needle.iter().collect();
    let mut score: i64 = 0;
    let mut next = 0;
    let mut previous: Option<usize> = None;
    for (index, c) in haystack.iter().enumerate() {
        if next == needle.len() {
            break;
        }
        if *c != needle[next] {
            continue;
        }
        score += 1;
        if previous.is_some_and(|p| p + 1 == index) {
            score += 5;
        }
        if index == 0 || matches!(haystack[index - 1], '/' | '_' | '-' | '.' | ' ') {
            score += 8;
        }
        if index >= name_start {
            score += 2;
        }
        previous = Some(index);
        next += 1;
    }
    if next < needle.len() {
        return None;
    }
    if !query.is_empty() {
        if name == query {
            score += 100;
        } else if name.starts_with(&query) {
            score += 50;
        } else if name.contains(&query) {
            score += 30;
        } else if haystack.iter().collect::<String>().contains(&query) {
            score += 15;
        }
    }
    Some(score - (haystack.len() as i64) / 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(q: &str, path: &str) -> Option<i64> {
        fuzzy_score(&q.chars().collect::<Vec<_>>(), path)
    }

    #[test]
    fn subsequence_matches_and_ranks() {
        assert!(score("xyz", "src/main.rs").is_none());
        assert!(score("smr", "src/main.rs").is_some());
        assert!(score("main", "src/main.rs") > score("main", "src/domain/admin_notes.rs"));
        assert!(score("lib.rs", "src/lib.rs") > score("lib.rs", "src/library/x.rs"));
    }

    #[test]
    fn confinement_is_lexical_first() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["../x", "/etc/passwd", "a\0b", "a/../../x", ".git/config"] {
            assert!(confine(dir.path(), bad, true).is_err(), "{bad:?}");
        }
        assert!(confine(dir.path(), "a/../b", true).is_ok());
        assert!(confine(dir.path(), ".", true).unwrap().is_root);
        let deep = confine(dir.path(), "new/deep/file.txt", true).unwrap();
        assert_eq!(deep.full, dir.path().join("new/deep/file.txt"));
        assert_eq!(deep.rel, "new/deep/file.txt");
    }
}
