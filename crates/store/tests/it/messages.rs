//! Message writes: edits against claims, optimistic concurrency, legal status moves, batch
//! inserts and the cancellations a device's deletion and restore make.

use std::sync::Barrier;

use wapim_domain::MessageStatus::{self, Cancelled, Delivered, Pending, Processing, Read, Sent};
use wapim_store::listing::Sort;
use wapim_store::messages::{self, MessageFilter, MessageRow, MessageSortColumn, NewMessage};
use wapim_store::{devices, DbConn, Page, StoreError};

use crate::support::{device, later, migrated, new_message, now, text};

const RECIPIENT: &str = "6281234567890";

/// The stored row, deleted or not.
fn stored(conn: &mut DbConn, id: i64) -> MessageRow {
    messages::find(conn, id, None, true).expect("the message exists")
}

/// Fails unless the two reads of a row are identical, column for column.
fn assert_same_row(before: &MessageRow, after: &MessageRow, why: &str) {
    assert_eq!(format!("{before:?}"), format!("{after:?}"), "{why}");
}

wapim_testkit::both_backends! {
    async fn update_pending_never_overwrites_a_claimed_message() {
        let (db, mut conn) = migrated();
        let dev = device(&mut conn, "wapi-race");

        // Deterministic part: an edit after the claim is refused, whatever revision it carries.
        let original = messages::insert(&mut conn, &new_message(&dev, RECIPIENT, "original"))
            .unwrap();
        let read_before_claim = original.revision;
        let claimed = messages::set_status(&mut conn, original.id, &[Pending], Processing, now())
            .unwrap()
            .expect("a pending message can be claimed");
        assert_eq!(claimed.status, Processing);
        assert_eq!(claimed.revision, read_before_claim + 1, "a claim bumps the revision");

        let edit = text(RECIPIENT, "edited");
        let stale = messages::update_pending(&mut conn, original.id, read_before_claim, &edit, now(), now());
        assert!(
            matches!(stale, Err(StoreError::Status(Processing))),
            "an edit carrying the revision read before the claim: {stale:?}"
        );
        // The revision check alone cannot protect this one: the editor read the row after the
        // claim, so its revision is current. Only the `status = 'pending'` filter of
        // update_pending stops it; without that filter the UPDATE matches (id, live, revision)
        // and returns Ok with the new text on a message a dispatcher is sending, so this
        // assertion and the unchanged-text one below fail.
        let current = messages::update_pending(&mut conn, original.id, claimed.revision, &edit, now(), now());
        assert!(
            matches!(current, Err(StoreError::Status(Processing))),
            "an edit carrying the revision read after the claim: {current:?}"
        );
        let after = stored(&mut conn, original.id);
        assert_eq!(after.message.as_deref(), Some("original"));
        assert_same_row(&claimed, &after, "refused edits leave the claimed row as it was");

        // Racing part: a dispatcher's claim and an integrator's edit on two connections
        // (on SQLite both open the same file; the busy timeout makes the second writer wait).
        // Even iterations edit with the revision read before the race; odd ones read the row
        // again once the race has started, as a PATCH handler does (read, then write). The
        // latter is the case the revision check cannot cover: when that read lands after the
        // claim, only the status filter refuses the edit (without it the invariant below fails
        // whenever the read follows the claim).
        let mut conn_a = db.connect();
        let mut conn_b = db.connect();
        for i in 0..100 {
            let original = messages::insert(
                &mut conn,
                &new_message(&dev, RECIPIENT, &format!("original {i}")),
            )
            .unwrap();
            let id = original.id;
            let edit = text(RECIPIENT, &format!("edit {i}"));
            let read_again = i % 2 == 1;
            let barrier = Barrier::new(2);
            let (claim, edited) = std::thread::scope(|s| {
                let a = s.spawn(|| {
                    barrier.wait();
                    messages::set_status(&mut conn_a, id, &[Pending], Processing, now())
                });
                let b = s.spawn(|| {
                    barrier.wait();
                    let revision = if read_again {
                        messages::find(&mut conn_b, id, None, false).unwrap().revision
                    } else {
                        original.revision
                    };
                    messages::update_pending(&mut conn_b, id, revision, &edit, now(), now())
                });
                (a.join().unwrap(), b.join().unwrap())
            });

            // An edit keeps the message pending, so the claim always succeeds.
            let claimed = claim
                .unwrap()
                .unwrap_or_else(|| panic!("iteration {i}: the claim found no pending message"));
            let after = stored(&mut conn, id);
            assert_eq!(after.status, Processing, "iteration {i}");
            assert_eq!(
                after.message, claimed.message,
                "iteration {i}: an edit landed after the claim"
            );
            assert_eq!(after.revision, claimed.revision, "iteration {i}: a write after the claim");
            match edited {
                // The edit came first; the claim took the edited message.
                Ok(row) => {
                    assert_eq!(row.status, Pending, "iteration {i}: edited a claimed message");
                    assert_eq!(row.message, edit.message, "iteration {i}");
                    assert_eq!(claimed.message, edit.message, "iteration {i}");
                    assert_eq!(claimed.revision, row.revision + 1, "iteration {i}");
                }
                // The claim came first; the edit was refused and the claim sends the original.
                Err(StoreError::Status(Processing)) => {
                    assert_eq!(claimed.message, original.message, "iteration {i}");
                    assert_eq!(claimed.revision, original.revision + 1, "iteration {i}");
                }
                Err(other) => panic!("iteration {i}: unexpected edit outcome {other:?}"),
            }
        }
    }

    async fn update_pending_refuses_a_stale_revision() {
        let (_db, mut conn) = migrated();
        let dev = device(&mut conn, "wapi-stale");
        let original = messages::insert(&mut conn, &new_message(&dev, RECIPIENT, "original"))
            .unwrap();
        let read = original.revision;

        let t1 = later(1);
        let first = messages::update_pending(&mut conn, original.id, read, &text(RECIPIENT, "first"), now(), t1)
            .expect("the first edit at the read revision succeeds");
        assert_eq!(first.message.as_deref(), Some("first"));
        assert_eq!(first.revision, read + 1);
        assert_eq!(first.updated_at, t1);

        let second = messages::update_pending(
            &mut conn,
            original.id,
            read,
            &text("6289999999999", "second"), now(),
            later(2),
        );
        assert!(matches!(second, Err(StoreError::Stale)), "{second:?}");

        let after = stored(&mut conn, original.id);
        assert_eq!(after.message.as_deref(), Some("first"));
        assert_eq!(after.recipient, RECIPIENT);
        assert_same_row(&first, &after, "a stale edit writes nothing");

        // The current revision is accepted again.
        let third = messages::update_pending(&mut conn, original.id, first.revision, &text(RECIPIENT, "third"), now(), later(3))
            .expect("an edit at the current revision succeeds");
        assert_eq!(third.message.as_deref(), Some("third"));
        assert_eq!(third.revision, read + 2);

        // A deleted message is gone for edits.
        let gone = messages::insert(&mut conn, &new_message(&dev, RECIPIENT, "to delete")).unwrap();
        messages::cancel_and_delete(&mut conn, gone.id, now()).unwrap().expect("deletable");
        let refused = messages::update_pending(&mut conn, gone.id, gone.revision + 1, &text(RECIPIENT, "x"), now(), now());
        assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    }

    async fn status_writes_follow_the_legal_moves() {
        let (_db, mut conn) = migrated();
        let dev = device(&mut conn, "wapi-moves");
        let m = messages::insert(&mut conn, &new_message(&dev, RECIPIENT, "hello")).unwrap();
        assert_eq!(m.status, Pending);
        assert_eq!(m.status_updated_at, None);

        // Refused moves return None and leave the row exactly as it was.
        let refuse = |conn: &mut DbConn, id: i64, from: &[MessageStatus], to: MessageStatus| {
            let before = stored(conn, id);
            let result = messages::set_status(conn, id, from, to, later(60)).unwrap();
            assert!(result.is_none(), "{from:?} -> {to:?} was written: {result:?}");
            assert_same_row(&before, &stored(conn, id), &format!("{from:?} -> {to:?} changed the row"));
        };
        // Skipping `processing`.
        refuse(&mut conn, m.id, &[Pending], Sent);
        // A legal move from a status the row is not in.
        refuse(&mut conn, m.id, &[Processing], Sent);

        let t1 = later(1);
        let processing = messages::set_status(&mut conn, m.id, &[Pending], Processing, t1)
            .unwrap()
            .expect("pending -> processing is legal");
        assert_eq!(processing.status, Processing);
        assert_eq!(processing.status_updated_at, Some(t1));
        assert_eq!(processing.updated_at, t1);
        assert_eq!(processing.revision, m.revision + 1);

        let t2 = later(2);
        let sent = messages::set_status(&mut conn, m.id, &[Processing], Sent, t2)
            .unwrap()
            .expect("processing -> sent is legal");
        assert_eq!(sent.status, Sent);
        assert_eq!(sent.status_updated_at, Some(t2));
        assert_same_row(&sent, &stored(&mut conn, m.id), "the returned row is the stored one");

        // sent -> processing is illegal even when the caller lists `sent` among the sources.
        refuse(&mut conn, m.id, &[Sent], Processing);
        refuse(&mut conn, m.id, &[Sent, Pending], Processing);
        // sent -> cancelled: a sent message cannot be cancelled.
        refuse(&mut conn, m.id, &[Sent], Cancelled);

        let t3 = later(3);
        let read = messages::set_status(&mut conn, m.id, &[Sent, Delivered], Read, t3)
            .unwrap()
            .expect("sent -> read is legal");
        assert_eq!(read.status, Read);
        assert_eq!(read.status_updated_at, Some(t3));
        // A late delivery ack cannot move a read message backwards.
        refuse(&mut conn, m.id, &[Sent, Read], Delivered);

        // cancelled -> processing: a dispatcher cannot claim a cancelled message.
        let c = messages::insert(&mut conn, &new_message(&dev, RECIPIENT, "cancel me")).unwrap();
        let t4 = later(4);
        let cancelled = messages::set_status(&mut conn, c.id, &[Pending], Cancelled, t4)
            .unwrap()
            .expect("pending -> cancelled is legal");
        assert_eq!(cancelled.status, Cancelled);
        assert_eq!(cancelled.status_updated_at, Some(t4));
        refuse(&mut conn, c.id, &[Cancelled], Processing);
        refuse(&mut conn, c.id, &[Pending, Cancelled], Processing);

        let t5 = later(5);
        let restored = messages::set_status(&mut conn, c.id, &[Cancelled], Pending, t5)
            .unwrap()
            .expect("cancelled -> pending (restore) is legal");
        assert_eq!(restored.status, Pending);
        assert_eq!(restored.status_updated_at, Some(t5));
        assert_eq!(restored.revision, cancelled.revision + 1);
    }

    async fn batch_inserts_beyond_one_statement_keep_order() {
        const ROWS: usize = 2_500;
        const { assert!(ROWS > 2 * messages::INSERT_CHUNK_ROWS, "spans at least three chunks") };
        let (_db, mut conn) = migrated();
        let dev = device(&mut conn, "wapi-batch");
        let batch_id = "3f1c6a52-6d1e-4c8e-9d0a-2b7e5f0c1a11".to_owned();
        let rows: Vec<NewMessage> = (0..ROWS)
            .map(|i| NewMessage {
                batch_id: Some(batch_id.clone()),
                ..new_message(&dev, &format!("62811{i:07}"), &format!("item {i}"))
            })
            .collect();

        let inserted = wapim_store::transaction(&mut conn, |c| messages::insert_many(c, &rows))
            .expect("the batch inserts");
        assert_eq!(inserted.len(), ROWS);
        for pair in inserted.windows(2) {
            assert!(pair[0].id < pair[1].id, "ids {} then {}", pair[0].id, pair[1].id);
        }
        for (i, (row, input)) in inserted.iter().zip(&rows).enumerate() {
            assert_eq!(row.recipient, input.fields.recipient, "row {i}");
            assert_eq!(row.message, input.fields.message, "row {i}");
            assert_eq!(row.batch_id.as_deref(), Some(batch_id.as_str()), "row {i}");
        }

        // What was committed is what was returned: the same ids carry the same content.
        let listed = messages::list(
            &mut conn,
            &MessageFilter { batch_id: Some(batch_id.clone()), ..MessageFilter::default() },
            Sort { column: MessageSortColumn::Id, descending: false },
            Page { number: 1, size: ROWS as i64 + 10, after_id: None },
        )
        .unwrap();
        assert_eq!(listed.total, ROWS as i64);
        assert_eq!(listed.rows.len(), ROWS);
        for (i, (listed, returned)) in listed.rows.iter().zip(&inserted).enumerate() {
            assert_eq!(listed.id, returned.id, "row {i}");
            assert_eq!(listed.recipient, rows[i].fields.recipient, "row {i}");
        }

        // The chunks are separate statements; the transaction makes them one: a bad row in the
        // last chunk (no such device) leaves nothing of the batch behind.
        let mut bad = rows.clone();
        for row in &mut bad {
            row.batch_id = Some("second-batch".to_owned());
        }
        bad[ROWS - 1].device_id = dev.id + 1_000_000;
        let failed = wapim_store::transaction(&mut conn, |c| messages::insert_many(c, &bad));
        assert!(matches!(failed, Err(StoreError::Database(_))), "{:?}", failed.map(|r| r.len()));
        let none = messages::list(
            &mut conn,
            &MessageFilter { batch_id: Some("second-batch".to_owned()), ..MessageFilter::default() },
            Sort { column: MessageSortColumn::Id, descending: false },
            Page { number: 1, size: 10, after_id: None },
        )
        .unwrap();
        assert_eq!(none.total, 0, "a failed batch left rows behind");
    }

    async fn deleting_a_device_cancels_only_its_pending_messages_and_restore_revives_them() {
        let (_db, mut conn) = migrated();
        let a = device(&mut conn, "wapi-a");
        let b = device(&mut conn, "wapi-b");

        let a_pending = messages::insert(&mut conn, &new_message(&a, RECIPIENT, "a pending")).unwrap();
        let a_sent = messages::insert(&mut conn, &new_message(&a, RECIPIENT, "a sent")).unwrap();
        messages::set_status(&mut conn, a_sent.id, &[Pending], Processing, now())
            .unwrap()
            .expect("claimable");
        messages::set_status(&mut conn, a_sent.id, &[Processing], Sent, now())
            .unwrap()
            .expect("sendable");
        let a_deleted = messages::insert(&mut conn, &new_message(&a, RECIPIENT, "a deleted")).unwrap();
        let a_deleted = messages::cancel_and_delete(&mut conn, a_deleted.id, now())
            .unwrap()
            .expect("a pending message can be deleted");
        assert_eq!(a_deleted.status, Cancelled);
        assert_eq!(a_deleted.cancel_reason.as_deref(), Some("message_deleted"));
        assert!(a_deleted.deleted_at.is_some());
        // Deleted on its own, then restored without reviving: live, but still cancelled for
        // its own deletion. Only the reason tells it from what the device's deletion cancels.
        let a_kept = messages::insert(&mut conn, &new_message(&a, RECIPIENT, "a kept")).unwrap();
        messages::cancel_and_delete(&mut conn, a_kept.id, now())
            .unwrap()
            .expect("a pending message can be deleted");
        let a_kept = messages::undelete(&mut conn, a_kept.id, false, now())
            .unwrap()
            .expect("a deleted message can be restored");
        assert_eq!(a_kept.deleted_at, None);
        assert_eq!(a_kept.status, Cancelled);
        let b_pending = messages::insert(&mut conn, &new_message(&b, RECIPIENT, "b pending")).unwrap();

        let before_sent = stored(&mut conn, a_sent.id);
        let before_deleted = stored(&mut conn, a_deleted.id);
        let before_kept = stored(&mut conn, a_kept.id);
        let before_b = stored(&mut conn, b_pending.id);

        // The device's deletion, as the service runs it: one transaction.
        let t1 = later(1);
        let cancelled = wapim_store::transaction(&mut conn, |c| {
            devices::soft_delete(c, a.id, t1)?;
            messages::cancel_pending_of_device(c, a.id, t1)
        })
        .unwrap();
        assert_eq!(cancelled, 1, "exactly A's live pending message");
        let p = stored(&mut conn, a_pending.id);
        assert_eq!(p.status, Cancelled);
        assert_eq!(p.cancel_reason.as_deref(), Some("device_deleted"));
        assert_eq!(p.status_updated_at, Some(t1));
        assert_eq!(p.deleted_at, None, "the message itself is not deleted");
        assert_same_row(&before_sent, &stored(&mut conn, a_sent.id), "a sent message was touched");
        assert_same_row(&before_deleted, &stored(&mut conn, a_deleted.id), "a deleted message was touched");
        assert_same_row(&before_kept, &stored(&mut conn, a_kept.id), "a cancelled message was touched");
        assert_same_row(&before_b, &stored(&mut conn, b_pending.id), "another device's message was touched");

        // The restore: only what the deletion cancelled comes back.
        let t2 = later(2);
        let revived = wapim_store::transaction(&mut conn, |c| {
            devices::undelete(c, a.id, t2)?.ok_or(StoreError::NotFound)?;
            messages::revive_cancelled_of_device(c, a.id, t2)
        })
        .unwrap();
        assert_eq!(revived, 1, "exactly the message the device's deletion cancelled");
        let p = stored(&mut conn, a_pending.id);
        assert_eq!(p.status, Pending);
        assert_eq!(p.cancel_reason, None);
        assert_eq!(p.status_updated_at, Some(t2));
        assert_eq!(p.message.as_deref(), Some("a pending"));
        let d = stored(&mut conn, a_deleted.id);
        assert_eq!(d.status, Cancelled, "a message deleted on its own stays cancelled");
        assert_eq!(d.cancel_reason.as_deref(), Some("message_deleted"));
        assert_same_row(&before_deleted, &d, "the restore touched a message deleted on its own");
        assert_same_row(
            &before_kept,
            &stored(&mut conn, a_kept.id),
            "the restore revived a message cancelled by its own deletion",
        );
        assert_same_row(&before_sent, &stored(&mut conn, a_sent.id), "the restore touched a sent message");
        assert_same_row(&before_b, &stored(&mut conn, b_pending.id), "the restore touched another device");

        // Nothing is left to revive.
        assert_eq!(messages::revive_cancelled_of_device(&mut conn, a.id, later(3)).unwrap(), 0);
    }
}
