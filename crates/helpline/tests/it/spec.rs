//! Checks real v1 responses against the OpenAPI document the server publishes: every answer's
//! status must be documented for its operation, and its JSON must validate against the schema.

use serde_json::{Value, json};
use std::sync::LazyLock;

/// The document, as `/api/v1/openapi.json` serves it.
pub static SPEC: LazyLock<Value> = LazyLock::new(|| {
    serde_json::to_value(helpline_api::openapi()).expect("the OpenAPI document serialises")
});

/// The documented path template a concrete path falls under.
pub fn template_for(path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let paths = SPEC["paths"].as_object()?;
    paths
        .keys()
        .filter(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == segments.len()
                && parts
                    .iter()
                    .zip(&segments)
                    .all(|(p, s)| p == s || (p.starts_with('{') && p.ends_with('}')))
        })
        // Prefer the template with the most literal segments (`/users/{id}` vs a literal).
        .max_by_key(|template| template.split('/').filter(|p| !p.starts_with('{')).count())
        .cloned()
}

/// Panics unless `status` is documented for `method path` and `body` matches its schema.
pub fn check(method: &str, path: &str, status: u16, content_type: Option<&str>, body: &[u8]) {
    let Some(template) = template_for(path) else {
        assert_eq!(
            status, 404,
            "{method} {path} is not in the OpenAPI document but answered {status}"
        );
        return;
    };
    let operation = &SPEC["paths"][&template][method.to_ascii_lowercase()];
    assert!(
        operation.is_object(),
        "{method} {template} is not documented, yet the server answered {status}"
    );
    let response = &operation["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {template} answered {status}, which its documentation does not list"
    );
    if body.is_empty() {
        return;
    }
    let content_type = content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    let content = response["content"]
        .get(content_type)
        .or_else(|| response["content"].get("*/*"));
    let Some(content) = content else {
        panic!("{method} {template} {status}: content type {content_type} is not documented");
    };
    let Some(schema) = content.get("schema") else {
        return;
    };
    if !content_type.contains("json") {
        return;
    }
    let instance: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{method} {path} {status}: body is not JSON ({e})"));
    let mut root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": SPEC["components"].clone(),
    });
    if let (Some(root), Some(schema)) = (root.as_object_mut(), schema.as_object()) {
        for (k, v) in schema {
            root.insert(k.clone(), v.clone());
        }
    }
    let validator = jsonschema::validator_for(&root)
        .unwrap_or_else(|e| panic!("{method} {template} {status}: schema does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: the response does not match the documented schema:\n{}\n{instance:#}",
        errors.join("\n")
    );
}
