//! The send pipeline's writes: relay reservations, claims, outcomes and the lease sweep.

use std::collections::HashSet;
use std::sync::Barrier;

use chrono::TimeDelta;
use wapim_domain::HoldReason;
use wapim_domain::MessageStatus::{Failed, Pending, Processing, Sent};
use wapim_store::dispatch::{self, Release};
use wapim_store::messages::{self, MessageRow};
use wapim_store::{devices, DbConn};

use crate::support::{device, later, migrated, new_message, now};

const RECIPIENT: &str = "6281234567890";

fn ids(owed: Vec<dispatch::OwedJob>) -> Vec<i64> {
    owed.into_iter().map(|o| o.id).collect()
}

fn stored(conn: &mut DbConn, id: i64) -> MessageRow {
    messages::find(conn, id, None, true).expect("the message exists")
}

wapim_testkit::both_backends! {
    async fn the_relay_reserves_only_owed_due_jobs_and_never_twice_within_its_lease() {
        let (_db, mut conn) = migrated();
        let dev = device(&mut conn, "wapi-relay");
        let due = messages::insert(&mut conn, &new_message(&dev, RECIPIENT, "due")).unwrap();
        let mut future = new_message(&dev, RECIPIENT, "later");
        future.due_at = later(3600);
        let future = messages::insert(&mut conn, &future).unwrap();
        let deleted = messages::insert(&mut conn, &new_message(&dev, RECIPIENT, "deleted")).unwrap();
        messages::cancel_and_delete(&mut conn, deleted.id, now()).unwrap();

        let owed = dispatch::reserve_due(&mut conn, now(), later(30), 100).unwrap();
        assert_eq!(ids(owed), [due.id], "only the live, pending, due message");
        assert!(
            dispatch::reserve_due(&mut conn, now(), later(30), 100).unwrap().is_empty(),
            "a reservation holds for its lease"
        );
        // A relay that died: its reservation expires and the job is owed again.
        let reserved = later(60);
        assert_eq!(ids(dispatch::reserve_due(&mut conn, later(31), reserved, 100).unwrap()), [due.id]);
        assert_eq!(dispatch::mark_published(&mut conn, &[due.id], later(61), now()).unwrap(), 0, "not under another reservation");
        assert_eq!(dispatch::mark_published(&mut conn, &[due.id], reserved, now()).unwrap(), 1);
        assert!(dispatch::reserve_due(&mut conn, later(120), later(150), 100).unwrap().is_empty());
        assert!(stored(&mut conn, due.id).published_at.is_some());
        // The future one becomes owed when due, and next_due says when.
        assert_eq!(dispatch::next_due(&mut conn).unwrap(), Some(future.due_at));
        assert_eq!(ids(dispatch::reserve_due(&mut conn, later(3601), later(3630), 100).unwrap()), [future.id]);
    }

    async fn a_job_owed_again_during_the_relay_pass_is_not_marked_published() {
        let (_db, mut conn) = migrated();
        let dev = device(&mut conn, "wapi-race");
        let m = messages::insert(&mut conn, &new_message(&dev, RECIPIENT, "fast")).unwrap();
        let reserved = later(30);
        assert_eq!(ids(dispatch::reserve_due(&mut conn, now(), reserved, 10).unwrap()), [m.id]);
        // The job is confirmed; before the relay marks it, a dispatcher already took it, failed
        // and released it for a retry (a new job is owed).
        dispatch::claim(&mut conn, m.id, now(), later(90)).unwrap().unwrap();
        dispatch::release(&mut conn, m.id, &Release { api_response: Some("{}"), ..Release::at(now()) }, now()).unwrap().unwrap();
        assert_eq!(dispatch::mark_published(&mut conn, &[m.id], reserved, now()).unwrap(), 0);
        assert!(stored(&mut conn, m.id).published_at.is_none());
        assert_eq!(ids(dispatch::reserve_due(&mut conn, now(), later(30), 10).unwrap()), [m.id], "the relay publishes it again");
    }

    async fn concurrent_relays_reserve_disjoint_rows() {
        let (db, mut conn) = migrated();
        let dev = device(&mut conn, "wapi-relays");
        let mut all = HashSet::new();
        for i in 0..200 {
            all.insert(messages::insert(&mut conn, &new_message(&dev, RECIPIENT, &format!("m{i}"))).unwrap().id);
        }
        let barrier = Barrier::new(2);
        let (a, b) = std::thread::scope(|s| {
            let run = || {
                let mut c = db.connect();
                barrier.wait();
                let mut mine = Vec::new();
                loop {
                    let owed = ids(dispatch::reserve_due(&mut c, now(), later(60), 7).unwrap());
                    if owed.is_empty() {
                        break mine;
                    }
                    mine.extend(owed);
                }
            };
            let a = s.spawn(run);
            let b = s.spawn(run);
            (a.join().unwrap(), b.join().unwrap())
        });
        let (sa, sb): (HashSet<i64>, HashSet<i64>) = (a.iter().copied().collect(), b.iter().copied().collect());
        assert!(sa.is_disjoint(&sb), "no row reserved by both relays");
        assert_eq!(a.len() + b.len(), 200, "no row reserved twice by one relay either");
        assert_eq!(sa.union(&sb).copied().collect::<HashSet<_>>(), all);
    }

    async fn a_claim_takes_a_due_pending_message_of_a_live_device_once() {
        let (_db, mut conn) = migrated();
        let dev = device(&mut conn, "wapi-claim");
        let m = messages::insert(&mut conn, &new_message(&dev, RECIPIENT, "hi")).unwrap();
        let mut scheduled = new_message(&dev, RECIPIENT, "later");
        scheduled.due_at = later(60);
        let scheduled = messages::insert(&mut conn, &scheduled).unwrap();

        assert!(dispatch::claim(&mut conn, scheduled.id, now(), later(90)).unwrap().is_none(), "not early");
        let claimed = dispatch::claim(&mut conn, m.id, now(), later(90)).unwrap().expect("claimed");
        assert_eq!(claimed.status, Processing);
        assert_eq!(claimed.attempts, 1);
        assert!(claimed.lease_until.is_some());
        assert!(dispatch::claim(&mut conn, m.id, now(), later(90)).unwrap().is_none(), "a duplicate job sends nothing");

        // A deleted device's messages are never claimed.
        let other = messages::insert(&mut conn, &new_message(&dev, RECIPIENT, "orphan")).unwrap();
        devices::soft_delete(&mut conn, dev.id, now()).unwrap();
        assert!(dispatch::claim(&mut conn, other.id, now(), later(90)).unwrap().is_none());
    }

    async fn outcomes_move_the_claim_to_sent_failed_or_back_to_pending() {
        let (_db, mut conn) = migrated();
        let dev = device(&mut conn, "wapi-outcomes");
        let a = messages::insert(&mut conn, &new_message(&dev, RECIPIENT, "a")).unwrap();
        let b = messages::insert(&mut conn, &new_message(&dev, RECIPIENT, "b")).unwrap();
        let c = messages::insert(&mut conn, &new_message(&dev, RECIPIENT, "c")).unwrap();
        for m in [&a, &b, &c] {
            dispatch::claim(&mut conn, m.id, now(), later(90)).unwrap().unwrap();
        }
        assert!(dispatch::set_wa_message_id(&mut conn, a.id, "3EB0AAA").unwrap());
        let sent = dispatch::record_sent(&mut conn, a.id, "true_62812@c.us_3EB0AAA", r#"{"id":"x"}"#, now()).unwrap().unwrap();
        assert_eq!(sent.status, Sent);
        assert!(sent.is_sent && sent.sent_at.is_some() && sent.lease_until.is_none());
        assert_eq!(sent.provider_message_id.as_deref(), Some("true_62812@c.us_3EB0AAA"));
        assert_eq!(sent.wa_message_id.as_deref(), Some("3EB0AAA"));
        assert!(dispatch::record_sent(&mut conn, a.id, "again", "{}", now()).unwrap().is_none(), "only from processing");

        let failed = dispatch::record_failed(&mut conn, b.id, r#"{"statusCode":400}"#, now()).unwrap().unwrap();
        assert_eq!(failed.status, Failed);
        assert_eq!(failed.api_response.as_deref(), Some(r#"{"statusCode":400}"#));

        let retry_at = later(30);
        let held = dispatch::release(&mut conn, c.id, &Release { refund_attempt: true, api_response: Some("{}"), hold: Some(HoldReason::SessionNotReady), ..Release::at(retry_at) }, now()).unwrap().unwrap();
        assert_eq!(held.hold_reason.as_deref(), Some("session_not_ready"), "says why it waits");
        assert_eq!(held.status, Pending);
        assert_eq!(held.due_at, retry_at);
        assert_eq!(held.attempts, 0, "a hold refunds the attempt");
        assert!(held.published_at.is_none(), "the job is owed again");
        assert!(dispatch::reserve_due(&mut conn, now(), later(60), 10).unwrap().is_empty(), "not before it is due");
        assert_eq!(ids(dispatch::reserve_due(&mut conn, later(31), later(60), 10).unwrap()), [c.id]);
    }

    async fn each_claims_outcome_is_logged_and_a_repeated_hold_only_counts_up() {
        let (_db, mut conn) = migrated();
        let dev = device(&mut conn, "wapi-attempts");
        let m = messages::insert(&mut conn, &new_message(&dev, RECIPIENT, "a")).unwrap();
        assert!(dispatch::attempts_of(&mut conn, m.id, 10).unwrap().is_empty());
        let not_ready = r#"{"statusCode":422,"message":"Session status is not as expected"}"#;
        for _ in 0..3 {
            dispatch::claim(&mut conn, m.id, now(), later(90)).unwrap().unwrap();
            let how = Release { refund_attempt: true, api_response: Some(not_ready), hold: Some(HoldReason::SessionNotReady), ..Release::at(now()) };
            dispatch::release(&mut conn, m.id, &how, now()).unwrap().unwrap();
        }
        // A bare release (a pacing slot not come) is no attempt.
        dispatch::claim(&mut conn, m.id, now(), later(90)).unwrap().unwrap();
        dispatch::release(&mut conn, m.id, &Release::at(now()), now()).unwrap().unwrap();
        dispatch::claim(&mut conn, m.id, now(), later(90)).unwrap().unwrap();
        dispatch::record_failed(&mut conn, m.id, r#"{"error":"timeout"}"#, now()).unwrap().unwrap();
        dispatch::resend(&mut conn, m.id, None, now()).unwrap().unwrap();
        dispatch::claim(&mut conn, m.id, now(), later(90)).unwrap().unwrap();
        dispatch::record_sent(&mut conn, m.id, "true_62812@c.us_3EB0", r#"{"id":"3EB0"}"#, now()).unwrap().unwrap();
        let log = dispatch::attempts_of(&mut conn, m.id, 10).unwrap();
        let outcomes: Vec<(&str, Option<&str>, i32)> = log.iter().map(|a| (a.outcome.as_str(), a.hold_reason.as_deref(), a.repeats)).collect();
        assert_eq!(outcomes, [("released", Some("session_not_ready"), 3), ("failed", None, 1), ("sent", None, 1)]);
        assert_eq!(log[0].api_response.as_deref(), Some(not_ready));
        assert_eq!(log[2].api_response.as_deref(), Some(r#"{"id":"3EB0"}"#));
        assert!(log[0].first_at <= log[0].last_at);
        // The newest are kept when the log is cut.
        let newest = dispatch::attempts_of(&mut conn, m.id, 1).unwrap();
        assert_eq!(newest.len(), 1);
        assert_eq!(newest[0].outcome, "sent");
    }

    async fn a_claim_stores_a_pre_generated_id_for_a_text_without_one_only() {
        let (_db, mut conn) = migrated();
        let dev = device(&mut conn, "wapi-prefetch");
        let text = messages::insert(&mut conn, &new_message(&dev, RECIPIENT, "text")).unwrap();
        let mut image = new_message(&dev, RECIPIENT, "image");
        image.fields.message_type = "image".to_owned();
        image.fields.file_url = Some("http://127.0.0.1:9/a.jpg".to_owned());
        let image = messages::insert(&mut conn, &image).unwrap();
        let retried = messages::insert(&mut conn, &new_message(&dev, RECIPIENT, "retried")).unwrap();

        let claimed = dispatch::claim_with_wa_id(&mut conn, text.id, now(), later(90), Some("3EB0NEW")).unwrap().unwrap();
        assert_eq!(claimed.wa_message_id.as_deref(), Some("3EB0NEW"), "stored in the claim's own write");
        let claimed = dispatch::claim_with_wa_id(&mut conn, image.id, now(), later(90), Some("3EB0IMG")).unwrap().unwrap();
        assert_eq!(claimed.wa_message_id, None, "a media send carries no id, so it gets none");

        // A text whose earlier attempt stored an id keeps it (its outcome is looked up by it).
        dispatch::claim(&mut conn, retried.id, now(), later(90)).unwrap().unwrap();
        assert!(dispatch::set_wa_message_id(&mut conn, retried.id, "3EB0OLD").unwrap());
        dispatch::release(&mut conn, retried.id, &Release::at(now()), now()).unwrap().unwrap();
        let claimed = dispatch::claim_with_wa_id(&mut conn, retried.id, now(), later(90), Some("3EB0NEWER")).unwrap().unwrap();
        assert_eq!(claimed.wa_message_id.as_deref(), Some("3EB0OLD"));
        assert!(
            dispatch::claim_with_wa_id(&mut conn, text.id, now(), later(90), Some("3EB0DUP")).unwrap().is_none(),
            "a duplicate job claims nothing and overwrites nothing"
        );
        assert_eq!(stored(&mut conn, text.id).wa_message_id.as_deref(), Some("3EB0NEW"));
    }

    async fn expired_claims_are_found_and_taken_over_once() {
        let (_db, mut conn) = migrated();
        let dev = device(&mut conn, "wapi-sweep");
        let m = messages::insert(&mut conn, &new_message(&dev, RECIPIENT, "m")).unwrap();
        let lease = now() + TimeDelta::seconds(5);
        dispatch::claim(&mut conn, m.id, now(), lease).unwrap().unwrap();
        assert!(dispatch::expired_claims(&mut conn, now(), 10).unwrap().is_empty(), "not while the lease holds");
        let expired = dispatch::expired_claims(&mut conn, later(6), 10).unwrap();
        assert_eq!(expired.len(), 1);
        let old = expired[0].lease_until.unwrap();
        assert!(dispatch::take_over_claim(&mut conn, m.id, old, later(100)).unwrap());
        assert!(!dispatch::take_over_claim(&mut conn, m.id, old, later(100)).unwrap(), "a second sweeper loses");
    }
}
