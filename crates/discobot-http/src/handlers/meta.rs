//! Health, status, configuration, support info, the route list, OpenAPI, anonymous-mode
//! auth answers, providers, and the 501 answer of routes planned for later issues.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use discobot_core::ids::ANONYMOUS_USER_ID;
use serde_json::{Value, json};

use crate::dto::{ModelDto, ModelsResponse};
use crate::error::{ApiResult, error_response};
use crate::extract::{Access, ApiPath};
use crate::openapi;
use crate::routes::route_specs;
use crate::state::{AppState, StatusMessage};

pub(crate) async fn health() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

fn message_json(message: &StatusMessage) -> Value {
    json!({"id": message.id, "level": message.level, "title": message.title, "message": message.message})
}

/// Start-up checks plus the live state of the sandbox provider.
async fn system_status_json(state: &AppState) -> Value {
    let mut messages: Vec<Value> = state
        .0
        .info
        .startup_messages
        .iter()
        .map(message_json)
        .collect();
    let provider = state.app().sandbox().status().await;
    if !provider.available {
        messages.push(message_json(&StatusMessage {
            id: "sandbox-provider".into(),
            level: "warn".into(),
            title: "No sandbox provider".into(),
            message: provider
                .message
                .clone()
                .unwrap_or_else(|| "sandboxes cannot be started".into()),
        }));
    }
    let ok = !messages.iter().any(|message| message["level"] == "error");
    // The sandbox image build is the one start-up task: shown while it runs or after it failed.
    let image_task = match provider.state.as_str() {
        "building" => Some("in_progress"),
        "failed" => Some("failed"),
        _ => None,
    }
    .map(|task_state| {
        json!([{
            "id": "sandbox-image",
            "name": "Sandbox image",
            "state": task_state,
            "currentOperation": provider.message.clone().unwrap_or_default(),
        }])
    });
    let mut status = json!({
        "ok": ok,
        "messages": if messages.is_empty() { Value::Null } else { Value::Array(messages) },
        "sandboxProvider": {
            "name": state.app().sandbox().name(),
            "available": provider.available,
            "state": provider.state,
        },
    });
    if let Some(tasks) = image_task {
        status["startupTasks"] = tasks;
    }
    status
}

pub(crate) async fn system_status(State(state): State<AppState>) -> Json<Value> {
    Json(system_status_json(&state).await)
}

pub(crate) async fn server_config(State(state): State<AppState>) -> Json<Value> {
    let info = &state.0.info;
    Json(json!({
        "ssh_port": info.ssh_port,
        "http_port": info.http_port,
        "https_tls_mode": "ephemeral",
        "public_base_url": info.public_base_url,
    }))
}

/// Diagnostics; the config shown is sanitised (no database URL, keys or tokens).
pub(crate) async fn support_info(State(state): State<AppState>) -> Json<Value> {
    let info = &state.0.info;
    let (server_log, log_path, log_exists) = match &info.log_path {
        Some(path) => {
            let log = tokio::fs::read(path).await.ok();
            let exists = log.is_some();
            // The tail is enough for support and keeps the answer small.
            let log = log
                .map(|bytes| {
                    let start = bytes.len().saturating_sub(256 * 1024);
                    String::from_utf8_lossy(&bytes[start..]).into_owned()
                })
                .unwrap_or_default();
            (log, path.display().to_string(), exists)
        }
        None => (String::new(), String::new(), false),
    };
    Json(json!({
        "version": info.version,
        "runtime": {
            "os": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
            "go_version": "",
            "rust_version": env!("CARGO_PKG_RUST_VERSION"),
            "num_cpu": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "num_goroutine": 0,
        },
        "config": {
            "port": info.http_port,
            "database_driver": info.database_driver,
            "auth_enabled": info.auth_enabled,
            "workspace_dir": info.workspace_dir.display().to_string(),
            "sandbox_image": info.sandbox_image,
            "tauri_mode": false,
            "ssh_enabled": info.ssh_enabled,
            "ssh_port": info.ssh_port,
            "dispatcher_enabled": info.dispatcher_enabled,
            "available_providers": [state.app().sandbox().name()],
        },
        "server_log": server_log,
        "log_path": log_path,
        "log_exists": log_exists,
        "system_info": system_status_json(&state).await,
    }))
}

pub(crate) async fn get_routes() -> Json<Value> {
    let routes: Vec<Value> = route_specs()
        .iter()
        .map(|spec| {
            let mut params: Vec<Value> = path_params(spec.path)
                .map(|name| json!({"name": name, "in": "path", "required": true}))
                .collect();
            params.extend(spec.query.iter().map(|(name, description)| {
                json!({"name": name, "in": "query", "description": description})
            }));
            let mut route = json!({
                "method": spec.method.as_str(),
                "path": spec.path,
                "handler": spec.handler,
                "group": spec.group,
                "description": spec.description,
                "implemented": !spec.planned,
            });
            if !params.is_empty() {
                route["params"] = Value::Array(params);
            }
            route
        })
        .collect();
    Json(Value::Array(routes))
}

/// The `{name}` segments of a route path.
pub(crate) fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

pub(crate) async fn openapi() -> Json<Value> {
    Json(openapi::document())
}

fn anonymous_user() -> Value {
    json!({"id": ANONYMOUS_USER_ID, "email": "anonymous@local", "name": "Anonymous User", "provider": ""})
}

pub(crate) async fn auth_me() -> Json<Value> {
    Json(anonymous_user())
}

/// With auth disabled there is nothing to log in to: back to the UI.
pub(crate) async fn auth_login() -> Redirect {
    Redirect::temporary("/")
}

pub(crate) async fn auth_callback() -> Redirect {
    Redirect::temporary("/")
}

pub(crate) async fn auth_logout() -> Json<Value> {
    Json(json!({"success": true}))
}

pub(crate) async fn list_cache_volumes(
    State(state): State<AppState>,
    Access(access): Access,
) -> ApiResult<Json<Value>> {
    let volumes = state.app().cache_volumes(&access).await?;
    Ok(Json(json!({"volumes": volumes})))
}

pub(crate) async fn delete_cache_volume(
    State(state): State<AppState>,
    Access(access): Access,
) -> ApiResult<Json<Value>> {
    state.app().delete_cache_volume(&access).await?;
    Ok(Json(json!({"success": true})))
}

/// The models of the providers the project has a configured, active credential for (an
/// empty list keeps the UI's composer disabled).
pub(crate) async fn project_models(
    State(state): State<AppState>,
    Access(access): Access,
) -> ApiResult<Json<ModelsResponse>> {
    let models = state.app().project_models(&access).await?;
    Ok(Json(ModelsResponse {
        models: models.iter().map(ModelDto::from).collect(),
    }))
}

async fn provider_json(state: &AppState) -> Value {
    let status = state.app().sandbox().status().await;
    let mut value = json!({"available": status.available, "state": status.state});
    if let Some(message) = status.message {
        value["message"] = json!(message);
    }
    value
}

pub(crate) async fn get_providers(
    State(state): State<AppState>,
    Access(_access): Access,
) -> Json<Value> {
    let name = state.app().sandbox().name().to_owned();
    let status = provider_json(&state).await;
    Json(json!({"providers": {name.clone(): status}, "default": name}))
}

pub(crate) async fn get_provider(
    State(state): State<AppState>,
    Access(_access): Access,
    ApiPath((_project, provider)): ApiPath<(String, String)>,
) -> Response {
    if provider != state.app().sandbox().name() {
        return error_response(StatusCode::NOT_FOUND, "Provider not found");
    }
    Json(provider_json(&state).await).into_response()
}

/// The answer of a seed route whose feature is not built yet.
pub(crate) async fn not_implemented(handler: &'static str) -> Response {
    error_response(
        StatusCode::NOT_IMPLEMENTED,
        &format!("{handler} is not implemented in this version of discobot yet"),
    )
}
