//! The working copy, the file routes, `GET /diff` and `GET /commits`, against real temporary
//! git repositories and the `git` CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use discobot_agent::{AgentConfig, AgentState, router};
use discobot_core::replay::{ChangeStatus, ReplayBundle};
use serde_json::{Value, json};
use tower::ServiceExt;

/// Runs git in `dir` with a fixed identity; panics with its stderr when it fails.
fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn write(dir: &Path, rel: &str, content: &[u8]) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A git origin on `main` with one commit: `README.md`, `src/lib.rs`, `old.txt`, `gone.txt`.
fn origin() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "--quiet", "-b", "main"]);
    write(dir.path(), "README.md", b"# demo\n");
    write(
        dir.path(),
        "src/lib.rs",
        b"pub fn one() -> u32 {\n    1\n}\n",
    );
    write(
        dir.path(),
        "old.txt",
        b"a file that will move\nwith two lines\n",
    );
    write(dir.path(), "gone.txt", b"deleted soon\n");
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "--quiet", "-m", "initial"]);
    dir
}

/// An agent over `origin`, its working copy prepared; the temp dirs live as long as it.
struct Agent {
    router: Router,
    work: PathBuf,
    _data: tempfile::TempDir,
}

async fn agent(origin: &Path, commit: Option<&str>) -> Agent {
    let data = tempfile::tempdir().unwrap();
    let config = AgentConfig {
        workspace: origin.to_owned(),
        workspace_commit: commit.map(str::to_owned),
        data_dir: data.path().to_owned(),
        ..AgentConfig::default()
    };
    discobot_agent::workspace::prepare(&config).await.unwrap();
    let state = AgentState::new(&config).unwrap();
    assert_eq!(state.origin(), origin);
    Agent {
        work: state.workspace().to_owned(),
        router: router(state),
        _data: data,
    }
}

impl Agent {
    async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), 64 << 20).await.unwrap();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{uri}: not JSON: {}", String::from_utf8_lossy(&bytes)));
        (status, value)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, None).await
    }

    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, uri, Some(body)).await
    }
}

fn err(status: StatusCode, message: &str) -> (StatusCode, Value) {
    (status, json!({"error": message}))
}

#[tokio::test]
async fn the_working_copy_is_a_clone_at_the_session_commit() {
    let origin = origin();
    let first = git(origin.path(), &["rev-parse", "HEAD"]);
    write(origin.path(), "later.txt", b"after the session commit\n");
    git(origin.path(), &["add", "-A"]);
    git(origin.path(), &["commit", "--quiet", "-m", "later"]);

    let agent = agent(origin.path(), Some(&first)).await;
    assert_eq!(git(&agent.work, &["rev-parse", "HEAD"]), first);
    assert!(agent.work.join("README.md").is_file());
    assert!(
        !agent.work.join("later.txt").exists(),
        "a later commit is not checked out"
    );
    assert_eq!(
        git(&agent.work, &["remote", "get-url", "origin"]),
        origin.path().display().to_string()
    );
    assert_eq!(git(&agent.work, &["branch", "--show-current"]), "main");
    // The clone shares no inode with the origin.
    use std::os::unix::fs::MetadataExt;
    assert_ne!(
        std::fs::metadata(agent.work.join("README.md"))
            .unwrap()
            .ino(),
        std::fs::metadata(origin.path().join("README.md"))
            .unwrap()
            .ino()
    );
    // No staging directory is left next to it.
    let siblings: Vec<_> = std::fs::read_dir(agent.work.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("staging"))
        .collect();
    assert!(siblings.is_empty(), "{siblings:?}");
}

#[tokio::test]
async fn an_existing_working_copy_is_kept_and_a_half_made_clone_is_redone() {
    let origin = origin();
    let data = tempfile::tempdir().unwrap();
    let config = AgentConfig {
        workspace: origin.path().to_owned(),
        data_dir: data.path().to_owned(),
        ..AgentConfig::default()
    };
    // What a crash mid-clone leaves behind.
    write(data.path(), ".workspace.staging/junk", b"half a clone");
    discobot_agent::workspace::prepare(&config).await.unwrap();
    let work = config.work_dir();
    assert!(work.join("README.md").is_file());
    assert!(!data.path().join(".workspace.staging").exists());

    write(&work, "mine.txt", b"work in progress\n");
    discobot_agent::workspace::prepare(&config).await.unwrap();
    assert_eq!(
        std::fs::read(work.join("mine.txt")).unwrap(),
        b"work in progress\n",
        "a restart keeps the working copy as it is"
    );
}

#[tokio::test]
async fn a_plain_folder_origin_is_copied_and_committed() {
    let origin = tempfile::tempdir().unwrap();
    write(origin.path(), "notes/a.txt", b"alpha\n");
    std::os::unix::fs::symlink("notes/a.txt", origin.path().join("link")).unwrap();
    let agent = agent(origin.path(), None).await;
    assert_eq!(
        std::fs::read(agent.work.join("notes/a.txt")).unwrap(),
        b"alpha\n"
    );
    assert_eq!(
        std::fs::read_link(agent.work.join("link")).unwrap(),
        PathBuf::from("notes/a.txt")
    );
    assert_eq!(git(&agent.work, &["rev-list", "--count", "HEAD"]), "1");
    assert_eq!(git(&agent.work, &["status", "--porcelain"]), "");
    assert!(
        !origin.path().join(".git").exists(),
        "the origin is not touched"
    );
    // Its diff starts empty.
    let (status, diff) = agent.get("/diff").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(diff["stats"]["filesChanged"], 0);
}

#[tokio::test]
async fn files_list_read_write_delete_rename() {
    let origin = origin();
    let agent = agent(origin.path(), None).await;
    write(&agent.work, ".env", b"HIDDEN=1\n");

    let (status, list) = agent.get("/files").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["path"], ".");
    let names: Vec<&str> = list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["src", "README.md", "gone.txt", "old.txt"]);
    assert_eq!(
        list["entries"][0],
        json!({"name": "src", "type": "directory"})
    );
    assert_eq!(
        list["entries"][1],
        json!({"name": "README.md", "type": "file", "size": 7})
    );
    let (_, hidden) = agent.get("/files?path=.&hidden=true").await;
    let names: Vec<&str> = hidden["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&".env"));
    assert!(!names.contains(&".git"), "never .git");
    assert_eq!(
        agent.get("/files?path=src").await.1["entries"][0]["name"],
        "lib.rs"
    );
    assert_eq!(
        agent.get("/files?path=nope").await,
        err(StatusCode::NOT_FOUND, "Directory not found")
    );
    assert_eq!(
        agent.get("/files?path=README.md").await,
        err(StatusCode::BAD_REQUEST, "Not a directory")
    );

    assert_eq!(
        agent.get("/files/read?path=README.md").await,
        (
            StatusCode::OK,
            json!({"path": "README.md", "content": "# demo\n", "encoding": "utf8", "size": 7})
        )
    );
    write(&agent.work, "img.bin", &[0x89, 0x50, 0x00, 0xff, 0xfe]);
    let (status, binary) = agent.get("/files/read?path=img.bin").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(binary["encoding"], "base64");
    assert_eq!(binary["size"], 5);
    assert_eq!(
        BASE64.decode(binary["content"].as_str().unwrap()).unwrap(),
        [0x89, 0x50, 0x00, 0xff, 0xfe]
    );
    assert_eq!(
        agent.get("/files/read").await,
        err(StatusCode::BAD_REQUEST, "path query parameter required")
    );
    assert_eq!(
        agent.get("/files/read?path=missing.txt").await,
        err(StatusCode::NOT_FOUND, "File not found")
    );
    assert_eq!(
        agent.get("/files/read?path=src").await,
        err(StatusCode::BAD_REQUEST, "Is a directory")
    );
    std::fs::write(agent.work.join("big.bin"), vec![b'x'; 10 * 1024 * 1024 + 1]).unwrap();
    assert_eq!(
        agent.get("/files/read?path=big.bin").await,
        err(StatusCode::PAYLOAD_TOO_LARGE, "File too large")
    );

    assert_eq!(
        agent
            .post(
                "/files/write",
                json!({"path": "new/deep/file.txt", "content": "héllo"})
            )
            .await,
        (
            StatusCode::OK,
            json!({"path": "new/deep/file.txt", "size": 6})
        )
    );
    assert_eq!(
        std::fs::read_to_string(agent.work.join("new/deep/file.txt")).unwrap(),
        "héllo"
    );
    assert_eq!(
        agent
            .post("/files/write", json!({"path": "empty.txt", "content": ""}))
            .await,
        (StatusCode::OK, json!({"path": "empty.txt", "size": 0}))
    );
    assert_eq!(std::fs::read(agent.work.join("empty.txt")).unwrap(), b"");
    assert_eq!(
        agent
            .post(
                "/files/write",
                json!({"path": "b.bin", "content": BASE64.encode([0u8, 1, 2]), "encoding": "base64"})
            )
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(std::fs::read(agent.work.join("b.bin")).unwrap(), [0, 1, 2]);
    assert_eq!(
        agent.post("/files/write", json!({"path": "x.txt"})).await,
        err(StatusCode::BAD_REQUEST, "content is required")
    );
    assert_eq!(
        agent.post("/files/write", json!({"content": "x"})).await,
        err(StatusCode::BAD_REQUEST, "path is required")
    );
    assert_eq!(
        agent
            .post(
                "/files/write",
                json!({"path": "x.bin", "content": "%%%", "encoding": "base64"})
            )
            .await,
        err(StatusCode::BAD_REQUEST, "Invalid base64 content")
    );

    assert_eq!(
        agent
            .post(
                "/files/rename",
                json!({"oldPath": "old.txt", "newPath": "moved/new.txt"})
            )
            .await,
        (
            StatusCode::OK,
            json!({"oldPath": "old.txt", "newPath": "moved/new.txt"})
        )
    );
    assert!(!agent.work.join("old.txt").exists());
    assert!(agent.work.join("moved/new.txt").is_file());
    assert_eq!(
        agent
            .post("/files/rename", json!({"oldPath": "nope", "newPath": "x"}))
            .await,
        err(StatusCode::NOT_FOUND, "File not found")
    );
    assert_eq!(
        agent.post("/files/rename", json!({"newPath": "x"})).await,
        err(StatusCode::BAD_REQUEST, "oldPath is required")
    );
    assert_eq!(
        agent.post("/files/rename", json!({"oldPath": "x"})).await,
        err(StatusCode::BAD_REQUEST, "newPath is required")
    );

    assert_eq!(
        agent
            .post("/files/delete", json!({"path": "gone.txt"}))
            .await,
        (StatusCode::OK, json!({"path": "gone.txt", "type": "file"}))
    );
    assert_eq!(
        agent.post("/files/delete", json!({"path": "new"})).await,
        (StatusCode::OK, json!({"path": "new", "type": "directory"}))
    );
    assert!(!agent.work.join("new").exists());
    assert_eq!(
        agent
            .post("/files/delete", json!({"path": "gone.txt"}))
            .await,
        err(StatusCode::NOT_FOUND, "File not found")
    );
    assert_eq!(
        agent.post("/files/delete", json!({"path": "."})).await,
        err(StatusCode::BAD_REQUEST, "Cannot delete workspace root")
    );
    assert_eq!(
        agent.post("/files/delete", json!({})).await,
        err(StatusCode::BAD_REQUEST, "path is required")
    );
}

#[tokio::test]
async fn every_path_stays_inside_the_working_copy() {
    let origin = origin();
    let agent = agent(origin.path(), None).await;
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.txt", b"outside\n");
    std::os::unix::fs::symlink(outside.path(), agent.work.join("out")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), agent.work.join("secret"))
        .unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("nothing-yet"),
        agent.work.join("dangling"),
    )
    .unwrap();
    // A symlink that stays inside is fine.
    std::os::unix::fs::symlink("src", agent.work.join("inside")).unwrap();
    assert_eq!(
        agent.get("/files/read?path=inside/lib.rs").await.0,
        StatusCode::OK
    );

    let invalid = err(StatusCode::BAD_REQUEST, "Invalid path");
    for bad in [
        "../x",
        "/etc/passwd",
        "a%00b",
        "src/../../x",
        "out",
        "out/secret.txt",
        "secret",
        ".git/config",
    ] {
        assert_eq!(
            agent.get(&format!("/files/read?path={bad}")).await,
            invalid,
            "read {bad}"
        );
        assert_eq!(
            agent.get(&format!("/files?path={bad}")).await,
            invalid,
            "list {bad}"
        );
        if !bad.starts_with("out") && bad != "secret" {
            // The diff only names paths (a tracked symlink is diffed as its link text).
            assert_eq!(
                agent.get(&format!("/diff?path={bad}")).await,
                invalid,
                "diff {bad}"
            );
        }
    }
    for bad in [
        "../x",
        "/etc/passwd",
        "a\0b",
        "out/x",
        "out/new/dir/x",
        "secret",
        "dangling",
    ] {
        assert_eq!(
            agent
                .post("/files/write", json!({"path": bad, "content": "pwned"}))
                .await,
            invalid,
            "write {bad:?}"
        );
    }
    for bad in ["../x", "/etc/passwd", "a\0b", "out/secret.txt"] {
        assert_eq!(
            agent.post("/files/delete", json!({"path": bad})).await,
            invalid,
            "delete {bad:?}"
        );
        assert_eq!(
            agent
                .post("/files/rename", json!({"oldPath": bad, "newPath": "x"}))
                .await,
            err(StatusCode::BAD_REQUEST, "Invalid source path"),
            "rename from {bad:?}"
        );
        assert_eq!(
            agent
                .post(
                    "/files/rename",
                    json!({"oldPath": "README.md", "newPath": bad})
                )
                .await,
            err(StatusCode::BAD_REQUEST, "Invalid destination path"),
            "rename to {bad:?}"
        );
    }
    assert!(!outside.path().join("x").exists());
    assert!(!outside.path().join("new").exists());
    assert!(!outside.path().join("nothing-yet").exists());
    assert_eq!(
        std::fs::read(outside.path().join("secret.txt")).unwrap(),
        b"outside\n"
    );
    assert!(
        agent.work.join("README.md").exists(),
        "nothing was renamed away"
    );
}

#[tokio::test]
async fn search_is_fuzzy_and_respects_gitignore() {
    let origin = origin();
    let agent = agent(origin.path(), None).await;
    write(&agent.work, ".gitignore", b"target/\n");
    write(&agent.work, "target/debug/lib.rs", b"built\n");
    write(&agent.work, "src/library/mod.rs", b"\n");

    let (status, found) = agent.get("/files/search?q=lib.rs").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["query"], "lib.rs");
    let results = found["results"].as_array().unwrap();
    assert_eq!(
        results[0],
        json!({"path": "src/lib.rs", "type": "file", "score": results[0]["score"]})
    );
    assert!(
        results
            .iter()
            .all(|r| !r["path"].as_str().unwrap().starts_with("target")),
        "ignored files are left out: {results:?}"
    );
    let (_, dirs) = agent.get("/files/search?q=librry").await;
    assert!(
        dirs["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["path"] == "src/library" && r["type"] == "directory"),
        "{dirs}"
    );
    let (_, none) = agent.get("/files/search?q=zzzzqqq").await;
    assert_eq!(none["results"], json!([]));
    let (_, limited) = agent.get("/files/search?q=&limit=2").await;
    assert_eq!(limited["results"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn diff_covers_modified_added_untracked_deleted_renamed_and_binary() {
    let origin = origin();
    let agent = agent(origin.path(), None).await;
    let work = &agent.work;
    write(work, "src/lib.rs", b"pub fn one() -> u32 {\n    2\n}\n");
    write(work, "staged.txt", b"new and staged\n");
    git(work, &["add", "staged.txt"]);
    write(work, "untracked.txt", b"one\ntwo\n");
    write(work, "blob.bin", &[1, 0, 2, 3]);
    std::fs::remove_file(work.join("gone.txt")).unwrap();
    git(work, &["mv", "old.txt", "renamed.txt"]);

    let (status, diff) = agent.get("/diff").await;
    assert_eq!(status, StatusCode::OK);
    let files = diff["files"].as_array().unwrap();
    let by_path = |path: &str| {
        files
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("{path} in {diff}"))
            .clone()
    };
    let modified = by_path("src/lib.rs");
    assert_eq!(modified["status"], "modified");
    assert_eq!(
        (
            modified["additions"].as_u64(),
            modified["deletions"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert!(modified["patch"].as_str().unwrap().contains("+    2"));
    assert_eq!(modified["binary"], false);
    assert_eq!(by_path("staged.txt")["status"], "added");
    let untracked = by_path("untracked.txt");
    assert_eq!(untracked["status"], "added");
    assert_eq!(untracked["additions"], 2);
    assert!(
        untracked["patch"]
            .as_str()
            .unwrap()
            .contains("+one\n+two\n")
    );
    let binary = by_path("blob.bin");
    assert_eq!(
        (binary["status"].as_str(), binary["binary"].as_bool()),
        (Some("added"), Some(true))
    );
    let deleted = by_path("gone.txt");
    assert_eq!(
        (deleted["status"].as_str(), deleted["deletions"].as_u64()),
        (Some("deleted"), Some(1))
    );
    let renamed = by_path("renamed.txt");
    assert_eq!(renamed["status"], "renamed");
    assert_eq!(renamed["oldPath"], "old.txt");
    assert_eq!(files.len(), 6, "{diff}");
    assert_eq!(
        diff["stats"],
        json!({"filesChanged": 6, "additions": 1 + 1 + 2, "deletions": 1 + 1})
    );

    let (_, names) = agent.get("/diff?format=files").await;
    assert_eq!(names["stats"], diff["stats"]);
    assert!(names["files"].as_array().unwrap().contains(&json!({
        "path": "renamed.txt", "status": "renamed", "oldPath": "old.txt"
    })));
    assert!(names["files"][0].get("patch").is_none());

    let (_, one) = agent.get("/diff?path=src/lib.rs").await;
    assert_eq!(one["path"], "src/lib.rs");
    assert_eq!(one["status"], "modified");
    assert!(
        one["patch"]
            .as_str()
            .unwrap()
            .starts_with("diff --git a/src/lib.rs")
    );
    assert_eq!(
        agent.get("/diff?path=README.md").await,
        (
            StatusCode::OK,
            json!({"path": "README.md", "status": "unchanged", "additions": 0, "deletions": 0, "binary": false, "patch": ""})
        )
    );
    assert_eq!(
        agent.get("/diff?path=../etc").await,
        err(StatusCode::BAD_REQUEST, "Invalid path")
    );

    // Committed work stays in the diff: the base is where the clone started.
    git(work, &["add", "-A"]);
    git(work, &["commit", "--quiet", "-m", "work"]);
    let (_, after) = agent.get("/diff?format=files").await;
    assert_eq!(after["stats"]["filesChanged"], 6);
}

fn bundle(body: &Value) -> ReplayBundle {
    serde_json::from_str(body["replayBundle"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn commits_bundle_carries_modes_symlinks_binaries_renames_and_deletions() {
    use std::os::unix::fs::PermissionsExt;
    let origin = origin();
    let agent = agent(origin.path(), None).await;
    let work = &agent.work;
    let base = git(work, &["rev-parse", "HEAD"]);

    write(work, "run.sh", b"#!/bin/sh\necho hi\n");
    std::fs::set_permissions(work.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("README.md", work.join("readme-link")).unwrap();
    write(work, "logo.bin", &[0, 159, 146, 150]);
    git(work, &["add", "-A"]);
    git(work, &["commit", "--quiet", "-m", "tools\n\nwith a body\n"]);
    git(work, &["mv", "old.txt", "renamed.txt"]);
    git(work, &["rm", "--quiet", "gone.txt"]);
    write(work, "README.md", b"# demo\nmore\n");
    git(work, &["add", "-A"]);
    let env_date = [
        ("GIT_AUTHOR_DATE", "1700000000 +0130"),
        ("GIT_COMMITTER_DATE", "1700000100 -0500"),
    ];
    let output = Command::new("git")
        .args(["commit", "--quiet", "-m", "reshape"])
        .current_dir(work)
        .env("GIT_AUTHOR_NAME", "Grace")
        .env("GIT_AUTHOR_EMAIL", "grace@example.com")
        .env("GIT_COMMITTER_NAME", "Linus")
        .env("GIT_COMMITTER_EMAIL", "linus@example.com")
        .envs(env_date)
        .output()
        .unwrap();
    assert!(output.status.success());
    let old_blob = git(origin.path(), &["rev-parse", "HEAD:old.txt"]);
    let gone_blob = git(origin.path(), &["rev-parse", "HEAD:gone.txt"]);
    let readme_blob = git(origin.path(), &["rev-parse", "HEAD:README.md"]);

    let (status, body) = agent.get(&format!("/commits?parent={base}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["commitCount"], 2);
    let bundle = bundle(&body);
    assert_eq!(bundle.version, 1);
    assert_eq!(bundle.parent, base);
    let [first, second] = &bundle.commits[..] else {
        panic!("two commits: {bundle:?}");
    };
    assert_eq!(first.message, "tools\n\nwith a body\n");
    assert_eq!(first.author_name, "Ada");
    assert_eq!(first.author_email, "ada@example.com");
    let change = |commit: &discobot_core::replay::ReplayCommit, path: &str| {
        commit
            .changes
            .iter()
            .find(|c| c.path == path)
            .unwrap_or_else(|| panic!("{path} in {commit:?}"))
            .clone()
    };
    let script = change(first, "run.sh");
    assert_eq!(script.status, ChangeStatus::Added);
    assert_eq!(script.mode.as_deref(), Some("100755"));
    assert_eq!(
        BASE64.decode(script.content.unwrap()).unwrap(),
        b"#!/bin/sh\necho hi\n"
    );
    assert_eq!(script.previous_blob, None);
    let link = change(first, "readme-link");
    assert_eq!(link.mode.as_deref(), Some("120000"));
    assert_eq!(BASE64.decode(link.content.unwrap()).unwrap(), b"README.md");
    let logo = change(first, "logo.bin");
    assert!(logo.binary);
    assert_eq!(
        BASE64.decode(logo.content.unwrap()).unwrap(),
        [0, 159, 146, 150]
    );
    assert_eq!(first.changes.len(), 3);

    assert_eq!(second.message, "reshape\n");
    assert_eq!(
        (second.author_name.as_str(), second.author_email.as_str()),
        ("Grace", "grace@example.com")
    );
    assert_eq!(second.author_date, "1700000000 +0130");
    assert_eq!(
        (
            second.committer_name.as_str(),
            second.committer_date.as_str()
        ),
        ("Linus", "1700000100 -0500")
    );
    assert_eq!(second.committer_email, "linus@example.com");
    let renamed = change(second, "renamed.txt");
    assert_eq!(renamed.status, ChangeStatus::Renamed);
    assert_eq!(renamed.old_path.as_deref(), Some("old.txt"));
    assert_eq!(renamed.previous_blob.as_deref(), Some(old_blob.as_str()));
    assert_eq!(renamed.mode.as_deref(), Some("100644"));
    let gone = change(second, "gone.txt");
    assert_eq!(gone.status, ChangeStatus::Deleted);
    assert_eq!((gone.mode, gone.content), (None, None));
    assert_eq!(gone.previous_blob.as_deref(), Some(gone_blob.as_str()));
    let readme = change(second, "README.md");
    assert_eq!(readme.status, ChangeStatus::Modified);
    assert_eq!(readme.previous_blob.as_deref(), Some(readme_blob.as_str()));
    assert_eq!(
        BASE64.decode(readme.content.unwrap()).unwrap(),
        b"# demo\nmore\n"
    );
    assert_eq!(second.changes.len(), 3);
}

#[tokio::test]
async fn commits_errors() {
    let origin = origin();
    let agent = agent(origin.path(), None).await;
    let work = &agent.work;
    let base = git(work, &["rev-parse", "HEAD"]);

    let (status, body) = agent.get("/commits").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_parent"))
    );
    let (status, body) = agent
        .get("/commits?parent=0123456789abcdef0123456789abcdef01234567")
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_parent"))
    );
    assert!(body["message"].is_string());
    let (status, body) = agent.get("/commits?parent=--all").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_parent"))
    );

    assert_eq!(
        agent.get(&format!("/commits?parent={base}")).await,
        (
            StatusCode::NOT_FOUND,
            json!({"error": "no_commits", "message": "no commits on top of the parent", "isClean": true, "headCommit": base})
        )
    );
    write(work, "dirty.txt", b"x\n");
    let (status, body) = agent.get(&format!("/commits?parent={base}")).await;
    assert_eq!(
        (status, body["isClean"].as_bool()),
        (StatusCode::NOT_FOUND, Some(false))
    );

    // A commit on a side branch is no ancestor of HEAD.
    git(work, &["checkout", "--quiet", "-b", "side"]);
    git(work, &["add", "-A"]);
    git(work, &["commit", "--quiet", "-m", "side"]);
    let side = git(work, &["rev-parse", "HEAD"]);
    git(work, &["checkout", "--quiet", "main"]);
    let (status, body) = agent.get(&format!("/commits?parent={side}")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("parent_mismatch"))
    );

    // A working copy that is no repository at all.
    let data = tempfile::tempdir().unwrap();
    let plain = tempfile::tempdir().unwrap();
    let config = AgentConfig {
        data_dir: data.path().to_owned(),
        work_dir: Some(plain.path().to_owned()),
        ..AgentConfig::default()
    };
    let lone = Agent {
        router: router(AgentState::new(&config).unwrap()),
        work: plain.path().to_owned(),
        _data: data,
    };
    let (status, body) = lone.get(&format!("/commits?parent={base}")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("not_git_repo"))
    );
}

#[tokio::test]
async fn file_routes_need_the_bearer_token() {
    let origin = origin();
    let data = tempfile::tempdir().unwrap();
    let config = AgentConfig {
        workspace: origin.path().to_owned(),
        data_dir: data.path().to_owned(),
        secret_hash: Some(discobot_agent_api::secret::salted_hash("raw", &[7; 16])),
        ..AgentConfig::default()
    };
    discobot_agent::workspace::prepare(&config).await.unwrap();
    let app = router(AgentState::new(&config).unwrap());
    for uri in [
        "/files",
        "/files/read?path=README.md",
        "/diff",
        "/commits?parent=HEAD",
    ] {
        let response = app
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{uri}");
    }
}
