//! The OpenAPI document: served, equal to the committed copy, covering routes that exist, and
//! describing what the API really answers; the Swagger UI page is served from the binary.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, text_message, As, TestApp};

/// Where the committed copy lives (from this crate's directory).
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto/openapi.json");

async fn served_spec(app: &TestApp) -> Value {
    let r = app.get("/api/openapi.json", &As::Nobody).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["openapi"], "3.1.0");
    r.body
}

#[tokio::test]
async fn the_served_spec_is_the_committed_copy() {
    let app = spawn_app().await;
    let served = served_spec(&app).await;
    let pretty = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var("WAPIM_BLESS_OPENAPI").as_deref() == Ok("1") {
        std::fs::write(COMMITTED, &pretty).unwrap();
    }
    let committed: Value = std::fs::read_to_string(COMMITTED)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    assert!(
        committed == served,
        "proto/openapi.json differs from the served /api/openapi.json: run `make openapi` and \
         commit the result"
    );
}

/// Every documented operation exists: asked without credentials, each answers the envelope's
/// 401 (an undocumented path would be a 404, a wrong method a 405).
#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = spawn_app().await;
    let spec = served_spec(&app).await;
    let paths = spec["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{id}", "1")
            .replace("{session_id}", "some-session")
            .replace("{phone}", "62811010010010");
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = app
                .request(method.clone(), &concrete, &As::Nobody, None)
                .await;
            assert_eq!(r.status, 401, "{method} {concrete}: {}", r.text);
            assert_eq!(r.body["status"], false, "{method} {concrete}");
            operations += 1;
        }
    }
    // Devices 13, messages 9, inbox 2, webhooks 3, WAHA 7, WAHA servers 4, tokens 2.
    assert_eq!(operations, 41, "operations documented");
    assert_eq!(paths.len(), 29, "paths documented");
}

/// Validates `value` against the schema of `operation`'s 200 answer in `spec`.
fn conforms(spec: &Value, path: &str, method: &str, value: &Value) {
    let schema =
        &spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "{method} {path} documents a JSON 200");
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": spec["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::validator_for(&root).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path}: the answer does not conform to the spec: {errors:?}\n{value:#}"
    );
}

/// What the API answers conforms to what the spec says it answers: devices, messages (created,
/// queued, listed, edited, deleted, restored), batches, suppressions, lists, errors.
#[tokio::test]
async fn answers_conform_to_the_documented_schemas() {
    let app = spawn_app().await;
    let spec = served_spec(&app).await;
    let (device, who) = app.create_device("Spec Device").await;
    let session = device["session_id"].as_str().unwrap().to_owned();
    let id = device["id"].as_i64().unwrap();
    // The create answer (booleans as true/false) and the reads (0/1).
    let created = app
        .post(
            "/api/devices",
            &As::Operator,
            json!({"name": "Second", "phone_number": "0811010010011"}),
        )
        .await;
    conforms(&spec, "/api/devices", "post", &created.body);
    let shown = app.get(&format!("/api/devices/{id}"), &As::Operator).await;
    conforms(&spec, "/api/devices/{id}", "get", &shown.body);
    assert!(shown.body["data"]["sending_state"].is_object());
    conforms(
        &spec,
        "/api/devices",
        "get",
        &app.get("/api/devices", &As::Operator).await.body,
    );
    let patched = app
        .request(
            Method::PATCH,
            &format!("/api/devices/{id}"),
            &who,
            Some(json!({"daily_cap": 100, "simulate_typing": true})),
        )
        .await;
    conforms(&spec, "/api/devices/{id}", "patch", &patched.body);

    let message = app
        .post("/api/messages", &who, text_message(&session, "Hello"))
        .await;
    assert_eq!(message.status, 200, "{}", message.text);
    conforms(&spec, "/api/messages", "post", &message.body);
    let mid = message.body["data"]["id"].as_i64().unwrap();
    for (path, method, reply) in [
        (
            "/api/messages/{id}",
            "get",
            app.get(&format!("/api/messages/{mid}"), &who).await,
        ),
        (
            "/api/messages",
            "get",
            app.get("/api/messages?per_page=5", &who).await,
        ),
        (
            "/api/messages/{id}",
            "delete",
            app.request(Method::DELETE, &format!("/api/messages/{mid}"), &who, None)
                .await,
        ),
        (
            "/api/messages/{id}/restore",
            "post",
            app.post(&format!("/api/messages/{mid}/restore"), &who, json!({}))
                .await,
        ),
        (
            "/api/messages-batch",
            "post",
            app.post(
                "/api/messages-batch",
                &who,
                json!({"items": [text_message(&session, "one"), {"recipient": "x"}]}),
            )
            .await,
        ),
        (
            "/api/devices/{id}/suppressions",
            "post",
            app.post(
                &format!("/api/devices/{id}/suppressions"),
                &who,
                json!({"phone": "0811010010099", "reason": "asked"}),
            )
            .await,
        ),
        (
            "/api/devices/{id}/suppressions",
            "get",
            app.get(&format!("/api/devices/{id}/suppressions"), &who)
                .await,
        ),
        (
            "/api/devices/{id}/webhook-secret",
            "post",
            app.post(
                &format!("/api/devices/{id}/webhook-secret"),
                &who,
                json!({}),
            )
            .await,
        ),
        ("/api/inbox", "get", app.get("/api/inbox", &who).await),
        (
            "/api/webhook-deliveries",
            "get",
            app.get("/api/webhook-deliveries", &As::Operator).await,
        ),
        (
            "/api/waha-servers",
            "get",
            app.get("/api/waha-servers", &As::Operator).await,
        ),
        (
            "/api/generate-token",
            "get",
            app.get("/api/generate-token", &As::Operator).await,
        ),
    ] {
        assert_eq!(reply.status, 200, "{method} {path}: {}", reply.text);
        conforms(&spec, path, method, &reply.body);
    }

    // Failures are the documented error envelope.
    let refused = app
        .post("/api/messages", &who, json!({"recipient": "nope"}))
        .await;
    assert_eq!(refused.status, 422);
    let error_schema = json!({"$ref": "#/components/schemas/ErrorEnvelope"});
    let root = json!({"components": spec["components"], "allOf": [error_schema]});
    let validator = jsonschema::validator_for(&root).unwrap();
    assert!(validator.is_valid(&refused.body), "{}", refused.text);
    // …and a body outside the documented shape would be caught.
    assert!(!validator.is_valid(&json!({"status": false, "message": 3})));
}

/// `/docs` is Swagger UI with every asset served by the gateway itself: nothing from a CDN.
#[tokio::test]
async fn the_docs_page_is_served_from_the_binary() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "docs/");
    let page = app.get("/docs/", &As::Nobody).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("swagger-ui"), "{}", page.text);
    let mut assets = 0;
    for attr in ["src=\"", "href=\""] {
        for part in page.text.split(attr).skip(1) {
            let link = part.split('"').next().unwrap();
            assert!(
                !link.contains("//"),
                "the docs page loads {link} from elsewhere"
            );
            let asset = app
                .get(
                    &format!("/docs/{}", link.trim_start_matches("./")),
                    &As::Nobody,
                )
                .await;
            assert_eq!(asset.status, 200, "{link}");
            assets += 1;
        }
    }
    assert!(assets >= 3, "the page's scripts and styles ({assets})");
    let init = app.get("/docs/swagger-initializer.js", &As::Nobody).await;
    assert!(init.text.contains("/api/openapi.json"), "{}", init.text);
}
