use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{keys_in_order, spawn_app, text_message, As};

const REFERENCE_MESSAGE_KEYS: [&str; 20] = [
    "id",
    "device_id",
    "session_id",
    "is_queue",
    "recipient",
    "message_type",
    "message",
    "file_mimetype",
    "file_filename",
    "file_url",
    "calendar_type",
    "schedule_at",
    "status",
    "is_sent",
    "provider_message_id",
    "api_response",
    "sent_at",
    "delivered_at",
    "read_at",
    "status_updated_at",
];

wapim_testkit::both_backends! {
    async fn the_reference_message_is_stored_pending_in_utc() {
        let app = spawn_app().await;
        app.create_device("WAPI Test").await;
        let mut body = text_message("wapi-test", "Welcome home");
        body["file_url"] = json!("http://127.0.0.1:9/examples/waha.jpg");
        let r = app.post("/api/messages", &As::Operator, body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["message"], "Data successfully added");
        let d = &r.body["data"];
        assert_eq!(d["device_id"], 1);
        assert_eq!(d["session_id"], "wapi-test");
        assert_eq!(d["is_queue"], true);
        assert_eq!(d["recipient"], "62811010010010");
        assert_eq!(d["file_url"], Value::Null, "text drops file_url");
        assert_eq!(d["schedule_at"], "2025-09-08T02:44:00.000000Z");
        assert_eq!(d["status"], "pending");
        assert_eq!(d["is_sent"], 0);
        assert_eq!(d["calendar_type"], "masehi");
        assert_eq!(
            &keys_in_order(&r.text, "/data")[..20],
            &REFERENCE_MESSAGE_KEYS
        );

        let id = d["id"].as_i64().unwrap();
        let r = app.get(&format!("/api/messages/{id}"), &As::Operator).await;
        assert_eq!(r.body["data"]["is_queue"], 1);
        assert_eq!(r.body["data"]["schedule_at"], "2025-09-08T02:44:00.000000Z");
        let created = r.body["data"]["created_at"].as_str().unwrap();
        assert!(created.ends_with('Z') && created.len() == "2025-09-08T02:44:00.000000Z".len());
    }

    async fn media_messages_need_a_url_and_get_name_and_type_from_it() {
        let app = spawn_app().await;
        let (_, who) = app.create_device("WAPI Test").await;
        let r = app
            .post(
                "/api/messages",
                &who,
                json!({"recipient": "0811010010010", "message_type": "image", "message": "Cek gambar",
                       "file_url": "http://127.0.0.1:9/examples/waha.jpg"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["data"]["file_mimetype"], "image/jpeg");
        assert_eq!(r.body["data"]["file_filename"], "waha.jpg");
        for kind in ["image", "file", "video", "audio"] {
            let r = app
                .post(
                    "/api/messages",
                    &who,
                    json!({"recipient": "0811010010010", "message_type": kind}),
                )
                .await;
            assert_eq!(r.status, 422, "{kind}");
            assert!(r.body["errors"]["file_url"][0].is_string());
        }
        let r = app
            .post("/api/messages", &who, json!({"recipient": "0811010010010", "message_type": "file", "file_url": "ftp://x.test/a.pdf"}))
            .await;
        assert_eq!(r.status, 422);
        let r = app
            .post(
                "/api/messages",
                &who,
                json!({"recipient": "0811010010010", "message_type": "sticker"}),
            )
            .await;
        assert_eq!(r.status, 422);
        assert!(r.body["errors"]["message_type"][0]
            .as_str()
            .unwrap()
            .contains("text, image"));
        assert_eq!(
            app.get("/api/messages", &who).await.body["data"]["meta"]["total"],
            1
        );
    }

    async fn hijri_schedules_are_converted_and_impossible_ones_refused() {
        let app = spawn_app().await;
        let (_, who) = app.create_device("WAPI Test").await;
        let mut body = text_message("wapi-test", "Selamat Idul Fitri");
        body["calendar_type"] = json!("hijriah");
        body["schedule_at"] = json!("1447-10-01 08:00:00");
        let r = app.post("/api/messages", &who, body.clone()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["data"]["calendar_type"], "hijriah");
        assert_eq!(r.body["data"]["schedule_at"], "2026-03-20T01:00:00.000000Z");
        body["schedule_at"] = json!("1447-10-31 08:00:00");
        let r = app.post("/api/messages", &who, body.clone()).await;
        assert_eq!(r.status, 422);
        assert!(r.body["errors"]["schedule_at"][0]
            .as_str()
            .unwrap()
            .contains("Hijri"));
        body["calendar_type"] = json!("julian");
        assert_eq!(app.post("/api/messages", &who, body).await.status, 422);
        // RFC 3339 with an offset is taken as given.
        let mut body = text_message("wapi-test", "x");
        body["schedule_at"] = json!("2025-09-08T09:44:00+07:00");
        let r = app.post("/api/messages", &who, body).await;
        assert_eq!(r.body["data"]["schedule_at"], "2025-09-08T02:44:00.000000Z");
    }

    async fn pending_messages_can_be_edited_and_sent_ones_cannot() {
        let app = spawn_app().await;
        let (_, who) = app.create_device("WAPI Test").await;
        let r = app
            .post(
                "/api/messages",
                &who,
                text_message("wapi-test", "Welcome home"),
            )
            .await;
        let id = r.body["data"]["id"].as_i64().unwrap();

        let put = json!({"session_id": "wapi-test", "is_queue": false, "recipient": "0811010010010",
                         "message_type": "text", "message": "Hola",
                         "file_url": "http://127.0.0.1:9/examples/waha.jpg",
                         "schedule_at": "2025-09-08 10:00:00"});
        let r = app
            .request(
                Method::PUT,
                &format!("/api/messages/{id}"),
                &who,
                Some(put.clone()),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["message"], "Data successfully modified");
        assert_eq!(r.body["data"]["message"], "Hola");
        assert_eq!(r.body["data"]["is_queue"], 0);
        assert_eq!(r.body["data"]["schedule_at"], "2025-09-08T03:00:00.000000Z");

        let r = app
            .request(
                Method::PATCH,
                &format!("/api/messages/{id}"),
                &who,
                Some(json!({"message": "Hi"})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["data"]["message"], "Hi");
        assert_eq!(
            r.body["data"]["schedule_at"], "2025-09-08T03:00:00.000000Z",
            "PATCH keeps the schedule"
        );

        let r = app
            .request(
                Method::PATCH,
                &format!("/api/messages/{id}"),
                &who,
                Some(json!({"session_id": "other"})),
            )
            .await;
        assert_eq!(r.status, 422);

        // Once a dispatcher has sent it, the content is history.
        app.sql(&format!(
            "UPDATE messages SET status = 'sent', is_sent = TRUE WHERE id = {id}"
        ));
        let r = app
            .request(Method::PUT, &format!("/api/messages/{id}"), &who, Some(put))
            .await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert!(r.body["errors"]["status"][0]
            .as_str()
            .unwrap()
            .contains("sent"));
        let r = app.get(&format!("/api/messages/{id}"), &who).await;
        assert_eq!(r.body["data"]["message"], "Hi");
        assert_eq!(r.body["data"]["is_sent"], 1);
    }

    async fn deleting_a_pending_message_cancels_it_and_restoring_brings_it_back() {
        let app = spawn_app().await;
        let (_, who) = app.create_device("WAPI Test").await;
        let id = app
            .post("/api/messages", &who, text_message("wapi-test", "x"))
            .await
            .body["data"]["id"]
            .as_i64()
            .unwrap();
        let r = app
            .request(Method::DELETE, &format!("/api/messages/{id}"), &who, None)
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["message"], "Data successfully deleted");
        assert_eq!(r.body["data"]["status"], "cancelled");
        assert!(r.body["data"]["deleted_at"].is_string());
        assert_eq!(
            app.get(&format!("/api/messages/{id}"), &who).await.status,
            404
        );
        assert_eq!(
            app.request(Method::DELETE, &format!("/api/messages/{id}"), &who, None)
                .await
                .status,
            404
        );
        let r = app.get("/api/messages?trashed=only", &who).await;
        assert_eq!(r.body["data"]["list"][0]["id"], id);

        let r = app
            .post(&format!("/api/messages/{id}/restore"), &who, json!({}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["message"], "Data successfully restored");
        assert_eq!(r.body["data"]["status"], "pending");
        assert_eq!(r.body["data"]["deleted_at"], Value::Null);

        // A sent message keeps its status through delete and restore.
        app.sql(&format!(
            "UPDATE messages SET status = 'sent', is_sent = TRUE WHERE id = {id}"
        ));
        let r = app
            .request(Method::DELETE, &format!("/api/messages/{id}"), &who, None)
            .await;
        assert_eq!(r.body["data"]["status"], "sent");
        let r = app
            .post(&format!("/api/messages/{id}/restore"), &who, json!({}))
            .await;
        assert_eq!(r.body["data"]["status"], "sent");
    }

    async fn only_failed_messages_can_be_resent() {
        let app = spawn_app().await;
        app.create_device("WAPI Test").await;
        let r = app.post("/api/messages", &As::Operator, text_message("wapi-test", "again")).await;
        let id = r.body["data"]["id"].as_i64().unwrap();
        let path = format!("/api/messages/{id}/resend");
        let r = app.post(&path, &As::Operator, json!({})).await;
        assert_eq!(r.status, 422, "a pending message: {}", r.text);
        app.sql(&format!("UPDATE messages SET status = 'sent', is_sent = TRUE WHERE id = {id}"));
        let r = app.post(&path, &As::Operator, json!({})).await;
        assert_eq!(r.status, 422, "a sent message is never sent again by request: {}", r.text);
        assert!(r.body["errors"]["status"][0].as_str().unwrap().contains("sent"));
        app.sql(&format!(
            "UPDATE messages SET status = 'failed', is_sent = FALSE, attempts = 5, api_response = '{{}}' WHERE id = {id}"
        ));
        let r = app.post(&path, &As::Operator, json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["data"]["status"], "pending");
        assert_eq!(r.body["data"]["id"], id, "the same record");
        let (_, other) = app.create_device("Other").await;
        let r = app.post(&path, &other, json!({})).await;
        assert_eq!(r.status, 404, "another device's message");
    }
}
