use reqwest::Method;
use serde_json::json;

use crate::helpers::{device_body, spawn_app, text_message, As};

wapim_testkit::both_backends! {
    async fn missing_or_wrong_credentials_are_401_in_the_envelope() {
        let app = spawn_app().await;
        let (_, who) = app.create_device("WAPI Test").await;
        for caller in [
            As::Nobody,
            As::Bearer("x".repeat(64)),
            As::Device {
                session: "wapi-test".into(),
                token: "0".repeat(64),
            },
            As::Device {
                session: "no-such".into(),
                token: "0".repeat(64),
            },
        ] {
            for path in ["/api/devices", "/api/messages", "/api/generate-token"] {
                let r = app.get(path, &caller).await;
                assert_eq!(r.status, 401, "{path}: {}", r.text);
                assert_eq!(r.body["status"], false);
                assert_eq!(r.body["message"], "Unauthenticated.");
            }
        }
        assert_eq!(app.get("/api/devices", &who).await.status, 200);
    }

    async fn a_device_sees_only_itself_and_its_messages() {
        let app = spawn_app().await;
        let (a, as_a) = app.create_device("Device A").await;
        let (b, as_b) = app.create_device("Device B").await;
        let (a_id, b_id) = (a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap());
        let r = app
            .post("/api/messages", &as_b, text_message("device-b", "from B"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let b_msg = r.body["data"]["id"].as_i64().unwrap();

        // Lists are confined to the caller.
        let devices = app.get("/api/devices", &as_a).await;
        assert_eq!(devices.body["data"]["meta"]["total"], 1);
        assert_eq!(devices.body["data"]["list"][0]["id"], a_id);
        let msgs = app.get("/api/messages", &as_a).await;
        assert_eq!(msgs.body["data"]["meta"]["total"], 0);

        // Another device's records are 404, whatever the verb.
        assert_eq!(
            app.get(&format!("/api/devices/{b_id}"), &as_a).await.status,
            404
        );
        assert_eq!(
            app.get(&format!("/api/messages/{b_msg}"), &as_a)
                .await
                .status,
            404
        );
        let r = app
            .request(
                Method::PATCH,
                &format!("/api/messages/{b_msg}"),
                &as_a,
                Some(json!({"message": "hijack"})),
            )
            .await;
        assert_eq!(r.status, 404);
        assert_eq!(
            app.request(
                Method::DELETE,
                &format!("/api/messages/{b_msg}"),
                &as_a,
                None
            )
            .await
            .status,
            404
        );
        assert_eq!(
            app.post(&format!("/api/messages/{b_msg}/restore"), &as_a, json!({}))
                .await
                .status,
            404
        );
        let r = app
            .request(
                Method::PATCH,
                &format!("/api/devices/{b_id}"),
                &as_a,
                Some(json!({"name": "x"})),
            )
            .await;
        assert_eq!(r.status, 404);

        // Naming another device's session when creating a message is refused like an unknown one.
        let r = app
            .post("/api/messages", &as_a, text_message("device-b", "spoof"))
            .await;
        assert_eq!(r.status, 422);
        assert_eq!(
            r.body["errors"]["session_id"][0],
            "The selected session id is invalid."
        );
        let r = app
            .post("/api/messages", &As::Operator, text_message("nobody", "x"))
            .await;
        assert_eq!(
            r.body["errors"]["session_id"][0],
            "The selected session id is invalid."
        );

        // B's message is untouched.
        let r = app
            .get(&format!("/api/messages/{b_msg}"), &As::Operator)
            .await;
        assert_eq!(r.body["data"]["message"], "from B");
        assert_eq!(r.body["data"]["deleted_at"], serde_json::Value::Null);
    }

    async fn managing_devices_is_for_the_operator() {
        let app = spawn_app().await;
        let (a, as_a) = app.create_device("Device A").await;
        let a_id = a["id"].as_i64().unwrap();
        let r = app.post("/api/devices", &as_a, device_body("Sneaky")).await;
        assert_eq!(r.status, 403, "{}", r.text);
        assert_eq!(r.body["status"], false);
        assert_eq!(
            app.request(Method::DELETE, &format!("/api/devices/{a_id}"), &as_a, None)
                .await
                .status,
            403
        );
        assert_eq!(
            app.post(&format!("/api/devices/{a_id}/restore"), &as_a, json!({}))
                .await
                .status,
            403
        );
        assert_eq!(
            app.get("/api/devices", &As::Operator).await.body["data"]["meta"]["total"],
            1
        );
        // The operator must name the session of a message.
        let mut body = text_message("device-a", "x");
        body.as_object_mut().unwrap().remove("session_id");
        let r = app.post("/api/messages", &As::Operator, body.clone()).await;
        assert_eq!(r.status, 422);
        assert!(r.body["errors"]["session_id"][0].is_string());
        // A device may leave it out: the message is its own.
        let r = app.post("/api/messages", &as_a, body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["data"]["session_id"], "device-a");
    }

    async fn generate_token_answers_exactly_as_the_reference() {
        let app = spawn_app().await;
        let (_, who) = app.create_device("WAPI Test").await;
        let a = app
            .post("/api/generate-token", &As::Operator, json!({}))
            .await;
        let b = app.get("/api/generate-token", &who).await;
        for r in [&a, &b] {
            assert_eq!(r.status, 200);
            let obj = r.body.as_object().unwrap();
            assert_eq!(obj.len(), 1, "{}", r.text);
            let token = obj["secret_token"].as_str().unwrap();
            assert_eq!(token.len(), 64);
            assert!(token
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        }
        assert_ne!(a.body["secret_token"], b.body["secret_token"]);
    }
}
