//! Webhook ingest end to end: a contact writes (the simulator posts WAHA's signed `message`
//! event), the ingest stores it once and the device's automations answer through the send path;
//! the integrator's own webhook receives Wapim's events, signed per Standard Webhooks, retried
//! after a failure, visible in the delivery log and replayable.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use wapim_waha_sim::{Incoming, SessionStatus};

use crate::helpers::{Options, Pipeline};

const CONTACT: &str = "6281100000099";
const FORWARD_TO: &str = "62811010010050";

/// What the integrator's receiver saw: headers of interest and the raw body.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// A loopback receiver for the integrator's webhook: answers the scripted statuses in turn
/// (then 200), records every request.
#[derive(Clone)]
struct Receiver {
    seen: Arc<Mutex<Vec<Received>>>,
    url: String,
}

impl Receiver {
    async fn start(script: Vec<u16>) -> Self {
        let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script = Arc::new(Mutex::new(script));
        let (s, sc) = (seen.clone(), script.clone());
        let server = HttpServer::new(move || {
            let (s, sc) = (s.clone(), sc.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (s, sc) = (s.clone(), sc.clone());
                async move {
                    let header = |n: &str| {
                        req.headers()
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    s.lock().unwrap().push(Received {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    let status = {
                        let mut script = sc.lock().unwrap();
                        if script.is_empty() {
                            200
                        } else {
                            script.remove(0)
                        }
                    };
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                        .body("receiver says hi")
                }
            }))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        Self {
            seen,
            url: format!("http://127.0.0.1:{port}/hooks/wapim"),
        }
    }

    fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until a request matches.
    async fn wait_for(
        &self,
        within: Duration,
        what: impl Fn(&Received, &Value) -> bool,
    ) -> Received {
        let started = Instant::now();
        loop {
            if let Some(r) = self
                .seen()
                .into_iter()
                .find(|r| serde_json::from_str::<Value>(&r.body).is_ok_and(|b| what(r, &b)))
            {
                return r;
            }
            assert!(
                started.elapsed() < within,
                "the receiver never got it; it saw {:?}",
                self.seen()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Standard Webhooks verification, written from the specification (not Wapim's code): the key
/// is the base64 after `whsec_`; the signature is base64 HMAC-SHA256 of `id.timestamp.body`.
fn verifies(secret: &str, r: &Received) -> bool {
    let engine = base64::engine::general_purpose::STANDARD;
    let key = engine.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let expected = format!("v1,{}", engine.encode(mac.finalize().into_bytes()));
    r.signature.split(' ').any(|s| s == expected)
}

impl Pipeline {
    /// Waits until the simulator's session posts its events to this pipeline's ingest.
    async fn wait_for_ingest_wiring(&self) {
        let started = Instant::now();
        loop {
            let r = self
                .client
                .get(format!("{}/api/sessions/wapi-test", self.sim.base_url()))
                .send()
                .await
                .unwrap();
            if r.status() == 200 {
                let s: Value = r.json().await.unwrap();
                if s["config"]["webhooks"][0]["url"] == self.webhook_url.as_str() {
                    return;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the session is never wired to the ingest"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn set_device(&self, fields: Value) {
        let (status, body) = self
            .operator(
                reqwest::Method::PATCH,
                &format!("/api/devices/{}", self.device["id"]),
                Some(fields),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    fn contact_writes(&self, from: &str, body: &str) {
        let incoming = Incoming {
            from: from.to_owned(),
            body: body.to_owned(),
            ..Incoming::default()
        };
        assert!(
            self.sim.receive("wapi-test", &incoming).is_some(),
            "the session receives"
        );
    }

    /// Every message (any origin) the operator can list.
    async fn all_messages(&self) -> Vec<Value> {
        let (status, body) = self
            .operator(reqwest::Method::GET, "/api/messages?per_page=100", None)
            .await;
        assert_eq!(status, 200, "{body}");
        body["data"]["list"].as_array().unwrap().clone()
    }

    fn count(messages: &[Value], origin: &str, recipient: &str) -> usize {
        messages
            .iter()
            .filter(|m| m["origin"] == origin && m["recipient"] == recipient)
            .count()
    }

    /// Waits until `n` messages of `origin` to `recipient` exist; returns them all.
    async fn wait_for_answers(&self, origin: &str, recipient: &str, n: usize) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let all = self.all_messages().await;
            if Self::count(&all, origin, recipient) >= n {
                return all;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "no {n} {origin} to {recipient}: {all:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The inbox as the device sees it.
    async fn inbox(&self) -> Vec<Value> {
        let r: Value = self
            .client
            .get(format!("{}/api/inbox", self.base))
            .header("X-Session-Id", "wapi-test")
            .header("X-Session-Secret-Token", &self.device_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["status"], true, "{r}");
        r["data"]["list"].as_array().unwrap().clone()
    }
}

wapim_testkit::both_backends! {
    async fn a_contacts_message_is_stored_and_answered_by_the_automations_with_their_loop_guards() {
        let p = Pipeline::start_with(Options { ingest: true, ..Options::default() }).await;
        p.wait_for_ingest_wiring().await;
        p.set_device(json!({
            "opening_message": "Welcome to the shop",
            "auto_reply": "We answer within the hour",
            "auto_forward": "New message",
            "auto_forward_number": "0811010010050",
        }))
        .await;
        p.contact_writes(&format!("{CONTACT}@c.us"), "halo, is the shop open?");
        let all = p.wait_for_answers("auto_forward", FORWARD_TO, 1).await;
        assert_eq!(Pipeline::count(&all, "opening_message", CONTACT), 1, "{all:?}");
        assert_eq!(Pipeline::count(&all, "auto_reply", CONTACT), 1, "{all:?}");
        let forward = all.iter().find(|m| m["origin"] == "auto_forward").unwrap();
        assert_eq!(forward["message"], format!("New message\nFrom: +{CONTACT}\nhalo, is the shop open?"));
        let inbox = p.inbox().await;
        assert_eq!(inbox.len(), 1, "{inbox:?}");
        assert_eq!(inbox[0]["sender"], CONTACT);
        assert_eq!(inbox[0]["message"], "halo, is the shop open?");
        assert_eq!(inbox[0]["message_type"], "text");
        // The answers are ordinary messages: sent and acked through the pipeline.
        let opening = all.iter().find(|m| m["origin"] == "opening_message").unwrap();
        p.wait_for_status(opening["id"].as_i64().unwrap(), "read", Duration::from_secs(15)).await;

        // Loop guards: the forward number, the account itself, a group, a status broadcast.
        p.contact_writes(&format!("{FORWARD_TO}@c.us"), "forwarded text comes back");
        let own = Incoming { from: format!("{CONTACT}@c.us"), body: "sent from the phone".into(), from_me: true, ..Incoming::default() };
        p.sim.receive("wapi-test", &own).unwrap();
        let group = Incoming { from: "120363000000001@g.us".into(), participant: Some("6281100000098@c.us".into()), body: "group chatter".into(), ..Incoming::default() };
        p.sim.receive("wapi-test", &group).unwrap();
        p.contact_writes("status@broadcast", "a status update");
        // Within its windows, the same contact gets neither greeting nor auto-reply again.
        p.contact_writes(&format!("{CONTACT}@c.us"), "one more thing");
        // Events apply in order: once this one is answered, every one before it was applied.
        p.contact_writes("6281100000097@c.us", "barrier");
        let all = p.wait_for_answers("auto_reply", "6281100000097", 1).await;
        assert_eq!(Pipeline::count(&all, "opening_message", CONTACT), 1, "{all:?}");
        assert_eq!(Pipeline::count(&all, "auto_reply", CONTACT), 1, "{all:?}");
        assert_eq!(Pipeline::count(&all, "auto_forward", FORWARD_TO), 3, "the contact twice and the barrier: {all:?}");
        assert!(all.iter().all(|m| m["recipient"] != "6281100000098"), "nothing answers a group: {all:?}");
        let inbox = p.inbox().await;
        let texts: Vec<&str> = inbox.iter().map(|m| m["message"].as_str().unwrap()).collect();
        assert_eq!(texts, ["barrier", "one more thing", "group chatter", "forwarded text comes back", "halo, is the shop open?"]);
        let group_row = &inbox[2];
        assert_eq!(group_row["is_group"], true);
        assert_eq!(group_row["sender"], "6281100000098");
        // Another device sees none of it; a foreign id is a 404.
        let (_, token) = p.add_device(json!({"name": "Other Shop", "phone_number": "0811010010077"})).await;
        let r = p.client.get(format!("{}/api/inbox", p.base)).header("X-Session-Id", "other-shop").header("X-Session-Secret-Token", &token).send().await.unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["data"]["meta"]["total"], 0, "{v}");
        let r = p.client.get(format!("{}/api/inbox/{}", p.base, inbox[0]["id"])).header("X-Session-Id", "other-shop").header("X-Session-Secret-Token", &token).send().await.unwrap();
        assert_eq!(r.status(), 404);
        assert!(p.sim.violations().is_empty(), "{:?}", p.sim.violations());
    }

    async fn an_opt_out_keyword_suppresses_the_contact_and_only_the_confirmation_answers() {
        let p = Pipeline::start_with(Options { ingest: true, ..Options::default() }).await;
        p.wait_for_ingest_wiring().await;
        p.set_device(json!({
            "opening_message": "Welcome",
            "auto_reply": "Thanks for writing",
            "opt_out_confirmation": "You will not hear from us again",
        }))
        .await;
        p.contact_writes(&format!("{CONTACT}@c.us"), "  Stop! ");
        let all = p.wait_for_answers("opt_out_confirmation", CONTACT, 1).await;
        assert_eq!(Pipeline::count(&all, "opening_message", CONTACT), 0, "{all:?}");
        assert_eq!(Pipeline::count(&all, "auto_reply", CONTACT), 0, "{all:?}");
        let (status, list) = p.operator(reqwest::Method::GET, &format!("/api/devices/{}/suppressions", p.device["id"]), None).await;
        assert_eq!(status, 200);
        assert_eq!(list["data"]["list"][0]["phone"], CONTACT, "{list}");
        // The confirmation is the one message a suppressed contact still gets.
        let confirmation = all.iter().find(|m| m["origin"] == "opt_out_confirmation").unwrap();
        p.wait_for_status(confirmation["id"].as_i64().unwrap(), "read", Duration::from_secs(15)).await;
        // Later messages from them get no automation.
        p.contact_writes(&format!("{CONTACT}@c.us"), "hello again");
        p.contact_writes("6281100000097@c.us", "barrier");
        let all = p.wait_for_answers("auto_reply", "6281100000097", 1).await;
        assert_eq!(Pipeline::count(&all, "opening_message", CONTACT), 0, "{all:?}");
        assert_eq!(Pipeline::count(&all, "auto_reply", CONTACT), 0, "{all:?}");
        // Own keywords replace the defaults.
        p.set_device(json!({"opt_out_keywords": ["cukup"]})).await;
        p.contact_writes("6281100000096@c.us", "stop");
        p.contact_writes("6281100000095@c.us", "Cukup");
        let all = p.wait_for_answers("opt_out_confirmation", "6281100000095", 1).await;
        assert_eq!(Pipeline::count(&all, "auto_reply", "6281100000096"), 1, "`stop` is no keyword now: {all:?}");
    }

    async fn a_lid_sender_is_resolved_through_waha_and_an_unresolved_one_is_never_answered() {
        let p = Pipeline::start_with(Options { ingest: true, ..Options::default() }).await;
        p.wait_for_ingest_wiring().await;
        p.set_device(json!({"auto_reply": "Thanks"})).await;
        p.sim.add_lid("208827334492171@lid", "6281100000094@c.us");
        p.contact_writes("208827334492171@lid", "from a hidden number");
        p.wait_for_answers("auto_reply", "6281100000094", 1).await;
        p.contact_writes("999999999999999@lid", "nobody knows me");
        p.contact_writes("6281100000097@c.us", "barrier");
        let all = p.wait_for_answers("auto_reply", "6281100000097", 1).await;
        assert!(all.iter().all(|m| m["recipient"] != "999999999999999"), "a lid's digits are no phone: {all:?}");
        let inbox = p.inbox().await;
        let hidden = inbox.iter().find(|m| m["message"] == "from a hidden number").unwrap();
        assert_eq!(hidden["sender"], "6281100000094");
        assert_eq!(hidden["sender_lid"], "208827334492171@lid");
        let unknown = inbox.iter().find(|m| m["message"] == "nobody knows me").unwrap();
        assert_eq!(unknown["sender"], Value::Null);
        assert_eq!(unknown["sender_lid"], "999999999999999@lid");
        // WAHA was asked once per lid (the answer is cached).
        let asked = p.sim.calls().iter().filter(|c| c.path.contains("/lids/")).count();
        assert_eq!(asked, 2);
    }

    async fn a_silent_conversation_gets_its_closing_message_once() {
        let p = Pipeline::start_with(Options { ingest: true, conversation_silence_secs: 2, ..Options::default() }).await;
        p.wait_for_ingest_wiring().await;
        p.set_device(json!({"closing_message": "Thanks for visiting"})).await;
        let written = Instant::now();
        p.contact_writes(&format!("{CONTACT}@c.us"), "bye");
        let all = p.wait_for_answers("closing_message", CONTACT, 1).await;
        assert!(written.elapsed() >= Duration::from_secs(2), "not before the silence");
        let closing = all.iter().find(|m| m["origin"] == "closing_message").unwrap();
        p.wait_for_status(closing["id"].as_i64().unwrap(), "read", Duration::from_secs(15)).await;
        // Once per silence: nothing more while the contact stays quiet.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let all = p.all_messages().await;
        assert_eq!(Pipeline::count(&all, "closing_message", CONTACT), 1, "{all:?}");
    }

    async fn the_integrators_webhook_gets_signed_filtered_events_retried_logged_and_replayable() {
        let p = Pipeline::start_with(Options { ingest: true, ..Options::default() }).await;
        p.wait_for_ingest_wiring().await;
        // The first answer fails: the same delivery is tried again.
        let receiver = Receiver::start(vec![500]).await;
        let secret = p.device["webhook_secret"].as_str().expect("the secret is shown at creation").to_owned();
        assert!(secret.starts_with("whsec_"), "{secret}");
        assert!(p.device_json(&p.device["id"]).await.get("webhook_secret").is_none(), "shown once");
        p.set_device(json!({
            "webhook_status": true,
            "webhook_url": receiver.url,
            "webhook_options": ["message.ack", "message"],
        }))
        .await;
        let id = p.text("tracked").await;
        p.wait_for_status(id, "read", Duration::from_secs(15)).await;
        let read = receiver
            .wait_for(Duration::from_secs(15), |_, b| b["event"] == "message.ack" && b["data"]["status"] == "read")
            .await;
        let body: Value = serde_json::from_str(&read.body).unwrap();
        assert_eq!(body["data"]["message_id"], id);
        assert!(body["data"]["read_at"].is_string() && body["data"]["delivered_at"].is_string(), "{body}");
        assert_eq!(body["waha"]["ackName"], "READ");
        assert_eq!(body["webhook_id"], read.id.as_str());
        assert!(verifies(&secret, &read), "{read:?}");
        // The first delivery failed once and went through on its second attempt, same id.
        let first = receiver.seen()[0].clone();
        let started = Instant::now();
        while receiver.seen().iter().filter(|r| r.id == first.id).count() < 2 {
            assert!(started.elapsed() < Duration::from_secs(15), "the failed delivery is never retried: {:?}", receiver.seen());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (status, log) = p.operator(reqwest::Method::GET, "/api/webhook-deliveries?event=message.ack", None).await;
        assert_eq!(status, 200, "{log}");
        let list = log["data"]["list"].as_array().unwrap();
        assert_eq!(list.len(), 2, "DEVICE and READ: {log}");
        let retried = list.iter().find(|d| d["webhook_id"] == first.id.as_str()).unwrap();
        let started = Instant::now();
        let detail = loop {
            let (_, detail) = p.operator(reqwest::Method::GET, &format!("/api/webhook-deliveries/{}", retried["id"]), None).await;
            if detail["data"]["status"] == "delivered" {
                break detail;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "{detail}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let d = &detail["data"];
        let codes: Vec<&Value> = d["attempt_log"].as_array().unwrap().iter().map(|a| &a["status_code"]).collect();
        assert_eq!(codes, [&json!(500), &json!(200)], "{d}");

        // Only subscribed events: a session status change is not sent.
        p.sim.ensure_session("wapi-test", wapim_waha_sim::Engine::Gows, SessionStatus::Stopped);
        p.sim.ensure_session("wapi-test", wapim_waha_sim::Engine::Gows, SessionStatus::Working);
        p.contact_writes(&format!("{CONTACT}@c.us"), "inbound event");
        let inbound = receiver.wait_for(Duration::from_secs(15), |_, b| b["event"] == "message").await;
        let body: Value = serde_json::from_str(&inbound.body).unwrap();
        assert_eq!(body["data"]["from"], CONTACT);
        assert_eq!(body["data"]["message"], "inbound event");
        assert!(receiver.seen().iter().all(|r| !r.body.contains("\"session.status\"")), "{:?}", receiver.seen());

        // Rotation: the new secret signs from now on, the old one no longer verifies; a replay
        // goes out again with the same webhook-id.
        let (status, rotated) = p.operator(reqwest::Method::POST, &format!("/api/devices/{}/webhook-secret", p.device["id"]), None).await;
        assert_eq!(status, 200, "{rotated}");
        let fresh = rotated["data"]["webhook_secret"].as_str().unwrap().to_owned();
        assert_ne!(fresh, secret);
        let before = receiver.seen().len();
        let (status, replayed) = p.operator(reqwest::Method::POST, &format!("/api/webhook-deliveries/{}/replay", retried["id"]), None).await;
        assert_eq!(status, 200, "{replayed}");
        let started = Instant::now();
        while receiver.seen().len() == before {
            assert!(started.elapsed() < Duration::from_secs(15), "the replay never arrives");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let again = receiver.seen()[before].clone();
        assert_eq!(again.id, first.id);
        assert!(verifies(&fresh, &again) && !verifies(&secret, &again), "{again:?}");
        // Filters and scoping of the log.
        let (_, failed) = p.operator(reqwest::Method::GET, "/api/webhook-deliveries?status=failed", None).await;
        assert_eq!(failed["data"]["meta"]["total"], 0, "{failed}");
        let (status, bad) = p.operator(reqwest::Method::GET, "/api/webhook-deliveries?status=lost", None).await;
        assert_eq!(status, 422, "{bad}");
        let (status, _) = p.operator(reqwest::Method::GET, "/api/webhook-deliveries/999999", None).await;
        assert_eq!(status, 404);
    }
}
