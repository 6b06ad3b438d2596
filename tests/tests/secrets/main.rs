//! The secret-grep test: credentials holding a known secret go through every credential
//! route (the OAuth flow routes too, with the secret in their bodies), sessions, the event
//! stream, support info, the route list, the agent-credentials use case's `Debug`, and bad
//! input; then the secret must appear in no answer, no log line (the server logs at debug
//! level to its `--log-file`, which support info also serves), and no byte of the database.
//!
//! A test binary of its own: the log subscriber is process-wide, so it is installed once
//! here, writing to one file that every test of this binary greps for its own secret.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use clap::Parser;
use discobot_core::ids::SessionId;
use discobot_core::secrets::Secret;
use discobot_server::config::Config;
use discobot_tests::reqwest::Method;
use discobot_tests::{Backend, Body, ServerOptions, TestServer, json, postgres_url, str_field};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, Statement};

const CREDS: &str = "/api/projects/local/credentials";
const LOCAL: &str = "/api/projects/local";

/// The log file of this test process, with the server's own logging set up on it at
/// debug level (as `discobot-server --log-file … --log-level debug` does).
fn log_file() -> &'static Path {
    static LOG: OnceLock<PathBuf> = OnceLock::new();
    LOG.get_or_init(|| {
        // Under the target dir's scratch space: it outlives every test of this process
        // (the subscriber keeps writing to it), and `cargo clean` removes it.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("secret-grep");
        std::fs::create_dir_all(&dir).expect("log dir");
        let path = dir.join(format!(
            "{}-{}.log",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let config = Config::try_parse_from([
            "discobot-server",
            "--log-file",
            &path.display().to_string(),
            "--log-level",
            "debug",
        ])
        .expect("log config");
        discobot_server::logging::init(&config).expect("logging starts");
        path
    })
}

fn assert_clean(what: &str, text: &str, secret: &str) {
    assert!(
        !text.contains(secret),
        "{what} contains the secret: …{}…",
        text.find(secret)
            .map(|at| &text[at.saturating_sub(200)..(at + secret.len() + 50).min(text.len())])
            .unwrap_or_default()
    );
}

fn bytes_contain(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// Sends a request and returns its whole answer (status, headers, body) as text.
async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> String {
    let body = body.map_or(Body::None, Body::Json);
    let reply = server.send(method.clone(), path, body).await;
    // 501: the routes of features not built yet.
    assert!(
        !reply.status.is_server_error() || reply.status.as_u16() == 501,
        "{method} {path}: {} {}",
        reply.status,
        reply.text
    );
    format!(
        "{method} {path} {} {:?} {}",
        reply.status, reply.headers, reply.text
    )
}

async fn secret_grep(backend: Backend) {
    if backend == Backend::Postgres && postgres_url().is_none() {
        return;
    }
    let log = log_file();
    let secret = format!("sk-grep-{}", uuid::Uuid::new_v4().simple());
    let mut options = ServerOptions::new(backend);
    options.extra_args = vec![
        "--log-file".into(),
        log.display().to_string(),
        "--log-level".into(),
        "debug".into(),
    ];
    let server = TestServer::start_with(options)
        .await
        .expect("server starts");
    let mut answers = Vec::new();

    // Events from the very start, to read everything published meanwhile.
    let mut events = server
        .events("local", &[("since", "1970-01-01T00:00:00Z")])
        .await;

    // Credentials holding the secret, in every way one can be stored.
    let created = server
        .expect(
            Method::POST,
            CREDS,
            Some(json!({"provider": "anthropic", "name": "Anthropic", "authType": "api_key", "apiKey": secret})),
            200,
        )
        .await;
    answers.push(created.to_string());
    let anthropic_id = str_field(&created, "id").to_owned();
    let custom = server
        .expect(
            Method::POST,
            CREDS,
            Some(json!({"name": "Bundle", "envVars": [{"key": "BUNDLE", "value": format!("{secret}-bundle")}], "agentVisible": true})),
            200,
        )
        .await;
    answers.push(custom.to_string());
    let custom_id = str_field(&custom, "id").to_owned();
    for body in [
        json!({"credentialId": anthropic_id, "name": "Anthropic", "envVars": [{"key": "ANTHROPIC_API_KEY", "value": ""}, {"key": "ANTHROPIC_BASE_URL", "value": format!("http://{secret}.invalid")}]}),
        json!({"credentialId": custom_id, "name": "Bundle", "envVars": [{"key": "BUNDLE", "value": format!("{secret}-2")}]}),
        json!({"provider": "discobot", "name": "Discobot", "authType": "id", "apiKey": format!("{secret}-id")}),
        json!({"provider": "openai", "name": "OpenAI", "apiKey": format!("{secret}-openai"), "inactive": true}),
    ] {
        answers.push(call(&server, Method::POST, CREDS, Some(body)).await);
    }
    answers.push(
        call(
            &server,
            Method::POST,
            &format!("{CREDS}/mcp"),
            Some(json!({"url": "https://mcp.example/mcp", "accessToken": format!("{secret}-mcp"), "refreshToken": format!("{secret}-refresh"), "expiresAt": 1_900_000_000})),
        )
        .await,
    );
    let imported = server
        .app()
        .import_env_credentials(&[(
            "TAVILY_API_KEY".to_owned(),
            Secret::new(format!("{secret}-tavily")),
        )])
        .await
        .expect("import");
    assert_eq!(imported, ["TAVILY_API_KEY"]);

    // Bad input carrying the secret.
    for body in [
        json!({"provider": "bogus", "name": "x", "apiKey": secret}),
        json!({"provider": "anthropic", "name": "x", "authType": "oauth", "apiKey": secret}),
        json!({"name": "x", "envVars": secret}),
        json!({"name": "x", "agentVisible": secret}),
        json!({"name": "x", "envVars": [{"key": secret, "value": secret}]}),
        json!({"name": secret, "apiKey": secret, "provider": "openai", "credentialId": "nope"}),
        json!({"name": "x", "envVars": [{"key": "K", "value": format!("{secret}\u{0}")}]}),
    ] {
        answers.push(call(&server, Method::POST, CREDS, Some(body)).await);
    }
    for raw in [
        format!("{{\"apiKey\": \"{secret}\""),
        format!("{{\"apiKey\": {secret}}}"),
    ] {
        let reply = server
            .send(Method::POST, CREDS, Body::Raw(raw.into_bytes()))
            .await;
        answers.push(reply.text);
    }
    answers.push(
        call(
            &server,
            Method::POST,
            &format!("{CREDS}/mcp"),
            Some(json!({"url": "", "accessToken": secret})),
        )
        .await,
    );
    answers.push(
        call(
            &server,
            Method::POST,
            &format!("{CREDS}/mcp"),
            Some(json!({"url": "https://x", "accessToken": [secret]})),
        )
        .await,
    );

    // Every other credential route, the OAuth flows (not built yet) with the secret in
    // their bodies.
    for path in [
        CREDS.to_owned(),
        format!("{CREDS}/types"),
        format!("{CREDS}/anthropic"),
        format!("{CREDS}/{anthropic_id}"),
        format!("{CREDS}/{custom_id}"),
        format!("{CREDS}/mcp:https:%2F%2Fmcp.example%2Fmcp"),
        format!("{LOCAL}/models"),
        format!("{LOCAL}/auth-providers"),
    ] {
        answers.push(call(&server, Method::GET, &path, None).await);
    }
    for suffix in [
        "anthropic/refresh",
        "anthropic/authorize",
        "anthropic/exchange",
        "github-copilot/device-code",
        "github-copilot/poll",
        "github-git/device-code",
        "github-git/poll",
        "codex/authorize",
        "codex/exchange",
        "codex/device-code",
        "codex/poll",
        "codex/callback-status",
    ] {
        let body = json!({"code": secret, "verifier": secret, "deviceCode": secret, "state": secret, "apiKey": secret});
        answers.push(
            call(
                &server,
                Method::POST,
                &format!("{CREDS}/{suffix}"),
                Some(body),
            )
            .await,
        );
    }

    // Sessions and their credential assignments.
    answers.push(
        call(
            &server,
            Method::POST,
            &format!("{LOCAL}/sessions"),
            Some(json!({"id": "grep"})),
        )
        .await,
    );
    let session_credentials = format!("{LOCAL}/sessions/grep/credentials");
    answers.push(call(&server, Method::GET, &session_credentials, None).await);
    answers.push(
        call(
            &server,
            Method::PUT,
            &session_credentials,
            Some(json!({"credentials": [
                {"credentialId": custom_id, "agentVisible": true, "envVar": "RENAMED", "uses": [{"description": "deploy"}]},
                {"credentialId": anthropic_id, "visibility": {"tools": false, "console": true, "services": true, "hooks": true}},
            ]})),
        )
        .await,
    );
    answers.push(
        call(
            &server,
            Method::PUT,
            &session_credentials,
            Some(json!({"credentials": [{"credentialId": secret}]})),
        )
        .await,
    );
    answers.push(call(&server, Method::GET, &session_credentials, None).await);
    for path in [
        format!("{LOCAL}/sessions"),
        format!("{LOCAL}/sessions/grep"),
        format!("{LOCAL}/sessions/grep/terminal/history"),
        format!("{LOCAL}/workspaces"),
        "/api/projects".to_owned(),
        "/api/status".to_owned(),
        "/api/server-config".to_owned(),
        "/api/routes".to_owned(),
        "/api/openapi.json".to_owned(),
    ] {
        answers.push(call(&server, Method::GET, &path, None).await);
    }

    // The agent's view has the values (that is its job); its Debug output does not.
    let entries = server
        .app()
        .agent_credentials(&SessionId::new("grep"))
        .await
        .expect("agent credentials");
    let header = discobot_core::credentials::encode_credentials_header(&entries);
    assert!(header.contains(&secret), "the agent gets the secret");
    assert!(header.contains(&format!("{secret}-2")) && header.contains(&format!("{secret}-mcp")));
    assert_clean(
        "Debug of the agent credentials",
        &format!("{entries:?}"),
        &secret,
    );
    assert_clean(
        "Debug of the credentials list",
        &format!(
            "{:?}",
            server.app().list_credentials(&access()).await.unwrap()
        ),
        &secret,
    );

    // Delete one, then read support info (which serves the log file's tail).
    answers.push(
        call(
            &server,
            Method::DELETE,
            &format!("{CREDS}/{custom_id}"),
            None,
        )
        .await,
    );
    answers.push(
        call(
            &server,
            Method::DELETE,
            &format!("{CREDS}/{custom_id}"),
            None,
        )
        .await,
    );
    let support = call(&server, Method::GET, "/api/support-info", None).await;
    assert!(
        support.contains("credential created"),
        "support info serves the server log: {support}"
    );
    answers.push(support);

    // Everything the event stream sent meanwhile.
    let mut frames = Vec::new();
    while let Ok(Some(frame)) = events.try_next_frame(Duration::from_millis(1500)).await {
        frames.push(format!("{frame:?}"));
    }
    assert!(!frames.is_empty(), "the event stream sent something");
    answers.push(frames.join("\n"));

    for (i, answer) in answers.iter().enumerate() {
        assert_clean(&format!("answer #{i}"), answer, &secret);
    }

    // The database.
    let database_dump = dump_database(&server).await;
    assert!(
        database_dump.contains("credentials"),
        "the dump read the tables"
    );
    assert_clean("the database", &database_dump, &secret);
    let pg_schema = server.pg_schema();
    server.stop().await.expect("server stops");
    drop(pg_schema);
    if backend == Backend::Sqlite {
        for entry in std::fs::read_dir(server.data_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes_contain(&bytes, &secret),
                    "{} holds the secret",
                    path.display()
                );
            }
        }
    }

    // The log, written at debug level.
    let log_text = std::fs::read_to_string(log).expect("the log file");
    assert!(
        log_text.contains("credential created") && log_text.contains("MCP token stored"),
        "the log was captured"
    );
    assert_clean("the server log", &log_text, &secret);
}

fn access() -> discobot_core::app::ProjectAccess {
    discobot_core::app::ProjectAccess {
        project_id: discobot_core::ids::ProjectId::local(),
        principal: discobot_core::app::Principal::anonymous(),
        role: discobot_core::model::Role::Owner,
    }
}

/// Every row of every table, as text; sealed columns as their raw bytes (lossy UTF-8).
async fn dump_database(server: &TestServer) -> String {
    let db = match server.backend() {
        Backend::Sqlite => Database::connect(format!(
            "sqlite://{}?mode=ro",
            server.data_dir().join("discobot.db").display()
        ))
        .await
        .expect("raw SQLite connection"),
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
    };
    let backend = db.get_database_backend();
    let mut dump = String::new();
    let tables = [
        "credentials",
        "session_credential_assignments",
        "settings",
        "project_events",
        "jobs",
        "sessions",
        "workspaces",
        "projects",
        "user_preferences",
        "terminal_history",
    ];
    for table in tables {
        let sql = match backend {
            sea_orm::DbBackend::Postgres => {
                format!("SELECT row_to_json(t)::text AS row FROM {table} t")
            }
            _ => format!("SELECT * FROM {table}"),
        };
        let rows = db
            .query_all_raw(Statement::from_string(backend, sql))
            .await
            .unwrap_or_else(|error| panic!("read {table}: {error}"));
        dump.push_str(table);
        dump.push('\n');
        for row in rows {
            match backend {
                sea_orm::DbBackend::Postgres => {
                    dump.push_str(&row.try_get::<String>("", "row").unwrap());
                }
                _ => dump.push_str(&format!("{row:?}")),
            }
            dump.push('\n');
        }
    }
    // The sealed bytes themselves.
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT encrypted_data FROM credentials",
        ))
        .await
        .unwrap();
    for row in rows {
        let bytes: Vec<u8> = row.try_get("", "encrypted_data").unwrap();
        dump.push_str(&String::from_utf8_lossy(&bytes));
    }
    db.close().await.unwrap();
    dump
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_anywhere_sqlite() {
    secret_grep(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_anywhere_postgres() {
    secret_grep(Backend::Postgres).await;
}
