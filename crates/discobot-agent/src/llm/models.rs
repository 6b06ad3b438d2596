//! `GET /threads/{id}/models`: the catalogue's models (`discobot-core`'s `MODELS`) of the
//! providers the current credentials can call.

use axum::Json;
use axum::extract::State;
use discobot_core::credentials::models_for_providers;
use serde_json::{Value, json};

use super::available_providers;
use crate::routes::AgentState;

/// The catalogue has no release dates; a fixed time keeps the answer stable.
const CREATED_AT: &str = "1970-01-01T00:00:00Z";

/// `{"models": [{id, display_name, provider, created_at, type: "model", reasoning,
/// reasoningLevels?, defaultReasoning?}]}`. The thread id is not looked up: the list depends
/// on the credentials only.
pub(crate) async fn list(State(state): State<AgentState>) -> Json<Value> {
    let env = state.credentials().snapshot().all_env();
    let models: Vec<Value> = models_for_providers(available_providers(&env))
        .into_iter()
        .map(|model| {
            let mut entry = json!({
                "id": model.id,
                "display_name": model.name,
                "provider": model.provider,
                "created_at": CREATED_AT,
                "type": "model",
                "reasoning": model.reasoning,
            });
            if model.reasoning {
                // The levels each client maps to a distinct request, and what it sends
                // when the chat names none.
                let (levels, default): (&[&str], &str) = if model.id.starts_with("anthropic/") {
                    (&["none", "low", "medium", "high", "xhigh"], "none")
                } else {
                    (&["low", "medium", "high"], "medium")
                };
                entry["reasoningLevels"] = json!(levels);
                entry["defaultReasoning"] = json!(default);
            }
            entry
        })
        .collect();
    Json(json!({ "models": models }))
}
