//! The hand-off of WAHA session work: a device row owes a sync while `session_sync_due_at` is set
//! and its job is unpublished; the relay reserves and publishes it like a message's send job; the
//! dispatcher makes WAHA match the row and settles the debt (only the very debt it read: a change
//! made meanwhile owes another sync).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamp};
use wapim_domain::DeviceStatus;

use crate::devices::session_sync_owed;
use crate::schema::devices;
use crate::{DbConn, StoreError};

/// How long a published sync may stay unsettled before its job counts as lost (dead-lettered,
/// or its dispatcher and the broker's copy both gone) and is published again. A sync takes a
/// few WAHA calls; a duplicate is harmless (a sync only makes WAHA match the row).
pub const SYNC_REPUBLISH_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Reserves up to `limit` devices whose sync is owed and due by `now` (unpublished, or published
/// longer than [`SYNC_REPUBLISH_AFTER`] ago; not reserved by a live relay) until `lease_until`;
/// returns their ids. PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one statement (one writer).
/// backend-specific.
pub fn reserve_due_syncs(
    conn: &mut DbConn,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> Result<Vec<i64>, StoreError> {
    let stale = now - SYNC_REPUBLISH_AFTER;
    let owed = || {
        devices::table
            .filter(devices::session_sync_due_at.le(now))
            .filter(
                devices::session_sync_published_at
                    .is_null()
                    .or(devices::session_sync_published_at.lt(stale)),
            )
            .filter(
                devices::session_sync_lease_until
                    .is_null()
                    .or(devices::session_sync_lease_until.lt(now)),
            )
            .order(devices::session_sync_due_at.asc())
            .limit(limit)
            .select(devices::id)
    };
    if let DbConn::Pg(pg) = conn {
        return pg.transaction(|pg| {
            let ids: Vec<i64> = owed().for_update().skip_locked().load(pg)?;
            if !ids.is_empty() {
                diesel::update(devices::table.filter(devices::id.eq_any(&ids)))
                    .set(devices::session_sync_lease_until.eq(lease_until))
                    .execute(pg)?;
            }
            Ok::<_, StoreError>(ids)
        });
    }
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let mut ids: Vec<i64> = diesel::sql_query(
        "UPDATE devices SET session_sync_lease_until = ? WHERE id IN (\
           SELECT id FROM devices WHERE session_sync_due_at <= ? \
           AND (session_sync_published_at IS NULL OR session_sync_published_at < ?) \
           AND (session_sync_lease_until IS NULL OR session_sync_lease_until < ?) \
           ORDER BY session_sync_due_at LIMIT ?) RETURNING id",
    )
    .bind::<Timestamp, _>(lease_until)
    .bind::<Timestamp, _>(now)
    .bind::<Timestamp, _>(stale)
    .bind::<Timestamp, _>(now)
    .bind::<BigInt, _>(limit)
    .load::<Id>(conn)?
    .into_iter()
    .map(|i| i.id)
    .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Marks confirmed sync jobs published, for rows still under the relay's reservation
/// `lease_until` (a row owed again meanwhile stays owed).
pub fn mark_syncs_published(
    conn: &mut DbConn,
    ids: &[i64],
    lease_until: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        devices::table
            .filter(devices::id.eq_any(ids))
            .filter(devices::session_sync_lease_until.eq(lease_until)),
    )
    .set((
        devices::session_sync_published_at.eq(now),
        devices::session_sync_lease_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?)
}

/// What a device's WAHA session should be, as its row says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTarget {
    /// The device.
    pub device_id: i64,
    /// Its session's name on WAHA.
    pub session_id: String,
    /// Its display name (in the session's metadata).
    pub name: String,
    /// Live: the session runs; deleted: it is stopped (its login kept).
    pub live: bool,
    /// The key WAHA signs its webhooks with.
    pub hmac_key: Option<String>,
    /// The debt this sync settles (`None`: nothing owed; the sync still repairs drift).
    pub owed_since: Option<NaiveDateTime>,
    /// Syncs that failed in a row before this one (for the backoff).
    pub failed_syncs: i32,
    /// The events its integrator's webhook subscribes to (`webhook_options`, when
    /// `webhook_status` is on; `None`: none or every event).
    pub webhook_events: Option<Vec<String>>,
}

/// The target of a device's sync (`None` when there is no such device).
pub fn session_target(
    conn: &mut DbConn,
    device_id: i64,
) -> Result<Option<SessionTarget>, StoreError> {
    type Row = (
        String,
        String,
        Option<NaiveDateTime>,
        Option<String>,
        Option<NaiveDateTime>,
        i32,
        (bool, Option<String>),
    );
    let row: Option<Row> = devices::table
        .find(device_id)
        .select((
            devices::session_id,
            devices::name,
            devices::deleted_at,
            devices::webhook_hmac_key,
            devices::session_sync_due_at,
            devices::session_sync_attempts,
            (devices::webhook_status, devices::webhook_options),
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(
        |(session_id, name, deleted_at, hmac_key, owed_since, failed_syncs, (hooked, options))| {
            SessionTarget {
                webhook_events: options
                    .filter(|_| hooked)
                    .and_then(|o| serde_json::from_str::<Vec<String>>(&o).ok()),
                device_id,
                session_id,
                name,
                live: deleted_at.is_none(),
                hmac_key,
                owed_since,
                failed_syncs,
            }
        },
    ))
}

/// Stores a key for a device that has none yet (devices created before sessions were managed);
/// returns the key it now has.
pub fn ensure_hmac_key(
    conn: &mut DbConn,
    device_id: i64,
    candidate: &str,
) -> Result<String, StoreError> {
    diesel::update(
        devices::table
            .filter(devices::id.eq(device_id))
            .filter(devices::webhook_hmac_key.is_null()),
    )
    .set(devices::webhook_hmac_key.eq(candidate))
    .execute(conn)?;
    Ok(devices::table
        .find(device_id)
        .select(devices::webhook_hmac_key)
        .first::<Option<String>>(conn)?
        .unwrap_or_else(|| candidate.to_owned()))
}

/// Records a sync that made WAHA match the row: the device's `status` as WAHA reported it, and
/// the debt `owed_since` settled (a newer debt stays owed, so another sync follows).
pub fn record_synced(
    conn: &mut DbConn,
    device_id: i64,
    owed_since: Option<NaiveDateTime>,
    status: Option<DeviceStatus>,
    now: NaiveDateTime,
) -> Result<(), StoreError> {
    crate::transaction(conn, |c| {
        if let Some(status) = status {
            diesel::update(devices::table.find(device_id))
                .set(devices::status.eq(status.as_str()))
                .execute(c)?;
        }
        diesel::update(devices::table.find(device_id))
            .set((
                devices::session_synced_at.eq(now),
                devices::session_sync_attempts.eq(0),
                devices::session_sync_error.eq(None::<String>),
            ))
            .execute(c)?;
        if let Some(since) = owed_since {
            diesel::update(
                devices::table
                    .filter(devices::id.eq(device_id))
                    .filter(devices::session_sync_due_at.eq(since)),
            )
            .set((
                devices::session_sync_due_at.eq(None::<NaiveDateTime>),
                devices::session_sync_published_at.eq(None::<NaiveDateTime>),
                devices::session_sync_lease_until.eq(None::<NaiveDateTime>),
            ))
            .execute(c)?;
        }
        Ok(())
    })
}

/// Records a failed sync: owed again at `retry_at` (unless a newer change already owes one),
/// with the error for operators.
pub fn record_sync_failed(
    conn: &mut DbConn,
    device_id: i64,
    owed_since: Option<NaiveDateTime>,
    error: &str,
    retry_at: NaiveDateTime,
) -> Result<(), StoreError> {
    crate::transaction(conn, |c| {
        diesel::update(devices::table.find(device_id))
            .set((
                devices::session_sync_attempts.eq(devices::session_sync_attempts + 1),
                devices::session_sync_error.eq(error),
            ))
            .execute(c)?;
        let mut retry = diesel::update(devices::table)
            .filter(devices::id.eq(device_id))
            .into_boxed();
        retry = match owed_since {
            Some(since) => retry.filter(devices::session_sync_due_at.eq(since)),
            None => retry.filter(devices::session_sync_due_at.is_null()),
        };
        retry.set(session_sync_owed(retry_at)).execute(c)?;
        Ok(())
    })
}

/// Owes a sync of `device_id` now (an operator asked for a resync). `false`: no such live
/// device.
pub fn owe_sync(conn: &mut DbConn, device_id: i64, now: NaiveDateTime) -> Result<bool, StoreError> {
    Ok(diesel::update(
        devices::table
            .filter(devices::id.eq(device_id))
            .filter(devices::deleted_at.is_null()),
    )
    .set(session_sync_owed(now))
    .execute(conn)?
        == 1)
}

/// Owes a sync of every live device that owes none (a dispatcher starting up repairs whatever
/// drifted while it was away). Returns how many.
pub fn owe_all_syncs(conn: &mut DbConn, now: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(diesel::update(
        devices::table
            .filter(devices::deleted_at.is_null())
            .filter(devices::session_sync_due_at.is_null()),
    )
    .set(session_sync_owed(now))
    .execute(conn)?)
}

/// The session ids of every device, live or deleted (to tell which WAHA sessions Wapim knows).
pub fn known_session_ids(conn: &mut DbConn) -> Result<Vec<String>, StoreError> {
    Ok(devices::table.select(devices::session_id).load(conn)?)
}
