//! The send pipeline's writes: the relay's reservation and publication marks, the dispatcher's
//! claim (`pending → processing` with a lease) and the outcomes it records, and the sweep of
//! claims whose dispatcher died. Every status change goes through the legal moves of
//! [`MessageStatus::can_move_to`].

use chrono::NaiveDateTime;
use chrono::TimeDelta;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
use wapim_domain::pacing::{self, Pace, PaceDecision, PaceState};
use wapim_domain::safety::{
    self, check_pause, stored_window, Gate, Limits, Pause, PauseGate, Usage, RECIPIENT_CAP_SPAN,
};
use wapim_domain::{HoldReason, MessageStatus, MessageType, Tz};

use crate::messages::{job_owed_again, legal_sources, MessageRow};
use crate::schema::{devices, messages, suppressions};
use crate::{coalesce, DbConn, StoreError};

/// Reserves up to `limit` messages whose send job is owed (live, `pending`, due by `now`, not
/// published, not reserved by a live relay) for `lease`, and returns their ids, oldest due
/// first. On PostgreSQL the candidates are locked `FOR UPDATE SKIP LOCKED`, so relays on
/// several gateway replicas never reserve the same rows; SQLite has one writer. A relay that
/// dies after reserving loses nothing: the reservation expires and another relay takes the rows.
/// Each comes with the `traceparent` its job carries.
/// backend-specific.
pub fn reserve_due(
    conn: &mut DbConn,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> Result<Vec<OwedJob>, StoreError> {
    let owed = || {
        messages::table
            .filter(messages::status.eq(MessageStatus::Pending.as_str()))
            .filter(messages::published_at.is_null())
            .filter(messages::deleted_at.is_null())
            .filter(messages::due_at.le(now))
            .filter(
                messages::relay_lease_until
                    .is_null()
                    .or(messages::relay_lease_until.lt(now)),
            )
            .order(messages::due_at.asc())
            .limit(limit)
            .select((messages::id, messages::session_id, messages::traceparent))
    };
    if let DbConn::Pg(pg) = conn {
        return pg.transaction(|pg| {
            let owed: Vec<OwedJob> = owed().for_update().skip_locked().load(pg)?;
            if !owed.is_empty() {
                let ids: Vec<i64> = owed.iter().map(|o| o.id).collect();
                diesel::update(messages::table.filter(messages::id.eq_any(&ids)))
                    .set(messages::relay_lease_until.eq(lease_until))
                    .execute(pg)?;
            }
            Ok::<_, StoreError>(owed)
        });
    }
    // SQLite: one statement, so it takes the write lock before reading (a read-then-write
    // transaction could not wait for another writer). diesel cannot alias the table for the
    // self-referencing subquery, hence the SQL text (values are bound, never formatted in).
    let mut owed: Vec<OwedJob> = diesel::sql_query(
        "UPDATE messages SET relay_lease_until = ? WHERE id IN (\
           SELECT id FROM messages WHERE status = ? AND published_at IS NULL \
           AND deleted_at IS NULL AND due_at <= ? \
           AND (relay_lease_until IS NULL OR relay_lease_until < ?) \
           ORDER BY due_at LIMIT ?) RETURNING id, session_id, traceparent",
    )
    .bind::<Timestamp, _>(lease_until)
    .bind::<Text, _>(MessageStatus::Pending.as_str())
    .bind::<Timestamp, _>(now)
    .bind::<Timestamp, _>(now)
    .bind::<BigInt, _>(limit)
    .load::<OwedJob>(conn)?;
    owed.sort_unstable_by_key(|o| o.id);
    Ok(owed)
}

/// A send job the relay owes: the message it names, its session, and the trace it continues.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName)]
pub struct OwedJob {
    /// The message to send.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// Its device's WAHA session.
    #[diesel(sql_type = Text)]
    pub session_id: String,
    /// W3C `traceparent` of the request that accepted it.
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub traceparent: Option<String>,
}

/// Marks messages whose send job the broker confirmed, if they are still under the reservation
/// (`lease_until`) the relay published them under. A row whose job became owed again meanwhile
/// (a dispatcher released it for a retry, an edit moved it) lost that reservation, so it stays
/// owed and is published again, instead of being marked published with no job left for it.
pub fn mark_published(
    conn: &mut DbConn,
    ids: &[i64],
    lease_until: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        messages::table
            .filter(messages::id.eq_any(ids))
            .filter(messages::relay_lease_until.eq(lease_until)),
    )
    .set((
        messages::published_at.eq(now),
        messages::relay_lease_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?)
}

/// The earliest `due_at` among owed jobs that are not yet due (so the relay can sleep until
/// then instead of polling).
pub fn next_due(conn: &mut DbConn) -> Result<Option<NaiveDateTime>, StoreError> {
    Ok(messages::table
        .filter(messages::status.eq(MessageStatus::Pending.as_str()))
        .filter(messages::published_at.is_null())
        .filter(messages::deleted_at.is_null())
        .select(diesel::dsl::min(messages::due_at))
        .first(conn)?)
}

/// Claims a message for sending: `pending → processing` with a lease until `lease_until`, one
/// more attempt, in one guarded UPDATE, only if it is live, due by `now` and its device is
/// live. `None` when any of that is not so (edited to later, deleted, already claimed, sent):
/// the job is then dropped, so a duplicated or redelivered job never causes a second send.
pub fn claim(
    conn: &mut DbConn,
    id: i64,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
) -> Result<Option<MessageRow>, StoreError> {
    claim_with_wa_id(conn, id, now, lease_until, None)
}

/// [`claim`], also storing `wa_message_id` (a WhatsApp id asked of WAHA before the claim) in the
/// same write when the message is a text that has none yet: one write fewer per send, and the id
/// is stored before WAHA is asked to send. Media sends carry no id, so they never get one here.
pub fn claim_with_wa_id(
    conn: &mut DbConn,
    id: i64,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    wa_message_id: Option<&str>,
) -> Result<Option<MessageRow>, StoreError> {
    let to = MessageStatus::Processing;
    let live_device = devices::table
        .filter(devices::id.eq(messages::device_id))
        .filter(devices::deleted_at.is_null());
    let takes_id = messages::message_type
        .eq(MessageType::Text.as_str())
        .and(messages::wa_message_id.is_null());
    let wa_id = diesel::dsl::case_when(takes_id, wa_message_id.into_sql::<Nullable<Text>>())
        .otherwise(messages::wa_message_id);
    Ok(diesel::update(messages::table)
        .filter(messages::id.eq(id))
        .filter(messages::deleted_at.is_null())
        .filter(messages::due_at.le(now))
        .filter(messages::status.eq_any(legal_sources(&[MessageStatus::Pending], to)))
        .filter(diesel::dsl::exists(live_device))
        .set((
            messages::status.eq(to.as_str()),
            messages::status_updated_at.eq(now),
            messages::updated_at.eq(now),
            messages::lease_until.eq(lease_until),
            messages::attempts.eq(messages::attempts + 1),
            messages::revision.eq(messages::revision + 1),
            messages::wa_message_id.eq(wa_id),
            messages::hold_reason.eq(None::<String>),
        ))
        .returning(messages::all_columns)
        .get_result(conn)
        .optional()?)
}

/// Stores the WhatsApp id generated for a claimed message, before WAHA is asked to send it: if
/// the dispatcher dies during the send, the id is how the outcome is found out.
pub fn set_wa_message_id(
    conn: &mut DbConn,
    id: i64,
    wa_message_id: &str,
) -> Result<bool, StoreError> {
    Ok(diesel::update(
        messages::table
            .filter(messages::id.eq(id))
            .filter(messages::status.eq(MessageStatus::Processing.as_str())),
    )
    .set(messages::wa_message_id.eq(wa_message_id))
    .execute(conn)?
        == 1)
}

/// One logged outcome of a message's claims (`GET` of a message's attempts; the dashboard's
/// timeline).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = crate::schema::message_attempts)]
pub struct AttemptRow {
    /// Row id.
    pub id: i64,
    /// The message.
    pub message_id: i64,
    /// The message's attempt count after it.
    pub attempt: i32,
    /// `sent`, `failed` or `released` (given back to wait).
    pub outcome: String,
    /// Why it waits, when released.
    pub hold_reason: Option<String>,
    /// WAHA's answer (or the error), as stored in `api_response` then.
    pub api_response: Option<String>,
    /// How many claims in a row ended exactly like this.
    pub repeats: i32,
    /// The first of them.
    pub first_at: NaiveDateTime,
    /// The last of them.
    pub last_at: NaiveDateTime,
}

/// Longest `api_response` kept in the attempt log.
const ATTEMPT_RESPONSE_CHARS: usize = 4000;

/// Logs the outcome of a claim of `row` (as written): a new entry, or one more repeat of the
/// previous entry when it ended the same way.
/// How a claim ended, as the attempt log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttemptOutcome {
    /// WAHA accepted the send.
    Sent,
    /// The send cannot succeed.
    Failed,
    /// Given back to wait (with its hold or WAHA's answer).
    Released,
}

impl AttemptOutcome {
    fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Sent => "sent",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Released => "released",
        }
    }
}

/// Ends a claim: runs `write` (the guarded status change) and, when it changed a row that
/// `worth_logging` accepts, logs the outcome, in one transaction.
fn end_claim(
    conn: &mut DbConn,
    outcome: AttemptOutcome,
    now: NaiveDateTime,
    worth_logging: impl Fn(&MessageRow) -> bool,
    write: impl FnOnce(&mut DbConn) -> Result<Option<MessageRow>, StoreError>,
) -> Result<Option<MessageRow>, StoreError> {
    crate::transaction(conn, |conn| {
        let row = write(conn)?;
        if let Some(row) = row.as_ref().filter(|r| worth_logging(r)) {
            log_attempt(conn, row, outcome, now)?;
        }
        Ok(row)
    })
}

fn log_attempt(
    conn: &mut DbConn,
    row: &MessageRow,
    outcome: AttemptOutcome,
    now: NaiveDateTime,
) -> Result<(), StoreError> {
    use crate::schema::message_attempts as a;
    let outcome = outcome.as_str();
    let response: Option<String> = row
        .api_response
        .as_deref()
        .map(|r| r.chars().take(ATTEMPT_RESPONSE_CHARS).collect());
    let hold = row
        .hold_reason
        .clone()
        .filter(|_| outcome == AttemptOutcome::Released.as_str());
    let last: Option<AttemptRow> = a::table
        .filter(a::message_id.eq(row.id))
        .order(a::id.desc())
        .select(AttemptRow::as_select())
        .first(conn)
        .optional()?;
    if let Some(last) =
        last.filter(|l| l.outcome == outcome && l.hold_reason == hold && l.api_response == response)
    {
        diesel::update(a::table.find(last.id))
            .set((
                a::repeats.eq(a::repeats + 1),
                a::last_at.eq(now),
                a::attempt.eq(row.attempts),
            ))
            .execute(conn)?;
        return Ok(());
    }
    diesel::insert_into(a::table)
        .values((
            a::message_id.eq(row.id),
            a::attempt.eq(row.attempts),
            a::outcome.eq(outcome),
            a::hold_reason.eq(hold),
            a::api_response.eq(response),
            a::first_at.eq(now),
            a::last_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// A message's logged attempts, oldest first (at most `limit`, the newest kept).
pub fn attempts_of(
    conn: &mut DbConn,
    message_id: i64,
    limit: i64,
) -> Result<Vec<AttemptRow>, StoreError> {
    use crate::schema::message_attempts as a;
    let mut rows: Vec<AttemptRow> = a::table
        .filter(a::message_id.eq(message_id))
        .order(a::id.desc())
        .limit(limit)
        .select(AttemptRow::as_select())
        .load(conn)?;
    rows.reverse();
    Ok(rows)
}

/// Records a send WAHA accepted: `processing → sent` with WhatsApp's id and WAHA's answer.
pub fn record_sent(
    conn: &mut DbConn,
    id: i64,
    provider_message_id: &str,
    api_response: &str,
    now: NaiveDateTime,
) -> Result<Option<MessageRow>, StoreError> {
    let to = MessageStatus::Sent;
    end_claim(
        conn,
        AttemptOutcome::Sent,
        now,
        |_| true,
        |conn| {
            Ok(diesel::update(messages::table)
                .filter(messages::id.eq(id))
                .filter(messages::status.eq_any(legal_sources(&[MessageStatus::Processing], to)))
                .set((
                    messages::status.eq(to.as_str()),
                    messages::is_sent.eq(true),
                    messages::provider_message_id.eq(provider_message_id),
                    messages::api_response.eq(api_response),
                    messages::sent_at.eq(now),
                    // A send no limit admitted (none was set) still counts if one is set later today.
                    messages::admitted_at.eq(coalesce(messages::admitted_at, Some(now))),
                    messages::status_updated_at.eq(now),
                    messages::updated_at.eq(now),
                    messages::lease_until.eq(None::<NaiveDateTime>),
                    messages::revision.eq(messages::revision + 1),
                ))
                .returning(messages::all_columns)
                .get_result(conn)
                .optional()?)
        },
    )
}

/// Records a send that cannot succeed: `processing → failed` with the last error.
pub fn record_failed(
    conn: &mut DbConn,
    id: i64,
    api_response: &str,
    now: NaiveDateTime,
) -> Result<Option<MessageRow>, StoreError> {
    let to = MessageStatus::Failed;
    end_claim(
        conn,
        AttemptOutcome::Failed,
        now,
        |_| true,
        |conn| {
            Ok(diesel::update(messages::table)
                .filter(messages::id.eq(id))
                .filter(messages::status.eq_any(legal_sources(&[MessageStatus::Processing], to)))
                .set((
                    messages::status.eq(to.as_str()),
                    messages::api_response.eq(api_response),
                    messages::status_updated_at.eq(now),
                    messages::updated_at.eq(now),
                    messages::lease_until.eq(None::<NaiveDateTime>),
                    messages::revision.eq(messages::revision + 1),
                ))
                .returning(messages::all_columns)
                .get_result(conn)
                .optional()?)
        },
    )
}

/// How [`release`] gives a claimed message back.
#[derive(Debug, Clone, Copy)]
pub struct Release<'a> {
    /// When it is due again.
    pub due_at: NaiveDateTime,
    /// A hold that must not burn an attempt (the session cannot send now).
    pub refund_attempt: bool,
    /// What WAHA answered, for `api_response`.
    pub api_response: Option<&'a str>,
    /// Why it waits (`hold_reason`).
    pub hold: Option<HoldReason>,
    /// The pacing slot it holds (`pace_slot_at`); any other release gives a stale one up.
    pub slot: Option<NaiveDateTime>,
}

impl Release<'_> {
    /// Due again at `due_at`, a new job owed, nothing else said.
    pub fn at(due_at: NaiveDateTime) -> Self {
        Release {
            due_at,
            refund_attempt: false,
            api_response: None,
            hold: None,
            slot: None,
        }
    }
}

/// Gives a claimed message back: `processing → pending`, as `how` says.
pub fn release(
    conn: &mut DbConn,
    id: i64,
    how: &Release<'_>,
    now: NaiveDateTime,
) -> Result<Option<MessageRow>, StoreError> {
    let Release {
        due_at,
        refund_attempt,
        api_response,
        hold,
        slot,
    } = *how;
    let to = MessageStatus::Pending;
    let refund = if refund_attempt { 1 } else { 0 };
    // Only a release that says why (WAHA's answer or a hold) is an attempt worth logging; a
    // bare one (a pacing slot not come yet) is not.
    let says_why = |r: &MessageRow| r.api_response.is_some() || r.hold_reason.is_some();
    end_claim(conn, AttemptOutcome::Released, now, says_why, |conn| {
        Ok(diesel::update(messages::table)
            .filter(messages::id.eq(id))
            .filter(messages::status.eq_any(legal_sources(&[MessageStatus::Processing], to)))
            .set((
                messages::status.eq(to.as_str()),
                messages::due_at.eq(due_at),
                job_owed_again(),
                messages::api_response.eq(api_response),
                messages::hold_reason.eq(hold.map(HoldReason::as_str)),
                messages::pace_slot_at.eq(slot),
                messages::attempts.eq(messages::attempts - refund),
                messages::status_updated_at.eq(now),
                messages::updated_at.eq(now),
                messages::lease_until.eq(None::<NaiveDateTime>),
                messages::revision.eq(messages::revision + 1),
            ))
            .returning(messages::all_columns)
            .get_result(conn)
            .optional()?)
    })
}

/// Claims whose lease ran out by `now` (their dispatcher died or hung), oldest first.
pub fn expired_claims(
    conn: &mut DbConn,
    now: NaiveDateTime,
    limit: i64,
) -> Result<Vec<MessageRow>, StoreError> {
    Ok(messages::table
        .filter(messages::status.eq(MessageStatus::Processing.as_str()))
        .filter(messages::lease_until.lt(now))
        .order(messages::lease_until.asc())
        .limit(limit)
        .select(MessageRow::as_select())
        .load(conn)?)
}

/// Takes over an expired claim for reconciliation: extends its lease only if it is still the
/// same expired claim (so two sweepers never reconcile one message at once).
pub fn take_over_claim(
    conn: &mut DbConn,
    id: i64,
    expired: NaiveDateTime,
    lease_until: NaiveDateTime,
) -> Result<bool, StoreError> {
    Ok(diesel::update(
        messages::table
            .filter(messages::id.eq(id))
            .filter(messages::status.eq(MessageStatus::Processing.as_str()))
            .filter(messages::lease_until.eq(expired)),
    )
    .set(messages::lease_until.eq(lease_until))
    .execute(conn)?
        == 1)
}

/// Puts a `failed` message back to `pending` for a new round of attempts (same record): due now,
/// its job owed again, attempts reset. `None` when it is not live and failed.
pub fn resend(
    conn: &mut DbConn,
    id: i64,
    device_id: Option<i64>,
    now: NaiveDateTime,
) -> Result<Option<MessageRow>, StoreError> {
    let to = MessageStatus::Pending;
    let mut target = diesel::update(messages::table)
        .filter(messages::id.eq(id))
        .filter(messages::deleted_at.is_null())
        .filter(messages::status.eq_any(legal_sources(&[MessageStatus::Failed], to)))
        .into_boxed();
    if let Some(device_id) = device_id {
        target = target.filter(messages::device_id.eq(device_id));
    }
    Ok(target
        .set((
            messages::status.eq(to.as_str()),
            messages::due_at.eq(now),
            job_owed_again(),
            messages::lease_until.eq(None::<NaiveDateTime>),
            messages::wa_message_id.eq(None::<String>),
            messages::attempts.eq(0),
            messages::status_updated_at.eq(now),
            messages::updated_at.eq(now),
            messages::revision.eq(messages::revision + 1),
        ))
        .returning(messages::all_columns)
        .get_result(conn)
        .optional()?)
}

/// The device's own pacing (`pacing_min_interval_ms`, `pacing_jitter_ms`) over `default`.
pub fn effective_pace(default: Pace, interval_ms: Option<i64>, jitter_ms: Option<i64>) -> Pace {
    let ms = |v: i64| chrono::TimeDelta::milliseconds(v.max(0));
    Pace {
        interval: interval_ms.map_or(default.interval, ms),
        jitter: jitter_ms.map_or(default.jitter, ms),
    }
}

/// The pacing of the live device with `session_id` over `default` (`None`: no such device).
pub fn device_pace(
    conn: &mut DbConn,
    session_id: &str,
    default: Pace,
) -> Result<Option<Pace>, StoreError> {
    let found: Option<(Option<i64>, Option<i64>)> = devices::table
        .filter(devices::session_id.eq(session_id))
        .filter(devices::deleted_at.is_null())
        .select((devices::pacing_min_interval_ms, devices::pacing_jitter_ms))
        .first(conn)
        .optional()?;
    Ok(found.map(|(i, j)| effective_pace(default, i, j)))
}

/// Server-wide defaults of sending safety, for what a device does not set itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SafetyDefaults {
    /// Pacing (`WAPIM_PACING__*`).
    pub pace: Pace,
    /// The time zone of devices that name none (`WAPIM_TIMEZONE`).
    pub timezone: Tz,
    /// How long a paused device waits between probes when WAHA does not say when its timelock
    /// ends.
    pub probe_every: TimeDelta,
}

/// A device's safety settings and pause, as one claim needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSafety {
    /// Its pacing (its own over the default).
    pub pace: Pace,
    /// Its limits.
    pub limits: Limits,
    /// Its pause, if any.
    pub pause: Option<Pause>,
    /// Seen + typing before each text.
    pub simulate_typing: bool,
}

type SafetyColumns = (
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
    bool,
    Option<NaiveDateTime>,
    Option<String>,
);

fn safety_columns() -> (
    devices::pacing_min_interval_ms,
    devices::pacing_jitter_ms,
    devices::timezone,
    devices::daily_cap,
    devices::send_window_start,
    devices::send_window_end,
    devices::recipient_hourly_cap,
    devices::simulate_typing,
    devices::paused_until,
    devices::pause_reason,
) {
    (
        devices::pacing_min_interval_ms,
        devices::pacing_jitter_ms,
        devices::timezone,
        devices::daily_cap,
        devices::send_window_start,
        devices::send_window_end,
        devices::recipient_hourly_cap,
        devices::simulate_typing,
        devices::paused_until,
        devices::pause_reason,
    )
}

fn safety_from(columns: SafetyColumns, defaults: &SafetyDefaults) -> DeviceSafety {
    let (interval, jitter, tz, daily, start, end, per_recipient, typing, until, reason) = columns;
    let cap = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
    DeviceSafety {
        pace: effective_pace(defaults.pace, interval, jitter),
        limits: Limits {
            timezone: tz
                .as_deref()
                .and_then(|t| t.parse().ok())
                .unwrap_or(defaults.timezone),
            daily_cap: cap(daily),
            window: stored_window(start.as_deref(), end.as_deref()),
            recipient_hourly_cap: cap(per_recipient),
        },
        pause: match (until, reason.as_deref().and_then(|r| r.parse().ok())) {
            (Some(until), Some(reason)) => Some(Pause { until, reason }),
            _ => None,
        },
        simulate_typing: typing,
    }
}

/// A device's safety settings and pause, read without a lock (to decide whether a claim needs the
/// locked [`admit`] at all), and whether `recipient` is on its suppression list. A device that
/// is not there reads as the defaults.
pub fn safety_of(
    conn: &mut DbConn,
    device_id: i64,
    recipient: &str,
    defaults: &SafetyDefaults,
) -> Result<(DeviceSafety, bool), StoreError> {
    let suppressed = diesel::dsl::exists(
        suppressions::table
            .filter(suppressions::device_id.eq(device_id))
            .filter(suppressions::phone.eq(recipient)),
    );
    let found: Option<(SafetyColumns, bool)> = devices::table
        .find(device_id)
        .select((safety_columns(), suppressed))
        .first(conn)
        .optional()?;
    Ok(match found {
        Some((columns, suppressed)) => (safety_from(columns, defaults), suppressed),
        None => (safety_from(Default::default(), defaults), false),
    })
}

/// What [`admit`] decided for a claimed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send it now.
    Send {
        /// Pacing marked the device in flight until the claim's lease: call [`pace_finished`]
        /// when the send is over.
        paced: bool,
        /// The device was paused and this send is its probe: on success call
        /// [`resume_device`].
        probe: bool,
    },
    /// Not now: it is `pending` again, due at `until`, attempt refunded.
    Wait {
        /// When it is due again.
        until: NaiveDateTime,
        /// Why (also its `hold_reason`).
        reason: HoldReason,
    },
}

/// Decides, under the device row's lock (`FOR UPDATE` on PostgreSQL, the write lock of `BEGIN
/// IMMEDIATE` on SQLite), whether a message this dispatcher just claimed may be sent now: its
/// device's pause (one probe after it runs out), its sending window, daily cap and per-recipient
/// cap (counted from `admitted_at`), then its pacing unless `immediate`. The lock makes every
/// rule hold across dispatcher replicas. A message that must wait goes back to `pending` with its
/// hold reason, due when the rule lets it (attempt refunded); one that may go is stamped
/// `admitted_at`. `jitter_fraction` (in `0..=1`, drawn by the caller) picks the pacing gap's
/// random extra; `in_flight_until` is the claim's lease. See [`wapim_domain::pacing::decide`] and
/// [`wapim_domain::safety::check`] for the rules.
pub fn admit(
    conn: &mut DbConn,
    message: &MessageRow,
    defaults: &SafetyDefaults,
    now: NaiveDateTime,
    jitter_fraction: f64,
    in_flight_until: NaiveDateTime,
    immediate: bool,
) -> Result<Admission, StoreError> {
    crate::transaction(conn, |c| {
        let state_of = devices::table.find(message.device_id).select((
            (
                devices::pace_last_send_at,
                devices::pace_next_slot_at,
                devices::pace_in_flight_until,
            ),
            safety_columns(),
        ));
        let ((last_send_at, next_slot_at, in_flight), columns) = match &mut *c {
            DbConn::Pg(pg) => state_of.for_update().first(pg)?,
            other => state_of.first(other)?,
        };
        let device = safety_from(columns, defaults);
        let wait = |c: &mut DbConn, until, reason, slot| {
            let how = Release {
                refund_attempt: true,
                api_response: message.api_response.as_deref(),
                hold: Some(reason),
                slot,
                ..Release::at(until)
            };
            release(c, message.id, &how, now)?;
            Ok::<_, StoreError>(Admission::Wait { until, reason })
        };

        let probe = match check_pause(device.pause, now, defaults.probe_every) {
            PauseGate::Hold(p) => return wait(c, p.until, p.reason, None),
            PauseGate::Probe { until } => Some(until),
            PauseGate::Clear => None,
        };
        if device.limits.any() {
            let usage = usage_of(c, message, &device.limits, now)?;
            if let Gate::Hold { until, reason } = safety::check(&device.limits, &usage, now) {
                return wait(c, until, reason, None);
            }
        }
        let mut paced = false;
        if !immediate && !device.pace.is_off() {
            let pace = device.pace;
            let jitter_ms =
                (pace.jitter.num_milliseconds() as f64 * jitter_fraction.clamp(0.0, 1.0)) as i64;
            let state = PaceState {
                last_send_at,
                next_slot_at,
                in_flight_until: in_flight,
            };
            let decision = pacing::decide(
                pace,
                state,
                now,
                message.pace_slot_at,
                TimeDelta::milliseconds(jitter_ms),
                in_flight_until,
            );
            let (PaceDecision::Send { state: next } | PaceDecision::Wait { state: next, .. }) =
                decision;
            if next != state {
                diesel::update(devices::table.find(message.device_id))
                    .set((
                        devices::pace_last_send_at.eq(next.last_send_at),
                        devices::pace_next_slot_at.eq(next.next_slot_at),
                        devices::pace_in_flight_until.eq(next.in_flight_until),
                    ))
                    .execute(c)?;
            }
            if let PaceDecision::Wait { until, slot, .. } = decision {
                return wait(c, until, HoldReason::Pacing, Some(slot));
            }
            paced = true;
        }
        if let Some(until) = probe {
            diesel::update(devices::table.find(message.device_id))
                .set(devices::paused_until.eq(until))
                .execute(c)?;
        }
        diesel::update(messages::table.find(message.id))
            .set(messages::admitted_at.eq(now))
            .execute(c)?;
        Ok(Admission::Send {
            paced,
            probe: probe.is_some(),
        })
    })
}

/// What the device's limits count, for the message being admitted (itself excluded).
fn usage_of(
    conn: &mut DbConn,
    message: &MessageRow,
    limits: &Limits,
    now: NaiveDateTime,
) -> Result<Usage, StoreError> {
    let admitted_since = |since: NaiveDateTime| {
        messages::table
            .filter(messages::device_id.eq(message.device_id))
            .filter(messages::admitted_at.ge(since))
            .filter(messages::id.ne(message.id))
    };
    let mut usage = Usage::default();
    if limits.daily_cap.is_some() {
        let day_start = safety::local_day_start(limits.timezone, now);
        let n: i64 = admitted_since(day_start).count().get_result(conn)?;
        usage.sent_today = u64::try_from(n).unwrap_or(0);
    }
    if limits.recipient_hourly_cap.is_some() {
        let (n, oldest): (i64, Option<NaiveDateTime>) = admitted_since(now - RECIPIENT_CAP_SPAN)
            .filter(messages::recipient.eq(&message.recipient))
            .select((
                diesel::dsl::count_star(),
                diesel::dsl::min(messages::admitted_at),
            ))
            .first(conn)?;
        usage.to_recipient_recently = u64::try_from(n).unwrap_or(0);
        usage.oldest_to_recipient = oldest;
    }
    Ok(usage)
}

/// Pauses a device after WhatsApp refused a send of `message_id` with its reach-out timelock:
/// the device holds every message until `until` (then one probe goes), and the message goes back
/// to `pending` due then, its attempt refunded: a 463 never burns a message. One transaction.
pub fn pause_after(
    conn: &mut DbConn,
    message_id: i64,
    device_id: i64,
    until: NaiveDateTime,
    reason: HoldReason,
    api_response: &str,
    now: NaiveDateTime,
) -> Result<(), StoreError> {
    crate::transaction(conn, |c| {
        pause_device_until(c, device_id, until, reason)?;
        let how = Release {
            refund_attempt: true,
            api_response: Some(api_response),
            hold: Some(reason),
            ..Release::at(until)
        };
        release(c, message_id, &how, now)?;
        Ok(())
    })
}

/// Pauses a device until `until` for `reason`, never shortening a longer pause it is under.
pub(crate) fn pause_device_until(
    conn: &mut DbConn,
    device_id: i64,
    until: NaiveDateTime,
    reason: HoldReason,
) -> Result<(), StoreError> {
    let changed = diesel::update(
        devices::table.filter(devices::id.eq(device_id)).filter(
            devices::paused_until
                .is_null()
                .or(devices::paused_until.lt(until)),
        ),
    )
    .set((
        devices::paused_until.eq(until),
        devices::pause_reason.eq(reason.as_str()),
    ))
    .execute(conn)?;
    if changed == 1 {
        let data = serde_json::json!({
            "device_id": device_id,
            "paused_until": wapim_domain::time::format_naive_utc(&until),
            "pause_reason": reason.as_str(),
        });
        let now = wapim_domain::time::now_micros().naive_utc();
        crate::webhooks::enqueue(conn, device_id, "device.paused", data, None, now)?;
    }
    Ok(())
}

/// Ends a device's pause (an operator resumed it, or its probe went through): its held messages
/// are due now and their jobs owed again. Returns whether it was paused and how many messages it
/// released.
pub fn resume_device(
    conn: &mut DbConn,
    device_id: i64,
    now: NaiveDateTime,
) -> Result<(bool, usize), StoreError> {
    crate::transaction(conn, |c| {
        let was_paused = diesel::update(
            devices::table
                .filter(devices::id.eq(device_id))
                .filter(devices::pause_reason.is_not_null()),
        )
        .set((
            devices::paused_until.eq(None::<NaiveDateTime>),
            devices::pause_reason.eq(None::<String>),
        ))
        .execute(c)?
            == 1;
        let released = release_held(c, device_id, &[HoldReason::ReachOutTimelock], now)?;
        if was_paused {
            let data = serde_json::json!({ "device_id": device_id, "released_messages": released });
            crate::webhooks::enqueue(c, device_id, "device.resumed", data, None, now)?;
        }
        Ok((was_paused, released))
    })
}

/// Makes a device's messages held for one of `reasons` due now (their jobs owed again), so they
/// are decided afresh: after its pause ends, or after its limits changed. Returns how many.
pub fn release_held(
    conn: &mut DbConn,
    device_id: i64,
    reasons: &[HoldReason],
    now: NaiveDateTime,
) -> Result<usize, StoreError> {
    let reasons: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
    Ok(diesel::update(
        messages::table
            .filter(messages::device_id.eq(device_id))
            .filter(messages::status.eq(MessageStatus::Pending.as_str()))
            .filter(messages::deleted_at.is_null())
            .filter(messages::hold_reason.eq_any(reasons))
            .filter(messages::due_at.gt(now)),
    )
    .set((messages::due_at.eq(now), job_owed_again()))
    .execute(conn)?)
}

/// Records that a paced send of `device_id` is over (whatever its outcome) at `at`: the next
/// send of the device may start `interval` after it. Only the send that set `in_flight_until`
/// clears it; after a dispatcher died mid-send the mark simply expires.
pub fn pace_finished(
    conn: &mut DbConn,
    device_id: i64,
    at: NaiveDateTime,
    in_flight_until: NaiveDateTime,
) -> Result<bool, StoreError> {
    Ok(diesel::update(
        devices::table
            .filter(devices::id.eq(device_id))
            .filter(devices::pace_in_flight_until.eq(in_flight_until)),
    )
    .set((
        devices::pace_last_send_at.eq(at),
        devices::pace_in_flight_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?
        == 1)
}

/// Records a send of `device_id` that pacing let through unpaced (an immediate send) as having
/// ended at `at`, so the device's next paced send still keeps its gap after it. Never moves the
/// mark backwards.
pub fn pace_note_unpaced_send(
    conn: &mut DbConn,
    device_id: i64,
    at: NaiveDateTime,
) -> Result<(), StoreError> {
    diesel::update(
        devices::table.filter(devices::id.eq(device_id)).filter(
            devices::pace_last_send_at
                .is_null()
                .or(devices::pace_last_send_at.lt(at)),
        ),
    )
    .set(devices::pace_last_send_at.eq(at))
    .execute(conn)?;
    Ok(())
}

/// A device's sending state as its read shows it (counted now, without a lock).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendingCounts {
    /// Pending messages that wait for a reason (pacing, a limit, the pause, WAHA), by reason.
    pub held: Vec<(String, i64)>,
    /// Sends let through since the local day began.
    pub sent_today: i64,
}

/// Counts what [`SendingCounts`] shows for a device whose local day began at `day_start`.
pub fn sending_counts(
    conn: &mut DbConn,
    device_id: i64,
    day_start: NaiveDateTime,
) -> Result<SendingCounts, StoreError> {
    let held: Vec<(Option<String>, i64)> = messages::table
        .filter(messages::device_id.eq(device_id))
        .filter(messages::status.eq(MessageStatus::Pending.as_str()))
        .filter(messages::deleted_at.is_null())
        .filter(messages::hold_reason.is_not_null())
        .group_by(messages::hold_reason)
        .select((messages::hold_reason, diesel::dsl::count_star()))
        .order(messages::hold_reason.asc())
        .load(conn)?;
    let sent_today: i64 = messages::table
        .filter(messages::device_id.eq(device_id))
        .filter(messages::admitted_at.ge(day_start))
        .count()
        .get_result(conn)?;
    Ok(SendingCounts {
        held: held
            .into_iter()
            .filter_map(|(reason, n)| Some((reason?, n)))
            .collect(),
        sent_today,
    })
}

/// What `/metrics` shows of the database, read right before a scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Due, pending messages whose send job is not published yet.
    pub backlog_messages: i64,
    /// Devices owing a session sync that is due and unpublished.
    pub backlog_syncs: i64,
    /// Due webhook deliveries whose job is not published yet.
    pub backlog_deliveries: i64,
    /// Seconds the oldest due, unpublished message has waited (0 when none).
    pub oldest_due_age_secs: i64,
    /// Pending messages waiting for a later time, by hold reason.
    pub held: Vec<(String, i64)>,
    /// Devices paused now.
    pub paused_devices: i64,
}

/// Reads the [`Gauges`] at `now` (a handful of indexed counts).
pub fn gauges(conn: &mut DbConn, now: NaiveDateTime) -> Result<Gauges, StoreError> {
    use crate::schema::webhook_deliveries;
    let owed = messages::table
        .filter(messages::status.eq(MessageStatus::Pending.as_str()))
        .filter(messages::published_at.is_null())
        .filter(messages::deleted_at.is_null())
        .filter(messages::due_at.le(now));
    let backlog_messages: i64 = owed.count().get_result(conn)?;
    let oldest: Option<NaiveDateTime> = owed
        .select(diesel::dsl::min(messages::due_at))
        .first(conn)?;
    let backlog_syncs: i64 = devices::table
        .filter(devices::session_sync_due_at.le(now))
        .filter(devices::session_sync_published_at.is_null())
        .count()
        .get_result(conn)?;
    let backlog_deliveries: i64 = webhook_deliveries::table
        .filter(webhook_deliveries::status.eq("pending"))
        .filter(webhook_deliveries::published_at.is_null())
        .filter(webhook_deliveries::due_at.le(now))
        .count()
        .get_result(conn)?;
    let held: Vec<(Option<String>, i64)> = messages::table
        .filter(messages::status.eq(MessageStatus::Pending.as_str()))
        .filter(messages::deleted_at.is_null())
        .filter(messages::hold_reason.is_not_null())
        .filter(messages::due_at.gt(now))
        .group_by(messages::hold_reason)
        .select((messages::hold_reason, diesel::dsl::count_star()))
        .load(conn)?;
    let paused_devices: i64 = devices::table
        .filter(devices::deleted_at.is_null())
        .filter(devices::paused_until.gt(now))
        .count()
        .get_result(conn)?;
    Ok(Gauges {
        backlog_messages,
        backlog_syncs,
        backlog_deliveries,
        oldest_due_age_secs: oldest.map_or(0, |t| (now - t).num_seconds().max(0)),
        held: held
            .into_iter()
            .filter_map(|(reason, n)| reason.map(|r| (r, n)))
            .collect(),
        paused_devices,
    })
}
