//! Credentials over HTTP on SQLite and PostgreSQL: create-or-update, list, get, delete,
//! types, models, MCP tokens, session assignments, bad input; the rows read straight from
//! the table hold no plaintext; what the agent would receive (`App::agent_credentials`);
//! the start-up import; and restarts with the same key (secrets read back) and another key
//! (a clear start-up error).

use discobot_core::credentials::{AgentCredential, encode_credentials_header};
use discobot_core::ids::SessionId;
use discobot_core::secrets::{Secret, WRONG_KEY_MESSAGE};
use discobot_tests::reqwest::{Method, StatusCode};
use discobot_tests::{
    Backend, Body, PgSchema, ServerOptions, TestServer, e2e_tests, json, postgres_url, str_field,
};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::Value;

use crate::common::{LOCAL, assert_client_error, create_session};

e2e_tests! {
    credential_crud => credential_crud_sqlite, credential_crud_postgres;
    credential_bad_input => credential_bad_input_sqlite, credential_bad_input_postgres;
    session_assignments => session_assignments_sqlite, session_assignments_postgres;
    rows_hold_no_plaintext => rows_hold_no_plaintext_sqlite, rows_hold_no_plaintext_postgres;
    import_from_environment => import_from_environment_sqlite, import_from_environment_postgres;
}

const CREDS: &str = "/api/projects/local/credentials";
const SECRET: &str = "sk-ant-e2e-secret-4b1d2c3e";

/// Asserts that `value` (any answer) shows none of `secrets`.
fn assert_no_secret(value: &Value, secrets: &[&str]) {
    let text = value.to_string();
    for secret in secrets {
        assert!(!text.contains(secret), "an answer shows a secret: {text}");
    }
}

async fn create(server: &TestServer, body: Value) -> Value {
    let created = server.expect(Method::POST, CREDS, Some(body), 200).await;
    assert_no_secret(&created, &[SECRET]);
    created
}

fn by_env<'a>(entries: &'a [AgentCredential], env: &str) -> &'a AgentCredential {
    entries
        .iter()
        .find(|entry| entry.env_var == env)
        .unwrap_or_else(|| panic!("no {env} among {entries:?}"))
}

async fn agent_credentials(server: &TestServer, session: &str) -> Vec<AgentCredential> {
    server
        .app()
        .agent_credentials(&SessionId::new(session))
        .await
        .expect("agent credentials")
}

async fn credential_crud(server: &TestServer) {
    let types = server
        .expect(Method::GET, &format!("{CREDS}/types"), None, 200)
        .await;
    let ids: Vec<&str> = types["credentialTypes"]
        .as_array()
        .expect("credentialTypes")
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "anthropic:api_key",
            "openai:api_key",
            "github-git:api_key",
            "tavily:api_key",
            "custom"
        ]
    );
    let anthropic_type = &types["credentialTypes"][0];
    for field in [
        "provider",
        "backendProvider",
        "name",
        "category",
        "group",
        "groupName",
        "authType",
    ] {
        assert!(
            anthropic_type[field].is_string(),
            "{field}: {anthropic_type}"
        );
    }
    assert_eq!(anthropic_type["env"], json!(["ANTHROPIC_API_KEY"]));

    assert_eq!(
        server.expect(Method::GET, CREDS, None, 200).await,
        json!({"credentials": []})
    );
    assert_eq!(
        server
            .expect(Method::GET, &format!("{LOCAL}/models"), None, 200)
            .await,
        json!({"models": []}),
        "no credential, no model"
    );

    // Create an Anthropic API key.
    let created = create(
        server,
        json!({"provider": "anthropic", "name": "  My Anthropic  ", "authType": "api_key", "apiKey": format!("{SECRET}\n")}),
    )
    .await;
    let id = str_field(&created, "id").to_owned();
    assert_eq!(created["provider"], "anthropic");
    assert_eq!(created["name"], "My Anthropic");
    assert_eq!(created["authType"], "api_key");
    assert_eq!(created["isConfigured"], true);
    assert_eq!(created["inactive"], false);
    assert_eq!(created["agentVisible"], false);
    assert_eq!(
        created["visibility"],
        json!({"tools": false, "console": false, "services": false, "hooks": false})
    );
    assert_eq!(created["envKeys"], json!(["ANTHROPIC_API_KEY"]));
    assert!(created.get("envVars").is_none() && created.get("description").is_none());
    assert!(created["createdAt"].is_string() && created["updatedAt"].is_string());

    // The composer's model list now has Anthropic's models.
    let models = server
        .expect(Method::GET, &format!("{LOCAL}/models"), None, 200)
        .await;
    let model_ids: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        model_ids,
        [
            "anthropic/claude-sonnet-4-5",
            "anthropic/claude-opus-4-1",
            "anthropic/claude-haiku-4-5"
        ]
    );
    assert_eq!(models["models"][0]["provider"], "Anthropic");
    assert_eq!(models["models"][0]["reasoning"], true);

    // Get by provider and by id.
    let by_provider = server
        .expect(Method::GET, &format!("{CREDS}/anthropic"), None, 200)
        .await;
    assert_eq!(by_provider, created);
    let by_id = server
        .expect(Method::GET, &format!("{CREDS}/{id}"), None, 200)
        .await;
    assert_eq!(by_id, created);

    // Update by id: a base URL joins the key (blank value keeps the stored key).
    let updated = create(
        server,
        json!({
            "credentialId": id, "name": "Anthropic", "description": "through a proxy",
            "envVars": [{"key": "ANTHROPIC_API_KEY", "value": ""}, {"key": "ANTHROPIC_BASE_URL", "value": "http://127.0.0.1:9/fake"}],
            "visibility": {"tools": true, "console": false, "services": true, "hooks": false},
        }),
    )
    .await;
    assert_eq!(updated["id"], id.as_str());
    assert_eq!(updated["provider"], "anthropic", "the provider is kept");
    assert_eq!(updated["description"], "through a proxy");
    assert_eq!(
        updated["envKeys"],
        json!(["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"])
    );
    assert_eq!(updated["agentVisible"], true);
    assert_eq!(updated["visibility"]["services"], true);

    // A metadata-only update (no key) keeps the secret; agentVisible alone sets tools.
    let renamed = create(
        server,
        json!({"credentialId": id, "name": "Renamed", "authType": "api_key", "agentVisible": false, "inactive": true}),
    )
    .await;
    assert_eq!(renamed["name"], "Renamed");
    assert_eq!(renamed["agentVisible"], false);
    assert_eq!(
        renamed["visibility"]["services"], true,
        "the rest of the visibility stays"
    );
    assert_eq!(renamed["inactive"], true);
    assert_eq!(
        renamed["envKeys"],
        json!(["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"])
    );
    // Inactive credentials unlock no models.
    assert_eq!(
        server
            .expect(Method::GET, &format!("{LOCAL}/models"), None, 200)
            .await,
        json!({"models": []})
    );

    // Create-or-update by provider: a second anthropic key updates the same credential.
    let again = create(
        server,
        json!({"provider": "anthropic", "name": "Anthropic", "apiKey": "sk-ant-replaced", "inactive": false}),
    )
    .await;
    assert_eq!(again["id"], id.as_str());
    assert_eq!(
        again["envKeys"],
        json!(["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"])
    );

    // OpenAI through Codex counts as OpenAI for models.
    create(
        server,
        json!({"provider": "codex", "name": "Codex token", "apiKey": "codex-secret"}),
    )
    .await;
    let models = server
        .expect(Method::GET, &format!("{LOCAL}/models"), None, 200)
        .await;
    assert_eq!(models["models"].as_array().unwrap().len(), 5);

    // A custom credential: no provider, env vars.
    let custom = create(
        server,
        json!({"name": "Deploy", "authType": "api_key", "envVars": [{"key": "DEPLOY_TOKEN", "value": "deploy-secret"}, {"key": " REGION ", "value": "eu"}], "agentVisible": true}),
    )
    .await;
    let custom_provider = str_field(&custom, "provider").to_owned();
    assert!(custom_provider.starts_with("custom:"), "{custom}");
    assert_eq!(custom["envKeys"], json!(["DEPLOY_TOKEN", "REGION"]));
    assert_eq!(custom["agentVisible"], true);
    // Updating it: blank keeps, unlisted keys go, new keys come.
    let custom_id = str_field(&custom, "id").to_owned();
    let custom = create(
        server,
        json!({"credentialId": custom_id, "provider": "custom", "name": "Deploy", "envVars": [{"key": "DEPLOY_TOKEN", "value": ""}, {"key": "EXTRA", "value": "x"}]}),
    )
    .await;
    assert_eq!(custom["envKeys"], json!(["DEPLOY_TOKEN", "EXTRA"]));
    assert_eq!(custom["agentVisible"], true, "visibility not given: kept");
    // The custom provider key works for get too.
    server
        .expect(
            Method::GET,
            &format!("{CREDS}/{custom_provider}"),
            None,
            200,
        )
        .await;

    // An MCP token from the agent.
    let status = server
        .expect(
            Method::POST,
            &format!("{CREDS}/mcp"),
            Some(json!({"url": "https://mcp.example/mcp", "accessToken": "mcp-secret", "refreshToken": "mcp-refresh", "expiresAt": 1_900_000_000})),
            200,
        )
        .await;
    assert_eq!(status, json!({"status": "ok"}));

    let list = server.expect(Method::GET, CREDS, None, 200).await;
    assert_no_secret(
        &list,
        &[
            SECRET,
            "sk-ant-replaced",
            "deploy-secret",
            "mcp-secret",
            "mcp-refresh",
            "codex-secret",
        ],
    );
    let list = list["credentials"].as_array().unwrap().clone();
    assert_eq!(list.len(), 4);
    let mcp = list
        .iter()
        .find(|c| c["provider"] == "mcp:https://mcp.example/mcp")
        .expect("the MCP token is listed");
    assert_eq!(mcp["name"], "MCP OAuth: https://mcp.example/mcp");
    assert_eq!(mcp["authType"], "oauth");
    assert_eq!(mcp["agentVisible"], true);
    assert_eq!(mcp["expiresAt"], "2030-03-17T17:46:40Z");
    assert!(mcp.get("envKeys").is_none());

    // What the agent of a session in this project gets.
    create_session(server, "creds-crud", None).await;
    let entries = agent_credentials(server, "creds-crud").await;
    let key = by_env(&entries, "ANTHROPIC_API_KEY");
    assert_eq!(key.value.expose(), "sk-ant-replaced");
    assert_eq!(key.provider, "anthropic");
    assert!(!key.visibility.tools);
    assert_eq!(
        by_env(&entries, "ANTHROPIC_BASE_URL").value.expose(),
        "http://127.0.0.1:9/fake"
    );
    assert_eq!(
        by_env(&entries, "CODEX_TOKEN").value.expose(),
        "codex-secret"
    );
    assert_eq!(
        by_env(&entries, "DEPLOY_TOKEN").value.expose(),
        "deploy-secret"
    );
    assert!(by_env(&entries, "DEPLOY_TOKEN").visibility.tools);
    let tokens: Value =
        serde_json::from_str(by_env(&entries, "MCP_OAUTH_TOKENS").value.expose()).unwrap();
    assert_eq!(tokens[0]["accessToken"], "mcp-secret");
    let header = encode_credentials_header(&entries);
    assert!(header.is_ascii() && header.contains("sk-ant-replaced"));
    assert!(
        !format!("{entries:?}").contains("sk-ant-replaced"),
        "Debug shows a value"
    );

    // Delete by provider and by id; both take the credential away for good.
    let deleted = server
        .expect(Method::DELETE, &format!("{CREDS}/anthropic"), None, 200)
        .await;
    assert_eq!(deleted, json!({"status": "deleted"}));
    for path in [format!("{CREDS}/anthropic"), format!("{CREDS}/{id}")] {
        let reply = server.send(Method::GET, &path, Body::None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_client_error(&reply, "a deleted credential");
        assert_eq!(reply.json.unwrap()["error"], "Credential not found");
    }
    server
        .expect(Method::DELETE, &format!("{CREDS}/{custom_id}"), None, 200)
        .await;
    let reply = server
        .send(Method::DELETE, &format!("{CREDS}/{custom_id}"), Body::None)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let left = server.expect(Method::GET, CREDS, None, 200).await;
    assert_eq!(left["credentials"].as_array().unwrap().len(), 2);
    let entries = agent_credentials(server, "creds-crud").await;
    assert!(entries.iter().all(|e| e.env_var != "ANTHROPIC_API_KEY"));
}

async fn credential_bad_input(server: &TestServer) {
    let existing = create(
        server,
        json!({"provider": "openai", "name": "OpenAI", "apiKey": SECRET}),
    )
    .await;
    let existing_id = str_field(&existing, "id").to_owned();
    let before = server.expect(Method::GET, CREDS, None, 200).await;

    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"provider": "bogus", "name": "x", "apiKey": SECRET}),
            400,
            "Invalid provider",
        ),
        (
            json!({"provider": "mcp:https://x", "name": "x", "apiKey": SECRET}),
            400,
            "Invalid provider",
        ),
        (
            json!({"provider": "openai", "name": "", "apiKey": SECRET}),
            400,
            "name is required",
        ),
        (
            json!({"provider": "openai", "apiKey": SECRET}),
            400,
            "name is required",
        ),
        (
            json!({"provider": "tavily", "name": "x"}),
            400,
            "api_key is required for api_key auth type",
        ),
        (
            json!({"provider": "discobot", "name": "x", "authType": "id"}),
            400,
            "api_key is required for id auth type",
        ),
        (
            json!({"provider": "anthropic", "name": "x", "authType": "oauth", "apiKey": SECRET}),
            400,
            "OAuth credentials must be set via OAuth flow endpoints",
        ),
        (
            json!({"provider": "anthropic", "name": "x", "authType": "bearer", "apiKey": SECRET}),
            400,
            "",
        ),
        (
            json!({"credentialId": "no-such-id", "name": "x", "apiKey": SECRET}),
            404,
            "Credential not found",
        ),
        (
            json!({"credentialId": existing_id, "provider": "anthropic", "name": "x", "apiKey": SECRET}),
            400,
            "Credential provider mismatch",
        ),
        (
            json!({"credentialId": existing_id, "provider": "custom", "name": "x"}),
            400,
            "Credential provider mismatch",
        ),
        (
            json!({"name": "x", "envVars": [{"key": "1BAD", "value": SECRET}]}),
            400,
            "",
        ),
        (
            json!({"name": "x", "envVars": [{"key": "A-B", "value": SECRET}]}),
            400,
            "",
        ),
        (
            json!({"name": "x", "envVars": [{"key": "NEW", "value": ""}]}),
            400,
            "",
        ),
        (
            json!({"name": "x", "envVars": []}),
            400,
            "at least one environment variable is required",
        ),
        (
            json!({"name": "x", "envVars": [{"key": "K", "value": format!("{SECRET}\u{0}")}]}),
            400,
            "",
        ),
        (
            json!({"provider": "openai", "name": "x", "apiKey": "k".repeat(70_000)}),
            400,
            "",
        ),
        (
            json!({"provider": "openai", "name": "n".repeat(201), "apiKey": SECRET}),
            400,
            "",
        ),
        (
            json!({"provider": "custom:not-there", "name": "x", "envVars": [{"key": "K", "value": SECRET}]}),
            404,
            "Credential not found",
        ),
        // Secrets in fields of the wrong type: refused without echoing them.
        (
            json!({"name": "x", "envVars": SECRET}),
            400,
            "Invalid request body",
        ),
        (
            json!({"name": "x", "agentVisible": SECRET}),
            400,
            "Invalid request body",
        ),
        (
            json!({"name": "x", "apiKey": [SECRET]}),
            400,
            "Invalid request body",
        ),
        (
            json!({"name": "x", "visibility": {"tools": SECRET}}),
            400,
            "Invalid request body",
        ),
    ];
    for (body, status, message) in cases {
        let reply = server
            .send(Method::POST, CREDS, Body::Json(body.clone()))
            .await;
        assert_eq!(reply.status.as_u16(), status, "{body}: {}", reply.text);
        assert_client_error(&reply, &body.to_string());
        assert!(
            !reply.text.contains(SECRET),
            "{body} echoed the secret: {}",
            reply.text
        );
        if !message.is_empty() {
            assert_eq!(reply.json.as_ref().unwrap()["error"], message, "{body}");
        }
    }
    for raw in [
        format!("{{\"name\": \"x\", \"apiKey\": \"{SECRET}\""),
        format!("{{\"apiKey\": {SECRET}}}"),
        String::new(),
        "[]".to_owned(),
    ] {
        let reply = server
            .send(Method::POST, CREDS, Body::Raw(raw.clone().into_bytes()))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{raw}");
        assert_eq!(
            reply.json.as_ref().unwrap()["error"],
            "Invalid request body"
        );
        assert_client_error(&reply, &raw);
    }
    // MCP token pushes.
    for (body, message) in [
        (json!({"accessToken": SECRET}), "url is required"),
        (
            json!({"url": " ", "accessToken": SECRET}),
            "url is required",
        ),
        (json!({"url": "https://x/mcp"}), "accessToken is required"),
        (
            json!({"url": "https://x/mcp", "accessToken": ""}),
            "accessToken is required",
        ),
        (
            json!({"url": "https://x/mcp", "accessToken": [SECRET]}),
            "Invalid request body",
        ),
    ] {
        let reply = server
            .send(
                Method::POST,
                &format!("{CREDS}/mcp"),
                Body::Json(body.clone()),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_client_error(&reply, &body.to_string());
        assert_eq!(reply.json.as_ref().unwrap()["error"], message, "{body}");
        assert!(!reply.text.contains(SECRET));
    }
    // Unknown credentials and projects.
    for (method, path, status) in [
        (Method::GET, format!("{CREDS}/nope"), 404),
        (Method::DELETE, format!("{CREDS}/nope"), 404),
        (
            Method::GET,
            "/api/projects/nope/credentials".to_owned(),
            404,
        ),
        (Method::GET, format!("{CREDS}/%00"), 404),
    ] {
        let reply = server.send(method.clone(), &path, Body::None).await;
        assert_eq!(
            reply.status.as_u16(),
            status,
            "{method} {path}: {}",
            reply.text
        );
        assert_client_error(&reply, &path);
    }
    // Nothing changed, and the stored key is the first one.
    assert_eq!(server.expect(Method::GET, CREDS, None, 200).await, before);
}

async fn session_assignments(server: &TestServer) {
    let key = create(
        server,
        json!({"provider": "anthropic", "name": "Anthropic", "apiKey": SECRET, "visibility": {"tools": false, "console": false, "services": false, "hooks": true}}),
    )
    .await;
    let bundle = create(
        server,
        json!({"name": "Bundle", "envVars": [{"key": "FIRST", "value": "one"}, {"key": "SECOND", "value": "two"}]}),
    )
    .await;
    let (key_id, bundle_id) = (
        str_field(&key, "id").to_owned(),
        str_field(&bundle, "id").to_owned(),
    );
    create_session(server, "assigned", None).await;
    let path = format!("{LOCAL}/sessions/assigned/credentials");

    // One entry per project credential, with the global visibility when unassigned.
    let listed = server.expect(Method::GET, &path, None, 200).await;
    assert_no_secret(&listed, &[SECRET, "one", "two"]);
    let entries = listed["credentials"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["credentialId"], key_id.as_str());
    assert_eq!(entries[0]["visibility"]["hooks"], true);
    assert_eq!(entries[0]["credential"]["id"], key_id.as_str());
    assert!(entries[0].get("sessionCredentialId").is_none());

    let body = json!({"credentials": [
        {"credentialId": bundle_id, "agentVisible": true, "envVar": "RENAMED", "sourceEnvVar": "SECOND", "uses": [{"description": "Deploy"}]},
        {"credentialId": key_id, "agentVisible": true, "visibility": {"tools": false, "console": true, "services": false, "hooks": false}},
    ]});
    let set = server.expect(Method::PUT, &path, Some(body), 200).await;
    assert_no_secret(&set, &[SECRET, "one", "two"]);
    let get = server.expect(Method::GET, &path, None, 200).await;
    assert_eq!(set, get, "PUT answers what GET shows");
    let entries = get["credentials"].as_array().unwrap();
    let key_entry = entries
        .iter()
        .find(|e| e["credentialId"] == key_id.as_str())
        .unwrap();
    assert_eq!(
        key_entry["visibility"],
        json!({"tools": false, "console": true, "services": false, "hooks": false}),
        "visibility overrides agentVisible"
    );
    assert_eq!(key_entry["agentVisible"], false);
    assert_eq!(
        key_entry["credential"]["visibility"]["hooks"], true,
        "global stays"
    );
    let bundle_entry = entries
        .iter()
        .find(|e| e["credentialId"] == bundle_id.as_str())
        .unwrap();
    assert_eq!(bundle_entry["agentVisible"], true);
    assert_eq!(bundle_entry["envVar"], "RENAMED");
    assert_eq!(bundle_entry["sourceEnvVar"], "SECOND");
    let session_credential_id = str_field(bundle_entry, "sessionCredentialId").to_owned();
    assert!(
        session_credential_id.starts_with("cred_s_"),
        "{bundle_entry}"
    );
    let use_id = bundle_entry["uses"][0]["id"].as_str().unwrap().to_owned();
    assert!(use_id.starts_with("use_s_"));
    assert_eq!(bundle_entry["uses"][0]["description"], "Deploy");

    // What the agent sees: global OR session, the rebound env var.
    let agent = agent_credentials(server, "assigned").await;
    let renamed = by_env(&agent, "RENAMED");
    assert_eq!(renamed.value.expose(), "two");
    assert!(renamed.visibility.tools);
    assert_eq!(
        renamed.session_credential_id.as_deref(),
        Some(session_credential_id.as_str())
    );
    assert_eq!(renamed.uses.len(), 1);
    assert!(
        agent
            .iter()
            .all(|e| e.env_var != "FIRST" && e.env_var != "SECOND")
    );
    let anthropic = by_env(&agent, "ANTHROPIC_API_KEY");
    assert_eq!(anthropic.value.expose(), SECRET);
    assert!(
        anthropic.visibility.console && anthropic.visibility.hooks && !anthropic.visibility.tools
    );
    // Another session of the project sees only the global settings.
    create_session(server, "unassigned", None).await;
    let other = agent_credentials(server, "unassigned").await;
    assert_eq!(other.len(), 3);
    assert!(other.iter().all(|e| e.session_credential_id.is_none()));
    assert!(!by_env(&other, "FIRST").visibility.tools);

    // A second PUT keeps ids and env vars not given, and matches uses by description.
    let body = json!({"credentials": [
        {"credentialId": bundle_id, "agentVisible": false, "uses": [{"description": "deploy"}, {"description": "Run tests"}]},
    ]});
    let set = server.expect(Method::PUT, &path, Some(body), 200).await;
    let entries = set["credentials"].as_array().unwrap();
    let bundle_entry = entries
        .iter()
        .find(|e| e["credentialId"] == bundle_id.as_str())
        .unwrap();
    assert_eq!(
        bundle_entry["sessionCredentialId"],
        session_credential_id.as_str()
    );
    assert_eq!(bundle_entry["envVar"], "RENAMED");
    assert_eq!(bundle_entry["agentVisible"], false);
    let uses = bundle_entry["uses"].as_array().unwrap();
    assert_eq!(uses.len(), 2);
    assert_eq!(uses[0]["id"], use_id.as_str());
    assert_eq!(uses[0]["description"], "Deploy");
    let key_entry = entries
        .iter()
        .find(|e| e["credentialId"] == key_id.as_str())
        .unwrap();
    assert!(
        key_entry.get("sessionCredentialId").is_none(),
        "dropped from the set"
    );

    // Bad input changes nothing.
    let before = server.expect(Method::GET, &path, None, 200).await;
    for (body, status) in [
        (
            json!({"credentials": [{"credentialId": "nope", "agentVisible": true}]}),
            404,
        ),
        (
            json!({"credentials": [{"credentialId": bundle_id}, {"credentialId": bundle_id}]}),
            400,
        ),
        (
            json!({"credentials": [{"credentialId": bundle_id, "envVar": "BAD-NAME"}]}),
            400,
        ),
        (
            json!({"credentials": [{"credentialId": bundle_id, "sessionCredentialId": "a/b"}]}),
            400,
        ),
        (
            json!({"credentials": [{"credentialId": bundle_id, "uses": [{"description": ""}]}]}),
            400,
        ),
        (json!({"credentials": [{"agentVisible": true}]}), 400),
        (json!({"credentials": "x"}), 400),
    ] {
        let reply = server
            .send(Method::PUT, &path, Body::Json(body.clone()))
            .await;
        assert_eq!(reply.status.as_u16(), status, "{body}: {}", reply.text);
        assert_client_error(&reply, &body.to_string());
    }
    assert_eq!(server.expect(Method::GET, &path, None, 200).await, before);
    let reply = server
        .send(
            Method::GET,
            &format!("{LOCAL}/sessions/nope/credentials"),
            Body::None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_client_error(&reply, "unknown session");

    // Deleting a credential takes its assignment along.
    server
        .expect(Method::DELETE, &format!("{CREDS}/{bundle_id}"), None, 200)
        .await;
    let after = server.expect(Method::GET, &path, None, 200).await;
    let entries = after["credentials"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["credentialId"], key_id.as_str());
    assert!(
        agent_credentials(server, "assigned")
            .await
            .iter()
            .all(|e| e.env_var != "RENAMED")
    );
    // An empty set clears.
    let cleared = server
        .expect(Method::PUT, &path, Some(json!({"credentials": []})), 200)
        .await;
    assert!(
        cleared["credentials"][0]
            .get("sessionCredentialId")
            .is_none()
    );
}

/// A plain connection to the server's database, to look at rows as stored.
async fn raw_database(server: &TestServer) -> DatabaseConnection {
    match server.backend() {
        Backend::Sqlite => {
            let path = server.data_dir().join("discobot.db");
            Database::connect(format!("sqlite://{}?mode=ro", path.display()))
                .await
                .expect("raw SQLite connection")
        }
        Backend::Postgres => {
            let schema = server.pg_schema().expect("schema");
            let mut options = ConnectOptions::new(schema.url.clone());
            options
                .max_connections(1)
                .sqlx_logging(false)
                .set_schema_search_path(format!("\"{}\"", schema.name));
            Database::connect(options)
                .await
                .expect("raw PostgreSQL connection")
        }
    }
}

async fn rows_hold_no_plaintext(server: &TestServer) {
    create(
        server,
        json!({"provider": "anthropic", "name": "Anthropic", "apiKey": SECRET}),
    )
    .await;
    create(
        server,
        json!({"name": "Bundle", "envVars": [{"key": "BUNDLE_SECRET", "value": format!("{SECRET}-bundle")}]}),
    )
    .await;
    server
        .expect(
            Method::POST,
            &format!("{CREDS}/mcp"),
            Some(json!({"url": "https://mcp.example/mcp", "accessToken": format!("{SECRET}-mcp")})),
            200,
        )
        .await;
    let db = raw_database(server).await;
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(backend, "SELECT * FROM credentials"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        let sealed: Vec<u8> = row.try_get("", "encrypted_data").unwrap();
        assert!(sealed.len() >= 12 + 16, "nonce and tag are stored");
        assert!(
            !sealed.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "a sealed row holds the plaintext"
        );
        for column in [
            "id",
            "project_id",
            "provider",
            "name",
            "description",
            "auth_type",
        ] {
            let text: Option<String> = row.try_get("", column).unwrap();
            assert!(!text.unwrap_or_default().contains(SECRET), "{column}");
        }
    }
    // The key check value is there, and no setting holds a secret either.
    let settings = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT key, value FROM settings",
        ))
        .await
        .unwrap();
    let keys: Vec<String> = settings
        .iter()
        .map(|row| row.try_get::<String>("", "key").unwrap())
        .collect();
    assert_eq!(keys, ["encryption_key_check"]);
    db.close().await.unwrap();
}

async fn import_from_environment(server: &TestServer) {
    // The server reads these names from its environment at start; tests hand the values in
    // directly (the test process's environment is shared by every test).
    create(
        server,
        json!({"provider": "openai", "name": "Mine", "apiKey": "sk-openai-mine"}),
    )
    .await;
    let vars: Vec<(String, Secret)> = [
        ("ANTHROPIC_API_KEY", format!(" {SECRET}\n")),
        (
            "ANTHROPIC_BASE_URL",
            "http://127.0.0.1:9/anthropic".to_owned(),
        ),
        ("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat-env".to_owned()),
        ("OPENAI_API_KEY", "sk-openai-env".to_owned()),
        ("CODEX_TOKEN", "codex-env".to_owned()),
        ("TAVILY_API_KEY", String::new()),
        ("DISCOBOT_TOKEN", "discobot_env".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), Secret::new(value)))
    .collect();
    let imported = server
        .app()
        .import_env_credentials(&vars)
        .await
        .expect("import");
    assert_eq!(
        imported,
        ["ANTHROPIC_API_KEY", "CODEX_TOKEN", "DISCOBOT_TOKEN"]
    );
    // Additive only: a second run imports nothing.
    assert!(
        server
            .app()
            .import_env_credentials(&vars)
            .await
            .unwrap()
            .is_empty()
    );
    let list = server.expect(Method::GET, CREDS, None, 200).await;
    assert_no_secret(
        &list,
        &[
            SECRET,
            "sk-ant-oat-env",
            "codex-env",
            "discobot_env",
            "sk-openai",
        ],
    );
    let by_provider = |provider: &str| {
        list["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["provider"] == provider)
            .unwrap_or_else(|| panic!("no {provider} in {list}"))
            .clone()
    };
    let anthropic = by_provider("anthropic");
    assert_eq!(anthropic["authType"], "api_key");
    assert_eq!(
        anthropic["envKeys"],
        json!(["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"])
    );
    assert_eq!(by_provider("codex")["authType"], "oauth");
    assert_eq!(by_provider("discobot")["authType"], "id");
    assert_eq!(
        by_provider("openai")["name"],
        "Mine",
        "an existing credential is kept"
    );
    create_session(server, "imported", None).await;
    let agent = agent_credentials(server, "imported").await;
    assert_eq!(by_env(&agent, "ANTHROPIC_API_KEY").value.expose(), SECRET);
    assert_eq!(by_env(&agent, "CODEX_TOKEN").value.expose(), "codex-env");
    assert_eq!(
        by_env(&agent, "OPENAI_API_KEY").value.expose(),
        "sk-openai-mine"
    );
    assert_eq!(
        by_env(&agent, "DISCOBOT_TOKEN").value.expose(),
        "discobot_env"
    );
}

/// A server restarted with the same key reads its secrets back; with another key (given, or
/// a fresh key file) it refuses to start with a clear message, and the right key still works
/// afterwards.
async fn restart_with_same_and_other_key(backend: Backend) {
    if backend == Backend::Postgres && postgres_url().is_none() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let schema = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(PgSchema::fresh(postgres_url().unwrap())),
    };
    let options = |extra: &[String]| {
        let mut options = ServerOptions::new(backend);
        options.data_dir = Some(data.path().to_path_buf());
        options.pg_schema = schema.clone();
        options.extra_args = extra.to_vec();
        options
    };
    let first = TestServer::start_with(options(&[]))
        .await
        .expect("first start");
    create(
        &first,
        json!({"provider": "anthropic", "name": "Anthropic", "apiKey": SECRET}),
    )
    .await;
    create_session(&first, "restarted", None).await;
    first.stop().await.expect("first stop");
    drop(first);
    if backend == Backend::Sqlite {
        let key_file = data.path().join("encryption.key");
        let text = std::fs::read_to_string(&key_file).expect("the key file was created");
        assert_eq!(text.trim().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the key file is private");
        }
    }

    // Same key: the secret reads back.
    let second = TestServer::start_with(options(&[])).await.expect("restart");
    let entries = agent_credentials(&second, "restarted").await;
    assert_eq!(by_env(&entries, "ANTHROPIC_API_KEY").value.expose(), SECRET);
    let listed = second
        .expect(Method::GET, &format!("{CREDS}/anthropic"), None, 200)
        .await;
    assert_eq!(listed["envKeys"], json!(["ANTHROPIC_API_KEY"]));
    second.stop().await.expect("second stop");
    drop(second);

    // Another key: a clear error at start, never garbage later.
    let other_key = "ab".repeat(32);
    let error =
        match TestServer::start_with(options(&[format!("--encryption-key={other_key}")])).await {
            Ok(server) => {
                server.stop().await.ok();
                panic!("a server started with another key");
            }
            Err(error) => format!("{error:#}"),
        };
    assert!(error.contains(WRONG_KEY_MESSAGE), "{error}");
    assert!(
        !error.contains(&other_key),
        "the error shows the key: {error}"
    );
    if backend == Backend::Sqlite {
        // A lost key file: a new one is made, and the start fails just as clearly.
        let key_file = data.path().join("encryption.key");
        let original = std::fs::read(&key_file).unwrap();
        std::fs::remove_file(&key_file).unwrap();
        let error = match TestServer::start_with(options(&[])).await {
            Ok(server) => {
                server.stop().await.ok();
                panic!("a server started with a new key file");
            }
            Err(error) => format!("{error:#}"),
        };
        assert!(error.contains(WRONG_KEY_MESSAGE), "{error}");
        assert!(error.contains("encryption.key"), "{error}");
        std::fs::write(&key_file, original).unwrap();
    }

    // The right key still works.
    let third = std::sync::Arc::new(
        TestServer::start_with(options(&[]))
            .await
            .expect("right key"),
    );
    drop(schema);
    let entries = agent_credentials(&third, "restarted").await;
    assert_eq!(by_env(&entries, "ANTHROPIC_API_KEY").value.expose(), SECRET);
    third.stop().await.expect("third stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_same_and_other_key_sqlite() {
    restart_with_same_and_other_key(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_same_and_other_key_postgres() {
    restart_with_same_and_other_key(Backend::Postgres).await;
}
