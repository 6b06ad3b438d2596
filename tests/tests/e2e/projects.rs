//! Projects, members, invitations and user preferences.

use discobot_tests::reqwest::{Method, StatusCode};
use discobot_tests::{Body, TestServer, e2e_tests, json, str_field};
use serde_json::Value;

use crate::common::{ANONYMOUS_ID, LOCAL, assert_client_error, is_rfc3339, is_rfc3339_secs};

e2e_tests! {
    default_project_exists => default_project_exists_sqlite, default_project_exists_postgres;
    project_crud => project_crud_sqlite, project_crud_postgres;
    default_project_cannot_be_deleted => default_project_cannot_be_deleted_sqlite, default_project_cannot_be_deleted_postgres;
    members_of_local => members_of_local_sqlite, members_of_local_postgres;
    invitations => invitations_sqlite, invitations_postgres;
    preferences => preferences_sqlite, preferences_postgres;
}

fn check_project(project: &Value) {
    for field in ["id", "name", "slug", "createdAt", "updatedAt"] {
        assert!(project[field].is_string(), "{field} in {project}");
    }
    assert!(is_rfc3339(str_field(project, "createdAt")), "{project}");
    assert!(is_rfc3339(str_field(project, "updatedAt")), "{project}");
}

async fn default_project_exists(server: &TestServer) {
    let (status, projects) = server.get("/api/projects").await;
    assert_eq!(status, StatusCode::OK);
    let projects = projects.as_array().expect("a bare array");
    let local = projects
        .iter()
        .find(|p| p["id"] == "local")
        .expect("project local is listed");
    check_project(local);
    assert_eq!(local["name"], "Local Project");
    assert_eq!(local["slug"], "local");

    let (status, project) = server.get(LOCAL).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&project, local);
    // The trailing-slash form answers the same.
    let (status, again) = server.get(&format!("{LOCAL}/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, project);
}

async fn project_crud(server: &TestServer) {
    let created = server
        .expect(
            Method::POST,
            "/api/projects",
            Some(json!({"name": "My E2E Project!", "slug": "ignored"})),
            201,
        )
        .await;
    check_project(&created);
    assert_eq!(created["name"], "My E2E Project!");
    let id = str_field(&created, "id").to_owned();
    assert_ne!(id, "local");
    let slug = str_field(&created, "slug");
    let suffix = slug
        .strip_prefix("my-e2e-project-")
        .unwrap_or_else(|| panic!("slug {slug:?} is derived from the name"));
    assert_eq!(suffix.len(), 8, "{slug}");
    assert!(suffix.bytes().all(|b| b.is_ascii_hexdigit()), "{slug}");

    let path = format!("/api/projects/{id}");
    assert_eq!(server.expect(Method::GET, &path, None, 200).await, created);
    let (_, list) = server.get("/api/projects").await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id.as_str())
    );
    // The creator is its owner.
    let members = server
        .expect(Method::GET, &format!("{path}/members"), None, 200)
        .await;
    assert_eq!(members.as_array().unwrap().len(), 1, "{members}");
    assert_eq!(members[0]["userId"], ANONYMOUS_ID);
    assert_eq!(members[0]["role"], "owner");

    let renamed = server
        .expect(Method::PUT, &path, Some(json!({"name": "Renamed"})), 200)
        .await;
    assert_eq!(renamed["name"], "Renamed");
    assert_eq!(renamed["id"], id.as_str());
    assert_eq!(renamed["slug"], created["slug"], "renaming keeps the slug");
    let fetched = server.expect(Method::GET, &path, None, 200).await;
    assert_eq!(fetched["name"], "Renamed");

    // Work inside the project is deleted with it.
    let workspace_dir = tempfile::tempdir().unwrap();
    let workspace = server
        .expect(
            Method::POST,
            &format!("{path}/workspaces"),
            Some(json!({"path": workspace_dir.path().join("w").display().to_string()})),
            201,
        )
        .await;

    let deleted = server.expect(Method::DELETE, &path, None, 200).await;
    assert_eq!(deleted, json!({"success": true}));
    let (status, body) = server.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error"].is_string());
    let (_, list) = server.get("/api/projects").await;
    assert!(
        !list
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id.as_str())
    );
    let (status, _) = server
        .get(&format!(
            "{path}/workspaces/{}",
            str_field(&workspace, "id")
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Deleting it again: the project is gone.
    let (status, _) = server.delete(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Creating without a usable name is refused.
    for body in [json!({}), json!({"name": ""}), json!({"name": "   "})] {
        let reply = server
            .send(Method::POST, "/api/projects", Body::Json(body.clone()))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        assert_client_error(&reply, "create project without name");
    }
}

async fn default_project_cannot_be_deleted(server: &TestServer) {
    let reply = server.send(Method::DELETE, LOCAL, Body::None).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    assert_client_error(&reply, "DELETE local");
    let (status, project) = server.get(LOCAL).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(project["name"], "Local Project");
}

async fn members_of_local(server: &TestServer) {
    let members = server
        .expect(Method::GET, &format!("{LOCAL}/members"), None, 200)
        .await;
    let members = members.as_array().expect("a bare array");
    assert_eq!(members.len(), 1, "{members:?}");
    let owner = &members[0];
    assert_eq!(owner["userId"], ANONYMOUS_ID);
    assert_eq!(owner["projectId"], "local");
    assert_eq!(owner["role"], "owner");
    assert_eq!(owner["email"], "anonymous@local");
    assert_eq!(owner["name"], "Anonymous User");
    assert!(owner["id"].is_string());

    // The owner cannot be removed; removing a non-member succeeds.
    let reply = server
        .send(
            Method::DELETE,
            &format!("{LOCAL}/members/{ANONYMOUS_ID}"),
            Body::None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
    assert_client_error(&reply, "remove the owner");
    let body = server
        .expect(
            Method::DELETE,
            &format!("{LOCAL}/members/not-a-member"),
            None,
            200,
        )
        .await;
    assert_eq!(body, json!({"success": true}));
}

async fn invitations(server: &TestServer) {
    let path = format!("{LOCAL}/invitations");
    let invitation = server
        .expect(
            Method::POST,
            &path,
            Some(json!({"email": "friend@example.com"})),
            201,
        )
        .await;
    assert_eq!(invitation["projectId"], "local");
    assert_eq!(invitation["email"], "friend@example.com");
    assert_eq!(invitation["role"], "member", "the default role");
    let token = str_field(&invitation, "token").to_owned();
    assert_eq!(token.len(), 64, "{token}");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{token}"
    );
    assert!(is_rfc3339(str_field(&invitation, "expiresAt")));
    assert!(is_rfc3339(str_field(&invitation, "createdAt")));
    assert!(str_field(&invitation, "expiresAt") > str_field(&invitation, "createdAt"));

    let admin = server
        .expect(
            Method::POST,
            &path,
            Some(json!({"email": "boss@example.com", "role": "admin"})),
            201,
        )
        .await;
    assert_eq!(admin["role"], "admin");
    assert_ne!(admin["token"], invitation["token"]);

    for (body, what) in [
        (
            json!({"email": "x@example.com", "role": "king"}),
            "bad role",
        ),
        (json!({}), "missing email"),
        (json!({"email": ""}), "empty email"),
        (json!({"role": "member"}), "missing email with role"),
    ] {
        let reply = server.send(Method::POST, &path, Body::Json(body)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            reply.text
        );
        assert_client_error(&reply, what);
    }

    let accept = format!("{path}/{token}/accept");
    let body = server.expect(Method::POST, &accept, None, 200).await;
    assert_eq!(body, json!({"success": true}));
    let reply = server.send(Method::POST, &accept, Body::None).await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "second accept: {}",
        reply.text
    );
    assert_client_error(&reply, "second accept");
    let reply = server
        .send(
            Method::POST,
            &format!("{path}/{}/accept", "0".repeat(64)),
            Body::None,
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "bogus token: {}",
        reply.text
    );
    assert_client_error(&reply, "bogus token");

    // Accepting as someone who already owns the project keeps them owner.
    let members = server
        .expect(Method::GET, &format!("{LOCAL}/members"), None, 200)
        .await;
    let members = members.as_array().unwrap();
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0]["role"], "owner");

    // A token only works for its own project.
    let other = server
        .expect(
            Method::POST,
            "/api/projects",
            Some(json!({"name": "Other"})),
            201,
        )
        .await;
    let other_id = str_field(&other, "id");
    let admin_token = str_field(&admin, "token");
    let reply = server
        .send(
            Method::POST,
            &format!("/api/projects/{other_id}/invitations/{admin_token}/accept"),
            Body::None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_client_error(&reply, "token of another project");
    // … and it still works where it belongs.
    server
        .expect(
            Method::POST,
            &format!("{path}/{admin_token}/accept"),
            None,
            200,
        )
        .await;
}

async fn preferences(server: &TestServer) {
    let list = server
        .expect(Method::GET, "/api/preferences", None, 200)
        .await;
    assert_eq!(list, json!({"preferences": []}));

    let theme = server
        .expect(
            Method::PUT,
            "/api/preferences/theme",
            Some(json!({"value": "dark"})),
            200,
        )
        .await;
    assert_eq!(theme["key"], "theme");
    assert_eq!(theme["value"], "dark");
    assert!(is_rfc3339_secs(str_field(&theme, "updatedAt")), "{theme}");
    let fetched = server
        .expect(Method::GET, "/api/preferences/theme", None, 200)
        .await;
    assert_eq!(fetched["value"], "dark");
    assert!(
        is_rfc3339_secs(str_field(&fetched, "updatedAt")),
        "{fetched}"
    );
    // Overwrite.
    server
        .expect(
            Method::PUT,
            "/api/preferences/theme",
            Some(json!({"value": "light"})),
            200,
        )
        .await;

    let bulk = server
        .expect(
            Method::PUT,
            "/api/preferences",
            Some(json!({"preferences": {"zeta": "26", "alpha": "1"}})),
            200,
        )
        .await;
    let mut written: Vec<(String, String)> = bulk["preferences"]
        .as_array()
        .expect("preferences array")
        .iter()
        .map(|p| {
            (
                p["key"].as_str().unwrap().into(),
                p["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    written.sort();
    assert_eq!(
        written,
        [("alpha".into(), "1".into()), ("zeta".into(), "26".into())],
        "the bulk answer lists only the keys written"
    );

    let list = server
        .expect(Method::GET, "/api/preferences/", None, 200)
        .await;
    let entries: Vec<(&str, &str)> = list["preferences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["key"].as_str().unwrap(), p["value"].as_str().unwrap()))
        .collect();
    assert_eq!(
        entries,
        [("alpha", "1"), ("theme", "light"), ("zeta", "26")],
        "ordered by key"
    );

    // A bulk write with one bad key writes nothing.
    let reply = server
        .send(
            Method::PUT,
            "/api/preferences",
            Body::Json(json!({"preferences": {"good": "1", "": "2"}})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_client_error(&reply, "bulk with an empty key");
    let (status, _) = server.get("/api/preferences/good").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a failed bulk write wrote a key"
    );

    let deleted = server
        .expect(Method::DELETE, "/api/preferences/theme", None, 200)
        .await;
    assert_eq!(deleted, json!({"success": true}));
    for method in [Method::DELETE, Method::GET] {
        let reply = server
            .send(method.clone(), "/api/preferences/theme", Body::None)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method}: {}",
            reply.text
        );
        assert_client_error(&reply, "missing preference");
    }
    let list = server
        .expect(Method::GET, "/api/preferences", None, 200)
        .await;
    assert_eq!(list["preferences"].as_array().unwrap().len(), 2);
}
