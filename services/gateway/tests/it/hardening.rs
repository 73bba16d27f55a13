//! What the outside review asked for: authentication before any work, bounded work under load,
//! no lost concurrent edits, the deletion and restore rules, links that cannot be pointed
//! elsewhere, and database failures that never leak detail.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{spawn_app, spawn_app_with, text_message, As, TestApp};

/// Sends request headers announcing a large body, sends no body at all, and returns the status
/// line of the answer: a server that tried to read the body first would hang until the timeout.
async fn status_line_without_sending_the_body(app: &TestApp, headers: &str) -> String {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/messages HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: 16000000\r\n{headers}\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("the server answered without waiting for the body")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    text.lines().next().unwrap_or_default().to_owned()
}

async fn message_ids(app: &TestApp, query: &str) -> Vec<i64> {
    let r = app
        .get(&format!("/api/messages?{query}"), &As::Operator)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["data"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect()
}

async fn new_message(app: &TestApp, text: &str) -> i64 {
    let r = app
        .post(
            "/api/messages",
            &As::Operator,
            text_message("wapi-test", text),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["data"]["id"].as_i64().unwrap()
}

wapim_testkit::both_backends! {
    async fn bad_credentials_get_401_before_any_body_is_read() {
        let app = spawn_app().await;
        app.create_device("WAPI Test").await;
        let wrong_device = "X-Session-Id: wapi-test\r\nX-Session-Secret-Token: 0123\r\n";
        let unknown_device = "X-Session-Id: nobody\r\nX-Session-Secret-Token: 0123\r\n";
        let wrong_operator = "Authorization: Bearer not-the-token\r\n";
        for headers in [wrong_device, unknown_device, wrong_operator, ""] {
            let line = status_line_without_sending_the_body(&app, headers).await;
            assert!(line.starts_with("HTTP/1.1 401"), "{headers:?}: {line}");
        }
        // With a malformed or oversized body, bad credentials still answer 401 first.
        let r = app
            .request_with(
                Method::POST,
                "/api/messages",
                &As::Device { session: "wapi-test".into(), token: "nope".into() },
                None,
                &[("Idempotency-Key", "k1")],
            )
            .await;
        assert_eq!(r.status, 401);
        let bad = reqwest::Client::new()
            .post(format!("{}/api/messages-batch", app.base))
            .header("X-Session-Id", "wapi-test")
            .header("X-Session-Secret-Token", "nope")
            .body(vec![b'['; 17 * 1024 * 1024])
            .send()
            .await;
        // The server may close the connection before the client has sent all 17 MiB; if it
        // answered, the answer is 401, never 400 or 413.
        if let Ok(res) = bad {
            assert_eq!(res.status(), 401);
        }
    }

    async fn a_saturated_database_answers_503_with_retry_after_and_recovers() {
        let app = spawn_app_with(&[
            ("WAPIM_DATABASE__POOL_MAX_SIZE", "1"),
            ("WAPIM_DATABASE__MAX_QUEUED_REQUESTS", "1"),
            ("WAPIM_DATABASE__CONNECT_TIMEOUT_SECS", "1"),
        ])
        .await;
        app.create_device("WAPI Test").await;
        // Another client holds the messages table for writing: the gateway's only connection
        // blocks on it.
        let mut holder = app.db.connect();
        let lock = match app.db.backend {
            wapim_testkit::TestBackend::Postgres => {
                "BEGIN; LOCK TABLE messages IN ACCESS EXCLUSIVE MODE;"
            }
            wapim_testkit::TestBackend::Sqlite => "BEGIN EXCLUSIVE;",
        };
        wapim_store::execute_sql(&mut holder, lock).unwrap();
        // While the lock is held nothing can answer 200: the first answer is a refusal.
        let body = text_message("wapi-test", "hello");
        let replies = concurrent_posts(&app, "/api/messages", body, 8, move || drop(holder)).await;
        assert_eq!(replies[0].0, 503, "{:?}", replies[0]);
        let busy: Vec<_> = replies.iter().filter(|r| r.0 == 503).collect();
        assert!(!busy.is_empty(), "some requests are turned away: {replies:?}");
        for (status, _, text) in &replies {
            assert!(*status == 200 || *status == 503, "{status} {text}");
        }
        for (_, retry, text) in busy {
            assert_eq!(retry.as_deref(), Some("1"));
            let body: Value = serde_json::from_str(text).unwrap();
            assert_eq!(body["status"], false);
            assert!(!text.contains("lock"), "no database detail: {text}");
        }
        let r = app.get("/api/messages", &As::Operator).await;
        assert_eq!(r.status, 200, "recovers once the database is free: {}", r.text);
    }

    async fn concurrent_patches_keep_each_others_changes() {
        let app = spawn_app().await;
        let (device, _) = app.create_device("WAPI Test").await;
        let device_id = device["id"].as_i64().unwrap();
        for round in 0..8 {
            let id = new_message(&app, "original").await;
            let path = format!("/api/messages/{id}");
            let text = json!({"message": format!("edited {round}")});
            let to = json!({"recipient": "0811010010011"});
            let (a, b) = tokio::join!(
                app.request(Method::PATCH, &path, &As::Operator, Some(text)),
                app.request(Method::PATCH, &path, &As::Operator, Some(to)),
            );
            assert_eq!((a.status.as_u16(), b.status.as_u16()), (200, 200), "{} / {}", a.text, b.text);
            let m = app.get(&path, &As::Operator).await.body["data"].clone();
            assert_eq!(m["message"], format!("edited {round}"), "round {round}");
            assert_eq!(m["recipient"], "62811010010011", "round {round}");

            let dpath = format!("/api/devices/{device_id}");
            let (a, b) = tokio::join!(
                app.request(Method::PATCH, &dpath, &As::Operator, Some(json!({"opening_message": format!("hi {round}")}))),
                app.request(Method::PATCH, &dpath, &As::Operator, Some(json!({"auto_reply": format!("bye {round}")}))),
            );
            assert_eq!((a.status.as_u16(), b.status.as_u16()), (200, 200), "{} / {}", a.text, b.text);
            let d = app.get(&dpath, &As::Operator).await.body["data"].clone();
            assert_eq!(d["opening_message"], format!("hi {round}"));
            assert_eq!(d["auto_reply"], format!("bye {round}"));
        }
    }

    async fn deleting_a_device_cancels_its_pending_messages_and_restoring_brings_back_only_those() {
        let app = spawn_app().await;
        let (device, me) = app.create_device("WAPI Test").await;
        let device_id = device["id"].as_i64().unwrap();
        let waiting = new_message(&app, "waiting").await;
        let deleted_first = new_message(&app, "deleted by the integrator").await;
        let sent = new_message(&app, "already sent").await;
        app.sql(&format!("UPDATE messages SET status = 'sent', is_sent = TRUE WHERE id = {sent}"));
        let r = app
            .request(Method::DELETE, &format!("/api/messages/{deleted_first}"), &As::Operator, None)
            .await;
        assert_eq!(r.body["data"]["status"], "cancelled");

        let r = app
            .request(Method::DELETE, &format!("/api/devices/{device_id}"), &As::Operator, None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(app.get("/api/devices", &me).await.status, 401, "credentials die with the device");
        let show = |id: i64| {
            let app = &app;
            async move {
                app.get(&format!("/api/messages/{id}?trashed=with"), &As::Operator)
                    .await
                    .body["data"]
                    .clone()
            }
        };
        assert_eq!(show(waiting).await["status"], "cancelled");
        assert_eq!(show(sent).await["status"], "sent", "history is kept");

        // A message of a deleted device cannot be restored until the device is.
        let r = app
            .post(&format!("/api/messages/{deleted_first}/restore"), &As::Operator, json!({}))
            .await;
        assert_eq!(r.status, 409, "{}", r.text);
        assert!(r.body["errors"]["session_id"][0].as_str().unwrap().contains("restore the device"));

        let r = app
            .post(&format!("/api/devices/{device_id}/restore"), &As::Operator, json!({}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(show(waiting).await["status"], "pending", "what the device's deletion cancelled");
        let still = app
            .get("/api/messages?trashed=only", &As::Operator)
            .await;
        assert_eq!(still.body["data"]["list"][0]["id"], deleted_first);
        assert_eq!(still.body["data"]["list"][0]["status"], "cancelled", "not revived by the device");

        let r = app
            .post(&format!("/api/messages/{deleted_first}/restore"), &As::Operator, json!({}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["data"]["status"], "pending");
        assert_eq!(app.get("/api/devices", &me).await.status, 200, "the device's own credentials work again");
    }

    async fn a_message_being_sent_cannot_be_deleted() {
        let app = spawn_app().await;
        app.create_device("WAPI Test").await;
        let id = new_message(&app, "in flight").await;
        app.sql(&format!("UPDATE messages SET status = 'processing' WHERE id = {id}"));
        let r = app
            .request(Method::DELETE, &format!("/api/messages/{id}"), &As::Operator, None)
            .await;
        assert_eq!(r.status, 409, "{}", r.text);
        assert_eq!(r.body["status"], false);
        assert!(r.body["errors"]["status"][0].as_str().unwrap().contains("being sent"));
        let m = app.get(&format!("/api/messages/{id}"), &As::Operator).await;
        assert_eq!(m.status, 200, "still there");
        assert_eq!(m.body["data"]["deleted_at"], Value::Null);
    }

    async fn list_links_trust_forwarded_headers_only_when_told() {
        let forwarded = [("X-Forwarded-Host", "evil.example"), ("X-Forwarded-Proto", "https")];
        let app = spawn_app().await;
        let r = app
            .request_with(Method::GET, "/api/devices", &As::Operator, None, &forwarded)
            .await;
        let link = r.body["data"]["meta"]["links"][0].as_str().unwrap().to_owned();
        assert!(link.starts_with(&format!("{}/api/devices?", app.base)), "{link}");

        let app = spawn_app_with(&[("WAPIM_HTTP__TRUST_FORWARDED", "true")]).await;
        let r = app
            .request_with(Method::GET, "/api/devices", &As::Operator, None, &forwarded)
            .await;
        let link = r.body["data"]["meta"]["links"][0].as_str().unwrap().to_owned();
        assert!(link.starts_with("https://evil.example/api/devices?"), "{link}");

        let app = spawn_app_with(&[("WAPIM_HTTP__PUBLIC_URL", "https://api.wapim.test/")]).await;
        let r = app
            .request_with(Method::GET, "/api/devices", &As::Operator, None, &forwarded)
            .await;
        let link = r.body["data"]["meta"]["links"][0].as_str().unwrap().to_owned();
        assert!(link.starts_with("https://api.wapim.test/api/devices?"), "{link}");
    }

    async fn deep_pages_are_refused_and_after_id_pages_by_keyset() {
        let app = spawn_app().await;
        app.create_device("WAPI Test").await;
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(new_message(&app, &format!("m{i}")).await);
        }
        let r = app.get("/api/messages?page=102&per_page=100", &As::Operator).await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert!(r.body["errors"]["page"][0].as_str().unwrap().contains("after_id"));
        assert_eq!(app.get("/api/messages?page=101&per_page=100", &As::Operator).await.status, 200);

        assert_eq!(
            message_ids(&app, &format!("per_page=2&after_id={}", ids[3])).await,
            [ids[2], ids[1]],
            "newest first after the cursor"
        );
        assert_eq!(
            message_ids(&app, &format!("per_page=2&sort=id%20ASC&after_id={}", ids[1])).await,
            [ids[2], ids[3]]
        );
        // The cursor wins over a page number.
        assert_eq!(
            message_ids(&app, &format!("per_page=2&page=9&after_id={}", ids[3])).await,
            [ids[2], ids[1]]
        );
        let r = app
            .get(&format!("/api/messages?sort=created_at%20DESC&after_id={}", ids[1]), &As::Operator)
            .await;
        assert_eq!(r.status, 422);
        assert!(r.body["errors"]["after_id"][0].is_string());
        let r = app.get("/api/messages?after_id=abc", &As::Operator).await;
        assert_eq!(r.status, 422);
    }

    async fn batches_larger_than_one_insert_statement_are_stored_whole_and_in_order() {
        let app = spawn_app_with(&[("WAPIM_LIMITS__BATCH_MAX_ITEMS", "2500")]).await;
        app.create_device("WAPI Test").await;
        let items: Vec<Value> = (0..2500)
            .map(|i| {
                let mut m = text_message("wapi-test", &format!("item {i}"));
                m["schedule_at"] = Value::Null;
                m
            })
            .collect();
        let r = app
            .post("/api/messages-batch", &As::Operator, json!({ "items": items }))
            .await;
        assert_eq!(r.status, 200, "{}", &r.text[..r.text.len().min(500)]);
        let results = r.body["data"]["items"].as_array().unwrap();
        assert_eq!(results.len(), 2500);
        let ids: Vec<i64> = results
            .iter()
            .map(|item| item["message_id"].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids follow the items' order");
        let last = app.get(&format!("/api/messages/{}", ids[2499]), &As::Operator).await;
        assert_eq!(last.body["data"]["message"], "item 2499");
        let total = app.get("/api/messages", &As::Operator).await;
        assert_eq!(total.body["data"]["meta"]["total"], 2500);
    }

    async fn date_to_covers_the_whole_local_day_and_date_from_starts_at_local_midnight() {
        let app = spawn_app().await;
        app.create_device("WAPI Test").await;
        // Jakarta is UTC+7: 8 September local runs from 7 Sep 17:00Z to 8 Sep 17:00Z.
        let stamps = [
            "2025-09-07 16:59:59.999999",
            "2025-09-07 17:00:00",
            "2025-09-08 16:59:59.999999",
            "2025-09-08 17:00:00",
        ];
        let mut ids = Vec::new();
        for (i, at) in stamps.iter().enumerate() {
            let id = new_message(&app, &format!("at {i}")).await;
            app.sql(&format!("UPDATE messages SET created_at = '{at}' WHERE id = {id}"));
            ids.push(id);
        }
        let mut on_the_8th = message_ids(&app, "date_from=2025-09-08&date_to=2025-09-08").await;
        on_the_8th.sort_unstable();
        assert_eq!(on_the_8th, [ids[1], ids[2]]);
        let mut until_the_7th = message_ids(&app, "date_to=2025-09-07").await;
        until_the_7th.sort_unstable();
        assert_eq!(until_the_7th, [ids[0]]);
    }

    async fn database_failures_answer_5xx_without_detail() {
        let app = spawn_app().await;
        app.create_device("WAPI Test").await;
        app.sql("ALTER TABLE devices RENAME TO devices_gone");
        let r = app
            .post("/api/messages", &As::Operator, text_message("wapi-test", "hello"))
            .await;
        assert!(r.status.is_server_error(), "{} {}", r.status, r.text);
        assert_eq!(r.body["status"], false);
        assert_eq!(r.body["errors"], json!({}));
        for leak in ["devices", "relation", "table", "SQL", "diesel"] {
            assert!(!r.text.contains(leak), "{leak} leaked: {}", r.text);
        }
    }
}

/// Sends `n` operator POSTs of `body` to `path` at the same time (spawned tasks, each on its own
/// connection); once the first has answered, runs `release` (e.g. frees a held lock), then waits
/// for the rest. Returns their (status, retry-after, body).
async fn concurrent_posts(
    app: &TestApp,
    path: &str,
    body: Value,
    n: usize,
    release: impl FnOnce(),
) -> Vec<(u16, Option<String>, String)> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let client = reqwest::Client::new();
        let url = format!("{}{path}", app.base);
        let token = app.admin_token.clone();
        let body = body.clone();
        set.spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let retry = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, retry, res.text().await.unwrap())
        });
    }
    let mut out = vec![set.join_next().await.unwrap().unwrap()];
    release();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}
