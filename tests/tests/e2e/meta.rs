//! Health, status, server config, support info, the route list and anonymous-mode auth.

use std::collections::HashSet;

use discobot_tests::reqwest::{Method, StatusCode};
use discobot_tests::{Backend, Body, TestServer, e2e_tests, json};

use crate::common::{
    ANONYMOUS_ID, LOCAL, assert_client_error, assert_json_error, assert_no_upper_case_keys,
    create_session,
};

e2e_tests! {
    health_and_status => health_and_status_sqlite, health_and_status_postgres;
    server_config_is_snake_case => server_config_is_snake_case_sqlite, server_config_is_snake_case_postgres;
    support_info_has_no_secrets => support_info_has_no_secrets_sqlite, support_info_has_no_secrets_postgres;
    routes_list_every_seed_handler => routes_list_every_seed_handler_sqlite, routes_list_every_seed_handler_postgres;
    anonymous_auth => anonymous_auth_sqlite, anonymous_auth_postgres;
    cors_allows_the_ui_origins => cors_allows_the_ui_origins_sqlite, cors_allows_the_ui_origins_postgres;
    project_side_routes => project_side_routes_sqlite, project_side_routes_postgres;
}

async fn health_and_status(server: &TestServer) {
    let reply = server.send(Method::GET, "/health", Body::None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json, Some(json!({"status": "ok"})));
    assert!(reply.content_type().starts_with("application/json"));

    let (status, body) = server.get("/api/status").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["ok"].is_boolean(), "{body}");
    // `messages` is an array or null; each message has the documented fields.
    match &body["messages"] {
        serde_json::Value::Null => {}
        serde_json::Value::Array(messages) => {
            for message in messages {
                for field in ["id", "level", "title", "message"] {
                    assert!(message[field].is_string(), "{field} in {message}");
                }
                assert!(["warn", "error"].contains(&message["level"].as_str().unwrap()));
            }
        }
        other => panic!("messages is {other}"),
    }
    // Without a sandbox provider the status says so, as a warning (not an error).
    assert_eq!(body["ok"], true, "{body}");
}

async fn server_config_is_snake_case(server: &TestServer) {
    let (status, body) = server.get("/api/server-config").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["ssh_port"].is_u64(), "{body}");
    assert!(body["http_port"].is_u64(), "{body}");
    let base = body["public_base_url"].as_str().expect("public_base_url");
    assert!(base.starts_with("http://") || base.starts_with("https://"));
    assert!(body.get("httpPort").is_none() && body.get("publicBaseUrl").is_none());
    assert_no_upper_case_keys(&body);
}

async fn support_info_has_no_secrets(server: &TestServer) {
    let reply = server
        .send(Method::GET, "/api/support-info", Body::None)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json.clone().expect("JSON");
    assert!(!body["version"].as_str().unwrap_or_default().is_empty());
    let driver = match server.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(body["config"]["database_driver"], driver, "{body}");
    assert!(body["config"]["auth_enabled"].is_boolean());
    assert!(body["runtime"]["os"].is_string());
    assert!(body["system_info"]["ok"].is_boolean());
    assert!(body["server_log"].is_string() && body["log_exists"].is_boolean());
    assert_no_upper_case_keys(&body["config"]);
    // No database URL, password or other connection secret anywhere in the answer.
    let text = reply.text.to_lowercase();
    for secret in [
        "postgres://",
        "postgresql://",
        "sqlite://",
        "database_url",
        "password",
    ] {
        assert!(
            !text.contains(secret),
            "support info contains {secret:?}: {text}"
        );
    }
    if let Some(schema) = server.pg_schema() {
        let url = schema.url.to_lowercase();
        assert!(!text.contains(&url));
        // The password part of the URL: `scheme://user:password@host`.
        if let Some(password) = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .and_then(|(credentials, _)| credentials.split_once(':'))
            .map(|(_, password)| password.to_owned())
        {
            assert!(!text.contains(&format!(":{password}@")), "password leaked");
        }
    }
}

/// Every seed route (seed contract §1 #1–#109 without `/api/ui`): method, path, handler.
/// `/health` is an inline closure upstream, so its handler name is not checked.
const SEED_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/health", ""),
    ("GET", "/api/status", "GetSystemStatus"),
    ("GET", "/api/server-config", "GetServerConfig"),
    ("GET", "/api/support-info", "GetSupportInfo"),
    ("GET", "/api/routes", "GetRoutes"),
    ("GET", "/auth/login", "AuthLogin"),
    ("GET", "/auth/callback", "AuthCallback"),
    ("POST", "/auth/logout", "AuthLogout"),
    ("GET", "/auth/me", "AuthMe"),
    ("GET", "/api/preferences", "ListPreferences"),
    ("PUT", "/api/preferences", "SetPreferences"),
    ("GET", "/api/preferences/{key}", "GetPreference"),
    ("PUT", "/api/preferences/{key}", "SetPreference"),
    ("DELETE", "/api/preferences/{key}", "DeletePreference"),
    ("GET", "/api/projects", "ListProjects"),
    ("POST", "/api/projects", "CreateProject"),
    ("GET", "P/events", "Events"),
    ("GET", "P/ws", "ChatWebSocket"),
    ("GET", "P", "GetProject"),
    ("PUT", "P", "UpdateProject"),
    ("DELETE", "P", "DeleteProject"),
    ("GET", "P/members", "ListProjectMembers"),
    ("DELETE", "P/members/{userId}", "RemoveProjectMember"),
    ("POST", "P/invitations", "CreateInvitation"),
    ("POST", "P/invitations/{token}/accept", "AcceptInvitation"),
    ("GET", "P/cache", "ListProjectCacheVolumes"),
    ("DELETE", "P/cache", "DeleteProjectCacheVolume"),
    ("GET", "P/models", "GetProjectModels"),
    ("GET", "P/workspaces/providers", "GetProviders"),
    ("GET", "P/workspaces/providers/{provider}", "GetProvider"),
    ("GET", "P/workspaces", "ListWorkspaces"),
    ("POST", "P/workspaces", "CreateWorkspace"),
    ("POST", "P/workspaces/validate", "ValidateWorkspace"),
    ("GET", "W", "GetWorkspace"),
    ("PUT", "W", "UpdateWorkspace"),
    ("DELETE", "W", "DeleteWorkspace"),
    ("GET", "W/git/status", "GetWorkspaceGitStatus"),
    ("POST", "W/git/fetch", "FetchWorkspace"),
    ("POST", "W/git/checkout", "CheckoutWorkspace"),
    ("GET", "W/git/branches", "GetWorkspaceBranches"),
    ("GET", "W/git/diff", "GetWorkspaceDiff"),
    ("GET", "W/git/files", "GetWorkspaceFileTree"),
    ("GET", "W/git/file", "GetWorkspaceFileContent"),
    ("POST", "W/git/file", "WriteWorkspaceFile"),
    ("POST", "W/git/stage", "StageWorkspaceFiles"),
    ("POST", "W/git/commit", "CommitWorkspace"),
    ("GET", "W/git/log", "GetWorkspaceLog"),
    ("GET", "P/sessions", "ListSessions"),
    ("POST", "P/sessions", "CreateSession"),
    ("POST", "S/threads/{threadId}/chat", "Chat"),
    ("GET", "S", "GetSession"),
    ("PUT", "S", "UpdateSession"),
    ("PATCH", "S", "UpdateSession"),
    ("DELETE", "S", "DeleteSession"),
    ("POST", "S/commit", "CommitSession"),
    ("POST", "S/rebase", "RebaseSession"),
    ("GET", "S/files", "ListSessionFiles"),
    ("GET", "S/files/search", "SearchSessionFiles"),
    ("GET", "S/files/read", "ReadSessionFile"),
    ("PUT", "S/files/write", "WriteSessionFile"),
    ("POST", "S/files/delete", "DeleteSessionFile"),
    ("POST", "S/files/rename", "RenameSessionFile"),
    ("GET", "S/diff", "GetSessionDiff"),
    ("GET", "S/threads", "ListThreads"),
    ("POST", "S/threads", "CreateThread"),
    ("GET", "S/threads/{threadId}", "GetThread"),
    ("PUT", "S/threads/{threadId}", "UpdateThread"),
    ("PATCH", "S/threads/{threadId}", "UpdateThread"),
    ("DELETE", "S/threads/{threadId}", "DeleteThread"),
    (
        "DELETE",
        "S/threads/{threadId}/queue/{queueId}",
        "DeleteQueuedPrompt",
    ),
    ("GET", "S/threads/{threadId}/stream", "ChatStream"),
    ("POST", "S/threads/{threadId}/cancel", "ChatCancel"),
    (
        "GET",
        "S/threads/{threadId}/question/{questionId}",
        "ChatQuestion",
    ),
    (
        "POST",
        "S/threads/{threadId}/answer/{questionId}",
        "ChatAnswer",
    ),
    ("GET", "S/credentials", "ListSessionCredentialAssignments"),
    ("PUT", "S/credentials", "SetSessionCredentialAssignments"),
    ("GET", "S/terminal/ws", "TerminalWebSocket"),
    ("GET", "S/terminal/history", "GetTerminalHistory"),
    ("GET", "S/terminal/status", "GetTerminalStatus"),
    ("GET", "S/hooks/status", "GetHooksStatus"),
    ("GET", "S/hooks/{hookId}/output", "GetHookOutput"),
    (
        "GET",
        "S/hooks/{hookId}/output/download",
        "DownloadHookOutput",
    ),
    ("POST", "S/hooks/{hookId}/rerun", "RerunHook"),
    ("GET", "S/services", "ListServices"),
    ("POST", "S/services/{serviceId}/start", "StartService"),
    ("POST", "S/services/{serviceId}/stop", "StopService"),
    ("GET", "S/services/{serviceId}/output", "GetServiceOutput"),
    ("GET", "S/models", "GetSessionModels"),
    ("GET", "P/auth-providers", "GetAuthProviders"),
    ("GET", "P/suggestions", "GetSuggestions"),
    ("GET", "C/types", "GetCredentialTypes"),
    ("GET", "C", "ListCredentials"),
    ("POST", "C", "CreateCredential"),
    ("GET", "C/{provider}", "GetCredential"),
    ("DELETE", "C/{provider}", "DeleteCredential"),
    ("POST", "C/{provider}/refresh", "RefreshCredential"),
    ("POST", "C/anthropic/authorize", "AnthropicAuthorize"),
    ("POST", "C/anthropic/exchange", "AnthropicExchange"),
    (
        "POST",
        "C/github-copilot/device-code",
        "GitHubCopilotDeviceCode",
    ),
    ("POST", "C/github-copilot/poll", "GitHubCopilotPoll"),
    ("POST", "C/github-git/device-code", "GitHubDeviceCode"),
    ("POST", "C/github-git/poll", "GitHubPoll"),
    ("POST", "C/codex/authorize", "CodexAuthorize"),
    ("POST", "C/codex/exchange", "CodexExchange"),
    ("POST", "C/codex/device-code", "CodexDeviceCode"),
    ("POST", "C/codex/poll", "CodexPoll"),
    ("POST", "C/codex/callback-status", "CodexCallbackStatus"),
    ("POST", "C/mcp", "PostMCPToken"),
];

/// Expands the contract's `P`, `W`, `S`, `C` abbreviations.
pub fn full_path(short: &str) -> String {
    const P: &str = "/api/projects/{projectId}";
    let expand = |prefix: &str, base: String| short.strip_prefix(prefix).map(|rest| base + rest);
    expand("W", format!("{P}/workspaces/{{workspaceId}}"))
        .or_else(|| expand("S", format!("{P}/sessions/{{sessionId}}")))
        .or_else(|| expand("C", format!("{P}/credentials")))
        .or_else(|| expand("P", P.to_owned()))
        .unwrap_or_else(|| short.to_owned())
}

async fn routes_list_every_seed_handler(server: &TestServer) {
    let (status, body) = server.get("/api/routes").await;
    assert_eq!(status, StatusCode::OK);
    let routes = body.as_array().expect("a bare array of routes");
    let mut seen = HashSet::new();
    let mut handlers = HashSet::new();
    for route in routes {
        let method = route["method"].as_str().expect("method");
        let path = route["path"].as_str().expect("path").trim_end_matches('/');
        let handler = route["handler"].as_str().expect("handler");
        assert!(route["group"].is_string() && route["description"].is_string());
        assert!(
            seen.insert((method.to_owned(), path.to_owned())),
            "{method} {path} is listed twice"
        );
        handlers.insert(handler.to_owned());
        // Path parameters are listed as required `in: path` params.
        for name in path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            let params = route["params"]
                .as_array()
                .expect("params of a templated path");
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true),
                "{method} {path} lacks path param {name}: {route}"
            );
        }
    }
    let mut missing = Vec::new();
    for (method, short, handler) in SEED_ROUTES {
        let path = full_path(short);
        let listed = routes.iter().find(|route| {
            route["method"] == *method
                && route["path"].as_str().map(|p| p.trim_end_matches('/')) == Some(path.as_str())
        });
        match listed {
            None => missing.push(format!("{method} {path} ({handler})")),
            Some(route) if !handler.is_empty() => {
                assert_eq!(route["handler"], *handler, "handler of {method} {path}");
            }
            Some(_) => {}
        }
        if !handler.is_empty() {
            assert!(
                handlers.contains(*handler),
                "handler {handler} is not listed"
            );
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from /api/routes: {missing:#?}"
    );
    assert!(routes.len() >= SEED_ROUTES.len());
    // A few spot checks of the exact entries.
    let find = |method: &str, path: &str| {
        routes
            .iter()
            .find(|r| r["method"] == method && r["path"] == path)
            .unwrap_or_else(|| panic!("{method} {path} not listed"))
            .clone()
    };
    assert_eq!(
        find("POST", "/api/projects/{projectId}/sessions")["handler"],
        "CreateSession"
    );
    assert_eq!(
        find("GET", "/api/projects/{projectId}/events")["group"],
        "Events"
    );
    assert_eq!(
        find(
            "DELETE",
            "/api/projects/{projectId}/workspaces/{workspaceId}"
        )["handler"],
        "DeleteWorkspace"
    );
}

async fn anonymous_auth(server: &TestServer) {
    let (status, me) = server.get("/auth/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        me,
        json!({"id": ANONYMOUS_ID, "email": "anonymous@local", "name": "Anonymous User", "provider": ""})
    );
    let (status, body) = server.post("/auth/logout", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"success": true}));
    // Auth disabled: login and callback send the browser back to the UI.
    for path in ["/auth/login", "/auth/callback"] {
        let reply = server.send(Method::GET, path, Body::None).await;
        assert_eq!(reply.status, StatusCode::TEMPORARY_REDIRECT, "{path}");
        assert_eq!(
            reply.headers.get("location").and_then(|v| v.to_str().ok()),
            Some("/")
        );
    }
}

async fn cors_allows_the_ui_origins(server: &TestServer) {
    let preflight = server
        .client()
        .request(Method::OPTIONS, server.url("/api/projects"))
        .header("Origin", "http://localhost:3000")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("http://localhost:3000")
    );
    assert_eq!(
        preflight
            .headers()
            .get("access-control-allow-credentials")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let foreign = server
        .client()
        .get(server.url("/api/projects"))
        .header("Origin", "http://evil.example")
        .send()
        .await
        .expect("request");
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

/// Providers, models, auth providers, suggestions, cache, terminal, and the JSON 501 of the
/// routes whose feature is not built yet.
async fn project_side_routes(server: &TestServer) {
    let providers = server
        .expect(
            Method::GET,
            &format!("{LOCAL}/workspaces/providers"),
            None,
            200,
        )
        .await;
    let default = providers["default"].as_str().expect("default provider");
    let map = providers["providers"]
        .as_object()
        .expect("providers is an object keyed by name");
    let status = map.get(default).expect("the default provider is listed");
    assert!(
        status["available"].is_boolean() && status["state"].is_string(),
        "{status}"
    );
    let one = server
        .expect(
            Method::GET,
            &format!("{LOCAL}/workspaces/providers/{default}"),
            None,
            200,
        )
        .await;
    assert_eq!(&one, status);
    let reply = server
        .send(
            Method::GET,
            &format!("{LOCAL}/workspaces/providers/no-such-provider"),
            Body::None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_client_error(&reply, "unknown provider");

    let models = server
        .expect(Method::GET, &format!("{LOCAL}/models"), None, 200)
        .await;
    assert!(models["models"].is_array(), "{models}");
    let auth = server
        .expect(Method::GET, &format!("{LOCAL}/auth-providers"), None, 200)
        .await;
    assert!(auth["authProviders"].is_array(), "{auth}");
    // Suggestions of the server's filesystem are off by default.
    let suggestions = server
        .expect(Method::GET, &format!("{LOCAL}/suggestions?q=/"), None, 200)
        .await;
    assert_eq!(suggestions, json!({"suggestions": []}));

    let reply = server
        .send(Method::GET, &format!("{LOCAL}/cache"), Body::None)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_IMPLEMENTED, "{}", reply.text);
    assert_json_error(&reply, "cache volumes");

    create_session(server, "side", None).await;
    let history = server
        .expect(
            Method::GET,
            &format!("{LOCAL}/sessions/side/terminal/history"),
            None,
            200,
        )
        .await;
    assert_eq!(history, json!({"history": []}));
    let terminal = server
        .expect(
            Method::GET,
            &format!("{LOCAL}/sessions/side/terminal/status"),
            None,
            200,
        )
        .await;
    assert_eq!(terminal["status"], "unavailable", "{terminal}");

    // A route whose feature is not built yet answers a JSON 501 naming it.
    let reply = server
        .send(
            Method::GET,
            &format!("{LOCAL}/sessions/side/hooks/status"),
            Body::None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_IMPLEMENTED, "{}", reply.text);
    assert_json_error(&reply, "a planned route");
    // …after the membership check, which still answers first.
    let reply = server
        .send(
            Method::GET,
            "/api/projects/no-such-project/credentials",
            Body::None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
    assert_client_error(&reply, "a planned route of an unknown project");
}
