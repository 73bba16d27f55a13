//! Deliveries to the integrator's webhook: created only for subscribed events of devices whose
//! webhook is on, claimed by one dispatcher at a time, every attempt recorded, replayable, and
//! pruned once finished and old.

use diesel::prelude::*;
use serde_json::json;
use wapim_store::schema::devices as devices_table;
use wapim_store::webhooks::{self, AfterAttempt, AttemptRecord, DeliveryFilter};
use wapim_store::{Page, StoreError};

use crate::support::{device, later, migrated, now};

fn attempt(code: i32) -> AttemptRecord {
    AttemptRecord {
        status_code: Some(code),
        error: (code >= 300).then(|| format!("the receiver answered {code}")),
        response_body: Some("ok".into()),
        duration_ms: 12,
    }
}

wapim_testkit::both_backends! {
    async fn only_subscribed_events_of_devices_with_a_webhook_are_queued() {
        let (_db, mut conn) = migrated();
        let dev = device(&mut conn, "wapi-hooks");
        let data = json!({"status": "read"});
        assert_eq!(webhooks::enqueue(&mut conn, dev.id, "message.ack", data.clone(), None, now()).unwrap(), None, "webhook off");
        diesel::update(devices_table::table.find(dev.id))
            .set((
                devices_table::webhook_status.eq(true),
                devices_table::webhook_url.eq("http://127.0.0.1:9/hook"),
                devices_table::webhook_options.eq(r#"["message.ack"]"#),
            ))
            .execute(&mut conn)
            .unwrap();
        assert_eq!(webhooks::enqueue(&mut conn, dev.id, "session.status", data.clone(), None, now()).unwrap(), None, "not subscribed");
        let id = webhooks::enqueue(&mut conn, dev.id, "message.ack", data, Some(&json!({"ack": 3})), now()).unwrap().unwrap();
        let (row, attempts) = webhooks::find(&mut conn, id, Some(dev.id)).unwrap();
        assert!(attempts.is_empty());
        assert_eq!(row.status, "pending");
        assert!(row.webhook_id.starts_with("msg_"));
        let body: serde_json::Value = serde_json::from_str(&row.payload).unwrap();
        assert_eq!(body["event"], "message.ack");
        assert_eq!(body["webhook_id"], row.webhook_id.as_str());
        assert_eq!(body["data"]["status"], "read");
        assert_eq!(body["waha"]["ack"], 3);
        assert!(matches!(webhooks::find(&mut conn, id, Some(dev.id + 1)), Err(StoreError::NotFound)));
        assert!(webhooks::subscribes(None, "anything"), "no options: every event");
    }

    async fn a_delivery_is_claimed_once_retried_delivered_replayed_and_pruned() {
        let (_db, mut conn) = migrated();
        let dev = device(&mut conn, "wapi-hooks");
        diesel::update(devices_table::table.find(dev.id))
            .set((devices_table::webhook_status.eq(true), devices_table::webhook_url.eq("http://127.0.0.1:9/hook")))
            .execute(&mut conn)
            .unwrap();
        let id = webhooks::enqueue(&mut conn, dev.id, "message", json!({}), None, now()).unwrap().unwrap();
        // The relay reserves it once.
        let reserved = later(31);
        assert_eq!(webhooks::reserve_due(&mut conn, later(1), reserved, 10).unwrap(), [id]);
        assert!(webhooks::reserve_due(&mut conn, later(2), later(32), 10).unwrap().is_empty());
        webhooks::mark_published(&mut conn, &[id], reserved, later(1)).unwrap();
        // One claim at a time; the secret comes with it.
        let lease = later(60);
        let claimed = webhooks::claim(&mut conn, id, later(2), lease).unwrap().unwrap();
        assert_eq!(claimed.delivery.attempts, 1);
        assert!(claimed.secret.unwrap().starts_with("whsec_"));
        assert!(webhooks::claim(&mut conn, id, later(3), later(61)).unwrap().is_none(), "a duplicated job attempts nothing");
        // A failure schedules the next attempt; its job is owed again then.
        let retry_at = later(10);
        assert!(webhooks::record_attempt(&mut conn, id, lease, &attempt(500), AfterAttempt::RetryAt(retry_at), later(3)).unwrap());
        assert!(!webhooks::record_attempt(&mut conn, id, lease, &attempt(200), AfterAttempt::Delivered, later(4)).unwrap(), "the claim is spent");
        assert!(webhooks::reserve_due(&mut conn, later(5), later(35), 10).unwrap().is_empty(), "not before its time");
        assert_eq!(webhooks::reserve_due(&mut conn, later(11), later(41), 10).unwrap(), [id]);
        let lease = later(70);
        let claimed = webhooks::claim(&mut conn, id, later(11), lease).unwrap().unwrap();
        assert_eq!(claimed.delivery.attempts, 2);
        assert!(webhooks::record_attempt(&mut conn, id, lease, &attempt(200), AfterAttempt::Delivered, later(12)).unwrap());
        let (row, attempts) = webhooks::find(&mut conn, id, None).unwrap();
        assert_eq!(row.status, "delivered");
        assert_eq!(row.last_status_code, Some(200));
        assert_eq!(attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(), [Some(500), Some(200)]);
        // Replayed: pending and due again, same webhook id.
        let replayed = webhooks::replay(&mut conn, id, later(20)).unwrap();
        assert_eq!((replayed.status.as_str(), replayed.webhook_id.as_str()), ("pending", row.webhook_id.as_str()));
        assert_eq!(webhooks::reserve_due(&mut conn, later(21), later(51), 10).unwrap(), [id]);
        let listed = webhooks::list(&mut conn, &DeliveryFilter { device_id: Some(dev.id), ..DeliveryFilter::default() }, Page { number: 1, size: 10, after_id: None }).unwrap();
        assert_eq!(listed.total, 1);
        // Pending deliveries are never pruned; finished old ones go with their attempts.
        assert_eq!(webhooks::prune(&mut conn, later(3600), 100).unwrap(), 0);
        let claimed = webhooks::claim(&mut conn, id, later(22), later(80)).unwrap().unwrap();
        webhooks::record_attempt(&mut conn, id, claimed.delivery.lease_until.unwrap(), &attempt(410), AfterAttempt::Failed, later(23)).unwrap();
        assert_eq!(webhooks::prune(&mut conn, later(10), 100).unwrap(), 0, "not old enough");
        assert_eq!(webhooks::prune(&mut conn, later(3600), 100).unwrap(), 1);
        assert!(matches!(webhooks::find(&mut conn, id, None), Err(StoreError::NotFound)));
    }
}
