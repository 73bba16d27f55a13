use std::net::TcpListener;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{settings_for, spawn_app, spawn_app_with, As};

fn assert_envelope(r: &crate::helpers::Reply) {
    assert_eq!(r.body["status"], false, "{}", r.text);
    assert!(
        r.body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        r.text
    );
    assert!(r.body["errors"].is_object(), "{}", r.text);
}

wapim_testkit::both_backends! {
    async fn malformed_and_misshapen_bodies_are_4xx_in_the_envelope() {
        let app = spawn_app().await;
        app.create_device("WAPI Test").await;
        for path in ["/api/devices", "/api/messages", "/api/messages-batch"] {
            let r = app
                .raw(Method::POST, path, &As::Operator, b"{\"name\": ".to_vec())
                .await;
            assert_eq!(r.status, 400, "{path}");
            assert_envelope(&r);
            let r = app
                .raw(Method::POST, path, &As::Operator, b"[1, 2]".to_vec())
                .await;
            assert_eq!(r.status, 422, "{path}");
            assert_envelope(&r);
            let r = app
                .raw(Method::POST, path, &As::Operator, vec![0xff, 0xfe])
                .await;
            assert_eq!(r.status, 400, "{path}");
        }
        let r = app
            .raw(
                Method::PATCH,
                "/api/devices/1",
                &As::Operator,
                b"\"text\"".to_vec(),
            )
            .await;
        assert_eq!(r.status, 422);
        // Wrong types, field by field.
        let r = app
            .post("/api/messages", &As::Operator, json!({"session_id": 7, "recipient": [], "message_type": true, "message": {}, "is_queue": "no"}))
            .await;
        assert_eq!(r.status, 422);
        for field in [
            "session_id",
            "recipient",
            "message_type",
            "message",
            "is_queue",
        ] {
            assert!(
                r.body["errors"][field][0].is_string(),
                "{field}: {}",
                r.text
            );
        }
        assert_eq!(
            app.get("/api/messages", &As::Operator).await.body["data"]["meta"]["total"],
            0
        );
    }

    async fn oversize_bodies_are_413() {
        let app = spawn_app_with(&[("WAPIM_HTTP__MAX_BODY_BYTES", "1024")]).await;
        let big = json!({"name": "x".repeat(2000), "phone_number": "0811010010010"});
        let r = app.post("/api/devices", &As::Operator, big).await;
        assert_eq!(r.status, 413, "{}", r.text);
        assert_envelope(&r);
    }

    async fn unknown_ids_routes_and_methods_are_404_and_405() {
        let app = spawn_app().await;
        for path in [
            "/api/devices/999",
            "/api/devices/abc",
            "/api/devices/-1",
            "/api/messages/0",
            "/api/messages/99999999999999999999",
            "/api/nothing-here",
        ] {
            let r = app.get(path, &As::Operator).await;
            assert_eq!(r.status, 404, "{path}");
            assert_envelope(&r);
        }
        let r = app
            .post("/api/messages/999/restore", &As::Operator, json!({}))
            .await;
        assert_eq!(r.status, 404);
        let r = app
            .request(Method::DELETE, "/api/messages-batch", &As::Operator, None)
            .await;
        assert_eq!(r.status, 405);
        assert_envelope(&r);
    }

    async fn bad_settings_stop_start_up_naming_the_variable() {
        let db = wapim_testkit::TestDatabase::create();
        let token = "t".repeat(40);
        for (var, value) in [
            ("WAPIM_TIMEZONE", "Mars/Olympus"),
            ("WAPIM_PHONE__DEFAULT_REGION", "XX"),
        ] {
            let settings = settings_for(&db.url, &token, &[(var, value)]);
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let pool = wapim_gateway::prepare_database(&settings.database)
                .await
                .unwrap();
            let err = wapim_gateway::Application::build(&settings, pool, listener)
                .err()
                .expect("refused");
            assert!(err.to_string().contains(var), "{err}");
        }
        let settings = settings_for(&db.url, "short", &[]);
        let pool = wapim_gateway::prepare_database(&settings.database)
            .await
            .unwrap();
        let err =
            wapim_gateway::Application::build(&settings, pool, TcpListener::bind("127.0.0.1:0").unwrap())
                .err()
                .expect("refused");
        assert!(err.to_string().contains("WAPIM_AUTH__ADMIN_TOKEN"), "{err}");
    }

    async fn health_reports_the_database() {
        let app = spawn_app().await;
        for path in ["/health/ready", "/readyz"] {
            let r = app.get(path, &As::Nobody).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            assert_eq!(r.body["data"]["database"], "up");
            assert_eq!(r.body["data"]["migrations"], "applied");
            assert_eq!(r.body["data"]["broker"], "not used", "the gateway accepts while the broker is away");
        }
        for path in ["/health/live", "/healthz"] {
            assert_eq!(app.get(path, &As::Nobody).await.status, 200, "{path}");
        }
        // A schema older than the code is not ready: 503 saying so.
        app.sql("DELETE FROM __diesel_schema_migrations WHERE version = (SELECT MAX(version) FROM __diesel_schema_migrations)");
        let r = app.get("/readyz", &As::Nobody).await;
        assert_eq!(r.status, 503, "{}", r.text);
        assert_eq!(r.body["data"]["migrations"], "1 pending");
    }

    async fn metrics_count_requests_by_route_pattern_and_show_the_backlog() {
        let app = spawn_app().await;
        let (_, who) = app.create_device("WAPI Test").await;
        let r = app.post("/api/messages", &who, serde_json::json!({"recipient": "0811010010011", "message_type": "text", "message": "counted"})).await;
        assert_eq!(r.status, 200);
        for id in [1, 2, 3] {
            app.get(&format!("/api/messages/{id}"), &As::Operator).await;
        }
        app.get("/no/such/path/9f8e7d", &As::Nobody).await;
        let r = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
        let text = r.text().await.unwrap();
        // One series per route pattern, never per id or raw path.
        assert!(text.contains(r#"wapim_http_requests_total{method="GET",route="/api/messages/{id}",status="200"} 1"#), "{text}");
        assert!(text.contains(r#"wapim_http_requests_total{method="GET",route="/api/messages/{id}",status="404"} 2"#), "{text}");
        assert!(text.contains(r#"route="unmatched",status="404"} 1"#), "{text}");
        assert!(!text.contains("9f8e7d"), "raw paths never become labels");
        // The message waits for a relay (none runs here): the backlog shows it.
        assert!(text.contains(r#"wapim_outbox_backlog{kind="send_message"} 1"#), "{text}");
        assert!(text.contains("wapim_outbox_oldest_due_age_seconds"), "{text}");
    }

    async fn nul_characters_are_refused_not_crashed_on() {
        let app = spawn_app().await;
        let (_, who) = app.create_device("WAPI Test").await;
        let r = app
            .get("/api/messages?session_id=a%00b", &As::Operator)
            .await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert!(r.body["errors"]["session_id"][0].is_string());
        let r = app
            .post(
                "/api/messages",
                &who,
                json!({"recipient": "0811010010010", "message_type": "text", "message": "a\u{0}b"}),
            )
            .await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert!(r.body["errors"]["message"][0].is_string());
    }
}
