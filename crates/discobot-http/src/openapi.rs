//! The OpenAPI 3.1 document, generated from the route table and the DTOs' JSON schemas.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::handlers::meta::path_params;
use crate::routes::route_specs;

/// Builds the whole document; deterministic, so it can be snapshot-tested.
pub fn document() -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    let mut generator = settings.into_generator();
    let mut paths = Map::new();
    for spec in route_specs() {
        let mut parameters: Vec<Value> = path_params(spec.path)
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        parameters.extend(spec.query.iter().map(|(name, description)| {
            json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}})
        }));
        let success_content = if spec.streaming {
            json!({"text/event-stream": {"schema": {"type": "string"}}})
        } else {
            let schema = spec
                .response
                .map(|schema| schema(&mut generator).to_value())
                .unwrap_or_else(|| json!({}));
            json!({"application/json": {"schema": schema}})
        };
        let mut responses = Map::new();
        responses.insert(
            spec.success.to_string(),
            json!({"description": "success", "content": success_content}),
        );
        responses.insert(
            "default".into(),
            json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
        let mut operation = json!({
            "operationId": operation_id(spec.handler, spec.method.as_str()),
            "summary": spec.description,
            "tags": [spec.group],
            "responses": responses,
        });
        if spec.planned {
            operation["x-discobot-planned"] = json!(true);
        }
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if let Some(request) = spec.request {
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": request(&mut generator).to_value()}},
            });
        }
        let path_item = paths
            .entry(spec.path.to_owned())
            .or_insert_with(|| json!({}));
        path_item[spec.method.as_str().to_lowercase()] = operation;
    }
    let mut schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "discobot",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Self-hosted coding-agent session manager; the API of the Go Discobot server.",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// `UpdateSession` serves PUT and PATCH; operation ids must be unique.
fn operation_id(handler: &str, method: &str) -> String {
    if method == "PATCH" {
        format!("{handler}Patch")
    } else {
        handler.to_owned()
    }
}
