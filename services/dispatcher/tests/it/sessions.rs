//! Devices on WAHA: each device's session is created, configured for the ingest (webhook, its own
//! HMAC key, metadata, NOWEB store), started, stopped on delete and started on restore through
//! the durable hand-off; a WAHA that is down delays this and loses nothing; a resync repairs
//! drift and changes nothing that is right; every request is valid for WAHA's OpenAPI document.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wapim_waha_sim::{Engine, Faults, SessionStatus};

use crate::helpers::{Options, Pipeline, WEBHOOK_URL};
use crate::proxy::Proxy;

impl Pipeline {
    /// Registers a device through the API only (nothing prepared on the simulator).
    async fn register(&self, name: &str) -> Value {
        let r: Value = self
            .client
            .post(format!("{}/api/devices", self.base))
            .bearer_auth(&self.admin_token)
            .json(&json!({"name": name, "phone_number": "0811010010099"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["status"], true, "{r}");
        r["data"].clone()
    }

    /// The simulator's view of a session (`GET /api/sessions/{name}`), if it has one.
    async fn waha_session(&self, name: &str) -> Option<Value> {
        let r = self
            .client
            .get(format!("{}/api/sessions/{name}", self.sim.base_url()))
            .send()
            .await
            .unwrap();
        (r.status() == 200).then_some(r.json().await.unwrap())
    }

    async fn wait_for_waha_session(
        &self,
        name: &str,
        within: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            if let Some(s) = self.waha_session(name).await {
                if check(&s) {
                    return s;
                }
            }
            assert!(
                started.elapsed() < within,
                "WAHA never got session {name} right: {:?}",
                self.waha_session(name).await
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn session_puts(&self, name: &str) -> usize {
        let path = format!("/api/sessions/{name}");
        self.sim
            .calls()
            .iter()
            .filter(|c| c.method == "PUT" && c.path == path)
            .count()
    }
}

wapim_testkit::both_backends! {
    async fn a_new_device_gets_a_started_waha_session_configured_for_the_ingest() {
        let p = Pipeline::start().await;
        let device = p.register("Corner Shop").await;
        let name = device["session_id"].as_str().unwrap().to_owned();
        let session = p
            .wait_for_waha_session(&name, Duration::from_secs(10), |s| s["status"] == "SCAN_QR_CODE")
            .await;
        let config = &session["config"];
        let hook = &config["webhooks"][0];
        assert_eq!(hook["url"], WEBHOOK_URL, "{session}");
        for event in ["message", "message.ack", "session.status"] {
            assert!(hook["events"].as_array().unwrap().contains(&json!(event)), "{event}: {session}");
        }
        let key = hook["hmac"]["key"].as_str().unwrap();
        assert!(key.len() >= 32, "a real key: {session}");
        assert_eq!(config["metadata"]["wapim.device_id"], device["id"].to_string());
        assert_eq!(config["noweb"]["store"]["enabled"], true);

        // Each device signs with its own key, and the API never shows it.
        let other = p.register("Other Shop").await;
        let other_name = other["session_id"].as_str().unwrap().to_owned();
        let other_session = p.wait_for_waha_session(&other_name, Duration::from_secs(10), |_| true).await;
        assert_ne!(other_session["config"]["webhooks"][0]["hmac"]["key"].as_str(), Some(key));
        let shown = p.device_json(&device["id"]).await;
        assert!(!shown.to_string().contains(key), "{shown}");

        // The device's status follows WAHA's, and the sync is recorded.
        let started = Instant::now();
        while p.device_json(&device["id"]).await["status"] != "scan_qr_code" {
            assert!(started.elapsed() < Duration::from_secs(5));
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(p.device_json(&device["id"]).await["waha_synced_at"].is_string());
        assert!(p.sim.violations().is_empty(), "{:?}", p.sim.violations());
    }

    async fn delete_stops_the_session_keeping_its_login_and_restore_starts_it_again() {
        let p = Pipeline::start().await;
        let device = p.register("Corner Shop").await;
        let name = device["session_id"].as_str().unwrap().to_owned();
        p.wait_for_waha_session(&name, Duration::from_secs(10), |s| s["status"] == "SCAN_QR_CODE").await;
        assert!(p.sim.login(&name), "the phone scans the QR code");
        let id = device["id"].clone();
        let deleted = p
            .client
            .delete(format!("{}/api/devices/{id}", p.base))
            .bearer_auth(&p.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 200);
        p.wait_for_waha_session(&name, Duration::from_secs(10), |s| s["status"] == "STOPPED").await;
        let restored = p.operator(reqwest::Method::POST, &format!("/api/devices/{id}/restore"), None).await.1;
        assert_eq!(restored["status"], true, "{restored}");
        // Its login was kept: it comes back WORKING without a new scan.
        p.wait_for_waha_session(&name, Duration::from_secs(10), |s| s["status"] == "WORKING").await;
        assert_eq!(p.sim.session_status(&name), Some(SessionStatus::Working));
        assert!(p.sim.violations().is_empty(), "{:?}", p.sim.violations());
    }

    async fn a_resync_recreates_a_lost_session_and_leaves_a_right_one_alone() {
        let p = Pipeline::start().await;
        let device = p.register("Corner Shop").await;
        let name = device["session_id"].as_str().unwrap().to_owned();
        let id = device["id"].clone();
        p.wait_for_waha_session(&name, Duration::from_secs(10), |s| s["status"] == "SCAN_QR_CODE").await;
        assert!(p.sim.login(&name));

        // Right already: a resync changes nothing (WAHA would restart the session on a PUT).
        let before = p.device_json(&id).await["waha_synced_at"].clone();
        let r = p.operator(reqwest::Method::POST, &format!("/api/devices/{id}/resync"), None).await.1;
        assert_eq!(r["status"], true, "{r}");
        let started = Instant::now();
        while p.device_json(&id).await["waha_synced_at"] == before {
            assert!(started.elapsed() < Duration::from_secs(10), "the resync never ran");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(p.session_puts(&name), 0);
        assert_eq!(p.sim.session_status(&name), Some(SessionStatus::Working));

        // Lost on WAHA (deleted by hand): a resync creates it again, configured.
        let gone = p.client.delete(format!("{}/api/sessions/{name}", p.sim.base_url())).send().await.unwrap();
        assert!(gone.status().is_success());
        let (status, _) = p.operator(reqwest::Method::POST, &format!("/api/devices/{id}/resync"), None).await;
        assert_eq!(status, 200);
        let back = p.wait_for_waha_session(&name, Duration::from_secs(10), |_| true).await;
        assert_eq!(back["config"]["webhooks"][0]["url"], WEBHOOK_URL);
        // Only operators may ask.
        let as_device = p
            .client
            .post(format!("{}/api/devices/{}/resync", p.base, p.device["id"]))
            .header("X-Session-Id", "wapi-test")
            .header("X-Session-Secret-Token", &p.device_token)
            .send()
            .await
            .unwrap();
        assert_eq!(as_device.status(), 403);
    }

    async fn waha_down_when_a_device_is_created_delays_its_session_and_loses_nothing() {
        let p = Pipeline::start().await;
        // A WAHA server reached through a proxy the test can take down, with the most room.
        let target: &'static str = Box::leak(format!("127.0.0.1:{}", p.sim.port()).into_boxed_str());
        let proxy = Proxy::start(target).await;
        proxy.set_down(true);
        let (status, body) = p.operator(reqwest::Method::POST, "/api/waha-servers",
            Some(json!({"name": "flaky", "base_url": format!("http://127.0.0.1:{}", proxy.port), "capacity": 1000}))).await;
        assert_eq!(status, 200, "{body}");

        let device = p.register("Corner Shop").await;
        let name = device["session_id"].as_str().unwrap().to_owned();
        // WAHA unreachable: the sync fails, is recorded and owed again.
        let started = Instant::now();
        loop {
            let d = p.device_json(&device["id"]).await;
            if d["waha_sync_error"].is_string() {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "{d}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(p.waha_session(&name).await.is_none());

        // WAHA back: the session appears without anybody asking.
        proxy.set_down(false);
        p.wait_for_waha_session(&name, Duration::from_secs(15), |s| s["status"] == "SCAN_QR_CODE").await;
        let started = Instant::now();
        while !p.device_json(&device["id"]).await["waha_sync_error"].is_null() {
            assert!(started.elapsed() < Duration::from_secs(5), "the error was never cleared");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn devices_are_placed_by_room_and_each_talks_only_to_its_own_waha_server() {
        let p = Pipeline::start().await;
        let b = wapim_waha_sim::start(wapim_waha_sim::SimConfig::default(), std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .await
            .unwrap();
        // Server B has more room than the default one (100, one device on it).
        let (status, body) = p.operator(reqwest::Method::POST, "/api/waha-servers",
            Some(json!({"name": "waha-b", "base_url": b.base_url(), "capacity": 200, "api_key": "b-secret"}))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["has_api_key"], true);
        assert!(!body.to_string().contains("b-secret"), "{body}");
        let b_id = body["data"]["id"].clone();

        let on_b = p.register("Shop On B").await;
        assert_eq!(on_b["waha_server_id"], b_id, "{on_b}");
        let name = on_b["session_id"].as_str().unwrap().to_owned();
        // Its session is created on B, never on the default server.
        let started = Instant::now();
        while b.session_status(&name).is_none() {
            assert!(started.elapsed() < Duration::from_secs(10), "no session on B");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(p.waha_session(&name).await.is_none(), "the default server got B's session");

        // Its sends go to B (B's key is sent: the simulator would answer 401 otherwise... it
        // checks none here, so check the calls instead).
        assert!(b.login(&name));
        let token = on_b["secret_token"].as_str().unwrap().to_owned();
        p.batch_as(&name, &token, &["hello from B".to_owned()]).await;
        let started = Instant::now();
        while b.send_count() == 0 {
            assert!(started.elapsed() < Duration::from_secs(10), "never sent through B");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(p.sim.sends().iter().filter(|s| s.session == name).count(), 0);
        // The pass-through endpoints reach B too.
        let me = p
            .client
            .get(format!("{}/api/v1/waha/sessions/{name}/me", p.base))
            .bearer_auth(&p.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200);
        assert!(b.calls().iter().any(|c| c.path == format!("/api/sessions/{name}/me")));

        // Drained, B takes no new device: the next one goes to the default server.
        let (status, body) = p.operator(reqwest::Method::PATCH, &format!("/api/waha-servers/{b_id}"), Some(json!({"state": "draining"}))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["devices"], 1, "{body}");
        let on_default = p.register("Shop On Default").await;
        assert_ne!(on_default["waha_server_id"], b_id, "{on_default}");
        let default_name = on_default["session_id"].as_str().unwrap().to_owned();
        p.wait_for_waha_session(&default_name, Duration::from_secs(10), |_| true).await;
        assert!(b.session_status(&default_name).is_none());

        // A server devices belong to cannot be removed; with no room anywhere, creating is a 409.
        let (status, _) = p.operator(reqwest::Method::DELETE, &format!("/api/waha-servers/{b_id}"), Some(json!({}))).await;
        assert_eq!(status, 409);
        let default_id = on_default["waha_server_id"].clone();
        let (status, body) = p.operator(reqwest::Method::PATCH, &format!("/api/waha-servers/{default_id}"), Some(json!({"state": "down"}))).await;
        assert_eq!(status, 200, "{body}");
        let full = p
            .client
            .post(format!("{}/api/devices", p.base))
            .bearer_auth(&p.admin_token)
            .json(&json!({"name": "No Room", "phone_number": "0811010010098"}))
            .send()
            .await
            .unwrap();
        assert_eq!(full.status(), 409);
        let (status, list) = p.operator(reqwest::Method::GET, "/api/waha-servers", Some(json!({}))).await;
        assert_eq!(status, 200);
        assert_eq!(list["data"]["list"].as_array().unwrap().len(), 2, "{list}");
        assert!(b.violations().is_empty(), "{:?}", b.violations());
        assert!(p.sim.violations().is_empty(), "{:?}", p.sim.violations());
    }

    async fn a_message_goes_sent_delivered_read_from_the_simulators_signed_acks() {
        let p = Pipeline::start_with(Options { ingest: true, ..Options::default() }).await;
        // The session carries the ingest's URL and the device's key once it is synced.
        let url = p.webhook_url.clone();
        p.wait_for_waha_session("wapi-test", Duration::from_secs(10), |s| s["config"]["webhooks"][0]["url"] == url.as_str())
            .await;
        let id = p.text("acked").await;
        let m = p.wait_for_status(id, "read", Duration::from_secs(15)).await;
        assert!(m["sent_at"].is_string() && m["delivered_at"].is_string() && m["read_at"].is_string(), "{m}");
        let (sent, delivered, read) = (
            m["sent_at"].as_str().unwrap().to_owned(),
            m["delivered_at"].as_str().unwrap().to_owned(),
            m["read_at"].as_str().unwrap().to_owned(),
        );
        assert!(sent <= delivered && delivered <= read, "{m}");
        // The device's status came from WAHA too.
        assert_eq!(p.device_json(&p.device["id"]).await["status"], "working");
        assert!(p.sim.violations().is_empty(), "{:?}", p.sim.violations());
    }

    async fn a_noweb_error_ack_after_a_463_holds_the_message_and_pauses_the_device() {
        let p = Pipeline::start_with(Options { ingest: true, engine: Engine::Noweb, ..Options::default() }).await;
        let url = p.webhook_url.clone();
        p.wait_for_waha_session("wapi-test", Duration::from_secs(10), |s| s["config"]["webhooks"][0]["url"] == url.as_str())
            .await;
        p.sim.set_faults(Faults { reach_out_timelock: true, ..Faults::default() });
        let id = p.text("refused later").await;
        // WAHA answers 201, then acks ERROR: the message is not burned, the device pauses.
        let started = Instant::now();
        loop {
            let m = p.message(id).await;
            if m["status"] == "pending" && m["hold_reason"] == "reach_out_timelock" {
                break;
            }
            assert!(m["status"] != "failed", "{m}");
            assert!(started.elapsed() < Duration::from_secs(15), "{m}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let d = p.device_json(&p.device["id"]).await;
        assert_eq!(d["pause_reason"], "reach_out_timelock", "{d}");
        assert_eq!(p.sim.send_count(), 1);
    }
}
