//! `git diff` with gix: which files changed between two sides (trees, the index, the working
//! tree), and each file's unified patch and line counts from gix's blob diff.
//!
//! gix has the pieces but no whole-repository `git diff` porcelain, so this module picks the
//! changed paths (tree-to-tree diff or the status iterator) and renders each patch itself.

use std::collections::BTreeMap;
use std::path::Path;

use discobot_core::git::{DiffQuery, FileDiff};
use gix::bstr::ByteSlice;
use gix::diff::blob::unified_diff::{ConsumeHunk, ContextSize, DiffLineKind, HunkHeader};
use gix::diff::blob::{Algorithm, InternedInput, UnifiedDiff, diff_with_slider_heuristics};

use crate::error::GitError;
use crate::workspace::{open, rel_path, resolve_commit, tree_index_change, worktree_path};

/// Where one side of a file's content lives.
#[derive(Clone, Debug)]
enum Content {
    Blob(gix::ObjectId),
    /// The file (or symlink) at this repository-relative path in the working tree.
    Worktree(String),
}

/// A changed file before its content is loaded.
struct Change {
    path: String,
    old_path: String,
    status: &'static str,
    old: Option<Content>,
    new: Option<Content>,
}

/// The per-file diffs `query` asks for, sorted by path.
pub fn diff(dir: &Path, query: &DiffQuery) -> Result<Vec<FileDiff>, GitError> {
    let repo = open(dir)?;
    let filters = query
        .paths
        .iter()
        .map(|p| rel_path(p, true))
        .collect::<Result<Vec<_>, _>>()?;
    let changes = match (&query.base, &query.head) {
        (base, Some(head)) => {
            let old = match base {
                Some(base) => resolve_commit(&repo, base)?.tree()?,
                None => resolve_commit(&repo, "HEAD")?.tree()?,
            };
            let new = resolve_commit(&repo, head)?.tree()?;
            tree_to_tree(&repo, &old, &new)?
        }
        (Some(base), None) => tree_to_worktree(&repo, dir, base)?,
        (None, None) if query.staged => head_to_index(&repo)?,
        (None, None) => index_to_worktree(&repo)?,
    };
    let mut out = Vec::new();
    for change in changes {
        let wanted = filters.is_empty()
            || filters.iter().any(|f| {
                [&change.path, &change.old_path]
                    .iter()
                    .any(|p| covers(f, p))
            });
        if !wanted {
            continue;
        }
        if let Some(diff) = render(&repo, dir, change)? {
            out.push(diff);
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Whether the path filter `filter` (a path or a directory; `""` is everything) covers `path`.
fn covers(filter: &str, path: &str) -> bool {
    filter.is_empty()
        || path == filter
        || path
            .strip_prefix(filter)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn tree_to_tree(
    repo: &gix::Repository,
    old: &gix::Tree<'_>,
    new: &gix::Tree<'_>,
) -> Result<Vec<Change>, GitError> {
    use gix::object::tree::diff::ChangeDetached as C;
    let options = gix::diff::Options::default().with_rewrites(Some(Default::default()));
    let mut out = Vec::new();
    for change in repo.diff_tree_to_tree(Some(old), Some(new), Some(options))? {
        let item = match change {
            C::Addition {
                location,
                entry_mode,
                id,
                ..
            } if entry_mode.is_blob_or_symlink() => Change {
                path: location.to_str_lossy().into_owned(),
                old_path: String::new(),
                status: "added",
                old: None,
                new: Some(Content::Blob(id)),
            },
            C::Deletion {
                location,
                entry_mode,
                id,
                ..
            } if entry_mode.is_blob_or_symlink() => Change {
                path: location.to_str_lossy().into_owned(),
                old_path: String::new(),
                status: "deleted",
                old: Some(Content::Blob(id)),
                new: None,
            },
            C::Modification {
                location,
                previous_id,
                entry_mode,
                id,
                ..
            } if entry_mode.is_blob_or_symlink() => Change {
                path: location.to_str_lossy().into_owned(),
                old_path: String::new(),
                status: "modified",
                old: Some(Content::Blob(previous_id)),
                new: Some(Content::Blob(id)),
            },
            C::Rewrite {
                source_location,
                source_id,
                entry_mode,
                id,
                location,
                copy,
                ..
            } if entry_mode.is_blob_or_symlink() => Change {
                path: location.to_str_lossy().into_owned(),
                old_path: source_location.to_str_lossy().into_owned(),
                status: if copy { "copied" } else { "renamed" },
                old: Some(Content::Blob(source_id)),
                new: Some(Content::Blob(id)),
            },
            // Directories and submodules have no text of their own.
            _ => continue,
        };
        out.push(item);
    }
    Ok(out)
}

/// `git diff --staged`: `HEAD`'s tree against the index, with renames.
fn head_to_index(repo: &gix::Repository) -> Result<Vec<Change>, GitError> {
    let index = repo.index_or_empty()?;
    let items = repo
        .status(gix::progress::Discard)?
        .untracked_files(gix::status::UntrackedFiles::None)
        .into_iter(None)?;
    let head_tree = repo.head_tree_id_or_empty()?.detach();
    let mut out = Vec::new();
    for item in items {
        let gix::status::Item::TreeIndex(change) = item? else {
            continue;
        };
        let (path, status, old_path) = tree_index_change(&change);
        let old_source = if old_path.is_empty() {
            &path
        } else {
            &old_path
        };
        let old = blob_in_tree(repo, head_tree, old_source)?;
        let new = index_blob(&index, &path);
        out.push(Change {
            path,
            old_path,
            status,
            old,
            new,
        });
    }
    Ok(out)
}

/// `git diff`: the index against the working tree, tracked files only.
fn index_to_worktree(repo: &gix::Repository) -> Result<Vec<Change>, GitError> {
    use gix::status::index_worktree::iter::Summary;
    let items = repo
        .status(gix::progress::Discard)?
        .untracked_files(gix::status::UntrackedFiles::None)
        .index_worktree_rewrites(None)
        .into_index_worktree_iter(None)?;
    let mut out = Vec::new();
    for item in items {
        let item = item?;
        let gix::status::index_worktree::Item::Modification { entry, .. } = &item else {
            continue;
        };
        let path = item.rela_path().to_str_lossy().into_owned();
        let (status, new) = match item.summary() {
            Some(Summary::Removed) => ("deleted", None),
            Some(Summary::Modified | Summary::TypeChange) => {
                ("modified", Some(Content::Worktree(path.clone())))
            }
            Some(Summary::IntentToAdd) => ("added", Some(Content::Worktree(path.clone()))),
            _ => continue,
        };
        let old = (status != "added").then_some(Content::Blob(entry.id));
        out.push(Change {
            path,
            old_path: String::new(),
            status,
            old,
            new,
        });
    }
    Ok(out)
}

/// `git diff <base>`: `base`'s tree against the working tree (tracked files, or files
/// `base` has).
fn tree_to_worktree(
    repo: &gix::Repository,
    dir: &Path,
    base: &str,
) -> Result<Vec<Change>, GitError> {
    let base_tree = resolve_commit(repo, base)?.tree_id()?.detach();
    let items = repo
        .status(gix::progress::Discard)?
        .head_tree(base_tree)
        .untracked_files(gix::status::UntrackedFiles::None)
        .index_worktree_rewrites(None)
        .tree_index_track_renames(gix::status::tree_index::TrackRenames::Disabled)
        .into_iter(None)?;
    // Every path that differs between base and index, or between index and worktree.
    let mut paths = BTreeMap::new();
    for item in items {
        match item? {
            gix::status::Item::TreeIndex(change) => {
                paths.insert(tree_index_change(&change).0, ());
            }
            gix::status::Item::IndexWorktree(item) => {
                if item.summary().is_some() {
                    paths.insert(item.rela_path().to_str_lossy().into_owned(), ());
                }
            }
        }
    }
    let root = worktree_path(dir, "")?;
    let mut out = Vec::new();
    for path in paths.into_keys() {
        let old = blob_in_tree(repo, base_tree, &path)?;
        let on_disk = std::fs::symlink_metadata(root.join(&path))
            .is_ok_and(|m| m.is_file() || m.file_type().is_symlink());
        let new = on_disk.then(|| Content::Worktree(path.clone()));
        let status = match (&old, &new) {
            (None, None) => continue,
            (None, Some(_)) => "added",
            (Some(_), None) => "deleted",
            (Some(_), Some(_)) => "modified",
        };
        out.push(Change {
            path,
            old_path: String::new(),
            status,
            old,
            new,
        });
    }
    Ok(out)
}

fn blob_in_tree(
    repo: &gix::Repository,
    tree: gix::ObjectId,
    path: &str,
) -> Result<Option<Content>, GitError> {
    let tree = repo.find_tree(tree)?;
    let entry = tree
        .lookup_entry_by_path(path)
        .map_err(|e| GitError::Other(crate::error::chain(&e)))?;
    Ok(entry
        .filter(|e| e.mode().is_blob_or_symlink())
        .map(|e| Content::Blob(e.object_id())))
}

fn index_blob(index: &gix::index::File, path: &str) -> Option<Content> {
    index
        .entry_by_path(path.as_bytes().as_bstr())
        .map(|entry| Content::Blob(entry.id))
}

fn load(repo: &gix::Repository, dir: &Path, content: &Content) -> Result<Vec<u8>, GitError> {
    match content {
        Content::Blob(id) => Ok(repo.find_object(*id)?.detach().data),
        Content::Worktree(path) => {
            let full = worktree_path(dir, path)?;
            let meta = std::fs::symlink_metadata(&full)
                .map_err(|e| GitError::Other(format!("cannot read {path}: {e}")))?;
            if meta.file_type().is_symlink() {
                // git diffs a symlink's target text, never what it points at.
                let target = std::fs::read_link(&full)
                    .map_err(|e| GitError::Other(format!("cannot read {path}: {e}")))?;
                Ok(target.to_string_lossy().into_owned().into_bytes())
            } else {
                std::fs::read(&full)
                    .map_err(|e| GitError::Other(format!("cannot read {path}: {e}")))
            }
        }
    }
}

/// git's rule: a NUL byte in the first 8000 bytes makes a file binary.
fn is_binary(data: &[u8]) -> bool {
    data[..data.len().min(8000)].contains(&0)
}

/// Loads both sides and renders the patch; `None` when the contents are equal after all.
fn render(
    repo: &gix::Repository,
    dir: &Path,
    change: Change,
) -> Result<Option<FileDiff>, GitError> {
    let old = change
        .old
        .as_ref()
        .map(|c| load(repo, dir, c))
        .transpose()?;
    let new = change
        .new
        .as_ref()
        .map(|c| load(repo, dir, c))
        .transpose()?;
    if change.status == "modified" && old == new {
        return Ok(None);
    }
    let old_name = if change.old_path.is_empty() {
        &change.path
    } else {
        &change.old_path
    };
    let mut patch = format!("diff --git a/{old_name} b/{}\n", change.path);
    match change.status {
        "added" => patch.push_str("new file mode 100644\n"),
        "deleted" => patch.push_str("deleted file mode 100644\n"),
        "renamed" => patch.push_str(&format!(
            "rename from {old_name}\nrename to {}\n",
            change.path
        )),
        "copied" => patch.push_str(&format!("copy from {old_name}\ncopy to {}\n", change.path)),
        _ => {}
    }
    let old_bytes = old.unwrap_or_default();
    let new_bytes = new.unwrap_or_default();
    let old_label = if change.old.is_some() {
        format!("a/{old_name}")
    } else {
        "/dev/null".to_owned()
    };
    let new_label = if change.new.is_some() {
        format!("b/{}", change.path)
    } else {
        "/dev/null".to_owned()
    };
    let binary = is_binary(&old_bytes) || is_binary(&new_bytes);
    let (mut additions, mut deletions) = (0, 0);
    if binary {
        if old_bytes != new_bytes {
            patch.push_str(&format!(
                "Binary files {old_label} and {new_label} differ\n"
            ));
        }
    } else if old_bytes != new_bytes {
        let input = InternedInput::new(old_bytes.as_slice(), new_bytes.as_slice());
        let diff = diff_with_slider_heuristics(Algorithm::Myers, &input);
        additions = diff.count_additions();
        deletions = diff.count_removals();
        patch.push_str(&format!("--- {old_label}\n+++ {new_label}\n"));
        let hunks = UnifiedDiff::new(
            &diff,
            &input,
            GitHunks::new(&old_bytes),
            ContextSize::symmetrical(3),
        )
        .consume()
        .map_err(|e| GitError::Other(format!("cannot render diff: {e}")))?;
        patch.push_str(&hunks);
    }
    Ok(Some(FileDiff {
        path: change.path,
        old_path: change.old_path,
        status: change.status.to_owned(),
        binary,
        additions,
        deletions,
        patch,
    }))
}

/// Renders hunks the way `git diff` prints them (`@@ -1 +1,2 @@ context`, `\ No newline …`).
struct GitHunks<'a> {
    /// The old file's lines, for the function-name context after each hunk header.
    old_lines: Vec<&'a [u8]>,
    out: String,
}

impl<'a> GitHunks<'a> {
    fn new(old: &'a [u8]) -> Self {
        GitHunks {
            old_lines: old.split_inclusive(|&b| b == b'\n').collect(),
            out: String::new(),
        }
    }

    /// git's default "function name": the nearest line above the hunk (1-based `start`) that
    /// begins with a letter, `_` or `$`, cut to 80 bytes.
    fn context(&self, start: u32) -> String {
        let above = (start as usize).saturating_sub(1).min(self.old_lines.len());
        self.old_lines[..above]
            .iter()
            .rev()
            .find(|line| {
                line.first()
                    .is_some_and(|&b| b.is_ascii_alphabetic() || b == b'_' || b == b'$')
            })
            .map(|line| {
                let line = line.trim_end_with(|c| c == '\n' || c == '\r');
                let line = &line[..line.len().min(80)];
                format!(" {}", line.to_str_lossy())
            })
            .unwrap_or_default()
    }
}

/// git's range in a hunk header: `start,len`, `start` alone when `len` is 1, and the line
/// before the hunk when it is empty.
fn range(start: u32, len: u32) -> String {
    match len {
        0 => format!("{},0", start.saturating_sub(1)),
        1 => start.to_string(),
        _ => format!("{start},{len}"),
    }
}

impl ConsumeHunk for GitHunks<'_> {
    type Out = String;

    fn consume_hunk(
        &mut self,
        header: HunkHeader,
        lines: &[(DiffLineKind, &[u8])],
    ) -> std::io::Result<()> {
        let (before_start, after_start) = (header.before_hunk_start, header.after_hunk_start);
        let context = self.context(before_start);
        self.out.push_str(&format!(
            "@@ -{} +{} @@{context}\n",
            range(before_start, header.before_hunk_len),
            range(after_start, header.after_hunk_len)
        ));
        for (kind, line) in lines {
            self.out.push(kind.to_prefix());
            self.out.push_str(&line.to_str_lossy());
            if !line.ends_with(b"\n") {
                self.out.push_str("\n\\ No newline at end of file\n");
            }
        }
        Ok(())
    }

    fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_filters_match_files_and_directories() {
        assert!(covers("", "a/b"));
        assert!(covers("a", "a/b"));
        assert!(covers("a/b", "a/b"));
        assert!(!covers("a", "ab/c"));
        assert!(!covers("a/b/c", "a/b"));
    }

    #[test]
    fn hunk_ranges_look_like_git() {
        assert_eq!(range(1, 1), "1");
        assert_eq!(range(3, 4), "3,4");
        assert_eq!(range(1, 0), "0,0");
    }
}
