//! The OpenAPI document: version, one operation per listed route, every `$ref` resolvable,
//! and a snapshot of the whole document.

use std::collections::HashSet;

use discobot_tests::reqwest::StatusCode;
use discobot_tests::{Backend, TestServer, e2e_tests, run_scenario};
use serde_json::Value;

e2e_tests! {
    openapi_covers_every_route => openapi_covers_every_route_sqlite, openapi_covers_every_route_postgres;
}

async fn openapi_covers_every_route(server: &TestServer) {
    let (status, doc) = server.get("/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let paths = doc["paths"].as_object().expect("paths");

    let (_, routes) = server.get("/api/routes").await;
    let routes = routes.as_array().expect("routes");
    let mut operation_ids = HashSet::new();
    for route in routes {
        let method = route["method"].as_str().unwrap().to_lowercase();
        let path = route["path"].as_str().unwrap();
        let operation = paths
            .get(path)
            .and_then(|item| item.get(&method))
            .unwrap_or_else(|| panic!("no OpenAPI operation for {method} {path}"));
        let id = operation["operationId"].as_str().expect("operationId");
        assert!(
            operation_ids.insert(id.to_owned()),
            "operationId {id} is not unique"
        );
        assert!(
            operation["responses"]
                .as_object()
                .is_some_and(|r| !r.is_empty())
        );
        // Every `{param}` of the path is declared.
        for name in path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            let declared = operation["parameters"].as_array().is_some_and(|params| {
                params
                    .iter()
                    .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true)
            });
            assert!(declared, "{method} {path} does not declare {name}");
        }
    }
    // And nothing is documented that is not served.
    let listed: HashSet<(String, String)> = routes
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_lowercase(),
                r["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            assert!(
                listed.contains(&(method.clone(), path.clone())),
                "{method} {path} is documented but not in /api/routes"
            );
        }
    }

    let schemas = doc["components"]["schemas"]
        .as_object()
        .expect("components.schemas");
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("$ref {reference} points outside components/schemas"));
        assert!(
            schemas.contains_key(name),
            "$ref {reference} does not resolve"
        );
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "$ref" {
                    out.push(value.as_str().expect("$ref is a string").to_owned());
                } else {
                    collect_refs(value, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The document does not depend on the database, so one snapshot (taken on SQLite) covers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_snapshot_sqlite() {
    run_scenario(Backend::Sqlite, |server| {
        Box::pin(async move {
            let (status, doc) = server.get("/api/openapi.json").await;
            assert_eq!(status, StatusCode::OK);
            insta::assert_json_snapshot!("openapi", doc);
        })
    })
    .await;
}
