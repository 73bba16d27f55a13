//! The dashboard over HTTP (the browser flow is in `services/wapim`'s tests): who may log in,
//! what a session is allowed, forms guarded against forgery, records escaped, a device confined
//! to itself, and what its forms create is what the API then shows.

use reqwest::{redirect::Policy, StatusCode};
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with_options, text_message, As, TestApp};

/// A browser-like client without a cookie jar: the test carries the session cookie itself.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    set_cookie: Option<String>,
    text: String,
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            base: app.base.clone(),
            cookie: None,
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header("Cookie", c),
            None => req,
        };
        let res = req.send().await.unwrap();
        let header = |name: &str| {
            res.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let (location, set_cookie) = (header("location"), header("set-cookie"));
        if let Some(sc) = &set_cookie {
            let pair = sc.split(';').next().unwrap().to_owned();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        Page {
            status: res.status(),
            location,
            set_cookie,
            text: res.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    async fn login_operator(&mut self, app: &TestApp) {
        let p = self
            .post("/dashboard/login", &[("token", &app.admin_token)])
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text);
        assert_eq!(p.location.as_deref(), Some("/dashboard/devices"));
    }

    /// The CSRF token in the page at `path`.
    async fn csrf(&mut self, path: &str) -> String {
        let page = self.get(path).await;
        page.text
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no CSRF token on {path}: {}", page.text))
            .to_owned()
    }
}

#[tokio::test]
async fn only_valid_credentials_open_a_session_and_its_cookie_is_locked_down() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app);
    let p = b.get("/dashboard/devices").await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location.as_deref(), Some("/dashboard/login"));
    let p = b.get("/dashboard/login").await;
    assert_eq!(p.status, 200);
    assert!(p.text.contains("id=\"login\""));
    for form in [
        vec![("token", "wrong-token-wrong-token-wrong-token")],
        vec![("session_id", "nope"), ("secret_token", "nope")],
        vec![],
    ] {
        let p = b.post("/dashboard/login", &form).await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED, "{form:?}");
        assert!(p.text.contains("not valid"));
        assert!(b.cookie.is_none());
    }
    b.login_operator(&app).await;
    let set = b.cookie.clone().unwrap();
    assert!(set.starts_with("wapim_dashboard="));
    let p = b.get("/dashboard/devices").await;
    assert_eq!(p.status, 200);
    assert!(p.text.contains("id=\"create-device\""));
    // The cookie is HttpOnly, SameSite=Strict and scoped to the dashboard.
    let mut fresh = Browser::new(&app);
    let p = fresh
        .post("/dashboard/login", &[("token", &app.admin_token)])
        .await;
    let flags = p.set_cookie.unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/dashboard", "Max-Age="] {
        assert!(flags.contains(flag), "{flags}");
    }
    // A tampered cookie is no session.
    b.cookie = Some(format!("{set}x"));
    assert_eq!(
        b.get("/dashboard/devices").await.status,
        StatusCode::SEE_OTHER
    );
    // Pages carry a strict CSP.
    let res = reqwest::get(format!("{}/dashboard/login", app.base))
        .await
        .unwrap();
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    // Logging out ends it.
    let mut b = Browser::new(&app);
    b.login_operator(&app).await;
    let csrf = b.csrf("/dashboard/devices").await;
    let p = b.post("/dashboard/logout", &[("csrf", &csrf)]).await;
    assert_eq!(p.location.as_deref(), Some("/dashboard/login"));
    assert!(p.set_cookie.unwrap().contains("Max-Age=0"));
    assert!(b.cookie.is_none());
}

#[tokio::test]
async fn forms_need_the_sessions_csrf_token_and_this_origin() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app);
    b.login_operator(&app).await;
    let form = [("name", "Forged"), ("phone_number", "0811010010010")];
    let p = b.post("/dashboard/devices", &form).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = b
        .post(
            "/dashboard/devices",
            &[
                ("csrf", "00112233445566778899aabbccddeeff"),
                form[0],
                form[1],
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // Another session's token does not do either.
    let mut other = Browser::new(&app);
    other.login_operator(&app).await;
    let theirs = other.csrf("/dashboard/devices").await;
    let p = b
        .post("/dashboard/devices", &[("csrf", &theirs), form[0], form[1]])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // The right token from another site's page is refused too.
    let csrf = b.csrf("/dashboard/devices").await;
    let req = b
        .client
        .post(format!("{}/dashboard/devices", app.base))
        .header("Origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str()), form[0], form[1]]);
    assert_eq!(b.send(req).await.status, StatusCode::FORBIDDEN);
    let r = app.get("/api/devices", &As::Operator).await;
    assert_eq!(r.body["data"]["meta"]["total"], 0, "nothing was created");
}

#[tokio::test]
async fn a_device_created_in_the_dashboard_shows_its_token_once_and_names_are_escaped() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app);
    b.login_operator(&app).await;
    let csrf = b.csrf("/dashboard/devices").await;
    // Invalid: the form comes back with each field's problem and what was typed.
    let p = b
        .post(
            "/dashboard/devices",
            &[("csrf", &csrf), ("name", "Kept"), ("phone_number", "12")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.text.contains("phone_number") && p.text.contains("value=\"Kept\""));
    let name = "<script>alert(1)</script> Shop";
    let p = b
        .post(
            "/dashboard/devices",
            &[
                ("csrf", &csrf),
                ("name", name),
                ("phone_number", "0811010010010"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text);
    let to = p.location.unwrap();
    assert!(to.starts_with("/dashboard/devices/") && to.contains("reveal="));
    let page = b.get(&to).await;
    assert_eq!(page.status, 200);
    assert!(!page.text.contains("<script>alert"), "escaped");
    assert!(page
        .text
        .contains("&lt;script&gt;alert(1)&lt;/script&gt; Shop"));
    let token = page
        .text
        .split("id=\"device-secret-token\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap()
        .to_owned();
    assert_eq!(token.len(), 64);
    // The token works on the API, and is not shown again.
    let session = page
        .text
        .split("id=\"device-session-id\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap()
        .to_owned();
    let who = As::Device {
        session: session.clone(),
        token: token.clone(),
    };
    assert_eq!(app.get("/api/messages", &who).await.status, 200);
    let again = b.get(&to).await;
    assert!(!again.text.contains(&token));
    assert!(!again.text.contains("device-secret-token"));
}

#[tokio::test]
async fn a_device_session_sees_only_itself_and_ends_when_its_token_changes() {
    let app = spawn_app().await;
    let (mine, who) = app.create_device("Mine").await;
    let (theirs, _) = app.create_device("Theirs").await;
    let As::Device { session, token } = &who else {
        unreachable!()
    };
    let mut b = Browser::new(&app);
    let p = b
        .post(
            "/dashboard/login",
            &[("session_id", session), ("secret_token", token)],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text);
    let list = b.get("/dashboard/devices").await;
    assert!(list
        .text
        .contains(&format!("data-device-id=\"{}\"", mine["id"])));
    assert!(!list
        .text
        .contains(&format!("data-device-id=\"{}\"", theirs["id"])));
    assert!(
        !list.text.contains("id=\"create-device\""),
        "operators only"
    );
    let p = b.get(&format!("/dashboard/devices/{}", theirs["id"])).await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert_eq!(
        b.get("/dashboard/queues").await.status,
        StatusCode::FORBIDDEN
    );
    // The device's own send form needs no device choice.
    let csrf = b.csrf("/dashboard/messages").await;
    let p = b
        .post(
            "/dashboard/messages",
            &[
                ("csrf", &csrf),
                ("recipient", "0811010010011"),
                ("message", "From the dashboard"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text);
    let id: i64 = p
        .location
        .unwrap()
        .trim_start_matches("/dashboard/messages/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let r = app.get(&format!("/api/messages/{id}"), &who).await;
    assert_eq!(r.body["data"]["message"], "From the dashboard");
    assert_eq!(r.body["data"]["recipient"], "62811010010011");
    let page = b.get(&format!("/dashboard/messages/{id}")).await;
    assert!(page
        .text
        .contains("data-step=\"accepted\" data-done=\"true\""));
    assert!(page.text.contains("data-step=\"sent\" data-done=\"false\""));
    // Rotating the device's token ends its dashboard session.
    let r = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/devices/{}", mine["id"]),
            &As::Operator,
            Some(json!({"secret_token": "Zq8xW3vN7tLk2Pm9Rj4Hs6Fd1Gc5Bb0Yy-_~.Ab"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let p = b.get("/dashboard/devices").await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_operator_sends_filters_and_follows_batches_from_the_dashboard() {
    let app = spawn_app().await;
    let (device, who) = app.create_device("Sender").await;
    let session = device["session_id"].as_str().unwrap();
    let r = app
        .post(
            "/api/messages-batch",
            &who,
            json!({"items": [text_message(session, "a"), text_message(session, "b")]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let batch = r.body["data"]["batch_id"].as_str().unwrap().to_owned();
    let mut b = Browser::new(&app);
    b.login_operator(&app).await;
    let batches = b.get("/dashboard/batches").await;
    assert!(batches.text.contains(&format!("data-batch-id=\"{batch}\"")));
    assert!(batches.text.contains("0/2"), "{}", batches.text);
    let csrf = b.csrf("/dashboard/messages").await;
    // The operator must choose a device.
    let p = b
        .post(
            "/dashboard/messages",
            &[
                ("csrf", &csrf),
                ("recipient", "0811010010011"),
                ("message", "x"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    let id = device["id"].to_string();
    let p = b
        .post(
            "/dashboard/messages",
            &[
                ("csrf", &csrf),
                ("device_id", &id),
                ("recipient", "0811010010011"),
                ("message", "Hello <b>there</b>"),
                ("schedule_at", "2030-01-02T08:00"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text);
    let r = app.get("/api/messages?per_page=1", &As::Operator).await;
    let newest = &r.body["data"]["list"][0];
    assert_eq!(newest["message"], "Hello <b>there</b>");
    assert_eq!(newest["schedule_at"], "2030-01-02T01:00:00.000000Z");
    let list = b
        .get(&format!("/dashboard/messages?batch_id={batch}"))
        .await;
    assert_eq!(list.text.matches("data-message-id=").count(), 2);
    let filtered = b.get("/dashboard/messages?status=failed").await;
    assert_eq!(filtered.text.matches("data-message-id=").count(), 0);
    let count = |text: &str| text.matches("data-message-id=").count();
    for (query, expected) in [
        ("message_type=image", 0),
        ("message_type=text", 3),
        ("date_from=2999-01-01", 0),
        ("date_to=2999-01-01", 3),
        ("date_to=2000-01-01", 0),
        (&format!("device_id={}", device["id"]) as &str, 3),
    ] {
        let p = b.get(&format!("/dashboard/messages?{query}")).await;
        assert_eq!(count(&p.text), expected, "{query}");
    }
    for page in ["inbox", "webhooks", "queues"] {
        let p = b.get(&format!("/dashboard/{page}")).await;
        assert_eq!(p.status, 200, "{page}");
    }
}

#[tokio::test]
async fn the_queues_page_counts_dead_letters_and_sends_them_back() {
    let broker = wapim_broker::Broker::connect(&wapim_broker::BrokerConfig {
        url: "memory://".into(),
        prefix: "t_dashboard.".into(),
        prefetch: 1,
        delivery_limit: 3,
    })
    .await
    .unwrap();
    let mut consumer = broker.consumer("test").await.unwrap();
    let job = wapim_domain::jobs::JobEnvelope::new(wapim_domain::jobs::Job::SyncSession {
        device_id: 1.into(),
    });
    for _ in 0..2 {
        broker
            .publish(&job, &wapim_broker::Headers::default())
            .await
            .unwrap();
        let delivery = consumer.next().await.unwrap().unwrap();
        delivery.dead_letter().await.unwrap();
    }
    assert_eq!(broker.dead_letter_count().await.unwrap(), 2);
    let app = spawn_app_with_options(
        &[],
        wapim_gateway::GatewayOptions {
            dead_letters: Some(std::sync::Arc::new(
                wapim_gateway::dead_letters::DeadLetters::shared(broker.clone()),
            )),
            ..Default::default()
        },
    )
    .await;
    let mut b = Browser::new(&app);
    b.login_operator(&app).await;
    let page = b.get("/dashboard/queues").await;
    assert!(
        page.text.contains("id=\"dead-letters\">2<"),
        "{}",
        page.text
    );
    let csrf = b.csrf("/dashboard/queues").await;
    let p = b
        .post("/dashboard/queues/replay-dead-letters", &[("csrf", &csrf)])
        .await;
    assert_eq!(
        p.location.as_deref(),
        Some("/dashboard/queues?done=dlq-replayed")
    );
    assert_eq!(broker.dead_letter_count().await.unwrap(), 0);
    // Both jobs are back on the send queue.
    for _ in 0..2 {
        let again = tokio::time::timeout(std::time::Duration::from_secs(5), consumer.next())
            .await
            .expect("a replayed job")
            .unwrap()
            .unwrap();
        assert_eq!(again.job::<wapim_domain::jobs::JobEnvelope>().unwrap(), job);
        again.ack().await.unwrap();
    }
    let page = b.get("/dashboard/queues").await;
    assert!(page.text.contains("id=\"dead-letters\">0<"));
    // Without access to the broker the page says so.
    let plain = spawn_app().await;
    let mut b = Browser::new(&plain);
    b.login_operator(&plain).await;
    let page = b.get("/dashboard/queues").await;
    assert!(page.text.contains("dispatcher replay-dlq"));
}

#[tokio::test]
async fn a_devices_settings_change_like_a_patch_and_bad_values_come_back_with_their_problems() {
    let app = spawn_app().await;
    let (device, who) = app.create_device("Settings").await;
    let id = device["id"].as_i64().unwrap();
    let path = format!("/dashboard/devices/{id}/settings");
    let mut b = Browser::new(&app);
    b.login_operator(&app).await;
    let page = b.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("value=\"Settings\""), "the stored name");
    assert!(
        page.text.contains("name=\"webhook_status\" checked"),
        "stored: on"
    );
    let csrf = b.csrf(&path).await;
    // Invalid: the page comes back (422) with each field's problem and what was typed.
    let p = b
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("name", "Settings"),
                ("daily_cap", "lots"),
                ("webhook_status", "on"),
                ("webhook_url", ""),
                ("auto_reply", "Kept while fixing"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.text);
    assert!(p.text.contains("daily_cap") && p.text.contains("webhook_url"));
    assert!(p.text.contains("Kept while fixing"));
    let r = app.get(&format!("/api/devices/{id}"), &As::Operator).await;
    assert_eq!(
        r.body["data"]["auto_reply"], device["auto_reply"],
        "nothing written"
    );
    // Valid: saved as the API would, an emptied field cleared, an unchecked box off.
    let p = b
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("name", "Renamed"),
                ("daily_cap", "250"),
                ("pacing_min_interval_ms", "5000"),
                ("send_window_start", "08:00"),
                ("send_window_end", "21:00"),
                ("simulate_typing", "on"),
                ("auto_reply", ""),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text);
    assert_eq!(
        p.location.as_deref(),
        Some(format!("/dashboard/devices/{id}?done=saved").as_str())
    );
    let d = app.get(&format!("/api/devices/{id}"), &who).await.body["data"].clone();
    assert_eq!(d["name"], "Renamed");
    assert_eq!(
        d["session_id"], device["session_id"],
        "the session id never changes"
    );
    assert_eq!(d["daily_cap"], 250);
    assert_eq!(d["pacing_min_interval_ms"], 5000);
    assert_eq!(d["send_window_start"], "08:00");
    assert_eq!(d["simulate_typing"], 1);
    assert_eq!(d["webhook_status"], 0, "unchecked");
    assert_eq!(d["auto_reply"], serde_json::Value::Null, "emptied");
    // Without the form's token nothing changes.
    let p = b.post(&path, &[("name", "Forged")]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // Another device's settings are not found for a device session.
    let (_, other) = app.create_device("Other").await;
    let As::Device { session, token } = &other else {
        unreachable!()
    };
    let mut d2 = Browser::new(&app);
    d2.post(
        "/dashboard/login",
        &[("session_id", session), ("secret_token", token)],
    )
    .await;
    assert_eq!(d2.get(&path).await.status, StatusCode::NOT_FOUND);
}
