//! `check_local_path`: every classification, cleaning, `~` expansion and bad input.

use discobot_core::model::PathClass;
use discobot_core::ports::GitPort;

use crate::util::{adapter, git};

#[tokio::test]
async fn classifies_each_kind_of_path() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let git_dir = root.join("repo");
    std::fs::create_dir(&git_dir).unwrap();
    git(&git_dir, &["init", "-q"]);
    let worktree_like = root.join("linked");
    std::fs::create_dir(&worktree_like).unwrap();
    std::fs::write(worktree_like.join(".git"), "gitdir: /somewhere/else\n").unwrap();
    std::fs::create_dir(root.join("empty")).unwrap();
    std::fs::create_dir(root.join("full")).unwrap();
    std::fs::write(root.join("full/notes.txt"), "x").unwrap();
    std::fs::write(root.join("file.txt"), "x").unwrap();
    let a = adapter(root);
    let p = |s: &str| root.join(s).display().to_string();

    let c = a.check_local_path(&p("new-dir")).await.unwrap();
    assert_eq!(
        (c.class, c.error.as_deref(), c.path.as_str()),
        (PathClass::New, None, p("new-dir").as_str())
    );

    let c = a.check_local_path(&p("empty")).await.unwrap();
    assert_eq!((c.class, c.error), (PathClass::Empty, None));

    let c = a.check_local_path(&p("repo")).await.unwrap();
    assert_eq!((c.class, c.error), (PathClass::ExistingGit, None));

    let c = a.check_local_path(&p("linked")).await.unwrap();
    assert_eq!(c.class, PathClass::ExistingGit, ".git as a file counts");

    let c = a.check_local_path(&p("file.txt")).await.unwrap();
    assert_eq!(c.class, PathClass::Invalid);
    assert_eq!(
        c.error.unwrap(),
        format!("path is not a directory: {}", p("file.txt"))
    );

    let c = a.check_local_path(&p("full")).await.unwrap();
    assert_eq!(c.class, PathClass::Invalid);
    assert_eq!(
        c.error.unwrap(),
        "not a git repository: directory must contain a .git folder"
    );

    let c = a.check_local_path(&p("missing/child")).await.unwrap();
    assert_eq!(c.class, PathClass::Invalid);
    assert_eq!(
        c.error.unwrap(),
        format!("parent directory does not exist: {}", p("missing"))
    );

    let c = a.check_local_path(&p("file.txt/child")).await.unwrap();
    assert_eq!(c.class, PathClass::Invalid);
    assert!(
        c.error
            .unwrap()
            .starts_with("parent directory does not exist: ")
    );
}

#[tokio::test]
async fn cleans_dot_components_lexically() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir(root.join("empty")).unwrap();
    let a = adapter(root);
    // `nowhere` does not exist: cleaning must not need it.
    let raw = format!("{}/nowhere/../././empty/", root.display());
    let c = a.check_local_path(&raw).await.unwrap();
    assert_eq!(c.path, root.join("empty").display().to_string());
    assert_eq!(c.class, PathClass::Empty);

    let c = a.check_local_path("/../../..").await.unwrap();
    assert_eq!(c.path, "/");
}

#[tokio::test]
async fn expands_tilde_from_configured_home() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    std::fs::create_dir(home.join("proj")).unwrap();
    let a = adapter(home);

    let c = a.check_local_path("~/proj").await.unwrap();
    assert_eq!(c.path, home.join("proj").display().to_string());
    assert_eq!(c.class, PathClass::Empty);

    let c = a.check_local_path("~/brand-new").await.unwrap();
    assert_eq!(c.path, home.join("brand-new").display().to_string());
    assert_eq!(c.class, PathClass::New);

    let c = a.check_local_path("~").await.unwrap();
    assert_eq!(c.path, home.display().to_string());

    // `~user` is not ours to expand, so it stays relative.
    let c = a.check_local_path("~someone/x").await.unwrap();
    assert_eq!(c.class, PathClass::Invalid);
    assert_eq!(c.error.unwrap(), "path must be absolute");
}

#[tokio::test]
async fn rejects_relative_empty_and_nul() {
    let a = adapter(std::path::Path::new("/nonexistent-home"));
    for raw in ["relative/dir", "./x", "../x"] {
        let c = a.check_local_path(raw).await.unwrap();
        assert_eq!(c.class, PathClass::Invalid, "{raw}");
        assert_eq!(c.error.as_deref(), Some("path must be absolute"), "{raw}");
    }
    let c = a.check_local_path("/tmp/a\0b").await.unwrap();
    assert_eq!(c.class, PathClass::Invalid);
    assert!(c.error.unwrap().contains("NUL"));
    assert!(!c.path.contains('\0'));

    let c = a.check_local_path("").await.unwrap();
    assert_eq!(c.class, PathClass::Invalid);
}
