//! Bad input, table-driven: malformed JSON, wrong types, missing fields, empty and huge
//! bodies, unknown ids, invalid enum values, traversal-ish and NUL ids, unknown routes and
//! wrong methods. Every answer must be a 4xx JSON `{"error": …}`; none may be a 5xx; and a
//! refused request changes nothing.

use discobot_tests::reqwest::{Method, StatusCode};
use discobot_tests::{Body, Reply, TestServer, e2e_tests, json, str_field};
use serde_json::Value;

use crate::common::{LOCAL, assert_client_error, create_session, new_dir_workspace};

e2e_tests! {
    bad_input_matrix => bad_input_matrix_sqlite, bad_input_matrix_postgres;
    huge_bodies_are_refused => huge_bodies_are_refused_sqlite, huge_bodies_are_refused_postgres;
    unknown_routes_and_methods => unknown_routes_and_methods_sqlite, unknown_routes_and_methods_postgres;
    trailing_slashes => trailing_slashes_sqlite, trailing_slashes_postgres;
}

/// A route taking a JSON body, with bodies it must refuse and the status of each refusal.
type JsonRoute = (Method, String, Vec<(Value, u16)>);

/// One request of the matrix and the status it must get (`None`: any 4xx).
struct Case {
    method: Method,
    path: String,
    body: Body,
    status: Option<u16>,
}

fn case(method: Method, path: impl Into<String>, body: Body, status: Option<u16>) -> Case {
    Case {
        method,
        path: path.into(),
        body,
        status,
    }
}

fn raw(text: &str) -> Body {
    Body::Raw(text.as_bytes().to_vec())
}

/// Bodies that no JSON route accepts.
fn malformed_bodies() -> Vec<(Body, &'static str)> {
    vec![
        (raw(""), "an empty body"),
        (raw("   \n"), "a blank body"),
        (raw("{"), "truncated JSON"),
        (raw("{\"name\": "), "truncated JSON after a key"),
        (raw("not json"), "not JSON"),
        (raw("{\"a\": 1}}"), "trailing garbage"),
        (raw("{'name': 'x'}"), "single quotes"),
        (Body::Raw(vec![0xff, 0xfe, 0x7b, 0x7d]), "invalid UTF-8"),
        (raw("null"), "null"),
        (raw("\"text\""), "a string"),
        (raw("42"), "a number"),
        (raw("[]"), "an empty array"),
        (raw("[\"x\", \"y\"]"), "an array"),
    ]
}

/// A snapshot of what the matrix must not change.
async fn state(server: &TestServer) -> Value {
    let (_, projects) = server.get("/api/projects").await;
    let (_, workspaces) = server.get(&format!("{LOCAL}/workspaces")).await;
    let (_, sessions) = server.get(&format!("{LOCAL}/sessions")).await;
    let (_, preferences) = server.get("/api/preferences").await;
    let (_, members) = server.get(&format!("{LOCAL}/members")).await;
    let mut projects: Vec<Value> = projects.as_array().unwrap().clone();
    projects.sort_by_key(|p| p["id"].as_str().unwrap_or_default().to_owned());
    let ids = |list: &Value, key: &str| {
        let mut ids: Vec<String> = list[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                format!(
                    "{}:{}:{}",
                    x["id"].as_str().unwrap_or_default(),
                    x["displayName"].as_str().unwrap_or_default(),
                    x["name"].as_str().unwrap_or_default()
                )
            })
            .collect();
        ids.sort();
        ids
    };
    json!({
        "projects": projects,
        "workspaces": ids(&workspaces, "workspaces"),
        "sessions": ids(&sessions, "sessions"),
        "preferences": preferences,
        "members": members,
    })
}

async fn bad_input_matrix(server: &TestServer) {
    let tmp = tempfile::tempdir().unwrap();
    let workspace = new_dir_workspace(server, tmp.path(), "w").await;
    let workspace_id = str_field(&workspace, "id").to_owned();
    create_session(server, "victim", Some(&workspace_id)).await;
    crate::common::wait_session_settled(server, "victim").await;
    server
        .expect(
            Method::PUT,
            "/api/preferences/kept",
            Some(json!({"value": "v"})),
            200,
        )
        .await;
    let w = format!("{LOCAL}/workspaces/{workspace_id}");
    let s = format!("{LOCAL}/sessions/victim");
    let before = state(server).await;
    let not_git = tmp.path().join("not-git");
    std::fs::create_dir(&not_git).unwrap();
    std::fs::write(not_git.join("f"), "x").unwrap();
    let not_git = not_git.display().to_string();
    let missing_parent = tmp.path().join("no/such/parent").display().to_string();

    // JSON routes: (method, path, bodies that must fail with their status).
    let json_routes: Vec<JsonRoute> = vec![
        (
            Method::POST,
            "/api/projects".into(),
            vec![
                (json!({}), 400),
                (json!({"name": 5}), 400),
                (json!({"name": null}), 400),
                (json!({"name": ["a"]}), 400),
                (json!({"name": ""}), 400),
                (json!({"name": "a\u{0}b"}), 400),
                (json!({"name": "x".repeat(10_000)}), 400),
            ],
        ),
        (
            Method::PUT,
            LOCAL.into(),
            vec![
                (json!({}), 400),
                (json!({"name": {"nested": true}}), 400),
                (json!({"name": "  "}), 400),
                (json!({"name": "bell\u{7}"}), 400),
            ],
        ),
        (
            Method::POST,
            format!("{LOCAL}/invitations"),
            vec![
                (json!({}), 400),
                (json!({"email": 5}), 400),
                (json!({"email": ""}), 400),
                (json!({"email": "not-an-address"}), 400),
                (json!({"email": "a@b.c", "role": "king"}), 400),
                (json!({"email": "a@b.c", "role": "OWNER"}), 400),
                (json!({"email": "a@b.c", "role": 1}), 400),
                (json!({"email": "a\u{0}@b.c"}), 400),
            ],
        ),
        (
            Method::PUT,
            "/api/preferences".into(),
            vec![
                (json!({"preferences": []}), 400),
                (json!({"preferences": "x"}), 400),
                (json!({"preferences": {"a": 5}}), 400),
                (json!({"preferences": {"a": null}}), 400),
                (json!({"preferences": {"": "empty key"}}), 400),
                (json!({"preferences": {"k\u{0}": "nul in key"}}), 400),
                (json!({"preferences": {"k": "nul\u{0}in value"}}), 400),
                (json!({"preferences": {"big": "x".repeat(300 * 1024)}}), 400),
            ],
        ),
        (
            Method::PUT,
            "/api/preferences/kept".into(),
            vec![
                (json!({"value": 5}), 400),
                (json!({"value": "a\u{0}b"}), 400),
                (json!({"value": {"a": 1}}), 400),
                (json!({"value": "x".repeat(300 * 1024)}), 400),
            ],
        ),
        (
            Method::POST,
            format!("{LOCAL}/workspaces"),
            vec![
                (json!({}), 400),
                (json!({"path": 5}), 400),
                (json!({"path": ""}), 400),
                (json!({"path": not_git}), 400),
                (json!({"path": missing_parent}), 400),
                (json!({"path": "/tmp/x\u{0}y"}), 400),
                (json!({"path": "/tmp/ok", "sourceType": "svn"}), 400),
                (json!({"path": "/tmp/ok", "sourceType": 3}), 400),
                (json!({"path": "https://", "sourceType": "git"}), 400),
                (json!({"path": "no url", "sourceType": "git"}), 400),
                (json!({"path": "/tmp/ok", "provider": "kubernetes"}), 400),
                (json!({"path": "/tmp/ok", "displayName": 7}), 400),
            ],
        ),
        (
            Method::POST,
            format!("{LOCAL}/workspaces/validate"),
            vec![
                (json!({"path": 5}), 400),
                (json!({"path": "/tmp", "sourceType": "svn"}), 400),
                (json!({"path": "/tmp", "sourceType": false}), 400),
            ],
        ),
        (
            Method::PUT,
            w.clone(),
            vec![
                (json!({"displayName": 5}), 400),
                (json!({"displayName": "a\u{0}"}), 400),
                (json!({"path": 5}), 400),
                (json!({"path": ""}), 400),
                (json!({"path": not_git}), 400),
                (json!({"path": missing_parent}), 400),
            ],
        ),
        (
            Method::POST,
            format!("{LOCAL}/sessions"),
            vec![
                (json!({}), 400),
                (json!({"id": 5}), 400),
                (json!({"id": null}), 400),
                (json!({"id": ""}), 400),
                (json!({"id": "a/b"}), 400),
                (json!({"id": "../../etc/passwd"}), 400),
                (json!({"id": "a\u{0}b"}), 400),
                (json!({"id": "x".repeat(66)}), 400),
                (json!({"id": "victim"}), 409),
                (json!({"id": "new-one", "workspaceId": 5}), 400),
                (
                    json!({"id": "new-one", "workspaceId": "no-such-workspace"}),
                    400,
                ),
                (json!({"id": "new-one", "workspaceId": "a\u{0}b"}), 400),
            ],
        ),
        (
            Method::PUT,
            s.clone(),
            vec![
                (json!({"status": "bogus"}), 400),
                (json!({"status": "removed"}), 400),
                (json!({"status": "removing"}), 400),
                (json!({"status": 1}), 400),
                (json!({"name": false}), 400),
                (json!({"name": "a\u{0}"}), 400),
                (json!({"displayName": 5}), 400),
            ],
        ),
        (
            Method::PATCH,
            s.clone(),
            vec![
                (json!({"status": "RUNNING"}), 400),
                (json!({"status": ["ready"]}), 400),
                (json!({"displayName": {"x": 1}}), 400),
                (json!({"name": "n".repeat(5000)}), 400),
            ],
        ),
    ];

    let mut cases = Vec::new();
    for (method, path, bodies) in &json_routes {
        for (body, _what) in malformed_bodies() {
            cases.push(case(method.clone(), path.clone(), body, Some(400)));
        }
        for (body, status) in bodies {
            cases.push(case(
                method.clone(),
                path.clone(),
                Body::Json(body.clone()),
                Some(*status),
            ));
        }
    }

    // Unknown ids, traversal-ish and NUL ids, bad query values.
    let get = |path: String, status: u16| case(Method::GET, path, Body::None, Some(status));
    for id in [
        "nope",
        "..%2F..%2Fetc%2Fpasswd",
        "..%2F",
        "a%00b",
        "%00",
        "%E2%80%AE",
        &"x".repeat(300),
    ] {
        // An id no row can hold (NUL) may be refused as invalid rather than not found.
        let missing = if id.contains("%00") { 0 } else { 404 };
        cases.push(get(format!("/api/projects/{id}"), missing));
        cases.push(get(format!("/api/projects/{id}/sessions"), missing));
        cases.push(case(
            Method::PUT,
            format!("/api/projects/{id}"),
            Body::Json(json!({"name": "x"})),
            Some(missing),
        ));
        cases.push(get(format!("{LOCAL}/workspaces/{id}"), missing));
        cases.push(case(
            Method::PUT,
            format!("{LOCAL}/workspaces/{id}"),
            Body::Json(json!({"displayName": "x"})),
            Some(missing),
        ));
        cases.push(case(
            Method::DELETE,
            format!("{LOCAL}/workspaces/{id}"),
            Body::None,
            Some(missing),
        ));
        cases.push(get(format!("{LOCAL}/sessions/{id}"), missing));
        cases.push(case(
            Method::PATCH,
            format!("{LOCAL}/sessions/{id}"),
            Body::Json(json!({"name": "x"})),
            Some(missing),
        ));
        cases.push(case(
            Method::DELETE,
            format!("{LOCAL}/sessions/{id}"),
            Body::None,
            Some(missing),
        ));
        cases.push(get(
            format!("{LOCAL}/sessions/{id}/terminal/history"),
            missing,
        ));
        cases.push(get(format!("{LOCAL}/workspaces/providers/{id}"), 404));
        cases.push(case(
            Method::POST,
            format!("{LOCAL}/invitations/{id}/accept"),
            Body::None,
            Some(400),
        ));
        cases.push(case(
            Method::DELETE,
            format!("/api/preferences/{id}"),
            Body::None,
            None,
        ));
        cases.push(get(format!("/api/preferences/{id}"), 0));
    }
    cases.push(case(
        Method::DELETE,
        format!("{LOCAL}/workspaces/nope?deleteFiles=maybe"),
        Body::None,
        Some(400),
    ));
    cases.push(get(format!("{s}/terminal/history?limit=abc"), 400));
    cases.push(get(format!("{s}/terminal/history?limit=-1"), 400));
    cases.push(get(format!("{LOCAL}/events?since=yesterday"), 400));
    cases.push(get(format!("{LOCAL}/events?since=%00"), 400));
    cases.push(case(
        Method::DELETE,
        format!("/api/projects/{}", "nope"),
        Body::None,
        Some(404),
    ));
    cases.push(get("/api/projects/nope/members".into(), 404));

    let mut failures = Vec::new();
    let total = cases.len();
    for case in cases {
        let what = format!("{} {} {}", case.method, case.path, describe(&case.body));
        let reply = server
            .send(case.method.clone(), &case.path, case.body)
            .await;
        if let Err(problem) = check_reply(&reply, case.status) {
            failures.push(format!("{what}\n    -> {problem}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} bad requests were not answered with the right JSON 4xx:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Removing a non-member succeeds (as upstream), so an impossible user id may succeed
    // too or be refused; it must not be a server error.
    for id in ["a%00b", "%00", "..%2F..%2Fx"] {
        let path = format!("{LOCAL}/members/{id}");
        let reply = server.send(Method::DELETE, &path, Body::None).await;
        assert!(
            reply.status.as_u16() < 500,
            "DELETE {path}: {} {}",
            reply.status,
            reply.text
        );
        assert!(reply.json.is_some(), "DELETE {path}: {:?}", reply.text);
    }
    // The server is fine and nothing changed.
    let (status, _) = server.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        state(server).await,
        before,
        "refused requests changed the data"
    );
    assert!(!std::path::Path::new(&not_git).join(".git").exists());
    assert!(!tmp.path().join("no").exists());
}

/// `Ok` when the reply is a JSON error with `status` (`Some(0)`: a 400 or a 404; `None`:
/// any 4xx).
fn check_reply(reply: &Reply, status: Option<u16>) -> Result<(), String> {
    let code = reply.status.as_u16();
    let status_ok = match status {
        Some(0) => code == 400 || code == 404,
        Some(wanted) => code == wanted,
        None => reply.status.is_client_error(),
    };
    if !status_ok || !reply.status.is_client_error() {
        return Err(format!(
            "status {code} (wanted {status:?}), body {:?}",
            reply.text
        ));
    }
    if !reply.content_type().starts_with("application/json") {
        return Err(format!("content type {:?}", reply.content_type()));
    }
    match &reply.json {
        Some(Value::Object(body))
            if body.len() == 1
                && body
                    .get("error")
                    .and_then(Value::as_str)
                    .is_some_and(|m| !m.trim().is_empty()) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "body is not {{\"error\": \"…\"}}: {:?}",
            reply.text
        )),
    }
}

fn describe(body: &Body) -> String {
    let text = match body {
        Body::None => return String::new(),
        Body::Json(value) => value.to_string(),
        Body::Raw(bytes) => String::from_utf8_lossy(bytes).into_owned(),
    };
    if text.len() > 80 {
        format!(
            "{}… ({} bytes)",
            &text[..text.floor_char_boundary(80)],
            text.len()
        )
    } else {
        text
    }
}

async fn huge_bodies_are_refused(server: &TestServer) {
    const MIB: usize = 1024 * 1024;
    let before = state(server).await;
    let huge_name = format!("{{\"name\": \"{}\"}}", "x".repeat(20 * MIB));
    for (method, path) in [
        (Method::POST, "/api/projects".to_owned()),
        (Method::POST, format!("{LOCAL}/workspaces")),
        (Method::POST, format!("{LOCAL}/sessions")),
        (Method::PUT, "/api/preferences".to_owned()),
    ] {
        // With a Content-Length…
        let reply = server
            .send(
                method.clone(),
                &path,
                Body::Raw(huge_name.clone().into_bytes()),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{method} {path}: {}",
            reply.text
        );
        assert_client_error(&reply, &format!("20 MiB body to {method} {path}"));
        // …and chunked, without one.
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = huge_name
            .as_bytes()
            .chunks(MIB)
            .map(|chunk| Ok(chunk.to_vec()))
            .collect();
        let response = server
            .client()
            .request(method.clone(), server.url(&path))
            .header("content-type", "application/json")
            .body(discobot_tests::reqwest::Body::wrap_stream(
                futures::stream::iter(chunks),
            ))
            .send()
            .await
            .expect("chunked request");
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "chunked {method} {path}: {body}"
        );
        assert!(content_type.starts_with("application/json"));
        assert!(body["error"].is_string());
    }
    // A body just under the limit is parsed (and refused for its content, not its size).
    let big_but_fine = format!("{{\"name\": \"{}\"}}", "x".repeat(9 * MIB));
    let reply = server
        .send(
            Method::POST,
            "/api/projects",
            Body::Raw(big_but_fine.into_bytes()),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{}",
        &reply.text[..reply.text.len().min(200)]
    );
    assert_eq!(state(server).await, before);
}

async fn unknown_routes_and_methods(server: &TestServer) {
    for path in [
        "/api/nope",
        "/nope",
        "/api/projects/local/nope",
        "/api/projects/local/sessions/x/nope",
        "/api",
    ] {
        let reply = server.send(Method::GET, path, Body::None).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "GET {path}: {}",
            reply.text
        );
        assert_client_error(&reply, path);
    }
    for (method, path) in [
        (Method::POST, "/health"),
        (Method::PATCH, "/api/projects"),
        (Method::DELETE, "/api/preferences"),
        (Method::PUT, "/api/projects/local/sessions"),
        (Method::POST, "/api/projects/local/sessions/x"),
        (Method::DELETE, "/api/projects/local/events"),
        (Method::PUT, "/api/routes"),
    ] {
        let reply = server.send(method.clone(), path, Body::None).await;
        assert_eq!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {}",
            reply.text
        );
        assert_client_error(&reply, &format!("{method} {path}"));
    }
}

async fn trailing_slashes(server: &TestServer) {
    let (status, plain) = server.get("/api/projects").await;
    assert_eq!(status, StatusCode::OK);
    let (status, slashed) = server.get("/api/projects/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(plain, slashed);
    create_session(server, "slash", None).await;
    let (status, plain) = server.get(&format!("{LOCAL}/sessions")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, slashed) = server.get(&format!("{LOCAL}/sessions/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        plain["sessions"].as_array().map(Vec::len),
        slashed["sessions"].as_array().map(Vec::len)
    );
    let (status, session) = server.get(&format!("{LOCAL}/sessions/slash/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(session["id"], "slash");
    let created = server
        .expect(
            Method::POST,
            "/api/projects/",
            Some(json!({"name": "Slashed"})),
            201,
        )
        .await;
    assert_eq!(created["name"], "Slashed");
    let (status, _) = server.get("/api/preferences/").await;
    assert_eq!(status, StatusCode::OK);
}
