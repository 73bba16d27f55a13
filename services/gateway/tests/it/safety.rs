//! The device API's sending-safety surface: limits (validated, kept by PATCH, cleared by null),
//! the sending state on the single read, the suppression list (operator and the device itself,
//! never another device's) and `resume` (operators only).

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, As};

wapim_testkit::both_backends! {
    async fn a_device_sets_its_own_limits_and_bad_ones_are_refused_field_by_field() {
        let app = spawn_app().await;
        let (device, _) = app.create_device("Limited").await;
        let path = format!("/api/devices/{}", device["id"]);
        assert_eq!(device["daily_cap"], Value::Null, "off unless set");
        assert_eq!(device["simulate_typing"], false);

        let limits = json!({
            "timezone": "Europe/Berlin",
            "daily_cap": 200,
            "send_window_start": "08:00",
            "send_window_end": "20:30",
            "recipient_hourly_cap": 4,
            "simulate_typing": true,
        });
        let r = app.request(Method::PATCH, &path, &As::Operator, Some(limits)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let d = &r.body["data"];
        assert_eq!(d["timezone"], "Europe/Berlin");
        assert_eq!(d["daily_cap"], 200);
        assert_eq!(d["send_window_start"], "08:00");
        assert_eq!(d["send_window_end"], "20:30");
        assert_eq!(d["recipient_hourly_cap"], 4);
        assert_eq!(d["simulate_typing"], 1);
        assert_eq!(d["paused_until"], Value::Null);

        // PATCH keeps what it does not name; null switches a limit off.
        let r = app.request(Method::PATCH, &path, &As::Operator, Some(json!({"daily_cap": null}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["data"]["daily_cap"], Value::Null);
        assert_eq!(r.body["data"]["send_window_end"], "20:30");
        let r = app
            .request(Method::PATCH, &path, &As::Operator, Some(json!({"send_window_start": null, "send_window_end": null})))
            .await;
        assert_eq!(r.body["data"]["send_window_start"], Value::Null, "{}", r.text);

        let bad = [
            (json!({"timezone": "Mars/Olympus"}), "timezone"),
            (json!({"daily_cap": 0}), "daily_cap"),
            (json!({"daily_cap": "ten"}), "daily_cap"),
            (json!({"recipient_hourly_cap": 1001}), "recipient_hourly_cap"),
            (json!({"send_window_start": "25:00", "send_window_end": "20:00"}), "send_window_start"),
            (json!({"send_window_start": "08:00"}), "send_window_end"),
            (json!({"send_window_end": "08:00"}), "send_window_start"),
            (json!({"send_window_start": "08:00", "send_window_end": "08:00"}), "send_window_end"),
            (json!({"simulate_typing": "yes"}), "simulate_typing"),
        ];
        for (body, field) in bad {
            let r = app.request(Method::PATCH, &path, &As::Operator, Some(body.clone())).await;
            assert_eq!(r.status, 422, "{body}: {}", r.text);
            assert!(r.body["errors"][field][0].is_string(), "{body}: {}", r.text);
        }
        // Nothing of a refused body was written.
        let shown = app.get(&path, &As::Operator).await;
        assert_eq!(shown.body["data"]["timezone"], "Europe/Berlin", "{}", shown.text);
        assert_eq!(shown.body["data"]["recipient_hourly_cap"], 4);
    }

    async fn the_single_read_shows_the_sending_state_and_lists_do_not() {
        let app = spawn_app().await;
        let (device, _) = app.create_device("Stateful").await;
        let id = device["id"].as_i64().unwrap();
        app.request(Method::PATCH, &format!("/api/devices/{id}"), &As::Operator, Some(json!({"daily_cap": 3})))
            .await;
        app.sql(&format!(
            "INSERT INTO messages (device_id, session_id, is_queue, recipient, message_type, message, calendar_type, status, is_sent, created_at, updated_at, due_at, hold_reason) \
             VALUES ({id}, '{s}', TRUE, '62811', 'text', 'held', 'masehi', 'pending', FALSE, '2026-01-01 00:00:00', '2026-01-01 00:00:00', '2099-01-01 00:00:00', 'daily_cap')",
            s = device["session_id"].as_str().unwrap()
        ));
        let r = app.get(&format!("/api/devices/{id}"), &As::Operator).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let state = &r.body["data"]["sending_state"];
        assert_eq!(state["held_messages"], 1, "{state}");
        assert_eq!(state["held_by_reason"]["daily_cap"], 1, "{state}");
        assert_eq!(state["sent_today"], 0);
        assert_eq!(state["daily_cap"], 3);
        assert_eq!(state["timezone"], "Asia/Jakarta", "the server's zone when the device names none");
        let list = app.get("/api/devices", &As::Operator).await;
        assert!(list.body["data"]["list"][0].get("sending_state").is_none(), "{}", list.text);
    }

    async fn a_device_manages_its_own_suppression_list_and_never_another_devices() {
        let app = spawn_app().await;
        let (mine, me) = app.create_device("Mine").await;
        let (theirs, _) = app.create_device("Theirs").await;
        let list = format!("/api/devices/{}/suppressions", mine["id"]);

        let r = app.post(&list, &me, json!({"phone": "0811-0100-10099", "reason": "STOP"})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["message"], "Data successfully added");
        assert_eq!(r.body["data"]["phone"], "62811010010099");
        assert_eq!(r.body["data"]["reason"], "STOP");
        let again = app.post(&list, &As::Operator, json!({"phone": "62811010010099"})).await;
        assert_eq!(again.status, 200, "{}", again.text);
        assert_eq!(again.body["message"], "Already suppressed");
        assert_eq!(again.body["data"]["id"], r.body["data"]["id"]);

        let shown = app.get(&list, &me).await;
        assert_eq!(shown.status, 200, "{}", shown.text);
        assert_eq!(shown.body["data"]["meta"]["total"], 1, "{}", shown.text);
        assert_eq!(shown.body["data"]["list"][0]["phone"], "62811010010099");

        // Another device's list does not exist for this one.
        let foreign = format!("/api/devices/{}/suppressions", theirs["id"]);
        assert_eq!(app.get(&foreign, &me).await.status, 404);
        assert_eq!(app.post(&foreign, &me, json!({"phone": "0811010010098"})).await.status, 404);
        assert_eq!(app.get("/api/devices/999999/suppressions", &As::Operator).await.status, 404);

        let r = app.post(&list, &me, json!({"phone": "12"})).await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert!(r.body["errors"]["phone"][0].is_string());
        let r = app.post(&list, &me, json!({})).await;
        assert_eq!(r.status, 422, "{}", r.text);

        let gone = app.request(Method::DELETE, &format!("{list}/0811010010099"), &me, None).await;
        assert_eq!(gone.status, 200, "{}", gone.text);
        let twice = app.request(Method::DELETE, &format!("{list}/0811010010099"), &me, None).await;
        assert_eq!(twice.status, 404, "{}", twice.text);
        assert_eq!(app.get(&list, &me).await.body["data"]["meta"]["total"], 0);
    }

    async fn only_operators_resume_a_paused_device() {
        let app = spawn_app().await;
        let (device, me) = app.create_device("Paused").await;
        let id = device["id"].as_i64().unwrap();
        app.sql(&format!(
            "UPDATE devices SET paused_until = '2099-01-01 00:00:00', pause_reason = 'reach_out_timelock' WHERE id = {id}"
        ));
        let shown = app.get(&format!("/api/devices/{id}"), &me).await;
        assert_eq!(shown.body["data"]["pause_reason"], "reach_out_timelock", "{}", shown.text);
        assert_eq!(shown.body["data"]["sending_state"]["next_send_at"], "2099-01-01T00:00:00.000000Z");
        let resume = format!("/api/devices/{id}/resume");
        assert_eq!(app.post(&resume, &me, json!({})).await.status, 403);
        let r = app.post(&resume, &As::Operator, json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["data"]["paused_until"], Value::Null);
        assert_eq!(r.body["data"]["pause_reason"], Value::Null);
        assert_eq!(app.post("/api/devices/999999/resume", &As::Operator, json!({})).await.status, 404);
        assert_eq!(app.get(&resume, &As::Operator).await.status, 405);
    }
}
