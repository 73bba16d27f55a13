//! WAHA's OpenAPI document as a request checker: find the operation a request targets and
//! validate its body against the operation's `requestBody` schema.
//!
//! The document is loaded once per path and process, patched for its known quirks (see
//! [`patch`]), and each operation's validator is compiled on first use.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Map, Value};

/// A loaded, patched OpenAPI document.
pub(crate) struct Spec {
    operations: Vec<Operation>,
    /// `components` of the patched document, the target of every `$ref`.
    components: Value,
}

struct Operation {
    method: String,
    template: String,
    segments: Vec<Segment>,
    deprecated: bool,
    required_query: Vec<String>,
    /// The `requestBody` schema and whether a body is required.
    body: Option<(Value, bool)>,
    validator: OnceLock<Result<jsonschema::Validator, String>>,
}

enum Segment {
    Literal(String),
    Param,
}

static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<Spec>>>> = OnceLock::new();

impl Spec {
    /// The document at `path`, loaded and patched once per process.
    pub(crate) fn load_cached(path: &Path) -> Result<Arc<Spec>, String> {
        let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
        let key = path.to_path_buf();
        if let Some(spec) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(spec.clone());
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read WAHA's OpenAPI document {}: {e}",
                path.display()
            )
        })?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| {
            format!(
                "WAHA's OpenAPI document {} is not JSON: {e}",
                path.display()
            )
        })?;
        let spec = Arc::new(Spec::from_document(doc)?);
        cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, spec.clone());
        Ok(spec)
    }

    /// Builds the checker from a parsed document (patched here).
    pub(crate) fn from_document(mut doc: Value) -> Result<Spec, String> {
        patch(&mut doc);
        let components = doc.get("components").cloned().unwrap_or_else(|| json!({}));
        let paths = doc
            .get("paths")
            .and_then(Value::as_object)
            .ok_or("the OpenAPI document has no paths")?;
        let mut operations = Vec::new();
        for (template, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, op) in item {
                let method = method.to_ascii_uppercase();
                if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE") {
                    continue;
                }
                operations.push(Operation::new(template, method, op));
            }
        }
        Ok(Spec {
            operations,
            components,
        })
    }

    /// Every way the request breaks WAHA's API (empty when it follows it).
    pub(crate) fn check(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: Option<&Value>,
    ) -> Vec<String> {
        let Some(op) = self.find(method, path) else {
            return vec!["no such operation in WAHA's OpenAPI document".to_owned()];
        };
        let mut problems = Vec::new();
        if op.deprecated {
            problems.push(format!(
                "{} {} is deprecated in WAHA's API",
                op.method, op.template
            ));
        }
        let present: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, _)| k.into_owned())
            .collect();
        for name in &op.required_query {
            if !present.iter().any(|p| p == name) {
                problems.push(format!("required query parameter {name:?} is missing"));
            }
        }
        match (&op.body, body) {
            (Some((_, true)), None) => problems.push("request body is required".to_owned()),
            (Some((schema, _)), Some(body)) => match op.validator(schema, &self.components) {
                Ok(validator) => {
                    for error in validator.iter_errors(body) {
                        let at = error.instance_path().to_string();
                        let at = if at.is_empty() { "/".to_owned() } else { at };
                        problems.push(format!("body {at}: {error}"));
                    }
                }
                Err(e) => problems.push(format!("cannot compile the requestBody schema: {e}")),
            },
            _ => {}
        }
        problems
    }

    /// The operation a request targets: same method, same number of segments, literals equal;
    /// the most literal template wins (`/api/sessions/{session}` over `/api/{session}/…`).
    fn find(&self, method: &str, path: &str) -> Option<&Operation> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.operations
            .iter()
            .filter(|op| op.method == method && op.matches(&segments))
            .max_by_key(|op| op.literal_count())
    }
}

impl Operation {
    fn new(template: &str, method: String, op: &Value) -> Self {
        let segments = template
            .trim_start_matches('/')
            .split('/')
            .map(|s| {
                if s.starts_with('{') && s.ends_with('}') {
                    Segment::Param
                } else {
                    Segment::Literal(s.to_owned())
                }
            })
            .collect();
        let required_query = op
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| p.get("in").and_then(Value::as_str) == Some("query"))
            .filter(|p| p.get("required").and_then(Value::as_bool) == Some(true))
            .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let body = op.get("requestBody").and_then(|rb| {
            let schema = rb.pointer("/content/application~1json/schema")?.clone();
            let required = rb.get("required").and_then(Value::as_bool).unwrap_or(false);
            Some((schema, required))
        });
        Self {
            method,
            template: template.to_owned(),
            segments,
            deprecated: op
                .get("deprecated")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            required_query,
            body,
            validator: OnceLock::new(),
        }
    }

    fn matches(&self, path: &[&str]) -> bool {
        self.segments.len() == path.len()
            && self
                .segments
                .iter()
                .zip(path)
                .all(|(seg, actual)| match seg {
                    Segment::Literal(lit) => lit == actual,
                    Segment::Param => !actual.is_empty(),
                })
    }

    fn literal_count(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }

    fn validator(
        &self,
        schema: &Value,
        components: &Value,
    ) -> Result<&jsonschema::Validator, String> {
        self.validator
            .get_or_init(|| {
                let root = json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "allOf": [schema],
                    "components": components,
                });
                jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft202012)
                    .build(&root)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Fixes the document's known quirks (see `shared/waha/README.md`) and makes it say what WAHA's
/// validators do:
/// - `WebhookConfig.events` items are event names (strings), not objects;
/// - a field typed `object` with a string `default` is a string (the voice/video file's
///   `mimetype` and `filename`, webhook `event`);
/// - `"required": true` inside a property (not JSON Schema) is dropped;
/// - `nullable: true` (OpenAPI 3.0) and optional properties accept `null`;
/// - an object schema with declared properties accepts no others (WAHA's validation strips
///   undeclared fields, so sending one is a mistake worth reporting).
pub(crate) fn patch(doc: &mut Value) {
    if let Some(events) =
        doc.pointer_mut("/components/schemas/WebhookConfig/properties/events/items")
    {
        *events = json!({"type": "string"});
    }
    if let Some(components) = doc.get_mut("components") {
        patch_schema(components);
    }
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for op in item.values_mut() {
                if let Some(schema) =
                    op.pointer_mut("/requestBody/content/application~1json/schema")
                {
                    patch_schema(schema);
                }
            }
        }
    }
}

/// Walks a schema (or `components`) through the keywords that hold schemas, leaving data
/// (examples, defaults, enums) alone.
fn patch_schema(value: &mut Value) {
    let Value::Object(map) = value else { return };
    for (key, child) in map.iter_mut() {
        match key.as_str() {
            // Maps of name → schema.
            "schemas" | "properties" | "patternProperties" | "$defs" | "definitions" => {
                if let Value::Object(named) = child {
                    named.values_mut().for_each(patch_schema);
                }
            }
            // Lists of schemas.
            "allOf" | "anyOf" | "oneOf" | "prefixItems" => {
                if let Value::Array(list) = child {
                    list.iter_mut().for_each(patch_schema);
                }
            }
            // One schema.
            "items" | "additionalProperties" | "not" | "contains" | "if" | "then" | "else" => {
                patch_schema(child)
            }
            _ => {}
        }
    }
    patch_object(map);
}

fn patch_object(map: &mut Map<String, Value>) {
    if map.get("type").and_then(Value::as_str) == Some("object")
        && map.get("default").is_some_and(Value::is_string)
    {
        map.insert("type".into(), json!("string"));
    }
    if map.get("required").is_some_and(Value::is_boolean) {
        map.remove("required");
    }
    let required: Vec<String> = map
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let composed = ["allOf", "anyOf", "oneOf"]
        .iter()
        .any(|k| map.contains_key(*k));
    if let Some(Value::Object(properties)) = map.get_mut("properties") {
        for (name, schema) in properties.iter_mut() {
            if !required.contains(name) {
                or_null(schema);
            }
        }
        if !composed && !map.contains_key("additionalProperties") {
            map.insert("additionalProperties".into(), json!(false));
        }
    }
    if map.get("nullable").and_then(Value::as_bool) == Some(true) {
        map.remove("nullable");
        let inner = Value::Object(std::mem::take(map));
        map.insert("anyOf".into(), json!([inner, {"type": "null"}]));
    }
}

fn or_null(schema: &mut Value) {
    let inner = std::mem::take(schema);
    *schema = json!({"anyOf": [inner, {"type": "null"}]});
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn spec() -> Arc<Spec> {
        Spec::load_cached(Path::new(crate::DEFAULT_OPENAPI_PATH))
            .expect("WAHA's OpenAPI document loads")
    }

    #[test]
    fn operations_are_found_by_the_most_literal_template() {
        let spec = spec();
        let op = spec.find("GET", "/api/sessions/default").unwrap();
        assert_eq!(op.template, "/api/sessions/{session}");
        let op = spec
            .find("GET", "/api/default/chats/62811@c.us/messages/true_x")
            .unwrap();
        assert_eq!(
            op.template,
            "/api/{session}/chats/{chatId}/messages/{messageId}"
        );
        assert!(spec
            .find("GET", "/api/nothing/here/at/all/really")
            .is_none());
    }

    #[test]
    fn good_bodies_pass_and_bad_ones_are_reported() {
        let spec = spec();
        let ok = json!({"session": "s", "chatId": "62811@c.us", "text": "hi", "id": "3EB0"});
        assert_eq!(
            spec.check("POST", "/api/sendText", "", Some(&ok)),
            Vec::<String>::new()
        );
        let nulls = json!({"session": "s", "chatId": "62811@c.us", "text": "hi", "reply_to": null});
        assert_eq!(
            spec.check("POST", "/api/sendText", "", Some(&nulls)),
            Vec::<String>::new()
        );
        let missing = json!({"session": "s", "text": "hi"});
        assert_eq!(
            spec.check("POST", "/api/sendText", "", Some(&missing))
                .len(),
            1
        );
        let extra = json!({"session": "s", "chatId": "c", "text": "hi", "bogus": 1});
        assert_eq!(
            spec.check("POST", "/api/sendText", "", Some(&extra)).len(),
            1
        );
        assert_eq!(
            spec.check("POST", "/api/sendText", "", None),
            vec!["request body is required"]
        );
    }

    #[test]
    fn the_documents_quirks_are_patched() {
        let spec = spec();
        let voice = json!({"session": "s", "chatId": "c", "convert": true,
            "file": {"mimetype": "audio/ogg; codecs=opus", "url": "http://127.0.0.1:9/v.ogg"}});
        assert_eq!(
            spec.check("POST", "/api/sendVoice", "", Some(&voice)),
            Vec::<String>::new()
        );
        let video = json!({"session": "s", "chatId": "c", "convert": false,
            "file": {"mimetype": "video/mp4", "filename": "v.mp4", "url": "http://127.0.0.1:9/v.mp4"}});
        assert_eq!(
            spec.check("POST", "/api/sendVideo", "", Some(&video)),
            Vec::<String>::new()
        );
        let session = json!({"name": "s", "start": true, "config": {
            "metadata": {"device.id": "1"},
            "webhooks": [{"url": "http://127.0.0.1:1/h", "events": ["message.ack", "session.status"],
                          "hmac": {"key": "k"}, "retries": {"policy": "constant", "delaySeconds": 1, "attempts": 2}}]}});
        assert_eq!(
            spec.check("POST", "/api/sessions", "", Some(&session)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn required_query_parameters_and_deprecated_operations_are_reported() {
        let spec = spec();
        assert_eq!(
            spec.check(
                "GET",
                "/api/contacts/check-exists",
                "phone=62811&session=s",
                None
            )
            .len(),
            0
        );
        assert_eq!(
            spec.check("GET", "/api/contacts/check-exists", "phone=62811", None)
                .len(),
            1
        );
        let deprecated = spec.check("GET", "/api/sendText", "phone=1&text=x&session=s", None);
        assert!(
            deprecated.iter().any(|p| p.contains("deprecated")),
            "{deprecated:?}"
        );
    }
}
