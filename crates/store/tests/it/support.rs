//! Row builders shared by the tests.

use chrono::{NaiveDateTime, TimeDelta};
use wapim_store::devices::{self, DeviceFields, DeviceRow, TokenFields};
use wapim_store::messages::{MessageFields, NewMessage};
use wapim_store::DbConn;
use wapim_testkit::TestDatabase;

/// A fresh database on the running test's backend and a migrated connection to it.
pub fn migrated() -> (TestDatabase, DbConn) {
    let db = TestDatabase::create();
    let mut conn = db.connect();
    let applied = wapim_store::run_migrations(&mut conn).expect("migrations apply");
    assert!(applied > 0, "a fresh database has migrations to apply");
    (db, conn)
}

/// Now, at the precision every backend stores.
pub fn now() -> NaiveDateTime {
    wapim_domain::time::now_micros().naive_utc()
}

/// `now()` moved by `seconds`, to tell one write's timestamp from another's.
pub fn later(seconds: i64) -> NaiveDateTime {
    now() + TimeDelta::seconds(seconds)
}

/// Inserts a device with `session_id`.
pub fn device(conn: &mut DbConn, session_id: &str) -> DeviceRow {
    devices::insert(
        conn,
        &device_fields(session_id),
        session_id,
        &TokenFields {
            secret_token_hash: format!("hash-of-{session_id}"),
            secret_token_masked: "****abcd".to_owned(),
        },
        &devices::DeviceKeys {
            hmac_key: "test-hmac-key".to_owned(),
            webhook_secret: "whsec_dGVzdC13ZWJob29rLXNlY3JldA==".to_owned(),
        },
        None,
        now(),
    )
    .expect("device inserts")
}

/// Editable device columns named after `session_id`.
pub fn device_fields(session_id: &str) -> DeviceFields {
    DeviceFields {
        name: session_id.to_uppercase(),
        phone_number: "6281100000000".to_owned(),
        webhook_status: false,
        webhook_url: None,
        webhook_options: None,
        opening_message: None,
        closing_message: None,
        auto_reply: None,
        auto_forward: None,
        auto_forward_number: None,
        pacing_min_interval_ms: None,
        pacing_jitter_ms: None,
        timezone: None,
        daily_cap: None,
        send_window_start: None,
        send_window_end: None,
        recipient_hourly_cap: None,
        simulate_typing: false,
        opt_out_keywords: None,
        opt_out_confirmation: None,
    }
}

/// A text message's content.
pub fn text(recipient: &str, body: &str) -> MessageFields {
    MessageFields {
        is_queue: true,
        recipient: recipient.to_owned(),
        message_type: "text".to_owned(),
        message: Some(body.to_owned()),
        file_mimetype: None,
        file_filename: None,
        file_url: None,
        calendar_type: "masehi".to_owned(),
        schedule_at: None,
    }
}

/// A new text message of `owner` saying `body`.
pub fn new_message(owner: &DeviceRow, recipient: &str, body: &str) -> NewMessage {
    let at = now();
    NewMessage {
        device_id: owner.id,
        session_id: owner.session_id.clone(),
        batch_id: None,
        fields: text(recipient, body),
        due_at: at,
        created_at: at,
        updated_at: at,
        traceparent: None,
        origin: "api",
    }
}
