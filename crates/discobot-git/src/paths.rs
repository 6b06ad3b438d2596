//! Pure path handling: `~` expansion, lexical cleaning, classification and suggestions.
//!
//! Everything here is synchronous filesystem reads; callers run it on a blocking thread.

use std::fs;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use discobot_core::model::{DirSuggestion, PathCheck, PathClass};

/// Most suggestions returned for one query.
pub const MAX_SUGGESTIONS: usize = 10;

pub(crate) const NOT_A_REPO: &str = "not a git repository: directory must contain a .git folder";

/// Expands a leading `~` or `~/` with `home`. `~user` forms are left alone.
pub fn expand_tilde(raw: &str, home: Option<&Path>) -> Result<PathBuf, String> {
    let rest = if raw == "~" {
        Some("")
    } else {
        raw.strip_prefix("~/")
    };
    match rest {
        Some(rest) => {
            let home =
                home.ok_or_else(|| "cannot expand ~: home directory is unknown".to_string())?;
            Ok(if rest.is_empty() {
                home.to_path_buf()
            } else {
                home.join(rest)
            })
        }
        None => Ok(PathBuf::from(raw)),
    }
}

/// Resolves `.` and `..` components without touching the filesystem; `..` never climbs
/// above the root. Drops trailing slashes and repeated separators.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Prefix(p) => out.push(p.as_os_str()),
            Component::RootDir => out.push(Component::RootDir.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `..` of the root is the root.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            Component::Normal(name) => out.push(name),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// Shows `path` as `~/…` when it lies under `home`.
pub fn display_with_tilde(path: &Path, home: Option<&Path>) -> String {
    if let Some(home) = home.filter(|h| h.is_absolute() && h.parent().is_some())
        && let Ok(rest) = path.strip_prefix(home)
    {
        return if rest.as_os_str().is_empty() {
            "~".to_string()
        } else {
            format!("~/{}", rest.display())
        };
    }
    path.display().to_string()
}

fn invalid(path: String, error: impl Into<String>) -> PathCheck {
    PathCheck {
        path,
        class: PathClass::Invalid,
        error: Some(error.into()),
    }
}

/// Expands, cleans and classifies a path typed by a user.
pub fn check(raw: &str, home: Option<&Path>) -> PathCheck {
    if raw.is_empty() {
        return invalid(String::new(), "path is required");
    }
    if raw.contains('\0') {
        return invalid(raw.replace('\0', ""), "path must not contain NUL bytes");
    }
    let expanded = match expand_tilde(raw, home) {
        Ok(p) => p,
        Err(e) => return invalid(raw.to_string(), e),
    };
    if !expanded.is_absolute() {
        return invalid(raw.to_string(), "path must be absolute");
    }
    let cleaned = clean(&expanded);
    let (class, error) = classify(&cleaned);
    PathCheck {
        path: cleaned.display().to_string(),
        class,
        error,
    }
}

/// Classifies an absolute, cleaned path by what is on disk.
pub fn classify(path: &Path) -> (PathClass, Option<String>) {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            if fs::symlink_metadata(path.join(".git")).is_ok() {
                return (PathClass::ExistingGit, None);
            }
            match fs::read_dir(path) {
                Ok(mut entries) => {
                    if entries.next().is_none() {
                        (PathClass::Empty, None)
                    } else {
                        (PathClass::Invalid, Some(NOT_A_REPO.to_string()))
                    }
                }
                Err(e) => (
                    PathClass::Invalid,
                    Some(format!("cannot read directory {}: {e}", path.display())),
                ),
            }
        }
        Ok(_) => (
            PathClass::Invalid,
            Some(format!("path is not a directory: {}", path.display())),
        ),
        Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::NotADirectory => {
            let parent = path.parent().unwrap_or(Path::new("/"));
            if parent.is_dir() {
                (PathClass::New, None)
            } else {
                (
                    PathClass::Invalid,
                    Some(format!(
                        "parent directory does not exist: {}",
                        parent.display()
                    )),
                )
            }
        }
        Err(e) => (
            PathClass::Invalid,
            Some(format!("cannot access {}: {e}", path.display())),
        ),
    }
}

/// Sub-directories matching `query` for the path picker (see the crate README).
pub fn suggest(query: &str, home: Option<&Path>) -> Vec<DirSuggestion> {
    if query.is_empty() || query.contains('\0') {
        return Vec::new();
    }
    let Ok(expanded) = expand_tilde(query, home) else {
        return Vec::new();
    };
    if !expanded.is_absolute() {
        return Vec::new();
    }
    // A query naming a directory lists its children; otherwise the last part is a prefix
    // of the children of its parent. Split on the text so that `/a/b/` and `/a/.x` keep
    // their meaning.
    let text = expanded.to_string_lossy().into_owned();
    let (dir, prefix) = if let Some(parent) = text.strip_suffix("/.") {
        // `~/.` asks for hidden directories, not for the listing of `~`.
        (
            clean(Path::new(if parent.is_empty() { "/" } else { parent })),
            ".".to_string(),
        )
    } else if expanded.is_dir() {
        (clean(&expanded), String::new())
    } else {
        match text.rsplit_once('/') {
            Some((parent, base)) => {
                let parent = if parent.is_empty() { "/" } else { parent };
                (clean(Path::new(parent)), base.to_string())
            }
            None => return Vec::new(),
        }
    };
    let show_hidden = prefix.starts_with('.');
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.starts_with(&prefix))
        .filter(|name| show_hidden || !name.starts_with('.'))
        .filter(|name| dir.join(name).is_dir())
        .collect();
    names.sort();
    names
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|name| {
            let full = dir.join(&name);
            let (class, _) = classify(&full);
            DirSuggestion {
                value: display_with_tilde(&full, home),
                valid: class.is_valid(),
                class,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_resolves_dots_lexically() {
        assert_eq!(clean(Path::new("/a/b/../c/./d/")), PathBuf::from("/a/c/d"));
        assert_eq!(clean(Path::new("/../../x")), PathBuf::from("/x"));
        assert_eq!(clean(Path::new("/")), PathBuf::from("/"));
        assert_eq!(clean(Path::new("//a//b")), PathBuf::from("/a/b"));
        assert_eq!(clean(Path::new("a/../..")), PathBuf::from(".."));
        assert_eq!(clean(Path::new("../../a")), PathBuf::from("../../a"));
    }

    #[test]
    fn tilde_expansion_and_display() {
        let home = Path::new("/home/u");
        assert_eq!(
            expand_tilde("~", Some(home)).unwrap(),
            PathBuf::from("/home/u")
        );
        assert_eq!(
            expand_tilde("~/x/y", Some(home)).unwrap(),
            PathBuf::from("/home/u/x/y")
        );
        assert_eq!(
            expand_tilde("~bob/x", Some(home)).unwrap(),
            PathBuf::from("~bob/x")
        );
        assert!(expand_tilde("~/x", None).is_err());
        assert_eq!(
            display_with_tilde(Path::new("/home/u/p"), Some(home)),
            "~/p"
        );
        assert_eq!(display_with_tilde(Path::new("/home/u"), Some(home)), "~");
        assert_eq!(
            display_with_tilde(Path::new("/home/user2"), Some(home)),
            "/home/user2"
        );
        assert_eq!(
            display_with_tilde(Path::new("/x"), Some(Path::new("/"))),
            "/x"
        );
    }

    #[test]
    fn relative_and_nul_are_invalid() {
        let c = check("rel/path", None);
        assert_eq!(c.class, PathClass::Invalid);
        assert_eq!(c.error.as_deref(), Some("path must be absolute"));
        let c = check("/tmp/a\0b", None);
        assert_eq!(c.class, PathClass::Invalid);
        assert!(c.error.unwrap().contains("NUL"));
    }
}
