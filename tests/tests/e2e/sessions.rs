//! Sessions: create (on a workspace or an automatic one), read, update, status, delete, and
//! the errors of each. No sandbox provider exists in this version, so sessions settle in
//! `error` with a message naming the missing provider.

use discobot_tests::reqwest::{Method, StatusCode};
use discobot_tests::{Body, TestServer, WAIT, e2e_tests, json, str_field, wait_until};

use crate::common::{
    LOCAL, assert_client_error, create_session, is_event, is_rfc3339_secs, new_dir_workspace,
    wait_session_settled,
};

e2e_tests! {
    session_on_workspace => session_on_workspace_sqlite, session_on_workspace_postgres;
    session_with_automatic_workspace => session_with_automatic_workspace_sqlite, session_with_automatic_workspace_postgres;
    session_update => session_update_sqlite, session_update_postgres;
    session_delete => session_delete_sqlite, session_delete_postgres;
    session_create_errors => session_create_errors_sqlite, session_create_errors_postgres;
    session_list_is_fresh_and_revalidates => session_list_is_fresh_and_revalidates_sqlite, session_list_is_fresh_and_revalidates_postgres;
}

/// The list is served from a cache: every change must show up at once, and an unchanged
/// list answers `If-None-Match` with 304.
async fn session_list_is_fresh_and_revalidates(server: &TestServer) {
    let tmp = tempfile::tempdir().unwrap();
    let workspace = new_dir_workspace(server, tmp.path(), "w").await;
    let workspace_id = str_field(&workspace, "id").to_owned();
    let list_path = format!("{LOCAL}/sessions");
    let names = |list: &serde_json::Value| -> Vec<(String, String)> {
        let mut names: Vec<(String, String)> = list["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .map(|s| {
                (
                    str_field(s, "id").to_owned(),
                    str_field(s, "name").to_owned(),
                )
            })
            .collect();
        names.sort();
        names
    };
    for n in 0..3 {
        create_session(server, &format!("fresh-{n}"), Some(&workspace_id)).await;
        let list = server.expect(Method::GET, &list_path, None, 200).await;
        assert_eq!(
            names(&list).len(),
            n + 1,
            "a new session is listed at once: {list}"
        );
    }
    server
        .expect(
            Method::PATCH,
            &format!("{list_path}/fresh-1"),
            Some(json!({"name": "renamed"})),
            200,
        )
        .await;
    let list = server.expect(Method::GET, &list_path, None, 200).await;
    assert!(
        names(&list).contains(&("fresh-1".into(), "renamed".into())),
        "{list}"
    );

    for n in 0..3 {
        wait_session_settled(server, &format!("fresh-{n}")).await;
    }
    // A revalidation with an unchanged list is a 304. The init jobs' `job_completed` events
    // may still land right after the sessions settled (they version the list too): then the
    // first try sees a new tag, and the next one, with nothing new, must be a 304.
    let mut revalidated = None;
    for _ in 0..20 {
        let response = server
            .client()
            .get(server.url(&list_path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        let again = server
            .client()
            .get(server.url(&list_path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        if again.status() == StatusCode::NOT_MODIFIED {
            assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
            revalidated = Some(etag);
            break;
        }
        assert_eq!(
            again.status(),
            StatusCode::OK,
            "a changed list is sent whole"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let etag = revalidated.expect("an unchanged session list revalidates with 304");

    server
        .expect(Method::DELETE, &format!("{list_path}/fresh-2"), None, 200)
        .await;
    let changed = server
        .client()
        .get(server.url(&list_path))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        changed.status(),
        StatusCode::OK,
        "a change invalidates the ETag"
    );
}

async fn session_on_workspace(server: &TestServer) {
    let tmp = tempfile::tempdir().unwrap();
    let workspace = new_dir_workspace(server, tmp.path(), "w").await;
    let workspace_id = str_field(&workspace, "id");
    let session = create_session(server, "session-one", Some(workspace_id)).await;

    assert_eq!(session["id"], "session-one");
    assert_eq!(session["projectId"], "local");
    assert_eq!(session["name"], "");
    assert_eq!(session["description"], "");
    assert_eq!(session["files"], json!([]));
    assert_eq!(session["workspaceId"], workspace_id);
    assert!(session.get("displayName").is_none(), "{session}");
    assert!(
        is_rfc3339_secs(str_field(&session, "createdAt")),
        "{session}"
    );
    assert!(
        is_rfc3339_secs(str_field(&session, "timestamp")),
        "{session}"
    );
    assert!(session["status"].is_string());
    for absent in ["commitStatus", "commitError", "commitOperation"] {
        assert!(session.get(absent).is_none(), "{absent} in {session}");
    }

    let settled = wait_session_settled(server, "session-one").await;
    assert_eq!(settled["createdAt"], session["createdAt"]);

    let list = server
        .expect(Method::GET, &format!("{LOCAL}/sessions"), None, 200)
        .await;
    let sessions = list["sessions"].as_array().expect("sessions");
    let listed = sessions
        .iter()
        .find(|s| s["id"] == "session-one")
        .expect("listed");
    assert_eq!(listed["workspaceId"], workspace_id);
    assert_eq!(listed["status"], "error");
    // Trailing-slash form.
    let again = server
        .expect(Method::GET, &format!("{LOCAL}/sessions/"), None, 200)
        .await;
    assert_eq!(again["sessions"].as_array().unwrap().len(), sessions.len());
}

async fn session_with_automatic_workspace(server: &TestServer) {
    let session = create_session(server, "auto-session", None).await;
    let workspace_id = str_field(&session, "workspaceId");
    let workspace = server
        .wait_workspace_status("local", workspace_id, "ready")
        .await;
    assert_eq!(workspace["autoGenerated"], true, "{workspace}");
    assert_eq!(workspace["sourceType"], "managed");
    let path = std::path::Path::new(str_field(&workspace, "path"));
    assert!(
        path.starts_with(server.data_dir()),
        "automatic workspaces live in the data dir: {}",
        path.display()
    );
    assert!(path.join(".git").exists(), "it is a git repository");
    let sessions = workspace["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], "auto-session");
    wait_session_settled(server, "auto-session").await;

    // Each session without a workspace gets its own.
    let other = create_session(server, "auto-session-2", None).await;
    assert_ne!(other["workspaceId"], session["workspaceId"]);
}

async fn session_update(server: &TestServer) {
    create_session(server, "upd", None).await;
    // Let initialisation finish, so that it does not overwrite the statuses set below.
    wait_session_settled(server, "upd").await;
    let path = format!("{LOCAL}/sessions/upd");

    let renamed = server
        .expect(
            Method::PATCH,
            &path,
            Some(json!({"name": "First name"})),
            200,
        )
        .await;
    assert_eq!(renamed["name"], "First name");
    let named = server
        .expect(
            Method::PATCH,
            &path,
            Some(json!({"displayName": "Shown"})),
            200,
        )
        .await;
    assert_eq!(named["displayName"], "Shown");
    assert_eq!(named["name"], "First name", "an absent name is unchanged");
    // An empty name means "no change".
    let same = server
        .expect(Method::PUT, &path, Some(json!({"name": ""})), 200)
        .await;
    assert_eq!(same["name"], "First name");
    assert_eq!(same["displayName"], "Shown");
    let cleared = server
        .expect(
            Method::PATCH,
            &path,
            Some(json!({"displayName": null})),
            200,
        )
        .await;
    assert!(cleared.get("displayName").is_none(), "{cleared}");
    let fetched = server.expect(Method::GET, &path, None, 200).await;
    assert_eq!(fetched["name"], "First name");
    assert!(fetched.get("displayName").is_none());

    let stopped = server
        .expect(Method::PUT, &path, Some(json!({"status": "stopped"})), 200)
        .await;
    assert_eq!(stopped["status"], "stopped");
    let fetched = server.expect(Method::GET, &path, None, 200).await;
    assert_eq!(fetched["status"], "stopped", "{fetched}");
    let running = server
        .expect(
            Method::PATCH,
            &path,
            Some(json!({"status": "running"})),
            200,
        )
        .await;
    assert_eq!(running["status"], "ready", "running is stored as ready");
    let fetched = server.expect(Method::GET, &path, None, 200).await;
    assert_eq!(fetched["status"], "ready");

    for body in [
        json!({"status": "bogus"}),
        json!({"status": 5}),
        json!({"name": 5}),
        json!({"displayName": ["x"]}),
    ] {
        let reply = server
            .send(Method::PATCH, &path, Body::Json(body.clone()))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        assert_client_error(&reply, "bad session update");
    }
    let fetched = server.expect(Method::GET, &path, None, 200).await;
    assert_eq!(
        fetched["status"], "ready",
        "a refused update changes nothing"
    );
    assert_eq!(fetched["name"], "First name");

    let reply = server
        .send(
            Method::PATCH,
            &format!("{LOCAL}/sessions/nope"),
            Body::Json(json!({"name": "x"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
    assert_client_error(&reply, "update of an unknown session");
}

async fn session_delete(server: &TestServer) {
    let tmp = tempfile::tempdir().unwrap();
    let workspace = new_dir_workspace(server, tmp.path(), "w").await;
    create_session(server, "doomed", Some(str_field(&workspace, "id"))).await;
    wait_session_settled(server, "doomed").await;
    let path = format!("{LOCAL}/sessions/doomed");

    let mut events = server.events("local", &[]).await;
    events.next_frame(WAIT).await.expect("connected");
    let deleted = server.expect(Method::DELETE, &path, None, 200).await;
    assert_eq!(deleted, json!({"success": true}));
    // Right after: `removing`, unless the deletion job was even faster.
    let (status, body) = server.get(&path).await;
    assert!(
        (status == StatusCode::OK && body["status"] == "removing")
            || status == StatusCode::NOT_FOUND,
        "{status} {body}"
    );
    // `removing` first, then `removed` once the deletion job ran.
    let (removing, _) = events
        .until("session_updated removing", WAIT, |f| {
            is_event(
                f,
                "session_updated",
                &[("sessionId", "doomed"), ("status", "removing")],
            )
        })
        .await;
    let (removed, skipped) = events
        .until("session_updated removed", WAIT, |f| {
            is_event(
                f,
                "session_updated",
                &[("sessionId", "doomed"), ("status", "removed")],
            )
        })
        .await;
    assert!(removing.json()["seq"].as_i64() < removed.json()["seq"].as_i64());
    assert!(!skipped.iter().any(|f| is_event(
        f,
        "session_updated",
        &[("sessionId", "doomed"), ("status", "removing")]
    )));

    wait_until(WAIT, "the session to disappear", || async {
        let (status, _) = server.get(&path).await;
        (status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    let list = server
        .expect(Method::GET, &format!("{LOCAL}/sessions"), None, 200)
        .await;
    assert!(
        !list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == "doomed")
    );
    let workspace = server
        .expect(
            Method::GET,
            &format!("{LOCAL}/workspaces/{}", str_field(&workspace, "id")),
            None,
            200,
        )
        .await;
    assert_eq!(
        workspace["sessions"],
        json!([]),
        "the workspace stays, without it"
    );
    let reply = server.send(Method::DELETE, &path, Body::None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
    assert_client_error(&reply, "second delete");
    // A deleted session's id stays taken.
    let reply = server
        .send(
            Method::POST,
            &format!("{LOCAL}/sessions"),
            Body::Json(json!({"id": "doomed"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    assert_client_error(&reply, "re-creating a deleted session");
}

async fn session_create_errors(server: &TestServer) {
    let sessions = format!("{LOCAL}/sessions");
    create_session(server, "taken", None).await;
    let reply = server
        .send(Method::POST, &sessions, Body::Json(json!({"id": "taken"})))
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    assert_client_error(&reply, "duplicate id");

    let max = "a".repeat(65);
    create_session(server, &max, None).await;

    let workspaces_before = server
        .expect(Method::GET, &format!("{LOCAL}/workspaces"), None, 200)
        .await["workspaces"]
        .as_array()
        .unwrap()
        .len();
    for (body, what) in [
        (json!({"id": "a/b"}), "a slash"),
        (json!({"id": ""}), "empty"),
        (json!({"id": "b".repeat(66)}), "66 characters"),
        (json!({"id": "../etc"}), "dots"),
        (json!({"id": "sp ace"}), "a space"),
        (json!({}), "no id"),
        (
            json!({"id": "fine", "workspaceId": "no-such-workspace"}),
            "an unknown workspace",
        ),
    ] {
        let reply = server.send(Method::POST, &sessions, Body::Json(body)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            reply.text
        );
        assert_client_error(&reply, what);
    }
    // Refused creations leave nothing behind: no session, no automatic workspace.
    let (status, _) = server.get(&format!("{sessions}/fine")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let workspaces_after = server
        .expect(Method::GET, &format!("{LOCAL}/workspaces"), None, 200)
        .await["workspaces"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(workspaces_after, workspaces_before);

    // A workspace of another project cannot be used.
    let other = server
        .expect(
            Method::POST,
            "/api/projects",
            Some(json!({"name": "Other"})),
            201,
        )
        .await;
    let other_id = str_field(&other, "id");
    let tmp = tempfile::tempdir().unwrap();
    let foreign = server
        .expect(
            Method::POST,
            &format!("/api/projects/{other_id}/workspaces"),
            Some(json!({"path": tmp.path().join("f").display().to_string()})),
            201,
        )
        .await;
    let reply = server
        .send(
            Method::POST,
            &sessions,
            Body::Json(json!({"id": "cross", "workspaceId": foreign["id"]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_client_error(&reply, "a workspace of another project");
    // … nor can another project's session be read through `local`.
    server
        .expect(
            Method::POST,
            &format!("/api/projects/{other_id}/sessions"),
            Some(json!({"id": "theirs", "workspaceId": foreign["id"]})),
            200,
        )
        .await;
    let reply = server
        .send(Method::GET, &format!("{sessions}/theirs"), Body::None)
        .await;
    assert!(
        matches!(reply.status.as_u16(), 403 | 404),
        "{} {}",
        reply.status,
        reply.text
    );
    assert_client_error(&reply, "another project's session");

    for method in [Method::GET, Method::DELETE] {
        let reply = server
            .send(
                method.clone(),
                &format!("{sessions}/unknown-session"),
                Body::None,
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method}: {}",
            reply.text
        );
        assert_client_error(&reply, "unknown session");
    }
}
