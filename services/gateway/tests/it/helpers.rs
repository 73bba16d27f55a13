//! `spawn_app()`: a gateway on port 0 with its own database, and a small typed client.
#![allow(dead_code)]

use std::net::TcpListener;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wapim_gateway::Application;
use wapim_settings::Settings;
use wapim_testkit::TestDatabase;

/// Who a request is made as.
#[derive(Clone)]
pub enum As {
    Operator,
    Device { session: String, token: String },
    Nobody,
    Bearer(String),
}

pub struct TestApp {
    pub base: String,
    pub admin_token: String,
    pub client: reqwest::Client,
    pub db: TestDatabase,
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

pub fn settings_for(db_url: &str, admin_token: &str, extra: &[(&str, &str)]) -> Settings {
    let mut vars = vec![
        ("WAPIM_DATABASE__URL".to_owned(), db_url.to_owned()),
        ("WAPIM_DATABASE__POOL_MAX_SIZE".to_owned(), "4".to_owned()),
        (
            "WAPIM_DATABASE__CREATE_IF_MISSING".to_owned(),
            "false".to_owned(),
        ),
        ("WAPIM_AUTH__ADMIN_TOKEN".to_owned(), admin_token.to_owned()),
        ("WAPIM_HTTP__WORKERS".to_owned(), "2".to_owned()),
        // No dispatcher runs in these tests: an immediate send answers at once, still pending
        // (the dispatcher's tests cover the wait for the outcome).
        (
            "WAPIM_LIMITS__IMMEDIATE_SEND_TIMEOUT_SECS".to_owned(),
            "0".to_owned(),
        ),
    ];
    for (k, v) in extra {
        vars.push(((*k).to_owned(), (*v).to_owned()));
    }
    Settings::load_from(vars).expect("test settings load")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    spawn_app_with_options(extra, wapim_gateway::GatewayOptions::default()).await
}

pub async fn spawn_app_with_options(
    extra: &[(&str, &str)],
    options: wapim_gateway::GatewayOptions,
) -> TestApp {
    let db = TestDatabase::create();
    let admin_token = wapim_domain::token::generate_secret_token();
    let settings = settings_for(&db.url, &admin_token, extra);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let pool = wapim_gateway::prepare_database(&settings.database)
        .await
        .expect("test database prepared");
    let app = Application::build_with(&settings, pool, listener, options).expect("gateway builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        admin_token,
        client: reqwest::Client::new(),
        db,
    }
}

impl TestApp {
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        who: &As,
        body: Option<Value>,
    ) -> Reply {
        self.request_with(method, path, who, body, &[]).await
    }

    pub async fn request_with(
        &self,
        method: Method,
        path: &str,
        who: &As,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        req = match who {
            As::Operator => req.bearer_auth(&self.admin_token),
            As::Bearer(t) => req.bearer_auth(t),
            As::Device { session, token } => req
                .header("X-Session-Id", session)
                .header("X-Session-Secret-Token", token),
            As::Nobody => req,
        };
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request sent");
        Self::reply(res).await
    }

    pub async fn raw(&self, method: Method, path: &str, who: &As, body: Vec<u8>) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .header("Content-Type", "application/json")
            .body(body);
        if let As::Operator = who {
            req = req.bearer_auth(&self.admin_token);
        }
        Self::reply(req.send().await.expect("request sent")).await
    }

    async fn reply(res: reqwest::Response) -> Reply {
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            text,
            headers,
        }
    }

    pub async fn get(&self, path: &str, who: &As) -> Reply {
        self.request(Method::GET, path, who, None).await
    }

    pub async fn post(&self, path: &str, who: &As, body: Value) -> Reply {
        self.request(Method::POST, path, who, Some(body)).await
    }

    /// Creates a device as the operator and returns it with credentials to act as it.
    pub async fn create_device(&self, name: &str) -> (Value, As) {
        let r = self
            .post("/api/devices", &As::Operator, device_body(name))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let data = r.body["data"].clone();
        let who = As::Device {
            session: data["session_id"].as_str().unwrap().to_owned(),
            token: data["secret_token"].as_str().unwrap().to_owned(),
        };
        (data, who)
    }

    /// Runs SQL on the test database (to put rows in states only later services produce).
    pub fn sql(&self, statement: &str) {
        self.db.execute(statement);
    }
}

/// A device body like the reference's, with another name.
pub fn device_body(name: &str) -> Value {
    json!({
        "name": name,
        "phone_number": "0811010010010",
        "webhook_status": true,
        "webhook_url": "http://127.0.0.1:9/api/v1/waha-webhook",
        "webhook_options": ["message", "message.ack", "message.waiting"],
        "opening_message": "Hello",
        "closing_message": "Hola",
        "auto_reply": "Hai",
        "auto_forward": "Hei",
        "auto_forward_number": "811010010010"
    })
}

/// A text message body like the reference's.
pub fn text_message(session: &str, text: &str) -> Value {
    json!({
        "session_id": session,
        "is_queue": true,
        "recipient": "0811010010010",
        "message_type": "text",
        "message": text,
        "schedule_at": "2025-09-08 09:44:00"
    })
}

/// The keys of a JSON object, in the order the server wrote them.
pub fn keys_in_order(text: &str, pointer: &str) -> Vec<String> {
    let value: Value = serde_json::from_str(text).expect("json");
    value
        .pointer(pointer)
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}
