//! The blocking workspace git operations behind routes #38–#48 (status, fetch, checkout,
//! branches, file tree, file read/write, stage, commit, log), plus the path checks that keep
//! every file access inside the working tree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use chrono::{DateTime, FixedOffset};
use discobot_core::git::{Branch, Commit, FileEntry, FileStatus, GitStatus, NewCommit};
use gix::bstr::{BStr, ByteSlice};
use gix::objs::tree::EntryKind;
use gix::status::index_worktree::iter::Summary;

use crate::error::{GitError, chain};

/// Opens the working tree at `dir`; a missing or broken repository is a state problem of
/// the workspace (409), not a server bug.
pub(crate) fn open(dir: &Path) -> Result<gix::Repository, GitError> {
    gix::open_opts(
        dir,
        gix::open::Options::default()
            // A server has no terminal: ask credential helpers, never the user.
            .config_overrides(["gitoxide.credentials.terminalPrompt=false"]),
    )
    .map_err(|e| {
        GitError::Conflict(format!(
            "workspace directory is not a usable git repository: {}",
            chain(&e)
        ))
    })
}

/// A repository-relative path a client sent, checked lexically: not empty, relative, no NUL,
/// no `..`, nothing inside `.git`. Returns it `/`-joined without `.` or empty components;
/// `"."` (the whole tree) comes back as `""` when `allow_root`.
pub(crate) fn rel_path(raw: &str, allow_root: bool) -> Result<String, GitError> {
    if raw.contains('\0') {
        return Err(GitError::InvalidPath(
            "path must not contain NUL bytes".into(),
        ));
    }
    if raw.starts_with('/') || raw.starts_with('\\') || Path::new(raw).is_absolute() {
        return Err(GitError::InvalidPath(format!(
            "path must be relative to the repository: {raw}"
        )));
    }
    let mut parts = Vec::new();
    for part in raw.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                return Err(GitError::InvalidPath(format!(
                    "path must not contain '..': {raw}"
                )));
            }
            _ if part.eq_ignore_ascii_case(".git") => {
                return Err(GitError::InvalidPath(format!(
                    "path must not be inside .git: {raw}"
                )));
            }
            _ => parts.push(part),
        }
    }
    if parts.is_empty() && !allow_root {
        return Err(GitError::InvalidPath("path is required".into()));
    }
    Ok(parts.join("/"))
}

/// `root/rel` after checking that no existing part of it resolves (through symlinks)
/// outside the working tree or into its `.git`.
pub(crate) fn worktree_path(root: &Path, rel: &str) -> Result<PathBuf, GitError> {
    let root = root
        .canonicalize()
        .map_err(|e| GitError::Conflict(format!("workspace directory is not usable: {e}")))?;
    let git_dir = root.join(".git");
    let mut current = root.clone();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        current.push(part);
        match current.canonicalize() {
            Ok(real) if real.starts_with(&root) && !real.starts_with(&git_dir) => {}
            Ok(_) => {
                return Err(GitError::InvalidPath(format!(
                    "path leads outside the repository: {rel}"
                )));
            }
            // Does not exist (yet): nothing below it can be a symlink.
            Err(_) => break,
        }
    }
    Ok(root.join(rel))
}

/// The commit a revision names (`main`, `origin/x`, `HEAD~2`, an id).
pub(crate) fn resolve_commit<'r>(
    repo: &'r gix::Repository,
    rev: &str,
) -> Result<gix::Commit<'r>, GitError> {
    let id = repo
        .rev_parse_single(rev.as_bytes().as_bstr())
        .map_err(|_| GitError::NotFound(format!("unknown ref: {rev}")))?;
    id.object()?
        .peel_to_commit()
        .map_err(|_| GitError::NotFound(format!("ref does not name a commit: {rev}")))
}

fn status_name(summary: Summary) -> &'static str {
    match summary {
        Summary::Added => "added",
        Summary::Removed => "deleted",
        Summary::Modified => "modified",
        Summary::TypeChange => "typechange",
        Summary::Renamed => "renamed",
        Summary::Copied => "copied",
        Summary::IntentToAdd => "added",
        Summary::Conflict => "unmerged",
    }
}

fn path_string(path: &BStr) -> String {
    path.to_str_lossy().into_owned()
}

/// One change of the index against a tree as `(path, status, old path)`.
pub(crate) fn tree_index_change(
    change: &gix::diff::index::Change,
) -> (String, &'static str, String) {
    use gix::diff::index::Change;
    match change {
        Change::Addition { location, .. } => {
            (path_string(location.as_ref()), "added", String::new())
        }
        Change::Deletion { location, .. } => {
            (path_string(location.as_ref()), "deleted", String::new())
        }
        Change::Modification {
            location,
            previous_entry_mode,
            entry_mode,
            ..
        } => {
            let before = previous_entry_mode.to_tree_entry_mode();
            let after = entry_mode.to_tree_entry_mode();
            // git reports a file ↔ symlink (or submodule) change as a type change; an
            // executable bit flip is a modification.
            let status = if before.map(|m| m.is_link() || m.is_commit())
                != after.map(|m| m.is_link() || m.is_commit())
            {
                "typechange"
            } else {
                "modified"
            };
            (path_string(location.as_ref()), status, String::new())
        }
        Change::Rewrite {
            source_location,
            location,
            copy,
            ..
        } => (
            path_string(location.as_ref()),
            if *copy { "copied" } else { "renamed" },
            path_string(source_location.as_ref()),
        ),
    }
}

/// `git status`.
pub fn status(dir: &Path) -> Result<GitStatus, GitError> {
    let repo = open(dir)?;
    let mut out = GitStatus::default();
    let head = repo.head()?;
    out.branch = head
        .referent_name()
        .map(|name| name.shorten().to_str_lossy().into_owned())
        .unwrap_or_default();
    let head_id = head.id().map(|id| id.detach());
    if let Some(id) = head_id {
        out.commit = id.to_string();
        out.commit_short = short(&out.commit);
    }
    if let (Some(name), Some(head_id)) = (head.referent_name(), head_id)
        && let Some(Ok(upstream)) =
            repo.branch_remote_tracking_ref_name(name, gix::remote::Direction::Fetch)
        && let Ok(Some(mut reference)) = repo.try_find_reference(upstream.as_ref())
        && let Ok(upstream_id) = reference.peel_to_id()
    {
        let upstream_id = upstream_id.detach();
        out.ahead = count_walk(&repo, head_id, upstream_id)?;
        out.behind = count_walk(&repo, upstream_id, head_id)?;
    }
    let mut conflicts = BTreeMap::new();
    let items = repo
        .status(gix::progress::Discard)?
        .untracked_files(gix::status::UntrackedFiles::Files)
        // Like `git status`: a moved file shows as deleted + untracked until it is staged.
        .index_worktree_rewrites(None)
        .into_iter(None)?;
    for item in items {
        match item? {
            gix::status::Item::TreeIndex(change) => {
                let (path, status, old_path) = tree_index_change(&change);
                out.staged.push(FileStatus {
                    path,
                    status: status.into(),
                    old_path,
                });
            }
            gix::status::Item::IndexWorktree(item) => {
                let Some(summary) = item.summary() else {
                    continue;
                };
                let path = path_string(item.rela_path());
                match summary {
                    Summary::Added => out.untracked.push(path),
                    Summary::Conflict => {
                        conflicts.insert(path, ());
                    }
                    other => out.unstaged.push(FileStatus {
                        path,
                        status: status_name(other).into(),
                        old_path: String::new(),
                    }),
                }
            }
        }
    }
    out.has_conflicts = !conflicts.is_empty();
    // A conflicted path is unmerged, whatever its stages say against HEAD.
    out.staged.retain(|f| !conflicts.contains_key(&f.path));
    out.unstaged.retain(|f| !conflicts.contains_key(&f.path));
    out.unstaged
        .extend(conflicts.into_keys().map(|path| FileStatus {
            path,
            status: "unmerged".into(),
            old_path: String::new(),
        }));
    out.staged.sort_by(|a, b| a.path.cmp(&b.path));
    out.unstaged.sort_by(|a, b| a.path.cmp(&b.path));
    out.untracked.sort();
    Ok(out)
}

/// Commits reachable from `from` but not from `hidden`.
fn count_walk(
    repo: &gix::Repository,
    from: gix::ObjectId,
    hidden: gix::ObjectId,
) -> Result<u32, GitError> {
    let mut count = 0u32;
    for info in repo.rev_walk([from]).with_hidden([hidden]).all()? {
        info?;
        count += 1;
    }
    Ok(count)
}

pub(crate) fn short(id: &str) -> String {
    id.chars().take(7).collect()
}

/// Removes `user:password@` from URLs inside `text`, so a token in a remote URL never
/// reaches an error message.
pub(crate) fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***@");
                out.push_str(&authority[at + 1..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `git fetch` of every configured remote, through gix.
pub fn fetch(dir: &Path) -> Result<(), GitError> {
    let repo = open(dir)?;
    let interrupt = AtomicBool::new(false);
    for name in repo.remote_names() {
        let name: &BStr = name.as_ref();
        let fail = |e: gix::Error| {
            GitError::Upstream(redact_userinfo(&format!(
                "failed to fetch {name}: {}",
                chain(&e)
            )))
        };
        let remote = repo.find_remote(name).map_err(fail)?;
        remote
            .connect(gix::remote::Direction::Fetch)
            .map_err(fail)?
            .prepare_fetch(gix::progress::Discard, Default::default())
            .map_err(fail)?
            .receive(gix::progress::Discard, &interrupt)
            .map_err(fail)?;
    }
    Ok(())
}

/// Runs the git CLI in `dir` with a fixed locale (so its messages can be matched) and no
/// terminal prompts. Returns stdout, or the exit failure with stderr.
pub(crate) fn git_cli(dir: &Path, args: &[&str]) -> Result<Result<String, String>, GitError> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| GitError::Other(format!("cannot run git: {e}")))?;
    if output.status.success() {
        Ok(Ok(String::from_utf8_lossy(&output.stdout).into_owned()))
    } else {
        Ok(Err(redact_userinfo(
            String::from_utf8_lossy(&output.stderr).trim(),
        )))
    }
}

/// Checks out a branch or revision.
///
/// The git CLI (`git switch`) does this: gix 0.90 has no checkout that rewrites an existing
/// worktree and refuses to overwrite local changes (it can only check out into an empty
/// directory). `switch` never reads its argument as a path, unlike `checkout`.
pub fn checkout(dir: &Path, reference: &str) -> Result<(), GitError> {
    if reference.starts_with('-') || reference.contains('\0') {
        return Err(GitError::InvalidPath(format!("invalid ref: {reference}")));
    }
    let repo = open(dir)?;
    let local = format!("refs/heads/{reference}");
    let is_local = matches!(repo.try_find_reference(local.as_str()), Ok(Some(_)));
    let remote_matches = repo
        .references()?
        .remote_branches()?
        .filter_map(Result::ok)
        .filter(|r| {
            r.name()
                .shorten()
                .to_str()
                .ok()
                .and_then(|n| n.split_once('/'))
                .is_some_and(|(_, branch)| branch == reference)
        })
        .count();
    let args: Vec<&str> = if is_local || remote_matches == 1 {
        // A local branch, or the one remote branch `switch` turns into a tracking branch.
        vec!["switch", "--quiet", reference]
    } else {
        resolve_commit(&repo, reference)?;
        vec!["switch", "--quiet", "--detach", reference]
    };
    match git_cli(dir, &args)? {
        Ok(_) => Ok(()),
        Err(stderr) if stderr.contains("would be overwritten") => Err(GitError::Conflict(format!(
            "cannot check out {reference}: local changes would be overwritten; commit or discard them first ({})",
            stderr
                .lines()
                .filter(|l| l.starts_with('\t'))
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        Err(stderr) if stderr.contains("invalid reference") || stderr.contains("did not match") => {
            Err(GitError::NotFound(format!("unknown ref: {reference}")))
        }
        Err(stderr) => Err(GitError::Other(format!("git switch failed: {stderr}"))),
    }
}

/// Local branches, then remote-tracking ones, each sorted by name.
pub fn branches(dir: &Path) -> Result<Vec<Branch>, GitError> {
    let repo = open(dir)?;
    let head = repo.head()?;
    let current = head.referent_name().map(|n| n.as_bstr().to_owned());
    let mut out = Vec::new();
    let refs = repo.references()?;
    for reference in refs.local_branches()? {
        let mut reference = reference.map_err(|e| GitError::Other(e.to_string()))?;
        let Ok(id) = reference.peel_to_id() else {
            continue;
        };
        let id = id.to_string();
        let name = reference.name();
        let upstream =
            match repo.branch_remote_tracking_ref_name(name, gix::remote::Direction::Fetch) {
                Some(Ok(up)) => up.shorten().to_str_lossy().into_owned(),
                _ => String::new(),
            };
        out.push(Branch {
            name: name.shorten().to_str_lossy().into_owned(),
            is_remote: false,
            is_current: current.as_ref().is_some_and(|c| c == name.as_bstr()),
            commit: id,
            upstream,
        });
    }
    for reference in refs.remote_branches()? {
        let mut reference = reference.map_err(|e| GitError::Other(e.to_string()))?;
        let name = reference.name().shorten().to_str_lossy().into_owned();
        // `origin/HEAD` is a pointer to the remote's default branch, not a branch.
        if name.ends_with("/HEAD") {
            continue;
        }
        let Ok(id) = reference.peel_to_id() else {
            continue;
        };
        out.push(Branch {
            name,
            is_remote: true,
            is_current: false,
            commit: id.to_string(),
            upstream: String::new(),
        });
    }
    out.sort_by(|a, b| (a.is_remote, &a.name).cmp(&(b.is_remote, &b.name)));
    Ok(out)
}

fn mode_string(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Tree => "040000",
        EntryKind::Blob => "100644",
        EntryKind::BlobExecutable => "100755",
        EntryKind::Link => "120000",
        EntryKind::Commit => "160000",
    }
}

fn file_entry(path: String, is_dir: bool, size: u64, mode: &str) -> FileEntry {
    let name = path.rsplit('/').next().unwrap_or(&path).to_owned();
    FileEntry {
        path,
        name,
        is_dir,
        size,
        mode: mode.to_owned(),
    }
}

/// Every file and directory of `reference`'s tree, or of the working tree (tracked files
/// that exist plus untracked, not ignored ones).
pub fn file_tree(dir: &Path, reference: Option<&str>) -> Result<Vec<FileEntry>, GitError> {
    let repo = open(dir)?;
    let mut entries = BTreeMap::new();
    match reference {
        Some(rev) => {
            let tree = resolve_commit(&repo, rev)?.tree()?;
            let mut recorder = gix::traverse::tree::Recorder::default();
            tree.traverse()
                .breadthfirst(&mut recorder)
                .map_err(|e| GitError::Other(chain(&e)))?;
            for entry in recorder.records {
                let path = path_string(entry.filepath.as_ref());
                let kind = entry.mode.kind();
                let size = match kind {
                    EntryKind::Blob | EntryKind::BlobExecutable | EntryKind::Link => {
                        repo.find_header(entry.oid)?.size()
                    }
                    _ => 0,
                };
                entries.insert(
                    path.clone(),
                    file_entry(path, kind == EntryKind::Tree, size, mode_string(kind)),
                );
            }
        }
        None => {
            let root = worktree_path(dir, "")?;
            let mut files: Vec<String> = Vec::new();
            let index = repo.index_or_empty()?;
            for entry in index.entries() {
                if entry.stage() == gix::index::entry::Stage::Unconflicted || entry.stage_raw() == 2
                {
                    files.push(path_string(entry.path(&index)));
                }
            }
            let items = repo
                .status(gix::progress::Discard)?
                .untracked_files(gix::status::UntrackedFiles::Files)
                .index_worktree_rewrites(None)
                .into_index_worktree_iter(None)?;
            for item in items {
                let item = item?;
                if let Some(Summary::Added) = item.summary() {
                    files.push(path_string(item.rela_path()));
                }
            }
            for path in files {
                let Ok(meta) = std::fs::symlink_metadata(root.join(&path)) else {
                    continue; // deleted in the working tree
                };
                let mode = if meta.file_type().is_symlink() {
                    "120000"
                } else if meta.is_dir() {
                    "160000" // a submodule's directory
                } else if is_executable(&meta) {
                    "100755"
                } else {
                    "100644"
                };
                let mut parent = path.as_str();
                while let Some((dir, _)) = parent.rsplit_once('/') {
                    entries
                        .entry(dir.to_owned())
                        .or_insert_with(|| file_entry(dir.to_owned(), true, 0, "040000"));
                    parent = dir;
                }
                let size = if meta.is_file() || meta.file_type().is_symlink() {
                    meta.len()
                } else {
                    0
                };
                entries.insert(path.clone(), file_entry(path, false, size, mode));
            }
        }
    }
    Ok(entries.into_values().collect())
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}

/// A file's bytes at `reference`, or in the working tree.
pub fn read_file(dir: &Path, path: &str, reference: Option<&str>) -> Result<Vec<u8>, GitError> {
    let rel = rel_path(path, false)?;
    let not_found = || GitError::NotFound(format!("File not found: {path}"));
    match reference {
        Some(rev) => {
            let repo = open(dir)?;
            let tree = resolve_commit(&repo, rev)?.tree()?;
            let entry = tree
                .lookup_entry_by_path(&rel)
                .map_err(|e| GitError::Other(chain(&e)))?
                .ok_or_else(not_found)?;
            if !entry.mode().is_blob_or_symlink() {
                return Err(GitError::InvalidPath(format!("not a file: {path}")));
            }
            Ok(entry.object()?.detach().data)
        }
        None => {
            open(dir)?;
            let full = worktree_path(dir, &rel)?;
            let meta = std::fs::metadata(&full).map_err(|_| not_found())?;
            if meta.is_dir() {
                return Err(GitError::InvalidPath(format!("not a file: {path}")));
            }
            std::fs::read(&full).map_err(|e| GitError::Other(format!("cannot read {path}: {e}")))
        }
    }
}

/// Writes a file of the working tree, creating its parent directories.
pub fn write_file(dir: &Path, path: &str, content: &[u8]) -> Result<(), GitError> {
    let rel = rel_path(path, false)?;
    open(dir)?;
    let full = worktree_path(dir, &rel)?;
    if full.is_dir() {
        return Err(GitError::InvalidPath(format!(
            "path is a directory: {path}"
        )));
    }
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent).map_err(|e| {
            GitError::InvalidPath(format!("cannot create the directories of {path}: {e}"))
        })?;
    }
    std::fs::write(&full, content).map_err(|e| GitError::Other(format!("cannot write {path}: {e}")))
}

/// `git add -A` of `paths` (the whole tree when empty).
///
/// The git CLI does this: gix 0.90 has no `git add` (no index update from the worktree with
/// pathspecs, .gitattributes filters and the index extensions kept consistent).
pub fn stage(dir: &Path, paths: &[String]) -> Result<(), GitError> {
    let mut rels = Vec::with_capacity(paths.len());
    for path in paths {
        let rel = rel_path(path, true)?;
        worktree_path(dir, &rel)?;
        rels.push(if rel.is_empty() { ".".to_owned() } else { rel });
    }
    open(dir)?;
    // Literal pathspecs: a client's `:(…)` or `*` is a file name, not pathspec magic.
    let mut args = vec!["--literal-pathspecs", "add", "-A", "--"];
    args.extend(rels.iter().map(String::as_str));
    match git_cli(dir, &args)? {
        Ok(_) => Ok(()),
        Err(stderr) if stderr.contains("did not match any files") => Err(GitError::NotFound(
            format!("nothing to stage at: {}", rels.join(", ")),
        )),
        Err(stderr)
            if stderr.contains("beyond a symbolic link")
                || stderr.contains("outside repository") =>
        {
            Err(GitError::InvalidPath(format!(
                "path leads outside the repository: {}",
                rels.join(", ")
            )))
        }
        Err(stderr) => Err(GitError::Other(format!("git add failed: {stderr}"))),
    }
}

/// An owned signature `name <email>` at `time`.
fn signature(name: &str, email: &str, time: gix::date::Time) -> gix::actor::Signature {
    gix::actor::Signature {
        name: name.into(),
        email: email.into(),
        time,
    }
}

/// Name and email from git configuration (environment, repository, global), if both set.
fn configured(sig: Option<gix::Result<gix::actor::SignatureRef<'_>>>) -> Option<(String, String)> {
    let sig = sig?.ok()?;
    let name = sig.name.to_str_lossy().trim().to_owned();
    let email = sig.email.to_str_lossy().trim().to_owned();
    (!name.is_empty() && !email.is_empty()).then_some((name, email))
}

/// The configured author of the repository at `dir`, if git has a name and an email.
pub fn user_identity(dir: &Path) -> Result<Option<(String, String)>, GitError> {
    let repo = gix::open(dir)?;
    Ok(configured(repo.author()))
}

/// Commits the index on `HEAD` (like `git commit`, without hooks or signing).
pub fn commit(
    dir: &Path,
    request: &NewCommit,
    fallback: &(String, String),
) -> Result<Commit, GitError> {
    let repo = open(dir)?;
    let index = repo.index_or_empty()?;
    if index
        .entries()
        .iter()
        .any(|e| e.stage() != gix::index::entry::Stage::Unconflicted)
    {
        return Err(GitError::Conflict(
            "cannot commit: the index has unresolved conflicts".into(),
        ));
    }
    let empty = gix::ObjectId::empty_tree(repo.object_hash());
    let mut editor = repo.edit_tree(empty)?;
    for entry in index.entries() {
        if entry
            .flags
            .contains(gix::index::entry::Flags::INTENT_TO_ADD)
        {
            continue;
        }
        let Some(mode) = entry.mode.to_tree_entry_mode() else {
            continue;
        };
        editor.upsert(entry.path(&index), mode.kind(), entry.id)?;
    }
    let tree = editor.write()?.detach();
    let head = repo.head()?;
    let parent = head.id().map(|id| id.detach());
    let parent_tree = match parent {
        Some(id) => repo.find_commit(id)?.tree_id()?.detach(),
        None => empty,
    };
    if parent_tree == tree {
        return Err(GitError::Conflict(
            "nothing to commit: stage changes first".into(),
        ));
    }
    let (config_name, config_email) = configured(repo.author()).unwrap_or_else(|| fallback.clone());
    let name = request.author_name.clone().unwrap_or(config_name);
    let email = request.author_email.clone().unwrap_or(config_email);
    let (committer_name, committer_email) =
        configured(repo.committer()).unwrap_or_else(|| (name.clone(), email.clone()));
    let now = gix::date::Time::now_local_or_utc();
    let author = signature(&name, &email, now);
    let committer = signature(&committer_name, &committer_email, now);
    let mut message = request.message.trim_end().to_owned();
    message.push('\n');
    let (mut author_time, mut committer_time) = Default::default();
    let id = repo.commit_as(
        committer.to_ref(&mut committer_time),
        author.to_ref(&mut author_time),
        "HEAD",
        message,
        tree,
        parent,
    )?;
    commit_info(&repo.find_commit(id)?)
}

fn to_datetime(time: gix::date::Time) -> DateTime<FixedOffset> {
    let offset = FixedOffset::east_opt(time.offset)
        .unwrap_or(FixedOffset::east_opt(0).expect("zero offset"));
    DateTime::from_timestamp(time.seconds, 0)
        .unwrap_or_default()
        .with_timezone(&offset)
}

/// A commit as the API shows it.
pub(crate) fn commit_info(commit: &gix::Commit<'_>) -> Result<Commit, GitError> {
    let author = commit.author()?;
    let committer = commit.committer()?;
    let sha = commit.id.to_string();
    let message = commit.message_raw()?.to_str_lossy().trim_end().to_owned();
    Ok(Commit {
        short_sha: short(&sha),
        sha,
        message,
        author: author.name.to_str_lossy().into_owned(),
        author_email: author.email.to_str_lossy().into_owned(),
        author_date: to_datetime(author.time().unwrap_or_default()),
        committer: committer.name.to_str_lossy().into_owned(),
        commit_date: to_datetime(committer.time().unwrap_or_default()),
        parents: commit.parent_ids().map(|id| id.to_string()).collect(),
    })
}

/// Up to `limit` commits reachable from `reference` (default `HEAD`), newest first.
pub fn log(dir: &Path, reference: Option<&str>, limit: usize) -> Result<Vec<Commit>, GitError> {
    let repo = open(dir)?;
    let start = match reference {
        Some(rev) => resolve_commit(&repo, rev)?.id,
        None => match repo.head()?.id() {
            Some(id) => id.detach(),
            None => return Ok(Vec::new()),
        },
    };
    let walk = repo
        .rev_walk([start])
        .sorting(gix::revision::walk::Sorting::ByCommitTime(
            gix::traverse::commit::simple::CommitTimeOrder::NewestFirst,
        ))
        .all()?;
    let mut out = Vec::new();
    for info in walk.take(limit) {
        let info = info?;
        out.push(commit_info(&info.object()?)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel_path_refuses_escapes() {
        assert_eq!(rel_path("a/./b//c", false).unwrap(), "a/b/c");
        assert_eq!(rel_path(".", true).unwrap(), "");
        for bad in [
            "",
            ".",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a\0b",
            ".git/config",
            "sub/.GIT/x",
        ] {
            assert!(rel_path(bad, false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn userinfo_is_redacted() {
        assert_eq!(
            redact_userinfo("failed https://u:tok3n@host/x.git: 401"),
            "failed https://***@host/x.git: 401"
        );
        assert_eq!(redact_userinfo("file:///tmp/x"), "file:///tmp/x");
    }
}
