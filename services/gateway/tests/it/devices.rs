use reqwest::Method;
use serde_json::json;

use crate::helpers::{device_body, keys_in_order, spawn_app, As};

const REFERENCE_DEVICE_KEYS: [&str; 14] = [
    "id",
    "name",
    "session_id",
    "phone_number",
    "status",
    "secret_token",
    "webhook_status",
    "webhook_url",
    "webhook_options",
    "opening_message",
    "closing_message",
    "auto_reply",
    "auto_forward",
    "auto_forward_number",
];

wapim_testkit::both_backends! {
    async fn creating_the_reference_device_answers_as_the_reference() {
        let app = spawn_app().await;
        let mut body = device_body("WAPI Test");
        let token = "9f13a714ce15ddeb1e02835772b53fcc5de6355f05204354bbbc0023601816ee";
        body["secret_token"] = json!(token);
        let r = app.post("/api/devices", &As::Operator, body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["status"], true);
        assert_eq!(r.body["message"], "Data successfully added");
        let d = &r.body["data"];
        assert_eq!(d["id"], 1);
        assert_eq!(d["name"], "WAPI Test");
        assert_eq!(d["session_id"], "wapi-test");
        assert_eq!(d["phone_number"], "62811010010010");
        assert_eq!(d["status"], "scan_qr_code");
        assert_eq!(d["secret_token"], token);
        assert_eq!(d["webhook_status"], true);
        assert_eq!(
            d["webhook_options"],
            "[\"message\",\"message.ack\",\"message.waiting\"]"
        );
        assert_eq!(d["auto_forward_number"], "62811010010010");
        let keys = keys_in_order(&r.text, "/data");
        assert_eq!(
            &keys[..14],
            &REFERENCE_DEVICE_KEYS,
            "reference fields first, in order"
        );
        assert_eq!(keys_in_order(&r.text, ""), ["status", "message", "data"]);

        // Reads: booleans as 0/1, the token masked, the device usable with its own credentials.
        let r = app.get("/api/devices/1", &As::Operator).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["message"], "");
        assert_eq!(r.body["data"]["webhook_status"], 1);
        let masked = r.body["data"]["secret_token"].as_str().unwrap();
        assert_eq!(masked.len(), 64);
        assert!(
            masked.ends_with("16ee") && masked[..60].bytes().all(|b| b == b'*'),
            "reads show at most the last four characters: {masked}"
        );
        let me = As::Device {
            session: "wapi-test".into(),
            token: token.into(),
        };
        assert_eq!(app.get("/api/devices/1", &me).await.status, 200);
    }

    async fn a_generated_token_is_returned_once_and_then_masked() {
        let app = spawn_app().await;
        let (created, who) = app.create_device("Toko Budi").await;
        let token = created["secret_token"].as_str().unwrap();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        let list = app.get("/api/devices", &who).await;
        let shown = list.body["data"]["list"][0]["secret_token"]
            .as_str()
            .unwrap();
        assert_ne!(shown, token);
        assert!(shown.contains('*'));
    }

    async fn put_and_patch_update_a_device_and_rotate_its_token() {
        let app = spawn_app().await;
        let (created, who) = app.create_device("WAPI Test").await;
        let id = created["id"].as_i64().unwrap();

        // PATCH keeps what it does not mention; renaming keeps the session id.
        let r = app
            .request(
                Method::PATCH,
                &format!("/api/devices/{id}"),
                &who,
                Some(json!({"name": "Renamed", "auto_reply": null})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["message"], "Data successfully modified");
        assert_eq!(r.body["data"]["name"], "Renamed");
        assert_eq!(r.body["data"]["session_id"], "wapi-test");
        assert_eq!(r.body["data"]["auto_reply"], serde_json::Value::Null);
        assert_eq!(r.body["data"]["opening_message"], "Hello");
        assert_eq!(r.body["data"]["webhook_status"], 1);

        // PUT replaces: absent optional fields are cleared; a new token is shown once and works.
        let new_token = wapim_domain::token::generate_secret_token();
        let r = app
            .request(
                Method::PUT,
                &format!("/api/devices/{id}"),
                &As::Operator,
                Some(json!({"name": "WAPI Test", "phone_number": "+62 811-0100-10011", "secret_token": new_token})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["data"]["phone_number"], "62811010010011");
        assert_eq!(r.body["data"]["opening_message"], serde_json::Value::Null);
        assert_eq!(r.body["data"]["secret_token"], new_token);
        assert_eq!(
            app.get("/api/devices", &who).await.status,
            401,
            "old token no longer works"
        );
        let rotated = As::Device {
            session: "wapi-test".into(),
            token: new_token,
        };
        assert_eq!(app.get("/api/devices", &rotated).await.status, 200);
    }

    async fn a_device_carries_its_own_pacing_which_patch_keeps_and_null_resets() {
        let app = spawn_app().await;
        let r = app
            .post(
                "/api/devices",
                &As::Operator,
                json!({"name": "Paced", "phone_number": "0811010010010", "pacing_min_interval_ms": 5000, "pacing_jitter_ms": 0}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["data"]["pacing_min_interval_ms"], 5000);
        assert_eq!(r.body["data"]["pacing_jitter_ms"], 0);
        let id = r.body["data"]["id"].as_i64().unwrap();
        let path = format!("/api/devices/{id}");
        let r = app.request(Method::PATCH, &path, &As::Operator, Some(json!({"pacing_jitter_ms": 2500}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["data"]["pacing_min_interval_ms"], 5000, "PATCH keeps what it does not name");
        assert_eq!(r.body["data"]["pacing_jitter_ms"], 2500);
        let r = app.request(Method::PATCH, &path, &As::Operator, Some(json!({"pacing_min_interval_ms": null}))).await;
        assert_eq!(r.body["data"]["pacing_min_interval_ms"], serde_json::Value::Null, "null: the server's default");
        let shown = app.get(&path, &As::Operator).await;
        assert_eq!(shown.body["data"]["pacing_jitter_ms"], 2500);
        for bad in [json!(-1), json!(1.5), json!("1000"), json!(86_400_001)] {
            let r = app.request(Method::PATCH, &path, &As::Operator, Some(json!({"pacing_min_interval_ms": bad}))).await;
            assert_eq!(r.status, 422, "{bad}: {}", r.text);
            assert!(r.body["errors"]["pacing_min_interval_ms"][0].is_string(), "{}", r.text);
        }
    }

    async fn invalid_devices_are_refused_field_by_field_and_nothing_is_written() {
        let app = spawn_app().await;
        let r = app
            .post(
                "/api/devices",
                &As::Operator,
                json!({"name": "", "phone_number": "12", "webhook_status": "yes", "webhook_options": ["nope"]}),
            )
            .await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert_eq!(r.body["status"], false);
        for field in ["name", "phone_number", "webhook_status", "webhook_options"] {
            assert!(
                r.body["errors"][field][0].is_string(),
                "{field}: {}",
                r.text
            );
        }
        let list = app.get("/api/devices", &As::Operator).await;
        assert_eq!(list.body["data"]["meta"]["total"], 0);
    }

    async fn session_ids_are_never_reused_and_a_restored_device_gets_its_own_back() {
        let app = spawn_app().await;
        let (first, _) = app.create_device("WAPI Test").await;
        assert_eq!(first["session_id"], "wapi-test");
        // A live device with the same slug: the new one gets the next free id.
        let (second, _) = app.create_device("wapi   TEST").await;
        assert_eq!(second["session_id"], "wapi-test-2");

        // Deleting does not free the id: a new device never inherits the old WAHA session.
        let id = first["id"].as_i64().unwrap();
        let r = app
            .request(Method::DELETE, &format!("/api/devices/{id}"), &As::Operator, None)
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["message"], "Data successfully deleted");
        assert!(r.body["data"]["deleted_at"].is_string());
        assert_eq!(r.body["data"]["session_id"], "wapi-test");
        let (third, _) = app.create_device("WAPI Test").await;
        assert_eq!(third["session_id"], "wapi-test-3");

        // The deleted device's credentials stop working at once on this replica.
        let r = app
            .post(&format!("/api/devices/{id}/restore"), &As::Operator, json!({}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["message"], "Data successfully restored");
        assert_eq!(r.body["data"]["deleted_at"], serde_json::Value::Null);
        assert_eq!(r.body["data"]["session_id"], "wapi-test", "its own id back");
        let list = app.get("/api/devices?sort=id%20ASC", &As::Operator).await;
        let ids: Vec<&str> = list.body["data"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["session_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["wapi-test", "wapi-test-2", "wapi-test-3"]);
    }

    async fn weak_client_tokens_are_refused_and_strong_ones_accepted() {
        let app = spawn_app().await;
        for weak in [
            "a".repeat(40),
            "0123456789abcdef0123456789abcdef".to_owned(),
            "abcd".repeat(10),
            "short".to_owned(),
        ] {
            let mut body = device_body("Weak");
            body["secret_token"] = json!(weak);
            let r = app.post("/api/devices", &As::Operator, body).await;
            assert_eq!(r.status, 422, "{weak}: {}", r.text);
            assert!(r.body["errors"]["secret_token"][0].is_string(), "{}", r.text);
        }
        assert_eq!(
            app.get("/api/devices", &As::Operator).await.body["data"]["meta"]["total"],
            0,
            "nothing written"
        );
        let strong = wapim_domain::token::generate_secret_token();
        let mut body = device_body("Strong");
        body["secret_token"] = json!(strong);
        let r = app.post("/api/devices", &As::Operator, body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["data"]["secret_token"], strong);
        // A device may not rotate to a weak token either.
        let me = As::Device {
            session: "strong".into(),
            token: strong,
        };
        let r = app
            .request(Method::PATCH, "/api/devices/1", &me, Some(json!({"secret_token": "b".repeat(64)})))
            .await;
        assert_eq!(r.status, 422, "{}", r.text);
    }

    async fn deleted_devices_are_hidden_unless_asked_for() {
        let app = spawn_app().await;
        let (a, _) = app.create_device("Alpha").await;
        app.create_device("Beta").await;
        let id = a["id"].as_i64().unwrap();
        app.request(
            Method::DELETE,
            &format!("/api/devices/{id}"),
            &As::Operator,
            None,
        )
        .await;
        assert_eq!(
            app.get(&format!("/api/devices/{id}"), &As::Operator)
                .await
                .status,
            404
        );
        let total = |r: crate::helpers::Reply| r.body["data"]["meta"]["total"].as_i64().unwrap();
        assert_eq!(total(app.get("/api/devices", &As::Operator).await), 1);
        assert_eq!(
            total(app.get("/api/devices?trashed=with", &As::Operator).await),
            2
        );
        let only = app.get("/api/devices?trashed=only", &As::Operator).await;
        assert_eq!(only.body["data"]["list"][0]["name"], "Alpha");
        assert_eq!(total(only), 1);
    }

    async fn the_webhook_secret_is_shown_at_creation_and_rotation_only_and_only_to_its_device() {
        let app = spawn_app().await;
        let (made, shop) = app.create_device("Shop").await;
        let (_, other) = app.create_device("Other").await;
        let secret = made["webhook_secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("whsec_") && secret.len() > 40, "{secret}");
        let id = made["id"].as_i64().unwrap();
        let shown = app.get(&format!("/api/devices/{id}"), &As::Operator).await;
        assert!(shown.body["data"].get("webhook_secret").is_none(), "{}", shown.text);
        let listed = app.get("/api/devices", &As::Operator).await;
        assert!(!listed.text.contains(&secret), "never listed");
        // The device rotates its own; another device cannot (404, as for any foreign id).
        let r = app.post(&format!("/api/devices/{id}/webhook-secret"), &shop, json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let fresh = r.body["data"]["webhook_secret"].as_str().unwrap().to_owned();
        assert!(fresh.starts_with("whsec_") && fresh != secret);
        let r = app.post(&format!("/api/devices/{id}/webhook-secret"), &other, json!({})).await;
        assert_eq!(r.status, 404, "{}", r.text);
        let r = app.post("/api/devices/999/webhook-secret", &As::Operator, json!({})).await;
        assert_eq!(r.status, 404, "{}", r.text);
        let r = app.get(&format!("/api/devices/{id}/webhook-secret"), &As::Operator).await;
        assert_eq!(r.status, 405, "{}", r.text);
        // Opt-out settings are validated and shown.
        let r = app
            .request(Method::PATCH, &format!("/api/devices/{id}"), &As::Operator, Some(json!({"opt_out_keywords": ["cukup", ""]})))
            .await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert!(r.body["errors"]["opt_out_keywords"].is_array(), "{}", r.text);
        let r = app
            .request(Method::PATCH, &format!("/api/devices/{id}"), &As::Operator, Some(json!({"opt_out_keywords": ["cukup"], "opt_out_confirmation": "Baik"})))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["data"]["opt_out_keywords"], "[\"cukup\"]");
        assert_eq!(r.body["data"]["opt_out_confirmation"], "Baik");
    }
}
