//! Replaying a session's commits onto the host workspace: [`apply_replay`] re-creates every
//! commit of a `ReplayBundle` on top of `HEAD` with gix (blobs, tree edits, commits carrying
//! the sandbox's raw metadata), moves the branch under its ref lock, then updates the index
//! and the working tree for the touched paths only. Every check runs before the first write.

use std::collections::{HashMap, HashSet};
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use discobot_core::replay::{
    ChangeStatus, REPLAY_BUNDLE_VERSION, ReplayBundle, ReplayChange, ReplayCommit, ReplayOutcome,
};
use gix::ObjectId;
use gix::bstr::{BStr, BString, ByteSlice};
use gix::index::entry::{Flags, Mode, Stage, Stat};
use gix::objs::tree::EntryKind;
use gix::refs::Target;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};

use crate::error::{GitError, chain};

/// How many conflicting paths an error names before it says "and N more".
const MAX_LISTED_PATHS: usize = 20;

/// What a path is in a tree: absent, or an entry of this kind and id.
type Entry = Option<(ObjectId, EntryKind)>;

/// Re-creates the commits of `bundle` in the repository whose working tree is `repo`.
///
/// `HEAD` must be `bundle.parent` or descend from it. The first commit goes on top of `HEAD`,
/// each next one on top of the previous; trees are `HEAD`'s tree plus the bundle's changes.
/// Nothing is written unless every touched path is, on the host, what the bundle expects
/// (`previousBlob`, or absent for `added`) in `HEAD`, in the index and in the working tree;
/// otherwise the error is [`GitError::Conflict`] naming the paths. Afterwards the current
/// branch (or detached `HEAD`) points at the last new commit, and the index and working tree
/// changed for the touched paths only.
pub fn apply_replay(repo_path: &Path, bundle: &ReplayBundle) -> Result<ReplayOutcome, GitError> {
    if bundle.version != REPLAY_BUNDLE_VERSION {
        return Err(GitError::InvalidInput(format!(
            "unsupported replay bundle version {} (expected {REPLAY_BUNDLE_VERSION})",
            bundle.version
        )));
    }
    // Every object is first written to memory and then into one pack (`write_pack`): far
    // fewer files than loose objects, and tree edits read their own writes from memory.
    let mut repo = gix::open(repo_path)?.with_object_memory();
    let workdir = repo
        .workdir()
        .ok_or_else(|| {
            GitError::InvalidPath(format!(
                "{} is a bare repository: there is no working tree to update",
                repo_path.display()
            ))
        })?
        .to_path_buf();
    let hash_kind = repo.object_hash();
    let planned = plan(bundle, hash_kind)?;

    // Held from the first read of the index to its rewrite, so a `git add` or `git commit`
    // running meanwhile fails instead of being overwritten (and we fail if one is running).
    let mut index_lock = gix::lock::File::acquire_to_update_resource(
        repo.index_path(),
        gix::lock::acquire::Fail::Immediately,
        None,
        0,
    )
    .map_err(|e| {
        GitError::Conflict(format!(
            "the workspace's index is locked (is another git command running?): {e}"
        ))
    })?;

    let head = repo.head()?;
    let head_id = head
        .id()
        .ok_or_else(|| GitError::Conflict("the workspace has no commit yet".to_string()))?
        .detach();
    let branch = head.referent_name().map(|name| name.as_bstr().to_string());
    drop(head);
    let parent = ObjectId::from_hex(bundle.parent.as_bytes()).map_err(|_| {
        GitError::InvalidInput(format!(
            "the bundle's parent is not a commit id: {}",
            bundle.parent
        ))
    })?;
    if repo.try_find_object(parent)?.is_none() {
        return Err(GitError::Conflict(format!(
            "the session's base commit {} is not in the workspace",
            short(&parent)
        )));
    }
    if head_id != parent && repo.merge_base(parent, head_id)?.map(|id| id.detach()) != Some(parent)
    {
        return Err(GitError::Conflict(format!(
            "the workspace's HEAD {} does not descend from the session's base commit {}",
            short(&head_id),
            short(&parent)
        )));
    }
    if planned.commits.is_empty() {
        return Ok(ReplayOutcome {
            head: head_id.to_string(),
            commits: Vec::new(),
        });
    }

    let head_tree = repo.find_commit(head_id)?.tree()?;
    let paths = simulate(&planned.commits, &head_tree, head_id == parent)?;
    let head_tree_id = head_tree.id;
    drop(head_tree);

    let mut index = gix::index::File::at_or_default(
        repo.index_path(),
        hash_kind,
        false,
        gix::index::decode::Options::default(),
    )?;
    if index.link().is_some() {
        return Err(GitError::Other(
            "the workspace uses a split index, which replaying does not support".to_string(),
        ));
    }
    let host = HostCheck::new(&repo, &workdir)?;
    let mut conflicts = Vec::new();
    let mut checked_dirs = HashMap::new();
    for (path, state) in &paths {
        if !state.touched {
            continue;
        }
        if let Some(reason) = host.check(path.as_bstr(), state.head, &index, &mut checked_dirs)? {
            conflicts.push(format!("{path} ({reason})"));
        }
    }
    if !conflicts.is_empty() {
        conflicts.sort();
        return Err(GitError::Conflict(conflict_message(&conflicts)));
    }

    // Checks passed: write objects. Unreferenced objects are harmless if a later step fails.
    let created = build_commits(&repo, head_tree_id, head_id, &planned)?;
    let new_head = *created.last().expect("at least one commit");
    let objects = repo.objects.take_object_memory().unwrap_or_default();
    let keep_file = write_pack(&repo, &objects)?;
    drop(objects);

    let moved = move_head(&repo, head_id, new_head, &planned, branch.as_deref());
    // The pack's `.keep` file guarded it from a concurrent `git gc` until a ref pointed into
    // it; now the branch does (or the objects are garbage anyway).
    if let Some(keep) = keep_file {
        std::fs::remove_file(&keep).ok();
    }
    moved?;

    // From here on the commits are in place; a failure leaves HEAD moved, so say so.
    let mut finish = || -> Result<(), GitError> {
        let changed = update_worktree(&workdir, &paths, &planned.blobs)?;
        update_index(&mut index, &changed)?;
        let mut out = std::io::BufWriter::new(&mut index_lock);
        index.write_to(&mut out, gix::index::write::Options::default())?;
        out.flush()
            .map_err(|e| GitError::Other(format!("cannot write the index: {e}")))?;
        drop(out);
        Ok(())
    };
    finish().map_err(|e| {
        GitError::Other(format!(
            "HEAD now points at {new_head}, but updating the working tree and index failed: {e}"
        ))
    })?;
    index_lock
        .commit()
        .map_err(|e| GitError::Other(format!("cannot replace the index: {}", e.error)))?;

    tracing::info!(
        repo = %repo_path.display(),
        commits = created.len(),
        head = %new_head,
        "replayed session commits"
    );
    Ok(ReplayOutcome {
        head: new_head.to_string(),
        commits: created.iter().map(ToString::to_string).collect(),
    })
}

/// Writes the blobs, trees and commits of the plan (into the repository's object memory)
/// and returns the new commits' ids, oldest first.
fn build_commits(
    repo: &gix::Repository,
    head_tree: ObjectId,
    head: ObjectId,
    planned: &Plan,
) -> Result<Vec<ObjectId>, GitError> {
    for (id, data) in &planned.blobs {
        let written = repo.write_blob(data)?.detach();
        debug_assert_eq!(written, *id);
    }
    let mut editor = repo.edit_tree(head_tree)?;
    let mut previous = head;
    let mut created = Vec::with_capacity(planned.commits.len());
    for commit in &planned.commits {
        for path in &commit.removals {
            editor.remove(path.as_bstr())?;
        }
        for (path, kind, id) in &commit.upserts {
            editor.upsert(path.as_bstr(), *kind, *id)?;
        }
        let tree = editor.write()?.detach();
        let tree_hex = tree.to_hex().to_string();
        let parent_hex = previous.to_hex().to_string();
        // The raw header values go in as they are, so dates keep their exact zone text.
        let object = gix::objs::CommitRef {
            tree: tree_hex.as_bytes().as_bstr(),
            parents: std::iter::once(parent_hex.as_bytes().as_bstr()).collect(),
            author: commit.author.as_bytes().as_bstr(),
            committer: commit.committer.as_bytes().as_bstr(),
            encoding: None,
            message: commit.message.as_bytes().as_bstr(),
            extra_headers: Vec::new(),
        };
        previous = repo.write_object(&object)?.detach();
        created.push(previous);
    }
    Ok(created)
}

/// Writes `objects` as one pack (plus its index) into the object database; returns the
/// pack's `.keep` file, which the caller removes once a ref points into the pack.
fn write_pack(
    repo: &gix::Repository,
    objects: &gix::odb::memory::Storage,
) -> Result<Option<PathBuf>, GitError> {
    if objects.is_empty() {
        return Ok(None);
    }
    let hash_kind = repo.object_hash();
    let entries = objects
        .iter()
        .map(|(id, (kind, data))| {
            gix_pack::data::output::Entry::from_data(
                &gix_pack::data::output::Count::from_data(*id, None),
                &gix::objs::Data::new(data, *kind, hash_kind),
                gix::zlib::Compression::BEST_SPEED,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let count = u32::try_from(entries.len())
        .map_err(|_| GitError::InvalidInput("the bundle has too many objects".to_string()))?;
    let mut data = Vec::new();
    for written in gix_pack::data::output::bytes::FromEntriesIter::new(
        std::iter::once(Ok(entries)),
        &mut data,
        count,
        gix_pack::data::Version::V2,
        hash_kind,
    ) {
        written?;
    }
    let pack_dir = repo.objects.store_ref().path().join("pack");
    let interrupt = std::sync::atomic::AtomicBool::new(false);
    let outcome = gix_pack::Bundle::write_to_directory(
        &mut data.as_slice(),
        Some(&pack_dir),
        &mut gix::progress::Discard,
        &interrupt,
        None::<gix::objs::find::Never>,
        hash_kind,
        gix_pack::bundle::write::Options::default(),
    )?;
    Ok(outcome.keep_path)
}

/// The bundle, decoded and validated: blobs by id, commits as tree edits.
struct Plan {
    blobs: HashMap<ObjectId, Vec<u8>>,
    commits: Vec<PlannedCommit>,
    /// The last commit's committer, for the reflog when git configuration names nobody.
    last_committer: Option<(String, String)>,
}

struct PlannedCommit {
    sha: String,
    message: String,
    /// Raw header values: `Name <email> <secs> <+hhmm>`, exactly as the sandbox had them.
    author: String,
    committer: String,
    /// The changes in order: removals (deleted paths, renamed-from paths) come first.
    changes: Vec<PlannedChange>,
    removals: Vec<BString>,
    upserts: Vec<(BString, EntryKind, ObjectId)>,
}

/// One path's expectation and effect.
struct PlannedChange {
    path: BString,
    /// What the path must be before the change.
    expect: Expect,
    /// What it is afterwards.
    after: Entry,
}

#[derive(Clone, Copy)]
enum Expect {
    Absent,
    Blob(ObjectId),
}

fn plan(bundle: &ReplayBundle, hash_kind: gix::hash::Kind) -> Result<Plan, GitError> {
    let mut blobs = HashMap::new();
    let mut commits = Vec::with_capacity(bundle.commits.len());
    for commit in &bundle.commits {
        commits.push(plan_commit(commit, hash_kind, &mut blobs)?);
    }
    let last_committer = bundle
        .commits
        .last()
        .map(|c| (c.committer_name.clone(), c.committer_email.clone()));
    Ok(Plan {
        blobs,
        commits,
        last_committer,
    })
}

fn plan_commit(
    commit: &ReplayCommit,
    hash_kind: gix::hash::Kind,
    blobs: &mut HashMap<ObjectId, Vec<u8>>,
) -> Result<PlannedCommit, GitError> {
    let sha = commit.sha.clone();
    let bad = |what: String| GitError::InvalidInput(format!("bundle commit {sha}: {what}"));
    let author = signature(
        &commit.author_name,
        &commit.author_email,
        &commit.author_date,
    )
    .map_err(|e| bad(format!("author: {e}")))?;
    let committer = signature(
        &commit.committer_name,
        &commit.committer_email,
        &commit.committer_date,
    )
    .map_err(|e| bad(format!("committer: {e}")))?;

    let mut removals = Vec::new();
    let mut upserts = Vec::new();
    let mut changes_out = Vec::new();
    let mut additions = Vec::new();
    for change in &commit.changes {
        let path = checked_path(&change.path, None).map_err(&bad)?;
        let previous = || -> Result<ObjectId, GitError> {
            let hex = change
                .previous_blob
                .as_deref()
                .ok_or_else(|| bad(format!("{}: previousBlob is missing", change.path)))?;
            ObjectId::from_hex(hex.as_bytes())
                .map_err(|_| bad(format!("{}: previousBlob is not an object id", change.path)))
        };
        match change.status {
            ChangeStatus::Deleted => {
                changes_out.push(PlannedChange {
                    path: path.clone(),
                    expect: Expect::Blob(previous()?),
                    after: None,
                });
                removals.push(path);
            }
            ChangeStatus::Renamed => {
                let old = change
                    .old_path
                    .as_deref()
                    .ok_or_else(|| bad(format!("{}: a rename without oldPath", change.path)))?;
                let old = checked_path(old, None).map_err(&bad)?;
                changes_out.push(PlannedChange {
                    path: old.clone(),
                    expect: Expect::Blob(previous()?),
                    after: None,
                });
                removals.push(old);
                let (kind, id) = new_content(change, hash_kind, blobs).map_err(&bad)?;
                checked_path(&change.path, Some(kind)).map_err(&bad)?;
                additions.push(PlannedChange {
                    path,
                    expect: Expect::Absent,
                    after: Some((id, kind)),
                });
            }
            ChangeStatus::Added | ChangeStatus::Modified => {
                let (kind, id) = new_content(change, hash_kind, blobs).map_err(&bad)?;
                checked_path(&change.path, Some(kind)).map_err(&bad)?;
                let expect = if change.status == ChangeStatus::Added {
                    Expect::Absent
                } else {
                    Expect::Blob(previous()?)
                };
                additions.push(PlannedChange {
                    path,
                    expect,
                    after: Some((id, kind)),
                });
            }
        }
    }
    // A commit is a diff of two trees: applying every removal first is always valid, and it
    // lets a file replace a directory (or the other way round) within one commit.
    for change in &additions {
        if let Some((id, kind)) = change.after {
            upserts.push((change.path.clone(), kind, id));
        }
    }
    changes_out.extend(additions);
    Ok(PlannedCommit {
        sha,
        message: commit.message.clone(),
        author,
        committer,
        changes: changes_out,
        removals,
        upserts,
    })
}

/// Decodes a change's new content, records the blob and returns its kind and id.
fn new_content(
    change: &ReplayChange,
    hash_kind: gix::hash::Kind,
    blobs: &mut HashMap<ObjectId, Vec<u8>>,
) -> Result<(EntryKind, ObjectId), String> {
    let kind = match change.mode.as_deref() {
        Some("100644") => EntryKind::Blob,
        Some("100755") => EntryKind::BlobExecutable,
        Some("120000") => EntryKind::Link,
        Some(other) => return Err(format!("{}: unsupported file mode {other}", change.path)),
        None => return Err(format!("{}: mode is missing", change.path)),
    };
    let encoded = change
        .content
        .as_deref()
        .ok_or_else(|| format!("{}: content is missing", change.path))?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("{}: content is not base64: {e}", change.path))?;
    let id = gix::objs::compute_hash(hash_kind, gix::objs::Kind::Blob, &data)
        .map_err(|e| format!("{}: cannot hash content: {}", change.path, chain(&e)))?;
    blobs.entry(id).or_insert(data);
    Ok((kind, id))
}

/// A path of the bundle, validated like git validates tree entries before checkout (no `..`,
/// no `.git`, no absolute paths, no empty components).
fn checked_path(raw: &str, leaf: Option<EntryKind>) -> Result<BString, String> {
    if raw.is_empty() {
        return Err("an empty path".to_string());
    }
    let options = gix::validate::path::component::Options {
        protect_windows: cfg!(windows),
        protect_hfs: cfg!(target_os = "macos"),
        protect_ntfs: true,
    };
    let mut components = raw.split('/').peekable();
    while let Some(component) = components.next() {
        let mode = match (components.peek(), leaf) {
            (None, Some(EntryKind::Link)) => Some(gix::validate::path::component::Mode::Symlink),
            _ => None,
        };
        gix::validate::path::component(component.as_bytes().as_bstr(), mode, options)
            .map_err(|e| format!("unsafe path {raw:?}: {e}"))?;
    }
    Ok(raw.into())
}

/// `Name <email> <secs> <+hhmm>`, after checking the parts cannot break the header.
fn signature(name: &str, email: &str, date: &str) -> Result<String, String> {
    if name.contains(['<', '>', '\n', '\0']) {
        return Err(format!("invalid name {name:?}"));
    }
    if email.contains(['<', '>', '\n', '\0']) {
        return Err(format!("invalid email {email:?}"));
    }
    let valid_date = date.split_once(' ').is_some_and(|(secs, zone)| {
        let digits = secs.strip_prefix('-').unwrap_or(secs);
        !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && zone.len() == 5
            && zone.starts_with(['+', '-'])
            && zone[1..].bytes().all(|b| b.is_ascii_digit())
    });
    if !valid_date {
        return Err(format!(
            "invalid date {date:?} (expected `<unix seconds> <+hhmm>`)"
        ));
    }
    Ok(format!("{name} <{email}> {date}"))
}

/// What the replay does to one path: its entry in `HEAD` and after the last commit.
struct PathState {
    head: Entry,
    current: Entry,
    /// Whether a commit of the bundle changes it (otherwise it was only looked at).
    touched: bool,
}

/// Runs the bundle's changes against `HEAD`'s tree in memory and checks each one's
/// expectation; returns the touched paths (and the directories looked at) with their states.
fn simulate(
    commits: &[PlannedCommit],
    head_tree: &gix::Tree<'_>,
    head_is_parent: bool,
) -> Result<HashMap<BString, PathState>, GitError> {
    let mut paths: HashMap<BString, PathState> = HashMap::new();
    let mut conflicts = Vec::new();
    let lookup = |paths: &mut HashMap<BString, PathState>, path: &BStr| -> Result<(), GitError> {
        if !paths.contains_key(path) {
            let head = head_tree
                .lookup_entry(path.split_str("/"))?
                .map(|e| (e.object_id(), e.mode().kind()));
            paths.insert(
                path.to_owned(),
                PathState {
                    head,
                    current: head,
                    touched: false,
                },
            );
        }
        Ok(())
    };
    for commit in commits {
        for change in &commit.changes {
            lookup(&mut paths, change.path.as_bstr())?;
            let mut mismatch = None;
            if change.after.is_some() {
                // A new file needs directories above it, not files.
                for end in change.path.find_iter("/") {
                    let dir = change.path[..end].as_bstr();
                    lookup(&mut paths, dir)?;
                    let state = &paths[dir];
                    if matches!(state.current, Some((_, kind)) if kind != EntryKind::Tree) {
                        mismatch = Some((dir.to_owned(), state.touched));
                        break;
                    }
                }
            }
            let state = paths
                .get_mut(change.path.as_bstr())
                .expect("looked up above");
            let expected = match change.expect {
                Expect::Absent => state.current.is_none(),
                Expect::Blob(id) => {
                    matches!(state.current, Some((have, kind)) if have == id && kind != EntryKind::Tree)
                }
            };
            if !expected && mismatch.is_none() {
                mismatch = Some((change.path.clone(), state.touched));
            }
            state.current = change.after;
            state.touched = true;
            match mismatch {
                None => {}
                Some((path, true)) => {
                    return Err(GitError::InvalidInput(format!(
                        "bundle commit {}: {path} is not what the bundle's earlier commits made it",
                        commit.sha
                    )));
                }
                Some((path, false)) if head_is_parent => {
                    return Err(GitError::InvalidInput(format!(
                        "bundle commit {}: {path} is not what the bundle's parent has",
                        commit.sha
                    )));
                }
                Some((path, false)) => conflicts.push(format!("{path} (changed in HEAD)")),
            }
        }
    }
    if !conflicts.is_empty() {
        conflicts.sort();
        conflicts.dedup();
        return Err(GitError::Conflict(conflict_message(&conflicts)));
    }
    Ok(paths)
}

fn conflict_message(paths: &[String]) -> String {
    let mut message = String::from(
        "the workspace has changes to files the session also changed; commit or discard them \
         and try again: ",
    );
    message.push_str(
        &paths
            .iter()
            .take(MAX_LISTED_PATHS)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    );
    if paths.len() > MAX_LISTED_PATHS {
        message.push_str(&format!(" and {} more", paths.len() - MAX_LISTED_PATHS));
    }
    message
}

/// Compares the host's index and working tree with `HEAD` for one path.
struct HostCheck<'a> {
    repo: &'a gix::Repository,
    workdir: &'a Path,
    stat_options: gix::index::entry::stat::Options,
    file_mode: bool,
}

impl<'a> HostCheck<'a> {
    fn new(repo: &'a gix::Repository, workdir: &'a Path) -> Result<Self, GitError> {
        let config = repo.config_snapshot();
        let check_stat = config
            .string("core.checkStat")
            .is_none_or(|v| v.to_str_lossy() != "minimal");
        Ok(HostCheck {
            repo,
            workdir,
            stat_options: gix::index::entry::stat::Options {
                trust_ctime: config.boolean("core.trustCtime").unwrap_or(true),
                check_stat,
                // Stricter than git's default build: a mismatch only costs a content hash.
                use_nsec: true,
                use_stdev: false,
            },
            file_mode: config.boolean("core.fileMode").unwrap_or(true),
        })
    }

    /// Why `path` (whose `HEAD` entry is `head`) is not clean on the host, if it is not.
    fn check(
        &self,
        path: &BStr,
        head: Entry,
        index: &gix::index::File,
        checked_dirs: &mut HashMap<BString, bool>,
    ) -> Result<Option<&'static str>, GitError> {
        // The index: no conflict stages, and stage 0 as in HEAD.
        let staged = match index.entry_range(path) {
            Some(range) => {
                let entries = &index.entries()[range];
                if entries.iter().any(|e| e.stage() != Stage::Unconflicted) {
                    return Ok(Some("unmerged in the index"));
                }
                entries.first()
            }
            None => None,
        };
        match (head, staged) {
            (None, None) => {
                if index.path_is_directory(path) {
                    return Ok(Some("staged files below it"));
                }
            }
            (Some((id, kind)), Some(entry)) => {
                if entry.id != id
                    || Some(entry.mode) != index_mode(kind)
                    || entry.flags.contains(Flags::INTENT_TO_ADD)
                {
                    return Ok(Some("staged changes"));
                }
            }
            (None, Some(_)) => return Ok(Some("staged as a new file")),
            (Some(_), None) => return Ok(Some("staged for deletion")),
        }

        // The directories above it must be real directories (or absent): never write
        // through a symlink, never replace a file the user has.
        let mut end = 0;
        while let Some(slash) = path[end..].find_byte(b'/') {
            end += slash;
            let dir = path[..end].as_bstr();
            let is_dir = match checked_dirs.get(dir) {
                Some(known) => *known,
                None => {
                    let known = match std::fs::symlink_metadata(self.full_path(dir)?) {
                        Ok(meta) => meta.is_dir(),
                        Err(e) if e.kind() == ErrorKind::NotFound => true,
                        Err(e) => return Err(io_error(dir, e)),
                    };
                    checked_dirs.insert(dir.to_owned(), known);
                    known
                }
            };
            if !is_dir {
                return Ok(Some("a file or symlink of the working tree is in its way"));
            }
            end += 1;
        }

        let full = self.full_path(path)?;
        let meta = match std::fs::symlink_metadata(&full) {
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(io_error(path, e)),
        };
        let Some((id, kind)) = head else {
            return Ok(meta.map(|_| "an untracked file is in the way"));
        };
        let Some(meta) = meta else {
            return Ok(Some("deleted in the working tree"));
        };
        let file_type = meta.file_type();
        match kind {
            EntryKind::Link if !file_type.is_symlink() => return Ok(Some("modified")),
            EntryKind::Blob | EntryKind::BlobExecutable if !file_type.is_file() => {
                return Ok(Some("modified"));
            }
            EntryKind::Blob | EntryKind::BlobExecutable
                if self.file_mode
                    && is_executable(&meta) != (kind == EntryKind::BlobExecutable) =>
            {
                return Ok(Some("file mode changed"));
            }
            _ => {}
        }
        // The index entry equals HEAD's (checked above), so its stat data vouches for the
        // file unless the file changed since or the entry is racily clean.
        if let Some(entry) = staged {
            let now = gix::index::fs::Metadata::from_path_no_follow(&full)
                .map_err(|e| io_error(path, e))?;
            if let Ok(stat) = Stat::from_fs(&now)
                && entry.stat.matches(&stat, self.stat_options)
                && !entry.stat.is_racy(index.timestamp(), self.stat_options)
            {
                return Ok(None);
            }
        }
        let data = if file_type.is_symlink() {
            link_target_bytes(&full).map_err(|e| io_error(path, e))?
        } else {
            std::fs::read(&full).map_err(|e| io_error(path, e))?
        };
        let actual = gix::objs::compute_hash(self.repo.object_hash(), gix::objs::Kind::Blob, &data)
            .map_err(|e| GitError::Other(chain(&e)))?;
        Ok((actual != id).then_some("modified in the working tree"))
    }

    fn full_path(&self, path: &BStr) -> Result<PathBuf, GitError> {
        let relative = gix::path::from_bstr(path)
            .map_err(|_| GitError::InvalidInput(format!("path is not valid here: {path}")))?;
        Ok(self.workdir.join(relative))
    }
}

/// The index mode git uses for a tree entry kind; `None` for trees and submodules.
fn index_mode(kind: EntryKind) -> Option<Mode> {
    match kind {
        EntryKind::Blob => Some(Mode::FILE),
        EntryKind::BlobExecutable => Some(Mode::FILE_EXECUTABLE),
        EntryKind::Link => Some(Mode::SYMLINK),
        EntryKind::Tree | EntryKind::Commit => None,
    }
}

/// Moves the branch `HEAD` names (or a detached `HEAD`) from `from` to `to`, failing if it
/// no longer points at `from` once its lock is held.
fn move_head(
    repo: &gix::Repository,
    from: ObjectId,
    to: ObjectId,
    planned: &Plan,
    branch: Option<&str>,
) -> Result<(), GitError> {
    let count = planned.commits.len();
    let edit = RefEdit {
        change: Change::Update {
            log: LogChange {
                mode: RefLog::AndReference,
                force_create_reflog: false,
                message: format!(
                    "discobot replay: {count} session commit{}",
                    if count == 1 { "" } else { "s" }
                )
                .into(),
            },
            expected: PreviousValue::MustExistAndMatch(Target::Object(from)),
            new: Target::Object(to),
        },
        name: "HEAD".try_into().expect("HEAD is a valid reference name"),
        // The branch HEAD names moves, and both reflogs get the entry, as with `git commit`.
        deref: true,
    };
    // The reflog needs an identity: git configuration's, else the last commit's committer.
    let configured = repo
        .committer()
        .and_then(Result::ok)
        .map(|s| (s.name.to_string(), s.email.to_string(), s.time.to_string()));
    let (name, email, time) = configured.unwrap_or_else(|| {
        let (name, email) = planned.last_committer.clone().unwrap_or_default();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        (name, email, format!("{now} +0000"))
    });
    let identity = gix::actor::SignatureRef {
        name: name.as_bytes().as_bstr(),
        email: email.as_bytes().as_bstr(),
        time: &time,
    };
    repo.edit_references_as([edit], Some(identity))
        .map_err(|e| {
            GitError::Conflict(format!(
                "could not move {} from {} to {}; did something else commit meanwhile? {}",
                branch.unwrap_or("HEAD"),
                short(&from),
                short(&to),
                chain(&e)
            ))
        })?;
    Ok(())
}

/// What a touched path ends up as, when that differs from `HEAD`.
struct Changed {
    path: BString,
    after: Entry,
    /// Stat data of the file written, for its index entry.
    stat: Option<Stat>,
}

/// Writes the final state of every touched path that the commits changed: removals first
/// (deepest first, pruning directories they empty), then files, links and exec bits.
fn update_worktree(
    workdir: &Path,
    paths: &HashMap<BString, PathState>,
    blobs: &HashMap<ObjectId, Vec<u8>>,
) -> Result<Vec<Changed>, GitError> {
    let mut changed: Vec<Changed> = paths
        .iter()
        .filter(|(_, s)| s.touched && s.current != s.head)
        .map(|(path, s)| Changed {
            path: path.clone(),
            after: s.current,
            stat: None,
        })
        .collect();
    changed.sort_by(|a, b| a.path.cmp(&b.path));

    let mut removals: Vec<&Changed> = changed.iter().filter(|c| c.after.is_none()).collect();
    removals.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
    for change in removals {
        let full = workdir.join(rel_path(&change.path)?);
        match std::fs::remove_file(&full) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(change.path.as_bstr(), e)),
        }
        // Git tracks no directories: one left empty goes too.
        let mut dir = full.parent();
        while let Some(d) = dir {
            if d == workdir || std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }
    for change in &mut changed {
        let Some((id, kind)) = change.after else {
            continue;
        };
        let full = workdir.join(rel_path(&change.path)?);
        let data = blobs
            .get(&id)
            .expect("every new blob of the plan has its content");
        write_entry(&full, kind, data).map_err(|e| io_error(change.path.as_bstr(), e))?;
        let meta = gix::index::fs::Metadata::from_path_no_follow(&full)
            .map_err(|e| io_error(change.path.as_bstr(), e))?;
        change.stat = Some(
            Stat::from_fs(&meta)
                .map_err(|e| GitError::Other(format!("{}: bad file time: {e}", change.path)))?,
        );
    }
    Ok(changed)
}

/// Replaces whatever is at `full` by a file (or a symlink) with `data`.
fn write_entry(full: &Path, kind: EntryKind, data: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::remove_file(full) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if kind == EntryKind::Link {
        return make_symlink(data, full);
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Like git: the umask decides the final bits.
        options.mode(if kind == EntryKind::BlobExecutable {
            0o777
        } else {
            0o666
        });
    }
    let mut file = options.open(full)?;
    file.write_all(data)
}

#[cfg(unix)]
fn make_symlink(target: &[u8], at: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), at)
}

#[cfg(not(unix))]
fn make_symlink(target: &[u8], at: &Path) -> std::io::Result<()> {
    // Like git with `core.symlinks=false`: the link becomes a file holding its target.
    std::fs::write(at, target)
}

#[cfg(unix)]
fn link_target_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    Ok(std::fs::read_link(path)?.as_os_str().as_bytes().to_vec())
}

#[cfg(not(unix))]
fn link_target_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    Ok(gix::path::into_bstr(std::fs::read_link(path)?)
        .into_owned()
        .into())
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o100 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}

/// Sets the index entries of the changed paths (id, mode, fresh stat data), drops those of
/// removed ones and invalidates the cached trees above them; other entries stay as they are.
fn update_index(index: &mut gix::index::File, changed: &[Changed]) -> Result<(), GitError> {
    let mut removed: HashSet<&BStr> = HashSet::new();
    // Pushed after every lookup: a pushed entry breaks the sort order lookups rely on.
    let mut added = Vec::new();
    for change in changed {
        let path = change.path.as_bstr();
        match (change.after, change.stat) {
            (Some((id, kind)), Some(stat)) => {
                let mode = index_mode(kind).expect("only files and links are written");
                match index.entry_mut_by_path_and_stage(path, Stage::Unconflicted) {
                    Some(entry) => {
                        entry.id = id;
                        entry.mode = mode;
                        entry.stat = stat;
                        entry
                            .flags
                            .remove(Flags::ASSUME_VALID | Flags::FSMONITOR_VALID);
                    }
                    None => added.push((stat, id, mode, path)),
                }
            }
            _ => {
                removed.insert(path);
            }
        }
        if let Some(tree) = index.tree_mut() {
            let components: Vec<&[u8]> = path.split_str("/").collect();
            invalidate_cached_tree(tree, &components);
        }
    }
    if !removed.is_empty() {
        index.remove_entries(|_, path, _| removed.contains(path));
    }
    if !added.is_empty() {
        for (stat, id, mode, path) in added {
            index.dangerously_push_entry(stat, id, Flags::empty(), mode, path);
        }
        index.sort_entries();
    }
    Ok(())
}

/// Marks the cached trees on the way to a changed file as invalid, as git does, so the next
/// `git commit` recomputes them instead of reusing stale ids.
fn invalidate_cached_tree(tree: &mut gix::index::extension::Tree, components: &[&[u8]]) {
    tree.num_entries = None;
    if let Some((dir, rest)) = components.split_first()
        && !rest.is_empty()
        && let Some(child) = tree.children.iter_mut().find(|c| c.name.as_slice() == *dir)
    {
        invalidate_cached_tree(child, rest);
    }
}

fn rel_path(path: &BString) -> Result<PathBuf, GitError> {
    gix::path::from_bstr(path.as_bstr())
        .map(|p| p.into_owned())
        .map_err(|_| GitError::InvalidInput(format!("path is not valid here: {path}")))
}

fn io_error(path: &BStr, err: std::io::Error) -> GitError {
    GitError::Other(format!("{path}: {err}"))
}

fn short(id: &ObjectId) -> String {
    id.to_hex_with_len(12).to_string()
}
