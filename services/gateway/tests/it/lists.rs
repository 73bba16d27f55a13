use serde_json::{json, Value};

use crate::helpers::{spawn_app, As};

async fn seed(app: &crate::helpers::TestApp, who: &As, n: usize) {
    let items: Vec<Value> = (0..n)
        .map(|i| {
            if i % 4 == 0 {
                json!({"recipient": "0811010010011", "message_type": "image", "message": format!("m{i}"),
                       "file_url": "http://127.0.0.1:9/a.png"})
            } else {
                json!({"recipient": "0811010010010", "message_type": "text", "message": format!("m{i}")})
            }
        })
        .collect();
    let r = app
        .post("/api/messages-batch", who, json!({"items": items}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

wapim_testkit::both_backends! {
    async fn lists_paginate_with_reference_meta() {
        let app = spawn_app().await;
        let (_, who) = app.create_device("WAPI Test").await;
        seed(&app, &who, 20).await;
        let r = app.get("/api/messages", &who).await;
        let meta = &r.body["data"]["meta"];
        assert_eq!(meta["total"], 20);
        assert_eq!(meta["per_page"], 15);
        assert_eq!(meta["current_page"], 1);
        assert_eq!(meta["last_page"], 2);
        assert_eq!(
            meta["links"],
            json!([
                format!("{}/api/messages?sort=id%20DESC&page=1", app.base),
                format!("{}/api/messages?sort=id%20DESC&page=2", app.base)
            ])
        );
        let list = r.body["data"]["list"].as_array().unwrap();
        assert_eq!(list.len(), 15);
        assert_eq!(list[0]["id"], 20, "newest first by default");

        let r = app.get("/api/messages?page=2", &who).await;
        assert_eq!(r.body["data"]["list"].as_array().unwrap().len(), 5);
        let r = app
            .get("/api/messages?sort=id%20asc&per_page=7&page=3", &who)
            .await;
        let list = r.body["data"]["list"].as_array().unwrap();
        assert_eq!(list.len(), 6);
        assert_eq!(list[0]["id"], 15);
        assert_eq!(r.body["data"]["meta"]["last_page"], 3);
        assert!(r.body["data"]["meta"]["links"][0]
            .as_str()
            .unwrap()
            .ends_with("/api/messages?sort=id%20asc&per_page=7&page=1"));
        let r = app.get("/api/messages?page=9", &who).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["data"]["list"], json!([]));
    }

    async fn lists_filter_by_field() {
        let app = spawn_app().await;
        let (_, who) = app.create_device("WAPI Test").await;
        seed(&app, &who, 8).await;
        let total = |r: &crate::helpers::Reply| {
            r.body["data"]["meta"]["total"]
                .as_i64()
                .unwrap_or_else(|| panic!("{}", r.text))
        };
        assert_eq!(
            total(&app.get("/api/messages?message_type=image", &who).await),
            2
        );
        assert_eq!(
            total(
                &app.get("/api/messages?recipient=%2B62%20811-0100-10011", &who)
                    .await
            ),
            2
        );
        assert_eq!(
            total(&app.get("/api/messages?status=pending", &who).await),
            8
        );
        assert_eq!(total(&app.get("/api/messages?status=sent", &who).await), 0);
        assert_eq!(
            total(
                &app.get("/api/messages?session_id=wapi-test", &As::Operator)
                    .await
            ),
            8
        );
        assert_eq!(
            total(
                &app.get(
                    "/api/messages?date_from=2000-01-01&date_to=2999-12-31",
                    &who
                )
                .await
            ),
            8
        );
        assert_eq!(
            total(&app.get("/api/messages?date_to=2000-01-01", &who).await),
            0
        );
    }

    async fn bad_list_parameters_are_422_per_parameter() {
        let app = spawn_app().await;
        for (query, field) in [
            ("per_page=101", "per_page"),
            ("per_page=0", "per_page"),
            ("page=-1", "page"),
            ("page=abc", "page"),
            ("sort=password%20DESC", "sort"),
            ("sort=id%3B%20DROP%20TABLE%20messages", "sort"),
            ("sort=id%20sideways", "sort"),
            ("trashed=maybe", "trashed"),
            ("status=lost", "status"),
            ("message_type=fax", "message_type"),
            ("recipient=abc", "recipient"),
            ("batch_id=nope", "batch_id"),
            ("date_from=yesterday", "date_from"),
        ] {
            let r = app
                .get(&format!("/api/messages?{query}"), &As::Operator)
                .await;
            assert_eq!(r.status, 422, "{query}: {}", r.text);
            assert!(
                r.body["errors"][field][0].is_string(),
                "{query}: {}",
                r.text
            );
        }
        let r = app
            .get("/api/devices?sort=secret_token_hash%20ASC", &As::Operator)
            .await;
        assert_eq!(r.status, 422);
    }
}
