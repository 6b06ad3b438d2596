//! Workspace git routes (#38–#48) over HTTP against a real repository: status, write, stage,
//! diff, commit, log, files, branches, checkout, fetch, and the 4xx of each.

use discobot_tests::reqwest::{Method, StatusCode};
use discobot_tests::{Body, TestServer, e2e_tests, git, git_fixture, json, str_field};
use serde_json::Value;

use crate::common::{LOCAL, assert_client_error};

e2e_tests! {
    workspace_git_round_trip => workspace_git_round_trip_sqlite, workspace_git_round_trip_postgres;
    workspace_git_client_errors => workspace_git_client_errors_sqlite, workspace_git_client_errors_postgres;
}

/// A ready workspace over a fresh fixture repository; returns `(base URL, repo dir)`.
async fn ready_workspace(
    server: &TestServer,
    tmp: &std::path::Path,
) -> (String, std::path::PathBuf) {
    let fixture = git_fixture(&tmp.join("repo"));
    let created = server
        .expect(
            Method::POST,
            &format!("{LOCAL}/workspaces"),
            Some(json!({"path": fixture.dir.display().to_string()})),
            201,
        )
        .await;
    let id = str_field(&created, "id").to_owned();
    server.wait_workspace_status("local", &id, "ready").await;
    (format!("{LOCAL}/workspaces/{id}/git"), fixture.dir)
}

async fn workspace_git_round_trip(server: &TestServer) {
    let tmp = tempfile::tempdir().unwrap();
    let (base, dir) = ready_workspace(server, tmp.path()).await;
    let head = git(&dir, &["rev-parse", "HEAD"]);

    let status = server
        .expect(Method::GET, &format!("{base}/status"), None, 200)
        .await;
    assert_eq!(status["branch"], "main");
    assert_eq!(status["commit"], head.as_str());
    assert_eq!(status["commitShort"], &head[..7]);
    assert_eq!(status["isClean"], true);
    assert_eq!(status["hasConflicts"], false);
    assert_eq!(
        (status["ahead"].as_u64(), status["behind"].as_u64()),
        (Some(0), Some(0))
    );

    server
        .expect(
            Method::POST,
            &format!("{base}/file"),
            Some(json!({"path": "docs/new.md", "content": "# New\nline\n"})),
            200,
        )
        .await;
    std::fs::write(dir.join("README.md"), "# fixture\nmore\n").unwrap();
    let status = server
        .expect(Method::GET, &format!("{base}/status"), None, 200)
        .await;
    assert_eq!(status["untracked"], json!(["docs/new.md"]));
    assert_eq!(
        status["unstaged"],
        json!([{"path": "README.md", "status": "modified", "oldPath": ""}])
    );
    assert_eq!(status["isClean"], false);

    let diff = server
        .expect(Method::GET, &format!("{base}/diff"), None, 200)
        .await;
    let diffs = diff["diffs"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "{diff}");
    assert_eq!(diffs[0]["path"], "README.md");
    assert_eq!(
        (
            diffs[0]["additions"].as_u64(),
            diffs[0]["deletions"].as_u64()
        ),
        (Some(1), Some(0))
    );
    assert!(diffs[0]["patch"].as_str().unwrap().contains("+more\n"));

    server
        .expect(
            Method::POST,
            &format!("{base}/stage"),
            Some(json!({"paths": ["docs"]})),
            200,
        )
        .await;
    let staged = server
        .expect(
            Method::GET,
            &format!("{base}/diff?staged=true&path=docs&path=nothing"),
            None,
            200,
        )
        .await;
    assert_eq!(staged["diffs"][0]["path"], "docs/new.md");
    assert_eq!(staged["diffs"][0]["status"], "added");
    assert_eq!(staged["diffs"][0]["additions"], 2);
    server
        .expect(Method::POST, &format!("{base}/stage"), Some(json!({})), 200)
        .await;

    let commit = server
        .expect(
            Method::POST,
            &format!("{base}/commit"),
            Some(json!({"message": "Add docs", "authorName": "Ada", "authorEmail": "ada@example.com"})),
            201,
        )
        .await;
    let sha = str_field(&commit, "sha").to_owned();
    assert_eq!(sha, git(&dir, &["rev-parse", "HEAD"]));
    assert_eq!(commit["shortSha"], &sha[..7]);
    assert_eq!(commit["message"], "Add docs");
    assert_eq!(commit["author"], "Ada");
    assert_eq!(commit["authorEmail"], "ada@example.com");
    assert_eq!(commit["parents"], json!([head]));
    assert!(commit["authorDate"].is_string() && commit["commitDate"].is_string());
    assert_eq!(
        git(&dir, &["log", "-1", "--format=%an <%ae> %s"]),
        "Ada <ada@example.com> Add docs"
    );
    git(&dir, &["fsck", "--no-progress"]);

    let log = server
        .expect(Method::GET, &format!("{base}/log?limit=1"), None, 200)
        .await;
    assert_eq!(log["commits"].as_array().unwrap().len(), 1);
    assert_eq!(log["commits"][0]["sha"], sha.as_str());
    let log = server
        .expect(Method::GET, &format!("{base}/log"), None, 200)
        .await;
    assert_eq!(log["commits"].as_array().unwrap().len(), 2);

    let files = server
        .expect(Method::GET, &format!("{base}/files?ref=HEAD"), None, 200)
        .await;
    let paths: Vec<&str> = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, vec!["README.md", "docs", "docs/new.md"]);
    assert_eq!(files["files"][1]["isDir"], true);
    assert_eq!(files["files"][2]["name"], "new.md");
    let worktree = server
        .expect(Method::GET, &format!("{base}/files"), None, 200)
        .await;
    assert_eq!(worktree["files"].as_array().unwrap().len(), 3);

    let file = server
        .expect(
            Method::GET,
            &format!("{base}/file?path=README.md&ref={head}"),
            None,
            200,
        )
        .await;
    assert_eq!(
        file,
        json!({"path": "README.md", "ref": head, "content": "# fixture\n"})
    );
    let file = server
        .expect(
            Method::GET,
            &format!("{base}/file?path=docs/new.md"),
            None,
            200,
        )
        .await;
    assert_eq!(file["ref"], "");
    assert_eq!(file["content"], "# New\nline\n");

    git(&dir, &["branch", "feature", &head]);
    let branches = server
        .expect(Method::GET, &format!("{base}/branches"), None, 200)
        .await;
    assert_eq!(
        branches["branches"],
        json!([
            {"name": "feature", "isRemote": false, "isCurrent": false, "commit": head, "upstream": ""},
            {"name": "main", "isRemote": false, "isCurrent": true, "commit": sha, "upstream": ""},
        ])
    );
    server
        .expect(
            Method::POST,
            &format!("{base}/checkout"),
            Some(json!({"ref": "feature"})),
            200,
        )
        .await;
    assert_eq!(git(&dir, &["symbolic-ref", "--short", "HEAD"]), "feature");
    assert!(!dir.join("docs/new.md").exists());

    // Fetch with a remote: the fixture itself, cloned.
    let clone = tmp.path().join("clone");
    git(
        tmp.path(),
        &["clone", "-q", &format!("file://{}", dir.display()), "clone"],
    );
    let created = server
        .expect(
            Method::POST,
            &format!("{LOCAL}/workspaces"),
            Some(json!({"path": clone.display().to_string()})),
            201,
        )
        .await;
    let clone_id = str_field(&created, "id").to_owned();
    server
        .wait_workspace_status("local", &clone_id, "ready")
        .await;
    git(
        &dir,
        &["commit", "-q", "--allow-empty", "-m", "upstream moves on"],
    );
    server
        .expect(
            Method::POST,
            &format!("{LOCAL}/workspaces/{clone_id}/git/fetch"),
            None,
            200,
        )
        .await;
    assert_eq!(
        git(&clone, &["rev-parse", "origin/feature"]),
        git(&dir, &["rev-parse", "feature"])
    );
}

async fn expect_error(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: StatusCode,
) -> String {
    let reply = server
        .send(method, path, body.map(Body::Json).unwrap_or(Body::None))
        .await;
    assert_eq!(reply.status, status, "{path}: {:?}", reply.text);
    assert_client_error(&reply, path);
    reply.json.unwrap()["error"].as_str().unwrap().to_owned()
}

async fn workspace_git_client_errors(server: &TestServer) {
    let tmp = tempfile::tempdir().unwrap();
    let (base, dir) = ready_workspace(server, tmp.path()).await;
    let bad = StatusCode::BAD_REQUEST;

    let unknown = format!("{LOCAL}/workspaces/no-such-workspace/git/status");
    expect_error(server, Method::GET, &unknown, None, StatusCode::NOT_FOUND).await;

    let msg = expect_error(
        server,
        Method::POST,
        &format!("{base}/checkout"),
        Some(json!({})),
        bad,
    )
    .await;
    assert_eq!(msg, "ref is required");
    expect_error(
        server,
        Method::POST,
        &format!("{base}/checkout"),
        Some(json!({"ref": "--orphan=x"})),
        bad,
    )
    .await;
    let reply = server
        .send(
            Method::POST,
            &format!("{base}/checkout"),
            Body::Raw(b"{not json".to_vec()),
        )
        .await;
    assert_eq!(reply.status, bad);
    assert_client_error(&reply, "invalid JSON");
    let missing = expect_error(
        server,
        Method::POST,
        &format!("{base}/checkout"),
        Some(json!({"ref": "no-such-branch"})),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(missing.contains("no-such-branch"), "{missing}");

    // Dirty checkout: refused with 409 and nothing changes.
    git(&dir, &["switch", "-q", "-c", "other"]);
    std::fs::write(dir.join("README.md"), "other\n").unwrap();
    git(&dir, &["commit", "-q", "-am", "other"]);
    git(&dir, &["switch", "-q", "main"]);
    std::fs::write(dir.join("README.md"), "dirty\n").unwrap();
    let conflict = expect_error(
        server,
        Method::POST,
        &format!("{base}/checkout"),
        Some(json!({"ref": "other"})),
        StatusCode::CONFLICT,
    )
    .await;
    assert!(conflict.contains("README.md"), "{conflict}");
    assert_eq!(
        std::fs::read_to_string(dir.join("README.md")).unwrap(),
        "dirty\n"
    );
    assert_eq!(git(&dir, &["symbolic-ref", "--short", "HEAD"]), "main");
    git(&dir, &["checkout", "-q", "--", "README.md"]);

    let msg = expect_error(server, Method::GET, &format!("{base}/file"), None, bad).await;
    assert_eq!(msg, "path is required");
    let msg = expect_error(
        server,
        Method::GET,
        &format!("{base}/file?path=absent.txt"),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(msg.starts_with("File not found: "), "{msg}");
    for escape in ["../x", "/etc/passwd", ".git/config", "a%00b"] {
        expect_error(
            server,
            Method::GET,
            &format!("{base}/file?path={escape}"),
            None,
            bad,
        )
        .await;
        expect_error(
            server,
            Method::POST,
            &format!("{base}/file"),
            Some(json!({"path": escape.replace("%00", "\0"), "content": "x"})),
            bad,
        )
        .await;
    }
    expect_error(
        server,
        Method::POST,
        &format!("{base}/file"),
        Some(json!({"content": "x"})),
        bad,
    )
    .await;
    expect_error(
        server,
        Method::POST,
        &format!("{base}/stage"),
        Some(json!({"paths": ["../up"]})),
        bad,
    )
    .await;
    expect_error(
        server,
        Method::POST,
        &format!("{base}/stage"),
        Some(json!({"paths": 3})),
        bad,
    )
    .await;

    let msg = expect_error(
        server,
        Method::POST,
        &format!("{base}/commit"),
        Some(json!({})),
        bad,
    )
    .await;
    assert_eq!(msg, "message is required");
    let msg = expect_error(
        server,
        Method::POST,
        &format!("{base}/commit"),
        Some(json!({"message": "nothing"})),
        StatusCode::CONFLICT,
    )
    .await;
    assert!(msg.contains("nothing to commit"), "{msg}");

    for limit in ["0", "-1", "abc", "1.5"] {
        expect_error(
            server,
            Method::GET,
            &format!("{base}/log?limit={limit}"),
            None,
            bad,
        )
        .await;
    }
    for path in [
        format!("{base}/log?ref=no-such-ref"),
        format!("{base}/files?ref=no-such-ref"),
        format!("{base}/diff?base=no-such-ref"),
        format!("{base}/file?path=README.md&ref=no-such-ref"),
    ] {
        expect_error(server, Method::GET, &path, None, StatusCode::NOT_FOUND).await;
    }

    // Another project's members cannot reach this workspace through their project.
    let project = server
        .expect(
            Method::POST,
            "/api/projects",
            Some(json!({"name": "Other"})),
            201,
        )
        .await;
    let other = str_field(&project, "id");
    let workspace_id = base.trim_end_matches("/git").rsplit('/').next().unwrap();
    expect_error(
        server,
        Method::GET,
        &format!("/api/projects/{other}/workspaces/{workspace_id}/git/status"),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
}
