//! `cargo xtask tidy`: file conventions that rustfmt and clippy do not check.
//!
//! Every `.rs` file begins with a `//!` line saying what it is for, and every crate under
//! `crates/` and `bins/` has a `README.md` (included as its crate docs).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Directories whose `.rs` files must begin with `//!`.
const SOURCE_DIRS: &[&str] = &["crates", "bins", "migrations", "xtask", "tests"];
/// Directories whose every subdirectory is a crate that needs a `README.md`.
const CRATE_DIRS: &[&str] = &["crates", "bins"];

/// `cargo xtask tidy`.
pub(crate) fn run() -> anyhow::Result<()> {
    let problems = check(&crate::project_root())?;
    if problems.is_empty() {
        println!("tidy: ok");
        return Ok(());
    }
    for problem in &problems {
        eprintln!("tidy: {problem}");
    }
    bail!("{} tidy problem(s)", problems.len())
}

/// Every tidy problem under `root`, as printable lines with paths relative to `root`.
pub(crate) fn check(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();

    let mut files = Vec::new();
    for dir in SOURCE_DIRS {
        rust_files(&root.join(dir), &mut files)?;
    }
    files.sort();
    for file in files {
        let text = fs::read_to_string(&file)
            .with_context(|| format!("could not read {}", file.display()))?;
        if !text
            .lines()
            .next()
            .is_some_and(|line| line.starts_with("//!"))
        {
            problems.push(format!(
                "{}: the first line must be a `//!` comment saying what the file is for",
                relative(root, &file)
            ));
        }
    }

    for dir in CRATE_DIRS {
        for krate in subdirectories(&root.join(dir))? {
            if !krate.join("README.md").is_file() {
                problems.push(format!(
                    "{}: crate has no README.md",
                    relative(root, &krate)
                ));
            }
        }
    }
    Ok(problems)
}

/// Appends the `.rs` files under `dir` (if it exists) to `out`, skipping `target` and hidden dirs.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in fs::read_dir(dir).with_context(|| format!("could not list {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

fn subdirectories(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut dirs = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("could not list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_missing_module_docs_and_readmes() {
        let root = std::env::temp_dir().join(format!("xtask-tidy-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let write = |path: &str, text: &str| {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write("crates/good/README.md", "# good\n");
        write(
            "crates/good/src/lib.rs",
            "//! Good.\n#![doc = include_str!(\"../README.md\")]\n",
        );
        write(
            "crates/bad/src/lib.rs",
            "#![doc = \"no module doc line\"]\n",
        );
        write("crates/bad/target/debug/build.rs", "fn main() {}\n");
        write("tests/tests/empty.rs", "");

        let problems = check(&root).unwrap();
        fs::remove_dir_all(&root).unwrap();

        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].starts_with("crates/bad/src/lib.rs: "));
        assert!(problems[1].starts_with("tests/tests/empty.rs: "));
        assert_eq!(problems[2], "crates/bad: crate has no README.md");
    }
}
