//! The credentials header middleware and `GET /threads/{id}/models` through the router: a
//! valid header replaces the set, a malformed one is a 400 that changes nothing, a request
//! without it keeps the previous set, and the models are those of the providers with
//! credentials.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use discobot_agent::{AgentConfig, AgentState, router};
use discobot_agent_api::secret::salted_hash;
use serde_json::{Value, json};
use tower::ServiceExt;

const RAW_SECRET: &str = "agent-secret";

fn app(dir: &tempfile::TempDir) -> Router {
    let config = AgentConfig {
        secret_hash: Some(salted_hash(RAW_SECRET, &[7; 16])),
        data_dir: dir.path().to_owned(),
        ..AgentConfig::default()
    };
    router(AgentState::new(&config).unwrap())
}

/// `GET /threads/t1/models` with the bearer secret and the given headers.
async fn models(app: &Router, headers: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut request =
        Request::get("/threads/t1/models").header("authorization", format!("Bearer {RAW_SECRET}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

fn ids(body: &Value) -> Vec<&str> {
    body["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["id"].as_str().unwrap())
        .collect()
}

fn header(entries: &[(&str, &str, &str)]) -> String {
    Value::Array(
        entries
            .iter()
            .map(|(env_var, value, provider)| {
                json!({
                    "credentialId": "c1",
                    "envVar": env_var,
                    "value": value,
                    "provider": provider,
                    "authType": "api_key",
                    "agentVisible": false,
                    "consoleVisible": false,
                    "serviceVisible": false,
                    "hookVisible": false,
                })
            })
            .collect(),
    )
    .to_string()
}

#[tokio::test]
async fn the_header_replaces_the_set_and_models_follow_it() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);

    let (status, body) = models(&app, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"models": []}), "no credentials, no models");

    let anthropic = header(&[
        ("ANTHROPIC_API_KEY", "sk-ant-1", "anthropic"),
        ("TAVILY_API_KEY", "tvly", "tavily"),
    ]);
    let (status, body) = models(&app, &[("X-Discobot-Credentials", &anthropic)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ids(&body),
        [
            "anthropic/claude-sonnet-4-5",
            "anthropic/claude-opus-4-1",
            "anthropic/claude-haiku-4-5"
        ]
    );
    assert_eq!(
        body["models"][0],
        json!({
            "id": "anthropic/claude-sonnet-4-5",
            "display_name": "Claude Sonnet 4.5",
            "provider": "Anthropic",
            "created_at": "1970-01-01T00:00:00Z",
            "type": "model",
            "reasoning": true,
            "reasoningLevels": ["none", "low", "medium", "high", "xhigh"],
            "defaultReasoning": "none",
        })
    );

    // A request without the header keeps the set.
    let (_, body) = models(&app, &[]).await;
    assert_eq!(ids(&body).len(), 3);

    // A malformed header is refused and changes nothing; the answer never quotes it.
    for malformed in [
        "not json",
        "{\"envVar\":\"OPENAI_API_KEY\"}",
        "[{\"envVar\":\"OPENAI_API_KEY\",\"value\":\"sk-leak\"}]",
    ] {
        let (status, body) = models(&app, &[("X-Discobot-Credentials", malformed)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{malformed}");
        assert_eq!(
            body,
            json!({"error": "invalid X-Discobot-Credentials header"})
        );
    }
    let (_, body) = models(&app, &[]).await;
    assert_eq!(ids(&body).len(), 3);

    // The next header replaces the set: OpenAI only (the OAuth token of Anthropic would
    // count too, see below).
    let openai = header(&[("OPENAI_API_KEY", "sk-o", "openai")]);
    let (_, body) = models(&app, &[("X-Discobot-Credentials", &openai)]).await;
    assert_eq!(ids(&body), ["openai/gpt-5", "openai/gpt-5-mini"]);
    assert_eq!(body["models"][0]["provider"], "OpenAI");
    assert_eq!(
        body["models"][0]["reasoningLevels"],
        json!(["low", "medium", "high"])
    );

    let oauth = header(&[("CLAUDE_CODE_OAUTH_TOKEN", "oat", "anthropic")]);
    let (_, body) = models(&app, &[("X-Discobot-Credentials", &oauth)]).await;
    assert_eq!(ids(&body).len(), 3);
    assert!(ids(&body).iter().all(|id| id.starts_with("anthropic/")));

    let (_, body) = models(&app, &[("X-Discobot-Credentials", "[]")]).await;
    assert_eq!(body, json!({"models": []}));
}

#[tokio::test]
async fn an_unauthenticated_request_cannot_set_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    let anthropic = header(&[("ANTHROPIC_API_KEY", "sk-ant-1", "anthropic")]);
    let response = app
        .clone()
        .oneshot(
            Request::get("/threads/t1/models")
                .header("X-Discobot-Credentials", &anthropic)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The public paths need no secret, so they do not take credentials either.
    for path in ["/", "/health"] {
        let response = app
            .clone()
            .oneshot(
                Request::get(path)
                    .header("X-Discobot-Credentials", &anthropic)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let (_, body) = models(&app, &[]).await;
    assert_eq!(body, json!({"models": []}));
}
