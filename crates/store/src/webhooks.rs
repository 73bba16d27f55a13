//! Deliveries to the integrator's webhook: one row per event, created in the same transaction
//! as the change it reports, handed to the dispatcher through the same durable outbox as
//! messages (the relay reserves due rows and publishes a `deliver_webhook` job), every attempt
//! recorded, retried with backoff until [`RETRY_FOR`] after it was created (or replayed).

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use serde_json::{json, Value};
use wapim_domain::time::format_naive_utc;
use wapim_domain::WebhookDeliveryStatus;

use crate::listing::{Page, Paged};
use crate::schema::{devices, webhook_attempts, webhook_deliveries};
use crate::{DbConn, StoreError};

/// How long a delivery is retried before it is `failed`.
pub const RETRY_FOR: TimeDelta = TimeDelta::days(1);

/// A delivery published this long ago and still pending without a claim lost its job (a broker
/// that forgot it): the relay publishes it again.
const REPUBLISH_AFTER: TimeDelta = TimeDelta::minutes(5);

/// A delivery to the integrator's webhook.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries)]
pub struct DeliveryRow {
    /// Numeric id shown in the API.
    pub id: i64,
    /// The device whose event it carries.
    pub device_id: i64,
    /// Standard Webhooks' `webhook-id`, the same on every attempt.
    pub webhook_id: String,
    /// `message`, `message.ack`, `session.status`, `device.paused`, …
    pub event: String,
    /// Where it goes (the device's `webhook_url` when it was created).
    pub url: String,
    /// The JSON body.
    pub payload: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// When the next attempt is due.
    pub due_at: NaiveDateTime,
    /// When its job was published (outbox).
    pub published_at: Option<NaiveDateTime>,
    /// The relay's reservation.
    pub relay_lease_until: Option<NaiveDateTime>,
    /// A dispatcher's claim while it attempts it.
    pub lease_until: Option<NaiveDateTime>,
    /// Past this, a failed attempt ends it `failed`.
    pub give_up_at: NaiveDateTime,
    /// The receiver's last HTTP status.
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the receiver took it.
    pub delivered_at: Option<NaiveDateTime>,
    /// UTC.
    pub created_at: NaiveDateTime,
    /// UTC.
    pub updated_at: NaiveDateTime,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = webhook_attempts)]
pub struct AttemptRow {
    /// Row id.
    pub id: i64,
    /// The delivery.
    pub delivery_id: i64,
    /// When it was made.
    pub attempted_at: NaiveDateTime,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
    /// The start of the receiver's answer.
    pub response_body: Option<String>,
    /// How long it took.
    pub duration_ms: i64,
}

/// Whether `options` (the device's `webhook_options`, a JSON array) names `event`. No options
/// at all means every event.
pub fn subscribes(options: Option<&str>, event: &str) -> bool {
    match options.map(serde_json::from_str::<Vec<String>>) {
        None => true,
        Some(Ok(events)) => events.iter().any(|e| e == event || e == "*"),
        Some(Err(_)) => false,
    }
}

/// Creates a delivery of `event` for a device whose webhook is on and subscribes to it (else
/// nothing); `data` is Wapim's view of what happened, `waha` WAHA's payload when it came from
/// WAHA. Call inside the transaction of the change it reports. Returns the delivery's id.
pub fn enqueue(
    conn: &mut DbConn,
    device_id: i64,
    event: &str,
    data: Value,
    waha: Option<&Value>,
    now: NaiveDateTime,
) -> Result<Option<i64>, StoreError> {
    let device: Option<(String, bool, Option<String>, Option<String>)> = devices::table
        .filter(devices::id.eq(device_id))
        .filter(devices::deleted_at.is_null())
        .select((
            devices::session_id,
            devices::webhook_status,
            devices::webhook_url,
            devices::webhook_options,
        ))
        .first(conn)
        .optional()?;
    let Some((session_id, true, Some(url), options)) = device else {
        return Ok(None);
    };
    if url.trim().is_empty() || !subscribes(options.as_deref(), event) {
        return Ok(None);
    }
    let webhook_id = wapim_domain::token::new_webhook_id();
    let mut body = json!({
        "event": event,
        "webhook_id": webhook_id,
        "device_id": device_id,
        "session_id": session_id,
        "timestamp": format_naive_utc(&now),
        "data": data,
    });
    if let Some(waha) = waha {
        body["waha"] = waha.clone();
    }
    let id = diesel::insert_into(webhook_deliveries::table)
        .values((
            webhook_deliveries::device_id.eq(device_id),
            webhook_deliveries::webhook_id.eq(&webhook_id),
            webhook_deliveries::event.eq(event),
            webhook_deliveries::url.eq(url.trim()),
            webhook_deliveries::payload.eq(body.to_string()),
            webhook_deliveries::status.eq(WebhookDeliveryStatus::Pending.as_str()),
            webhook_deliveries::due_at.eq(now),
            webhook_deliveries::give_up_at.eq(now + RETRY_FOR),
            webhook_deliveries::created_at.eq(now),
            webhook_deliveries::updated_at.eq(now),
        ))
        .returning(webhook_deliveries::id)
        .get_result(conn)?;
    Ok(Some(id))
}

/// Reserves up to `limit` deliveries owed to the queue (pending, due, unpublished or published
/// long ago without a claim) until `lease_until`; returns their ids. PostgreSQL: `FOR UPDATE
/// SKIP LOCKED`; SQLite: one statement (one writer).
pub fn reserve_due(
    conn: &mut DbConn,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> Result<Vec<i64>, StoreError> {
    let stale = now - REPUBLISH_AFTER;
    let pending = WebhookDeliveryStatus::Pending.as_str();
    if let DbConn::Pg(pg) = conn {
        return pg.transaction(|pg| {
            let ids: Vec<i64> = webhook_deliveries::table
                .filter(webhook_deliveries::status.eq(pending))
                .filter(webhook_deliveries::due_at.le(now))
                .filter(
                    webhook_deliveries::published_at
                        .is_null()
                        .or(webhook_deliveries::published_at.lt(stale)),
                )
                .filter(
                    webhook_deliveries::relay_lease_until
                        .is_null()
                        .or(webhook_deliveries::relay_lease_until.lt(now)),
                )
                .filter(
                    webhook_deliveries::lease_until
                        .is_null()
                        .or(webhook_deliveries::lease_until.lt(now)),
                )
                .order(webhook_deliveries::due_at.asc())
                .limit(limit)
                .select(webhook_deliveries::id)
                .for_update()
                .skip_locked()
                .load(pg)?;
            if !ids.is_empty() {
                diesel::update(
                    webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(&ids)),
                )
                .set(webhook_deliveries::relay_lease_until.eq(lease_until))
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
        "UPDATE webhook_deliveries SET relay_lease_until = ? WHERE id IN (\
           SELECT id FROM webhook_deliveries WHERE status = ? AND due_at <= ? \
           AND (published_at IS NULL OR published_at < ?) \
           AND (relay_lease_until IS NULL OR relay_lease_until < ?) \
           AND (lease_until IS NULL OR lease_until < ?) \
           ORDER BY due_at LIMIT ?) RETURNING id",
    )
    .bind::<Timestamp, _>(lease_until)
    .bind::<Text, _>(pending)
    .bind::<Timestamp, _>(now)
    .bind::<Timestamp, _>(stale)
    .bind::<Timestamp, _>(now)
    .bind::<Timestamp, _>(now)
    .bind::<BigInt, _>(limit)
    .load::<Id>(conn)?
    .into_iter()
    .map(|i| i.id)
    .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Marks deliveries whose job the broker confirmed, if still under the relay's reservation.
pub fn mark_published(
    conn: &mut DbConn,
    ids: &[i64],
    reserved_until: NaiveDateTime,
    at: NaiveDateTime,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq_any(ids))
            .filter(webhook_deliveries::relay_lease_until.eq(reserved_until)),
    )
    .set((
        webhook_deliveries::published_at.eq(at),
        webhook_deliveries::relay_lease_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(())
}

/// A claimed delivery and the secret to sign it with.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The delivery (its `attempts` counts this one).
    pub delivery: DeliveryRow,
    /// The device's `whsec_…` secret (`None`: it has none yet).
    pub secret: Option<String>,
}

/// Claims a pending, due delivery for one attempt until `lease_until` (a guarded UPDATE: a
/// duplicated job attempts nothing). `None` when it is not pending, not due, or claimed.
pub fn claim(
    conn: &mut DbConn,
    id: i64,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
) -> Result<Option<Claimed>, StoreError> {
    let delivery: Option<DeliveryRow> = diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq(id))
            .filter(webhook_deliveries::status.eq(WebhookDeliveryStatus::Pending.as_str()))
            .filter(webhook_deliveries::due_at.le(now))
            .filter(
                webhook_deliveries::lease_until
                    .is_null()
                    .or(webhook_deliveries::lease_until.lt(now)),
            ),
    )
    .set((
        webhook_deliveries::lease_until.eq(lease_until),
        webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
    ))
    .returning(webhook_deliveries::all_columns)
    .get_result(conn)
    .optional()?;
    let Some(delivery) = delivery else {
        return Ok(None);
    };
    let secret = devices::table
        .filter(devices::id.eq(delivery.device_id))
        .select(devices::webhook_secret)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten();
    Ok(Some(Claimed { delivery, secret }))
}

/// Gives a device that has no webhook secret (created before secrets existed) `secret`; returns
/// the one it has afterwards.
pub fn ensure_secret(
    conn: &mut DbConn,
    device_id: i64,
    secret: &str,
) -> Result<Option<String>, StoreError> {
    diesel::update(
        devices::table
            .filter(devices::id.eq(device_id))
            .filter(devices::webhook_secret.is_null()),
    )
    .set(devices::webhook_secret.eq(secret))
    .execute(conn)?;
    Ok(devices::table
        .filter(devices::id.eq(device_id))
        .select(devices::webhook_secret)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten())
}

/// What one attempt got, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The receiver's status, when it answered.
    pub status_code: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
    /// The start of the answer.
    pub response_body: Option<String>,
    /// How long it took.
    pub duration_ms: i64,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    /// The receiver took it.
    Delivered,
    /// Try again at this time (its job owed again then).
    RetryAt(NaiveDateTime),
    /// Give up.
    Failed,
}

/// Records an attempt of a claimed delivery and its consequence, in one transaction; only
/// while the claim (`lease_until`) is still the caller's.
pub fn record_attempt(
    conn: &mut DbConn,
    id: i64,
    claimed_until: NaiveDateTime,
    attempt: &AttemptRecord,
    after: AfterAttempt,
    at: NaiveDateTime,
) -> Result<bool, StoreError> {
    crate::transaction(conn, |c| {
        let target = webhook_deliveries::table
            .filter(webhook_deliveries::id.eq(id))
            .filter(webhook_deliveries::lease_until.eq(claimed_until));
        let (status, due_at, delivered_at) = match after {
            AfterAttempt::Delivered => (WebhookDeliveryStatus::Delivered, None, Some(at)),
            AfterAttempt::RetryAt(t) => (WebhookDeliveryStatus::Pending, Some(t), None),
            AfterAttempt::Failed => (WebhookDeliveryStatus::Failed, None, None),
        };
        let changed = diesel::update(target)
            .set((
                webhook_deliveries::status.eq(status.as_str()),
                webhook_deliveries::lease_until.eq(None::<NaiveDateTime>),
                webhook_deliveries::published_at.eq(None::<NaiveDateTime>),
                webhook_deliveries::due_at.eq(due_at.unwrap_or(at)),
                webhook_deliveries::last_status_code.eq(attempt.status_code),
                webhook_deliveries::last_error.eq(&attempt.error),
                webhook_deliveries::delivered_at.eq(delivered_at),
                webhook_deliveries::updated_at.eq(at),
            ))
            .execute(c)?;
        if changed == 0 {
            return Ok(false);
        }
        diesel::insert_into(webhook_attempts::table)
            .values((
                webhook_attempts::delivery_id.eq(id),
                webhook_attempts::attempted_at.eq(at),
                webhook_attempts::status_code.eq(attempt.status_code),
                webhook_attempts::error.eq(&attempt.error),
                webhook_attempts::response_body.eq(&attempt.response_body),
                webhook_attempts::duration_ms.eq(attempt.duration_ms),
            ))
            .execute(c)?;
        Ok(true)
    })
}

/// Filters of `GET /api/webhook-deliveries`.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Only this device's.
    pub device_id: Option<i64>,
    /// Only this event.
    pub event: Option<String>,
    /// Only this status.
    pub status: Option<WebhookDeliveryStatus>,
}

/// One page of deliveries, newest first, with the total.
pub fn list(
    conn: &mut DbConn,
    filter: &DeliveryFilter,
    page: Page,
) -> Result<Paged<DeliveryRow>, StoreError> {
    let filtered = || {
        let mut query = webhook_deliveries::table.into_boxed();
        if let Some(device) = filter.device_id {
            query = query.filter(webhook_deliveries::device_id.eq(device));
        }
        if let Some(event) = &filter.event {
            query = query.filter(webhook_deliveries::event.eq(event.clone()));
        }
        if let Some(status) = filter.status {
            query = query.filter(webhook_deliveries::status.eq(status.as_str()));
        }
        query
    };
    let total: i64 = filtered().count().get_result(conn)?;
    let mut query = filtered();
    if let Some(after) = page.after_id {
        query = query.filter(webhook_deliveries::id.lt(after));
    }
    let rows = query
        .order(webhook_deliveries::id.desc())
        .limit(page.size)
        .offset(page.offset())
        .select(DeliveryRow::as_select())
        .load(conn)?;
    Ok(Paged { rows, total })
}

/// One delivery (only `device_id`'s when given) and its attempts, oldest first.
pub fn find(
    conn: &mut DbConn,
    id: i64,
    device_id: Option<i64>,
) -> Result<(DeliveryRow, Vec<AttemptRow>), StoreError> {
    let mut query = webhook_deliveries::table
        .filter(webhook_deliveries::id.eq(id))
        .into_boxed();
    if let Some(device) = device_id {
        query = query.filter(webhook_deliveries::device_id.eq(device));
    }
    let delivery = query
        .select(DeliveryRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound)?;
    let attempts = webhook_attempts::table
        .filter(webhook_attempts::delivery_id.eq(id))
        .order(webhook_attempts::id.asc())
        .select(AttemptRow::as_select())
        .load(conn)?;
    Ok((delivery, attempts))
}

/// Sends a delivery again (the operator's replay): pending and due now, with a fresh
/// [`RETRY_FOR`] window and the same `webhook-id`. A delivery being attempted right now is a
/// `Conflict`.
pub fn replay(conn: &mut DbConn, id: i64, now: NaiveDateTime) -> Result<DeliveryRow, StoreError> {
    let replayed: Option<DeliveryRow> = diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq(id))
            .filter(
                webhook_deliveries::lease_until
                    .is_null()
                    .or(webhook_deliveries::lease_until.lt(now)),
            ),
    )
    .set((
        webhook_deliveries::status.eq(WebhookDeliveryStatus::Pending.as_str()),
        webhook_deliveries::due_at.eq(now),
        webhook_deliveries::give_up_at.eq(now + RETRY_FOR),
        webhook_deliveries::published_at.eq(None::<NaiveDateTime>),
        webhook_deliveries::relay_lease_until.eq(None::<NaiveDateTime>),
        webhook_deliveries::delivered_at.eq(None::<NaiveDateTime>),
        webhook_deliveries::updated_at.eq(now),
    ))
    .returning(webhook_deliveries::all_columns)
    .get_result(conn)
    .optional()?;
    match replayed {
        Some(row) => Ok(row),
        None => {
            // Missing, or claimed by a dispatcher this moment.
            webhook_deliveries::table
                .find(id)
                .select(webhook_deliveries::id)
                .first::<i64>(conn)
                .optional()?
                .ok_or(StoreError::NotFound)?;
            Err(StoreError::Conflict("delivery"))
        }
    }
}

/// Deletes up to `limit` finished deliveries (delivered or failed) last changed before
/// `before`, with their attempts; returns how many deliveries.
pub fn prune(conn: &mut DbConn, before: NaiveDateTime, limit: i64) -> Result<usize, StoreError> {
    crate::transaction(conn, |c| {
        let ids: Vec<i64> = webhook_deliveries::table
            .filter(webhook_deliveries::status.ne(WebhookDeliveryStatus::Pending.as_str()))
            .filter(webhook_deliveries::updated_at.lt(before))
            .order(webhook_deliveries::id.asc())
            .limit(limit)
            .select(webhook_deliveries::id)
            .load(c)?;
        if ids.is_empty() {
            return Ok(0);
        }
        diesel::delete(webhook_attempts::table.filter(webhook_attempts::delivery_id.eq_any(&ids)))
            .execute(c)?;
        Ok(
            diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(&ids)))
                .execute(c)?,
        )
    })
}
