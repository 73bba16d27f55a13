//! The wire contracts in `proto/` describe the Rust types: every job the code produces validates
//! against its committed JSON Schema, and what the schema refuses the code refuses too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use wapim_domain::jobs::{Job, JobEnvelope};

fn schema(name: &str) -> jsonschema::Validator {
    let path = format!("{}/../../proto/jobs/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("the schema is committed");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

#[test]
fn send_message_jobs_match_their_schema_both_ways() {
    let validator = schema("send_message.v1.schema.json");
    for (id, session) in [
        (1_i64, None),
        (42, Some("wapi-shop-1")),
        (i64::MAX, Some("")),
    ] {
        let sent = Job::SendMessage {
            message_id: id.into(),
            session_id: session.map(str::to_owned),
        };
        let job = serde_json::to_value(JobEnvelope::new(sent.clone())).unwrap();
        assert!(validator.is_valid(&job), "{job}");
        let back: JobEnvelope = serde_json::from_value(job).unwrap();
        assert_eq!(back.job, sent);
    }
    for bad in [
        json!({"v": 1, "type": "send_message"}),
        json!({"v": 1, "type": "send_message", "message_id": "42"}),
        json!({"v": 1, "type": "fly", "message_id": 42}),
        json!({"type": "send_message", "message_id": 42}),
        json!({"v": 1, "type": "send_message", "message_id": 42, "session_id": 7}),
    ] {
        assert!(!validator.is_valid(&bad), "the schema refuses {bad}");
        assert!(
            serde_json::from_value::<JobEnvelope>(bad.clone()).is_err(),
            "the code refuses {bad} too"
        );
    }
}

#[test]
fn sync_session_jobs_match_their_schema_both_ways() {
    let validator = schema("sync_session.v1.schema.json");
    for id in [1_i64, 7, i64::MAX] {
        let sync = Job::SyncSession {
            device_id: id.into(),
        };
        let job = serde_json::to_value(JobEnvelope::new(sync.clone())).unwrap();
        assert!(validator.is_valid(&job), "{job}");
        let back: JobEnvelope = serde_json::from_value(job).unwrap();
        assert_eq!(back.job, sync);
    }
    for bad in [
        json!({"v": 1, "type": "sync_session"}),
        json!({"v": 1, "type": "sync_session", "device_id": "7"}),
        json!({"type": "sync_session", "device_id": 7}),
    ] {
        assert!(!validator.is_valid(&bad), "the schema refuses {bad}");
        assert!(
            serde_json::from_value::<JobEnvelope>(bad.clone()).is_err(),
            "the code refuses {bad} too"
        );
    }
}

#[test]
fn deliver_webhook_jobs_match_their_schema_both_ways() {
    let validator = schema("deliver_webhook.v1.schema.json");
    for id in [1_i64, 9, i64::MAX] {
        let deliver = Job::DeliverWebhook {
            delivery_id: id.into(),
        };
        let job = serde_json::to_value(JobEnvelope::new(deliver.clone())).unwrap();
        assert!(validator.is_valid(&job), "{job}");
        let back: JobEnvelope = serde_json::from_value(job).unwrap();
        assert_eq!(back.job, deliver);
    }
    for bad in [
        json!({"v": 1, "type": "deliver_webhook"}),
        json!({"v": 1, "type": "deliver_webhook", "delivery_id": "9"}),
        json!({"type": "deliver_webhook", "delivery_id": 9}),
    ] {
        assert!(!validator.is_valid(&bad), "the schema refuses {bad}");
        assert!(
            serde_json::from_value::<JobEnvelope>(bad.clone()).is_err(),
            "the code refuses {bad} too"
        );
    }
}
