//! What WAHA's webhooks change: the recorded events (one row per WAHA event id, applied after
//! the ingest answered) and their effects on messages and devices. Every status write goes
//! through the legal moves of [`MessageStatus::can_move_to`] and only ever moves a message
//! forward.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use wapim_domain::{DeviceStatus, HoldReason, MessageStatus};

use crate::dispatch::{pause_device_until, release_held};
use crate::messages::{job_owed_again, legal_sources, MessageRow};
use crate::schema::{devices, messages, waha_events};
use crate::{coalesce, DbConn, StoreError};

/// A recorded WAHA event.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = waha_events)]
pub struct EventRow {
    /// Row id.
    pub id: i64,
    /// WAHA's event id (`evt_…`).
    pub event_id: String,
    /// The session it is about.
    pub session_id: String,
    /// `message.ack`, `session.status`, …
    pub event: String,
    /// The raw body WAHA posted (its HMAC was checked before it was stored).
    pub body: String,
    /// UTC.
    pub received_at: NaiveDateTime,
    /// When it was applied.
    pub processed_at: Option<NaiveDateTime>,
    /// A processor's reservation.
    pub lease_until: Option<NaiveDateTime>,
    /// Tries so far.
    pub attempts: i32,
    /// Why the last try did not apply it.
    pub error: Option<String>,
}

/// Records an event; `None` when one with the same WAHA id was recorded already (a replay).
pub fn record_event(
    conn: &mut DbConn,
    event_id: &str,
    session_id: &str,
    event: &str,
    body: &str,
    now: NaiveDateTime,
) -> Result<Option<i64>, StoreError> {
    let inserted = diesel::insert_into(waha_events::table)
        .values((
            waha_events::event_id.eq(event_id),
            waha_events::session_id.eq(session_id),
            waha_events::event.eq(event),
            waha_events::body.eq(body),
            waha_events::received_at.eq(now),
        ))
        .returning(waha_events::id)
        .get_result::<i64>(conn);
    match inserted {
        Ok(id) => Ok(Some(id)),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reserves up to `limit` events still owed (oldest first, not reserved by a live processor, and
/// not waiting for a retry) until `lease_until`, in one statement (PostgreSQL: `FOR UPDATE SKIP
/// LOCKED`, so ingest replicas never take the same events; SQLite: one writer). Each taken
/// event counts a try.
pub fn claim_events(
    conn: &mut DbConn,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    let owed = || {
        waha_events::table
            .filter(waha_events::processed_at.is_null())
            .filter(
                waha_events::lease_until
                    .is_null()
                    .or(waha_events::lease_until.lt(now)),
            )
            .order(waha_events::id.asc())
            .limit(limit)
            .select(waha_events::id)
    };
    let mut rows: Vec<EventRow> = if let DbConn::Pg(pg) = conn {
        pg.transaction(|pg| {
            let ids: Vec<i64> = owed().for_update().skip_locked().load(pg)?;
            if ids.is_empty() {
                return Ok::<_, StoreError>(Vec::new());
            }
            Ok(
                diesel::update(waha_events::table.filter(waha_events::id.eq_any(&ids)))
                    .set((
                        waha_events::lease_until.eq(lease_until),
                        waha_events::attempts.eq(waha_events::attempts + 1),
                    ))
                    .returning(waha_events::all_columns)
                    .get_results(pg)?,
            )
        })?
    } else {
        let ids: Vec<i64> = owed().load(conn)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One writer on SQLite: nobody takes these between the read and the write, but the
        // guard keeps the statement honest if that ever changes.
        diesel::update(
            waha_events::table
                .filter(waha_events::id.eq_any(&ids))
                .filter(waha_events::processed_at.is_null())
                .filter(
                    waha_events::lease_until
                        .is_null()
                        .or(waha_events::lease_until.lt(now)),
                ),
        )
        .set((
            waha_events::lease_until.eq(lease_until),
            waha_events::attempts.eq(waha_events::attempts + 1),
        ))
        .returning(waha_events::all_columns)
        .get_results(conn)?
    };
    rows.sort_unstable_by_key(|r| r.id);
    Ok(rows)
}

/// Marks an event applied; `false` when it was applied already (another processor took it
/// after this one's lease ran out): the caller's transaction must then roll back its effects.
pub fn event_done(conn: &mut DbConn, id: i64, now: NaiveDateTime) -> Result<bool, StoreError> {
    Ok(diesel::update(
        waha_events::table
            .filter(waha_events::id.eq(id))
            .filter(waha_events::processed_at.is_null()),
    )
    .set((
        waha_events::processed_at.eq(now),
        waha_events::lease_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?
        == 1)
}

/// Leaves an event owed, tried again from `retry_at`, with why.
pub fn event_retry(
    conn: &mut DbConn,
    id: i64,
    error: &str,
    retry_at: NaiveDateTime,
) -> Result<(), StoreError> {
    diesel::update(waha_events::table.find(id))
        .set((
            waha_events::lease_until.eq(retry_at),
            waha_events::error.eq(error),
        ))
        .execute(conn)?;
    Ok(())
}

/// What an ack did.
#[derive(Debug, Clone)]
pub enum AckEffect {
    /// The message moved (or a missing timestamp was filled): it as it is now.
    Applied(Box<MessageRow>),
    /// Nothing to change (a late or repeated ack).
    Unchanged,
    /// No message has that WhatsApp id (yet: its send may not be recorded).
    Unknown,
}

fn applied(conn: &mut DbConn, id: i64) -> Result<AckEffect, StoreError> {
    let row = messages::table
        .find(id)
        .select(MessageRow::as_select())
        .first(conn)?;
    Ok(AckEffect::Applied(Box::new(row)))
}

/// The outbound message WhatsApp knows as `provider_message_id`: its id and status.
fn message_of(
    conn: &mut DbConn,
    provider_message_id: &str,
) -> Result<Option<(i64, String)>, StoreError> {
    Ok(messages::table
        .filter(messages::provider_message_id.eq(provider_message_id))
        .select((messages::id, messages::status))
        .first(conn)
        .optional()?)
}

/// Applies a DEVICE (delivered) or READ/PLAYED (read) ack at `at`: the status only moves
/// forward; a late DEVICE after READ only fills an empty `delivered_at`; a READ first also
/// fills `delivered_at`.
///
/// One read and one write (the ack path is the ingest's hottest): the write is guarded by the
/// status it was computed from and fills timestamps only where they are empty, so a status
/// changed meanwhile (another ack, a resend) makes it read again instead of overwriting.
pub fn apply_delivery_ack(
    conn: &mut DbConn,
    provider_message_id: &str,
    read: bool,
    at: NaiveDateTime,
) -> Result<AckEffect, StoreError> {
    let to = if read {
        MessageStatus::Read
    } else {
        MessageStatus::Delivered
    };
    for _ in 0..8 {
        let Some(seen) = messages::table
            .filter(messages::provider_message_id.eq(provider_message_id))
            .select(MessageRow::as_select())
            .first(conn)
            .optional()?
        else {
            return Ok(AckEffect::Unknown);
        };
        let moves = matches!(seen.status, MessageStatus::Sent | MessageStatus::Delivered)
            && seen.status.can_move_to(to);
        let status = if moves { to } else { seen.status };
        // Timestamps: fill what is empty (never overwrite an earlier one).
        let fill_delivered = seen.delivered_at.is_none()
            && matches!(status, MessageStatus::Delivered | MessageStatus::Read);
        let fill_read = read && seen.read_at.is_none() && status == MessageStatus::Read;
        if !moves && !fill_delivered && !fill_read {
            return Ok(AckEffect::Unchanged);
        }
        let guarded = messages::table
            .filter(messages::id.eq(seen.id))
            .filter(messages::status.eq(seen.status.as_str()));
        let filled = (
            messages::delivered_at.eq(coalesce(
                messages::delivered_at,
                fill_delivered.then_some(at),
            )),
            messages::read_at.eq(coalesce(messages::read_at, fill_read.then_some(at))),
        );
        let written: Option<MessageRow> = if moves {
            diesel::update(guarded)
                .set((
                    messages::status.eq(to.as_str()),
                    messages::status_updated_at.eq(at),
                    messages::updated_at.eq(at),
                    messages::revision.eq(messages::revision + 1),
                    filled,
                ))
                .returning(messages::all_columns)
                .get_result(conn)
                .optional()?
        } else {
            diesel::update(guarded)
                .set(filled)
                .returning(messages::all_columns)
                .get_result(conn)
                .optional()?
        };
        if let Some(row) = written {
            return Ok(AckEffect::Applied(Box::new(row)));
        }
        // The status changed between the read and the write: read again.
    }
    Err(StoreError::Conflict("message"))
}

/// An ERROR ack that is not WhatsApp's reach-out refusal: the sent message is `failed`, with
/// WAHA's ack in `api_response`.
pub fn apply_error_ack(
    conn: &mut DbConn,
    provider_message_id: &str,
    api_response: &str,
    at: NaiveDateTime,
) -> Result<AckEffect, StoreError> {
    let Some((id, _)) = message_of(conn, provider_message_id)? else {
        return Ok(AckEffect::Unknown);
    };
    let to = MessageStatus::Failed;
    let moved = diesel::update(messages::table)
        .filter(messages::id.eq(id))
        .filter(messages::status.eq_any(legal_sources(&[MessageStatus::Sent], to)))
        .set((
            messages::status.eq(to.as_str()),
            messages::is_sent.eq(false),
            messages::api_response.eq(api_response),
            messages::status_updated_at.eq(at),
            messages::updated_at.eq(at),
            messages::revision.eq(messages::revision + 1),
        ))
        .execute(conn)?;
    if moved == 0 {
        return Ok(AckEffect::Unchanged);
    }
    applied(conn, id)
}

/// NOWEB's form of WhatsApp's reach-out timelock (the send was accepted, then an ERROR ack came):
/// the message goes back to `pending` to be sent again with a fresh id once the device may reach
/// out (its attempt refunded: a 463 never burns a message), and the device pauses until `until`
/// unless it is paused longer already. One transaction.
pub fn apply_timelock_ack(
    conn: &mut DbConn,
    provider_message_id: &str,
    api_response: &str,
    until: NaiveDateTime,
    at: NaiveDateTime,
) -> Result<AckEffect, StoreError> {
    crate::transaction(conn, |c| {
        let Some((id, _)) = message_of(c, provider_message_id)? else {
            return Ok(AckEffect::Unknown);
        };
        let to = MessageStatus::Pending;
        let device: Option<i64> = diesel::update(messages::table)
            .filter(messages::id.eq(id))
            .filter(messages::status.eq_any(legal_sources(&[MessageStatus::Sent], to)))
            .set((
                messages::status.eq(to.as_str()),
                messages::is_sent.eq(false),
                messages::provider_message_id.eq(None::<String>),
                messages::wa_message_id.eq(None::<String>),
                messages::sent_at.eq(None::<NaiveDateTime>),
                messages::api_response.eq(api_response),
                messages::hold_reason.eq(HoldReason::ReachOutTimelock.as_str()),
                messages::due_at.eq(until),
                job_owed_again(),
                messages::attempts.eq(messages::attempts - 1),
                messages::status_updated_at.eq(at),
                messages::updated_at.eq(at),
                messages::revision.eq(messages::revision + 1),
            ))
            .returning(messages::device_id)
            .get_result(c)
            .optional()?;
        let Some(device) = device else {
            return Ok(AckEffect::Unchanged);
        };
        pause_device_until(c, device, until, HoldReason::ReachOutTimelock)?;
        applied(c, id)
    })
}

/// A session's status as WAHA reported it: the device's `status`; once it is `working`, the
/// messages held because the session could not send are due at once. Returns the live device
/// it applied to.
pub fn apply_session_status(
    conn: &mut DbConn,
    session_id: &str,
    status: DeviceStatus,
    at: NaiveDateTime,
) -> Result<Option<i64>, StoreError> {
    crate::transaction(conn, |c| {
        let device: Option<i64> = diesel::update(
            devices::table
                .filter(devices::session_id.eq(session_id))
                .filter(devices::deleted_at.is_null()),
        )
        .set(devices::status.eq(status.as_str()))
        .returning(devices::id)
        .get_result(c)
        .optional()?;
        let Some(device) = device else {
            return Ok(None);
        };
        if status == DeviceStatus::Working {
            release_held(c, device, &[HoldReason::SessionNotReady], at)?;
        }
        Ok(Some(device))
    })
}

/// The HMAC key of the device with `session_id` (the ingest verifies each event with it; a
/// deleted device's stopped session may still post its last events).
pub fn hmac_key_of(conn: &mut DbConn, session_id: &str) -> Result<Option<String>, StoreError> {
    Ok(devices::table
        .filter(devices::session_id.eq(session_id))
        .order(devices::id.desc())
        .select(devices::webhook_hmac_key)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten())
}

/// WAHA reported the session's reach-out timelock as active until `until`: the device pauses
/// until then (never shortened). Returns whether a live device has that session.
pub fn pause_session(
    conn: &mut DbConn,
    session_id: &str,
    until: NaiveDateTime,
) -> Result<bool, StoreError> {
    let live = devices::table
        .filter(devices::session_id.eq(session_id))
        .filter(devices::deleted_at.is_null());
    let found: Option<i64> = live.select(devices::id).first(conn).optional()?;
    let Some(device) = found else {
        return Ok(false);
    };
    pause_device_until(conn, device, until, HoldReason::ReachOutTimelock)?;
    Ok(true)
}

/// WAHA reported the session's reach-out timelock as lifted: a device paused for it resumes now
/// (its held messages due at once). Returns whether one did.
pub fn lift_session_timelock(
    conn: &mut DbConn,
    session_id: &str,
    now: NaiveDateTime,
) -> Result<bool, StoreError> {
    let paused: Option<i64> = devices::table
        .filter(devices::session_id.eq(session_id))
        .filter(devices::deleted_at.is_null())
        .filter(devices::pause_reason.eq(HoldReason::ReachOutTimelock.as_str()))
        .select(devices::id)
        .first(conn)
        .optional()?;
    match paused {
        Some(device) => Ok(crate::dispatch::resume_device(conn, device, now)?.0),
        None => Ok(false),
    }
}

/// Deletes up to `limit` events applied before `before`; returns how many. Small batches keep
/// each statement short next to the live traffic.
pub fn prune_events(
    conn: &mut DbConn,
    before: NaiveDateTime,
    limit: i64,
) -> Result<usize, StoreError> {
    let ids: Vec<i64> = waha_events::table
        .filter(waha_events::processed_at.lt(before))
        .order(waha_events::id.asc())
        .limit(limit)
        .select(waha_events::id)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(waha_events::table.filter(waha_events::id.eq_any(&ids))).execute(conn)?)
}
