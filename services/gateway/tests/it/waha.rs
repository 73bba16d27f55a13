//! The reference's WAHA endpoints (`/api/v1/waha/...`) against the WAHA simulator: WAHA's JSON
//! passed through as the reference shows it, secrets removed, a device confined to its own
//! session, WAHA's 4xx mapped to the same status, WAHA down → 502 in the envelope; and every
//! request Wapim sent is valid against WAHA's OpenAPI document.

use std::net::TcpListener;

use reqwest::Method;
use serde_json::{json, Value};
use wapim_waha_sim::{Engine, SessionStatus, SimConfig, SimHandle};

use crate::helpers::{spawn_app_with, As, TestApp};

async fn with_sim() -> (TestApp, SimHandle) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let sim = wapim_waha_sim::start(SimConfig::default(), listener)
        .await
        .unwrap();
    let url = sim.base_url();
    let app = spawn_app_with(&[("WAPIM_WAHA__URL", url.as_str())]).await;
    (app, sim)
}

fn assert_envelope_error(r: &crate::helpers::Reply, status: u16) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["status"], false, "{}", r.text);
    assert!(
        r.body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        r.text
    );
}

wapim_testkit::both_backends! {
    async fn me_and_profile_pass_waha_through_for_the_devices_own_session_only() {
        let (app, sim) = with_sim().await;
        let (mine, me) = app.create_device("WAPI Test").await;
        let (theirs, _) = app.create_device("Other Shop").await;
        let session = mine["session_id"].as_str().unwrap();
        sim.ensure_session(session, Engine::Gows, SessionStatus::Working);

        let r = app.get(&format!("/api/v1/waha/sessions/{session}/me"), &me).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.body["id"].as_str().unwrap().ends_with("@c.us"), "not wrapped in the envelope: {}", r.text);
        assert!(r.body.get("status").is_none(), "{}", r.text);
        let r = app.get(&format!("/api/v1/waha/{session}/profile"), &As::Operator).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.body.get("name").is_some(), "{}", r.text);

        // Another device's session, or a session no device has, does not exist for this caller.
        let other = theirs["session_id"].as_str().unwrap();
        assert_envelope_error(&app.get(&format!("/api/v1/waha/sessions/{other}/me"), &me).await, 404);
        assert_envelope_error(&app.get("/api/v1/waha/sessions/nobody/me", &As::Operator).await, 404);
        assert_envelope_error(&app.get(&format!("/api/v1/waha/sessions/{session}/me"), &As::Nobody).await, 401);
        // WAHA's own 404 (a device Wapim has whose session WAHA lacks) is a 404 with its reason.
        assert_envelope_error(&app.get(&format!("/api/v1/waha/{other}/profile"), &As::Operator).await, 404);
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }

    async fn restart_and_logout_answer_with_the_session_and_never_show_its_secrets() {
        let (app, sim) = with_sim().await;
        let (device, me) = app.create_device("WAPI Test").await;
        let session = device["session_id"].as_str().unwrap().to_owned();
        // The session as the devices-on-WAHA step configures it: a webhook with an HMAC key.
        let sim_client = reqwest::Client::new();
        let created = sim_client
            .post(format!("{}/api/sessions", sim.base_url()))
            .json(&json!({"name": session, "start": true, "config": {
                "metadata": {"wapim.device_id": "1"},
                "webhooks": [{"url": "http://127.0.0.1:9/api/v1/waha-webhook", "events": ["message.ack"],
                              "hmac": {"key": "super-secret-hmac-key"},
                              "customHeaders": [{"name": "X-Api-Key", "value": "another-secret"}]}]
            }}))
            .send()
            .await
            .unwrap();
        assert!(created.status().is_success(), "{}", created.text().await.unwrap());

        for action in ["restart", "logout"] {
            let r = app.request(Method::POST, &format!("/api/v1/waha/sessions/{session}/{action}"), &me, None).await;
            assert_eq!(r.status, 200, "{action}: {}", r.text);
            assert_eq!(r.body["name"], session.as_str(), "{}", r.text);
            assert!(r.body["status"].is_string(), "{}", r.text);
            assert!(!r.text.contains("super-secret-hmac-key"), "{action} leaked the HMAC key: {}", r.text);
            assert!(!r.text.contains("another-secret"), "{action} leaked a header: {}", r.text);
            assert_eq!(r.body["config"]["webhooks"][0]["hmac"], Value::Null, "{}", r.text);
            assert_eq!(r.body["config"]["webhooks"][0]["url"], "http://127.0.0.1:9/api/v1/waha-webhook");
        }
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }

    async fn the_qr_code_comes_as_png_or_raw_and_waha_says_when_there_is_none() {
        let (app, sim) = with_sim().await;
        let (device, me) = app.create_device("WAPI Test").await;
        let session = device["session_id"].as_str().unwrap();
        sim.ensure_session(session, Engine::Gows, SessionStatus::ScanQrCode);
        let path = format!("/api/v1/waha/{session}/auth/qr.png");

        let png = app.client
            .get(format!("{}{path}?format=image", app.base))
            .header("X-Session-Id", session)
            .header("X-Session-Secret-Token", match &me { As::Device { token, .. } => token.clone(), _ => unreachable!() })
            .send()
            .await
            .unwrap();
        assert_eq!(png.status(), 200);
        assert_eq!(png.headers()["content-type"], "image/png");
        let bytes = png.bytes().await.unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");

        let raw = app.get(&format!("{path}?format=raw"), &me).await;
        assert_eq!(raw.status, 200, "{}", raw.text);
        assert!(raw.body["value"].is_string(), "{}", raw.text);
        assert_envelope_error(&app.get(&format!("{path}?format=svg"), &me).await, 422);

        // Paired: WAHA refuses a QR (422, session not in SCAN_QR_CODE), and so does Wapim.
        assert!(sim.login(session));
        let r = app.get(&format!("{path}?format=raw"), &me).await;
        assert_envelope_error(&r, 422);
        assert!(r.body["errors"]["waha"][0].is_string(), "{}", r.text);
    }

    async fn a_pairing_code_and_check_exists_take_the_phone_in_any_accepted_form() {
        let (app, sim) = with_sim().await;
        let (device, me) = app.create_device("WAPI Test").await;
        let session = device["session_id"].as_str().unwrap();
        sim.ensure_session(session, Engine::Gows, SessionStatus::ScanQrCode);
        let r = app
            .post(&format!("/api/v1/waha/{session}/auth/request-code"), &me, json!({"phone_number": "0811-0100-10010"}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.body["code"].is_string(), "{}", r.text);
        let asked = sim.calls().into_iter().find(|c| c.path.ends_with("/auth/request-code")).unwrap();
        assert_eq!(asked.body["phoneNumber"], "62811010010010");
        let r = app.post(&format!("/api/v1/waha/{session}/auth/request-code"), &me, json!({})).await;
        assert_envelope_error(&r, 422);

        assert!(sim.login(session));
        sim.set_registered("62895395151395", true);
        let r = app.get(&format!("/api/v1/waha/contacts/check-exists?phone=0895395151395&session={session}"), &As::Operator).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["numberExists"], true, "{}", r.text);
        assert_eq!(r.body["chatId"], "62895395151395@c.us");
        // A device may leave the session out (its own); a bad phone is a 422 on `phone`.
        let r = app.get("/api/v1/waha/contacts/check-exists?phone=62895395151395", &me).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = app.get(&format!("/api/v1/waha/contacts/check-exists?phone=12&session={session}"), &me).await;
        assert_envelope_error(&r, 422);
        assert!(r.body["errors"]["phone"][0].is_string(), "{}", r.text);
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }

    async fn waha_down_is_a_502_in_the_envelope() {
        // A port nothing listens on.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let app = spawn_app_with(&[("WAPIM_WAHA__URL", url.as_str())]).await;
        let (device, me) = app.create_device("WAPI Test").await;
        let session = device["session_id"].as_str().unwrap();
        let r = app.get(&format!("/api/v1/waha/sessions/{session}/me"), &me).await;
        assert_envelope_error(&r, 502);
        assert!(r.body["message"].as_str().unwrap().contains("WAHA could not be reached"), "{}", r.text);
    }

    async fn operators_register_drain_and_retire_waha_servers_and_their_keys_never_show() {
        let app = crate::helpers::spawn_app().await;
        let list = app.get("/api/waha-servers", &As::Operator).await;
        assert_eq!(list.status, 200, "{}", list.text);
        let servers = list.body["data"]["list"].as_array().unwrap().clone();
        assert_eq!(servers.len(), 1, "the server of WAPIM_WAHA__URL is registered: {}", list.text);
        assert_eq!(servers[0]["name"], "default");

        let body = json!({"name": "waha-2", "base_url": "http://127.0.0.1:3002/", "api_key": "k-secret", "capacity": 10});
        let r = app.post("/api/waha-servers", &As::Operator, body.clone()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["data"]["base_url"], "http://127.0.0.1:3002");
        assert_eq!(r.body["data"]["room"], 10);
        assert!(!r.text.contains("k-secret"), "{}", r.text);
        let id = r.body["data"]["id"].as_i64().unwrap();
        let again = app.post("/api/waha-servers", &As::Operator, body).await;
        assert_eq!(again.status, 409, "{}", again.text);

        for (bad, field) in [
            (json!({"base_url": "http://127.0.0.1:1"}), "name"),
            (json!({"name": "x", "base_url": "ftp://w"}), "base_url"),
            (json!({"name": "x", "base_url": "http://127.0.0.1:1", "capacity": 0}), "capacity"),
            (json!({"name": "x", "base_url": "http://127.0.0.1:1", "state": "asleep"}), "state"),
        ] {
            let r = app.post("/api/waha-servers", &As::Operator, bad.clone()).await;
            assert_eq!(r.status, 422, "{bad}: {}", r.text);
            assert!(r.body["errors"][field][0].is_string(), "{bad}: {}", r.text);
        }
        let r = app.request(Method::PATCH, &format!("/api/waha-servers/{id}"), &As::Operator, Some(json!({"state": "draining"}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["data"]["state"], "draining");
        assert_eq!(r.body["data"]["capacity"], 10, "PATCH keeps what it does not name");

        // Devices may not see or touch servers.
        let (_, device) = app.create_device("WAPI Test").await;
        assert_envelope_error(&app.get("/api/waha-servers", &device).await, 403);
        assert_envelope_error(&app.post("/api/waha-servers", &device, json!({"name": "x", "base_url": "http://127.0.0.1:1"})).await, 403);

        let gone = app.request(Method::DELETE, &format!("/api/waha-servers/{id}"), &As::Operator, None).await;
        assert_eq!(gone.status, 200, "{}", gone.text);
        assert_envelope_error(&app.request(Method::DELETE, &format!("/api/waha-servers/{id}"), &As::Operator, None).await, 404);
        assert_envelope_error(&app.request(Method::PATCH, "/api/waha-servers/999", &As::Operator, Some(json!({}))).await, 404);
    }

    async fn the_pairing_page_shows_the_qr_refreshes_through_its_own_link_and_says_when_paired() {
        let (app, sim) = with_sim().await;
        let (device, me) = app.create_device("WAPI Test").await;
        let id = device["id"].as_i64().unwrap();
        let session = device["session_id"].as_str().unwrap();
        sim.ensure_session(session, Engine::Gows, SessionStatus::ScanQrCode);

        let page = app.get(&format!("/api/devices/{id}/qr"), &me).await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(page.text.contains("data:image/png;base64,"), "{}", page.text);
        assert!(page.text.contains(r#"alt="QR code to link WAPI Test to WhatsApp""#));
        // The refresh goes through a signed link that works without credentials, for this page.
        let start = page.text.find("url=").unwrap() + 4;
        let end = start + page.text[start..].find('"').unwrap();
        let refresh = page.text[start..end].to_owned();
        assert!(refresh.starts_with(&format!("/api/devices/{id}/qr?pairing=")), "{refresh}");
        let again = app.get(&refresh, &As::Nobody).await;
        assert_eq!(again.status, 200, "{}", again.text);
        assert!(again.text.contains(&refresh), "the link is kept, not renewed");
        let tampered = refresh.replace("pairing=", "pairing=1");
        assert_envelope_error(&app.get(&tampered, &As::Nobody).await, 401);
        let (other, _) = app.create_device("Other Shop").await;
        let elsewhere = refresh.replace(&format!("/devices/{id}/"), &format!("/devices/{}/", other["id"]));
        assert_envelope_error(&app.get(&elsewhere, &As::Nobody).await, 401);

        // For a terminal: the code in Unicode blocks.
        let text = app.get(&format!("/api/devices/{id}/qr?format=text"), &me).await;
        assert_eq!(text.status, 200, "{}", text.text);
        assert!(text.text.contains('█') || text.text.contains('▀'), "{}", text.text);

        // Paired: the page says so and stops refreshing.
        assert!(sim.login(session));
        let done = app.get(&refresh, &As::Nobody).await;
        assert!(done.text.contains("is paired"), "{}", done.text);
        assert!(!done.text.contains("http-equiv=\"refresh\""), "{}", done.text);
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }

    async fn a_waha_that_never_answers_is_a_504_after_the_request_timeout() {
        // Accepts connections (the kernel's backlog does) and never answers.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", silent.local_addr().unwrap());
        let app = spawn_app_with(&[("WAPIM_WAHA__URL", url.as_str()), ("WAPIM_WAHA__REQUEST_TIMEOUT_SECS", "1")]).await;
        let (device, me) = app.create_device("WAPI Test").await;
        let session = device["session_id"].as_str().unwrap();
        let started = std::time::Instant::now();
        let r = app.get(&format!("/api/v1/waha/{session}/profile"), &me).await;
        assert_envelope_error(&r, 504);
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
        drop(silent);
    }
}
