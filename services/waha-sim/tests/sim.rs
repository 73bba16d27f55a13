//! The simulator's own tests: WAHA's behaviour where Wapim's tests rely on it, webhooks signed
//! and posted to a loopback receiver, and request validation. Every address is loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha512;
use wapim_waha_sim::{start, Engine, Faults, SessionStatus, SimConfig, SimHandle};

async fn sim_with(config: SimConfig) -> SimHandle {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    start(config, listener).await.unwrap()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// What a webhook receiver got: headers (lowercase names) and the raw body.
type Received = Arc<Mutex<Vec<(Vec<(String, String)>, String)>>>;

/// A loopback webhook receiver answering 200; returns its URL.
fn receiver(received: Received) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let received = received.clone();
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let received = received.clone();
            async move {
                let headers = req
                    .headers()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            v.to_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect();
                received
                    .lock()
                    .unwrap()
                    .push((headers, String::from_utf8_lossy(&body).into_owned()));
                HttpResponse::Ok().finish()
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}/waha-webhook")
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_and_posted_to_a_loopback_receiver() {
    let received: Received = Arc::default();
    let url = receiver(received.clone());
    let sim = sim_with(SimConfig {
        acks: true,
        ack_delay: Duration::from_millis(10),
        ..SimConfig::default()
    })
    .await;
    let client = http();

    let created = client
        .post(format!("{}/api/sessions", sim.base_url()))
        .json(&json!({"name": "dev-1", "start": true, "config": {
        "metadata": {"wapim.device": "1"},
        "webhooks": [
            {"url": url, "events": ["message.ack", "session.status"], "hmac": {"key": "s3cret"}},
            {"url": "https://example.com/hook", "events": ["*"]}
        ]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(
        created.json::<Value>().await.unwrap()["status"],
        "SCAN_QR_CODE"
    );
    assert!(sim.login("dev-1"));

    let sent: Value = client
        .post(format!("{}/api/sendText", sim.base_url()))
        .json(&json!({"session": "dev-1", "chatId": "62811010010010@c.us", "text": "hello"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = sent["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("true_62811010010010@c.us_3EB0"), "{id}");

    let acks = |received: &Received| -> Vec<i64> {
        received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, body)| serde_json::from_str::<Value>(body).unwrap())
            .filter(|e| e["event"] == "message.ack")
            .map(|e| e["payload"]["ack"].as_i64().unwrap())
            .collect()
    };
    wait_for("three acks", || acks(&received).len() == 3).await;
    assert_eq!(acks(&received), [1, 2, 3]);

    for (headers, body) in received.lock().unwrap().iter() {
        let mut mac = Hmac::<Sha512>::new_from_slice(b"s3cret").unwrap();
        mac.update(body.as_bytes());
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(header(headers, "x-webhook-hmac"), Some(expected.as_str()));
        assert_eq!(header(headers, "x-webhook-hmac-algorithm"), Some("sha512"));
        assert!(header(headers, "x-webhook-request-id").is_some());
        let timestamp: u64 = header(headers, "x-webhook-timestamp")
            .unwrap()
            .parse()
            .unwrap();
        assert!(timestamp > 1_600_000_000_000);
        let event: Value = serde_json::from_str(body).unwrap();
        assert!(event["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(event["id"].as_str().unwrap().len(), 30);
        assert_eq!(event["session"], "dev-1");
        assert_eq!(event["engine"], "GOWS");
        assert_eq!(event["metadata"], json!({"wapim.device": "1"}));
        assert!(event["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
        if event["event"] == "message.ack" {
            assert_eq!(event["payload"]["id"], id.as_str());
            assert_eq!(event["payload"]["fromMe"], true);
            assert!(event["me"]["id"].is_string());
        }
    }
    let statuses: Vec<Value> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, body)| serde_json::from_str::<Value>(body).unwrap())
        .filter(|e| e["event"] == "session.status")
        .map(|e| e["payload"]["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        [json!("STARTING"), json!("SCAN_QR_CODE"), json!("WORKING")]
    );

    // The non-loopback webhook was refused (reported, never posted), nothing else is wrong.
    let violations = sim.violations();
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(violations[0].contains("https://example.com/hook"));
    assert!(sim
        .webhook_deliveries()
        .iter()
        .all(|d| d.url == url && d.status == Some(200)));
    // The stored message carries the last ack.
    let found: Value = client
        .get(format!(
            "{}/api/dev-1/chats/62811010010010@c.us/messages/{id}",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (found["ack"].as_i64(), found["ackName"].as_str()),
        (Some(3), Some("READ"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noweb_reach_out_timelock_answers_201_then_acks_error() {
    let received: Received = Arc::default();
    let url = receiver(received.clone());
    let sim = sim_with(SimConfig {
        ack_delay: Duration::from_millis(10),
        ..SimConfig::default()
    })
    .await;
    sim.ensure_session("dev-2", Engine::Noweb, SessionStatus::Working);
    let client = http();
    let updated = client
        .put(format!("{}/api/sessions/dev-2", sim.base_url()))
        .json(&json!({"config": {"webhooks": [{"url": url, "events": ["message.ack"]}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    assert_eq!(updated.json::<Value>().await.unwrap()["status"], "WORKING");
    sim.set_faults(Faults {
        reach_out_timelock: true,
        ..Faults::default()
    });

    let response = client
        .post(format!("{}/api/sendText", sim.base_url()))
        .json(
            &json!({"session": "dev-2", "chatId": "62811010010010@c.us", "text": "first contact"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["key"]["remoteJid"], "62811010010010@s.whatsapp.net");
    wait_for("the ack -1", || !received.lock().unwrap().is_empty()).await;
    let (headers, raw) = received.lock().unwrap()[0].clone();
    assert!(
        header(&headers, "x-webhook-hmac").is_none(),
        "no key, no signature"
    );
    let event: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        (
            event["payload"]["ack"].as_i64(),
            event["payload"]["ackName"].as_str()
        ),
        (Some(-1), Some("ERROR"))
    );
    assert_eq!(event["engine"], "NOWEB");
    assert_eq!(sim.sends().len(), 1);
    assert_eq!(sim.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_qr_code_is_served_only_in_scan_qr_code() {
    let sim = sim_with(SimConfig::default()).await;
    let client = http();
    let base = sim.base_url();
    let qr = |format: &str| client.get(format!("{base}/api/dev-3/auth/qr?format={format}"));

    assert_eq!(
        qr("image").send().await.unwrap().status(),
        404,
        "unknown session"
    );
    client
        .post(format!("{base}/api/sessions"))
        .json(&json!({"name": "dev-3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sim.session_status("dev-3"), Some(SessionStatus::ScanQrCode));

    let image = qr("image").send().await.unwrap();
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["content-type"], "image/png");
    let png = image.bytes().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let raw: Value = qr("raw").send().await.unwrap().json().await.unwrap();
    assert!(raw["value"].as_str().unwrap().starts_with("2@"));
    let as_json: Value = qr("image")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(as_json["mimetype"], "image/png");
    assert!(as_json["data"].as_str().unwrap().starts_with("iVBORw0KGgo"));

    let code: Value = client
        .post(format!("{base}/api/dev-3/auth/request-code"))
        .json(&json!({"phoneNumber": "62811999888777"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(code["code"].as_str().unwrap().len(), 9);

    assert!(sim.login("dev-3"));
    let refused = qr("image").send().await.unwrap();
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["status"], "WORKING");
    assert_eq!(body["expected"], json!(["SCAN_QR_CODE"]));
    let me: Value = client
        .get(format!("{base}/api/sessions/dev-3/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        me["id"], "62811999888777@c.us",
        "the paired phone is the account"
    );

    client
        .post(format!("{base}/api/sessions/dev-3/stop"))
        .send()
        .await
        .unwrap();
    assert_eq!(qr("raw").send().await.unwrap().status(), 422);
    assert_eq!(sim.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_break_the_schema_are_recorded_as_violations_and_still_served() {
    let sim = sim_with(SimConfig::default()).await;
    sim.ensure_session("dev-4", Engine::Gows, SessionStatus::Working);
    let client = http();
    let send = |body: Value| {
        client
            .post(format!("{}/api/sendText", sim.base_url()))
            .json(&body)
            .send()
    };

    // An undeclared field: WAHA would strip it; the sim serves the request and reports it.
    let extra =
        send(json!({"session": "dev-4", "chatId": "62811@c.us", "text": "x", "priority": "high"}))
            .await
            .unwrap();
    assert_eq!(extra.status(), 201);
    // A missing required field: 400, reported.
    let missing = send(json!({"session": "dev-4", "text": "x"}))
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(missing.json::<Value>().await.unwrap()["statusCode"], 400);
    // A wrongly typed field.
    send(json!({"session": "dev-4", "chatId": "62811@c.us", "text": 5}))
        .await
        .unwrap();
    // Not JSON at all.
    let garbage = client
        .post(format!("{}/api/sendText", sim.base_url()))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);

    let violations = sim.violations();
    assert_eq!(violations.len(), 4, "{violations:#?}");
    assert!(
        violations[0].starts_with("POST /api/sendText: body /: "),
        "{}",
        violations[0]
    );
    assert!(violations[0].contains("priority"), "{}", violations[0]);
    assert!(violations[1].contains("chatId"), "{}", violations[1]);
    assert!(violations[2].contains("/text"), "{}", violations[2]);
    assert!(violations[3].contains("not JSON"), "{}", violations[3]);
    assert_eq!(sim.calls().len(), 4);
    assert_eq!(sim.sends().len(), 1);

    // Also over HTTP, for out-of-process users.
    let over_http: Vec<String> = client
        .get(format!("{}/_sim/violations", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http, violations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_openapi_document_is_one_violation_and_the_sim_still_runs() {
    let sim = sim_with(SimConfig {
        openapi_path: "/nonexistent/openapi.json".into(),
        ..SimConfig::default()
    })
    .await;
    sim.ensure_session("dev-5", Engine::Gows, SessionStatus::Working);
    let response = http()
        .post(format!("{}/api/sendText", sim.base_url()))
        .json(&json!({"session": "dev-5", "chatId": "62811@c.us", "text": "x", "anything": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let violations = sim.violations();
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(violations[0].contains("/nonexistent/openapi.json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_sessions_and_control_endpoints() {
    let sim = sim_with(SimConfig {
        api_key: Some("k3y".into()),
        engine: Engine::Webjs,
        ..SimConfig::default()
    })
    .await;
    let client = http();
    let base = sim.base_url();

    let denied = client
        .get(format!("{base}/api/sessions"))
        .header("X-Api-Key", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    assert_eq!(
        denied.json::<Value>().await.unwrap(),
        json!({"message": "Unauthorized", "statusCode": 401})
    );
    assert_eq!(
        client
            .get(format!("{base}/api/sessions"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    let api = |method: reqwest::Method, path: &str| {
        client
            .request(method, format!("{base}{path}"))
            .header("X-Api-Key", "k3y")
    };
    let created = api(reqwest::Method::POST, "/api/sessions")
        .json(&json!({"name": "s", "start": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.json::<Value>().await.unwrap()["status"], "STOPPED");
    let again = api(reqwest::Method::POST, "/api/sessions")
        .json(&json!({"name": "s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 422);

    let listed: Value = api(reqwest::Method::GET, "/api/sessions")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]), "stopped sessions only with all=true");
    let all: Value = api(reqwest::Method::GET, "/api/sessions?all=true")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all[0]["engine"]["engine"], "WEBJS");

    // Sending on a stopped session: 422 with WAHA's body.
    let refused = api(reqwest::Method::POST, "/api/sendText")
        .json(&json!({"session": "s", "chatId": "62811@c.us", "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["status"], "STOPPED");
    assert_eq!(body["expected"], json!(["WORKING"]));

    // The control API needs no key.
    let set: Value = client
        .post(format!("{base}/_sim/sessions"))
        .json(&json!({"name": "s", "status": "WORKING"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(set["status"], "WORKING");
    let webjs_id = api(reqwest::Method::GET, "/api/s/new-message-id")
        .send()
        .await
        .unwrap();
    assert_eq!(webjs_id.status(), 422, "WEBJS cannot pre-generate ids");

    for action in ["stop", "start", "restart"] {
        let r: Value = api(reqwest::Method::POST, &format!("/api/sessions/s/{action}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let expected = if action == "stop" {
            "STOPPED"
        } else {
            "WORKING"
        };
        assert_eq!(r["status"], expected, "{action}");
    }
    let out: Value = api(reqwest::Method::POST, "/api/sessions/s/logout")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (out["status"].as_str(), &out["me"]),
        (Some("SCAN_QR_CODE"), &Value::Null)
    );
    assert_eq!(
        api(reqwest::Method::DELETE, "/api/sessions/s")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        api(reqwest::Method::GET, "/api/sessions/s")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let faults = client
        .put(format!("{base}/_sim/faults"))
        .json(&json!({"latency_ms": 5, "error_rate": 0.5, "seed": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(faults.status(), 200);
    let calls: Vec<Value> = client
        .get(format!("{base}/_sim/calls"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(calls.len(), sim.calls().len());
    assert!(calls
        .iter()
        .all(|c| c["path"].as_str().unwrap().starts_with("/api/")));
    assert_eq!(sim.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_lids_and_profile() {
    let sim = sim_with(SimConfig::default()).await;
    sim.ensure_session("dev-6", Engine::Gows, SessionStatus::Working);
    sim.add_lid("123456789012345", "62811010010010");
    sim.set_registered("62899999999", false);
    let client = http();
    let get = |path: String| {
        let client = client.clone();
        async move {
            client
                .get(path)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let base = sim.base_url();
    let exists = get(format!(
        "{base}/api/contacts/check-exists?phone=62811010010010&session=dev-6"
    ))
    .await;
    assert_eq!(
        exists,
        json!({"numberExists": true, "chatId": "62811010010010@c.us"})
    );
    let missing = get(format!(
        "{base}/api/contacts/check-exists?phone=62899999999&session=dev-6"
    ))
    .await;
    assert_eq!(missing, json!({"numberExists": false}));
    let lid = get(format!("{base}/api/dev-6/lids/123456789012345@lid")).await;
    assert_eq!(
        lid,
        json!({"lid": "123456789012345@lid", "pn": "62811010010010@c.us"})
    );
    let unknown = get(format!("{base}/api/dev-6/lids/999@lid")).await;
    assert_eq!(unknown["pn"], Value::Null);
    let profile = get(format!("{base}/api/dev-6/profile")).await;
    assert!(profile["id"].as_str().unwrap().ends_with("@c.us"));
    assert_eq!(sim.violations(), Vec::<String>::new());
}
