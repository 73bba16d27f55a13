//! Group commit of accepted messages: each accept gets its own committed row, and one bad row
//! never fails the rows written beside it.

use std::collections::HashSet;
use std::time::Duration;

use wapim_app::intake::{Intake, IntakeError};
use wapim_store::devices::{self, DeviceFields, TokenFields};
use wapim_store::messages::{self, MessageFields, NewMessage};
use wapim_store::Pool;
use wapim_testkit::TestDatabase;

fn now() -> chrono::NaiveDateTime {
    wapim_domain::time::now_micros().naive_utc()
}

fn set_up() -> (TestDatabase, Pool, i64) {
    let db = TestDatabase::create();
    let mut conn = db.connect();
    wapim_store::run_migrations(&mut conn).unwrap();
    let device = devices::insert(
        &mut conn,
        &DeviceFields {
            name: "Intake".to_owned(),
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
        },
        "wapi-intake",
        &TokenFields {
            secret_token_hash: "hash".to_owned(),
            secret_token_masked: "****abcd".to_owned(),
        },
        &devices::DeviceKeys {
            hmac_key: "test-hmac-key".to_owned(),
            webhook_secret: "whsec_dGVzdC13ZWJob29rLXNlY3JldA==".to_owned(),
        },
        None,
        now(),
    )
    .unwrap();
    let pool = wapim_store::connect(&db.url, 4, Duration::from_secs(5)).unwrap();
    (db, pool, device.id)
}

fn text(device_id: i64, body: &str) -> NewMessage {
    let at = now();
    NewMessage {
        device_id,
        session_id: "wapi-intake".to_owned(),
        batch_id: None,
        fields: MessageFields {
            is_queue: true,
            recipient: "6281234567890".to_owned(),
            message_type: "text".to_owned(),
            message: Some(body.to_owned()),
            file_mimetype: None,
            file_filename: None,
            file_url: None,
            calendar_type: "masehi".to_owned(),
            schedule_at: None,
        },
        due_at: at,
        created_at: at,
        updated_at: at,
        traceparent: None,
        origin: "api",
    }
}

wapim_testkit::both_backends! {
    async fn concurrent_accepts_each_get_their_own_committed_row() {
        let (db, pool, device) = set_up();
        let intake = Intake::start(pool, 64, 1000);
        let mut accepts = tokio::task::JoinSet::new();
        for i in 0..200 {
            let intake = intake.clone();
            accepts.spawn(async move { (i, intake.insert(text(device, &format!("m{i}"))).await) });
        }
        let mut ids = HashSet::new();
        while let Some(done) = accepts.join_next().await {
            let (i, stored) = done.unwrap();
            let row = stored.expect("stored");
            assert_eq!(row.message.as_deref(), Some(format!("m{i}").as_str()), "its own row back");
            ids.insert(row.id);
        }
        assert_eq!(ids.len(), 200);
        let mut conn = db.connect();
        for id in ids {
            messages::find(&mut conn, id, None, false).expect("committed");
        }
    }

    async fn a_row_that_cannot_be_stored_fails_alone() {
        let (db, pool, device) = set_up();
        let intake = Intake::start(pool, 64, 1000);
        let mut accepts = tokio::task::JoinSet::new();
        for i in 0..50 {
            let intake = intake.clone();
            // Every tenth names a device that does not exist (a foreign-key violation).
            let owner = if i % 10 == 0 { device + 1_000_000 } else { device };
            accepts.spawn(async move { (i, intake.insert(text(owner, &format!("m{i}"))).await) });
        }
        let (mut stored, mut refused) = (Vec::new(), 0);
        while let Some(done) = accepts.join_next().await {
            match done.unwrap() {
                (i, Ok(row)) => {
                    assert_ne!(i % 10, 0);
                    stored.push(row.id);
                }
                (i, Err(IntakeError::Store(_))) => {
                    assert_eq!(i % 10, 0, "only the bad rows fail");
                    refused += 1;
                }
                (i, Err(e)) => panic!("{i}: {e}"),
            }
        }
        assert_eq!((stored.len(), refused), (45, 5));
        let mut conn = db.connect();
        for id in stored {
            messages::find(&mut conn, id, None, false).expect("committed");
        }
    }

    async fn a_full_intake_refuses_instead_of_queueing_without_bound() {
        let (_db, pool, device) = set_up();
        let intake = Intake::start(pool, 1, 1);
        let mut accepts = tokio::task::JoinSet::new();
        for i in 0..100 {
            let intake = intake.clone();
            accepts.spawn(async move { intake.insert(text(device, &format!("m{i}"))).await });
        }
        let mut saturated = 0;
        while let Some(done) = accepts.join_next().await {
            match done.unwrap() {
                Ok(_) => {}
                Err(IntakeError::Saturated) => saturated += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(saturated > 0, "a queue of one cannot hold 100 concurrent accepts");
    }
}
