use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, As};

wapim_testkit::both_backends! {
    async fn a_batch_stores_valid_items_and_reports_each_one() {
        let app = spawn_app().await;
        app.create_device("WAPI Test").await;
        let body = json!({"items": [
            {"session_id": "wapi-test", "is_queue": false, "recipient": "62811010010010",
             "message_type": "text", "message": "Hai 1", "schedule_at": "2025-09-08 09:51:00"},
            {"session_id": "wapi-test", "recipient": "62811010010010", "message_type": "image",
             "message": "Cek gambar"},
            {"session_id": "wapi-test", "is_queue": true, "recipient": "62811010010010",
             "message_type": "file", "message": "PDF besok",
             "file_url": "http://127.0.0.1:9/price-list/16/download",
             "schedule_at": "2025-09-08 09:53:00"},
            "not an object",
            {"session_id": "ghost", "recipient": "62811010010010", "message_type": "text", "message": "x"}
        ]});
        let r = app.post("/api/messages-batch", &As::Operator, body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["message"], "Batch processed");
        let batch_id = r.body["data"]["batch_id"].as_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&batch_id).is_ok());
        let items = r.body["data"]["items"].as_array().unwrap();
        assert_eq!(items.len(), 5);
        assert_eq!(
            items[0],
            json!({"index": 0, "status": true, "message_id": "1"})
        );
        assert_eq!(items[1]["status"], false);
        assert!(items[1]["errors"]["file_url"][0].is_string());
        assert_eq!(
            items[2],
            json!({"index": 2, "status": true, "message_id": "2"})
        );
        assert!(items[3]["errors"]["item"][0].is_string());
        assert!(items[4]["errors"]["session_id"][0].is_string());

        let listed = app
            .get(
                &format!("/api/messages?batch_id={batch_id}&sort=id%20ASC"),
                &As::Operator,
            )
            .await;
        assert_eq!(listed.body["data"]["meta"]["total"], 2);
        let list = listed.body["data"]["list"].as_array().unwrap();
        assert_eq!(list[0]["batch_id"], batch_id.as_str());
        assert_eq!(list[0]["is_queue"], 0);
        assert_eq!(list[1]["file_filename"], "download");
        assert_eq!(list[1]["schedule_at"], "2025-09-08T02:53:00.000000Z");
    }

    async fn batch_envelopes_are_checked_before_anything_is_stored() {
        let app = spawn_app_with(&[("WAPIM_LIMITS__BATCH_MAX_ITEMS", "3")]).await;
        let (_, who) = app.create_device("WAPI Test").await;
        let item = json!({"recipient": "62811010010010", "message_type": "text", "message": "x"});
        for (body, why) in [
            (json!({}), "missing items"),
            (json!({"items": "x"}), "not an array"),
            (json!({"items": []}), "empty"),
            (
                json!({"items": [item, item, item, item]}),
                "over the configured limit",
            ),
        ] {
            let r = app.post("/api/messages-batch", &who, body).await;
            assert_eq!(r.status, 422, "{why}: {}", r.text);
            assert!(r.body["errors"]["items"][0].is_string(), "{why}");
        }
        let r = app
            .post(
                "/api/messages-batch",
                &who,
                json!({"items": [item, item, item]}),
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            app.get("/api/messages", &who).await.body["data"]["meta"]["total"],
            3
        );
    }
}
