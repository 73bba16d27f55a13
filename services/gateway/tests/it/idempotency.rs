use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app, text_message, As};

async fn post_with_key(
    app: &crate::helpers::TestApp,
    path: &str,
    who: &As,
    body: serde_json::Value,
    key: &str,
) -> crate::helpers::Reply {
    app.request_with(
        Method::POST,
        path,
        who,
        Some(body),
        &[("Idempotency-Key", key)],
    )
    .await
}

wapim_testkit::both_backends! {
    async fn a_retried_post_returns_the_first_response_and_creates_nothing() {
        let app = spawn_app().await;
        let (_, who) = app.create_device("WAPI Test").await;
        let body = text_message("wapi-test", "once");
        let first = post_with_key(&app, "/api/messages", &who, body.clone(), "order-42").await;
        assert_eq!(first.status, 200, "{}", first.text);
        let again = post_with_key(&app, "/api/messages", &who, body.clone(), "order-42").await;
        assert_eq!(again.status, 200);
        assert_eq!(again.body, first.body);
        assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
        assert!(first.headers.get("idempotent-replayed").is_none());
        assert_eq!(
            app.get("/api/messages", &who).await.body["data"]["meta"]["total"],
            1
        );

        // Same key, other request: refused, still nothing new.
        let r = post_with_key(
            &app,
            "/api/messages",
            &who,
            text_message("wapi-test", "twice"),
            "order-42",
        )
        .await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert!(r.body["errors"]["Idempotency-Key"][0].is_string());
        // The same key on another endpoint is another request too.
        let r = post_with_key(
            &app,
            "/api/messages-batch",
            &who,
            json!({"items": [body]}),
            "order-42",
        )
        .await;
        assert_eq!(r.status, 422);
        assert_eq!(
            app.get("/api/messages", &who).await.body["data"]["meta"]["total"],
            1
        );

        // Keys belong to their caller: the operator's "order-42" is a new request.
        let r = post_with_key(
            &app,
            "/api/messages",
            &As::Operator,
            text_message("wapi-test", "once"),
            "order-42",
        )
        .await;
        assert_eq!(r.status, 200);
        assert_ne!(r.body["data"]["id"], first.body["data"]["id"]);
    }

    async fn batches_replay_too_and_failed_validation_is_not_remembered() {
        let app = spawn_app().await;
        let (_, who) = app.create_device("WAPI Test").await;
        let bad = json!({"items": "nope"});
        assert_eq!(
            post_with_key(&app, "/api/messages-batch", &who, bad, "b-1")
                .await
                .status,
            422
        );
        let body =
            json!({"items": [{"recipient": "0811010010010", "message_type": "text", "message": "a"}]});
        let first = post_with_key(&app, "/api/messages-batch", &who, body.clone(), "b-1").await;
        assert_eq!(first.status, 200, "{}", first.text);
        let again = post_with_key(&app, "/api/messages-batch", &who, body, "b-1").await;
        assert_eq!(
            again.body["data"]["batch_id"],
            first.body["data"]["batch_id"]
        );
        assert_eq!(
            app.get("/api/messages", &who).await.body["data"]["meta"]["total"],
            1
        );
    }

    async fn concurrent_requests_with_one_key_create_one_message() {
        let app = spawn_app().await;
        let (_, who) = app.create_device("WAPI Test").await;
        let As::Device { session, token } = who.clone() else {
            unreachable!()
        };
        let body = text_message("wapi-test", "race");
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let req = app
                .client
                .post(format!("{}/api/messages", app.base))
                .header("X-Session-Id", &session)
                .header("X-Session-Secret-Token", &token)
                .header("Idempotency-Key", "race-1")
                .json(&body);
            tasks.push(tokio::spawn(async move {
                let res = req.send().await.expect("sent");
                (
                    res.status(),
                    res.json::<serde_json::Value>().await.expect("json"),
                )
            }));
        }
        let mut ids = Vec::new();
        for task in tasks {
            let (status, body) = task.await.expect("task");
            assert_eq!(status, 200, "{body}");
            ids.push(body["data"]["id"].clone());
        }
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
        assert_eq!(
            app.get("/api/messages", &who).await.body["data"]["meta"]["total"],
            1
        );
    }
}
