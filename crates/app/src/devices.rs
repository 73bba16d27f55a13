//! Device use cases: register, read, update (and rotate the token), delete and restore.

use chrono::NaiveDateTime;
use serde_json::{Map, Value};
use wapim_domain::device::{parse_webhook_options, validate_device, DeviceDraft, DeviceInput};
use wapim_domain::safety::{
    format_time_of_day, local_day_start, next_local_day_start, stored_window,
};
use wapim_domain::session::first_free_session_id;
use wapim_domain::token::{generate_secret_token, hash_token, mask_token};
use wapim_domain::validation::Mode;
use wapim_domain::{ExposeSecret, HoldReason, ValidationContext};
use wapim_store::devices::{
    self, DeviceFields, DeviceFilter, DeviceRow, DeviceSortColumn, TokenFields,
};
use wapim_store::dispatch::{self, SafetyDefaults};
use wapim_store::listing::Sort;
use wapim_store::{messages, DbConn, Page, Paged, StoreError};

use crate::{Actor, AppError, STALE_RETRIES};

/// A device as stored, with its secret token in clear when this very call set it (shown once).
#[derive(Debug)]
pub struct DeviceWithToken {
    /// The stored device.
    pub row: DeviceRow,
    /// The new token, when one was generated or given.
    pub new_token: Option<wapim_domain::SecretString>,
    /// The webhook secret, shown once: when the device is created.
    pub new_webhook_secret: Option<String>,
}

/// Registers a device (operator only). Its session id is the slug of its name, or the first
/// `<slug>-N` no device ever had: session ids are never reused, so a new device can never
/// inherit a WAHA session still logged in to somebody's phone. The token is the client's (if
/// strong enough; validation checked) or a fresh 64-hex one.
pub fn register(
    conn: &mut DbConn,
    actor: &Actor,
    input: &DeviceInput,
    now: NaiveDateTime,
) -> Result<DeviceWithToken, AppError> {
    actor.require_operator()?;
    let token = input
        .secret_token
        .clone()
        .unwrap_or_else(|| generate_secret_token().into());
    let base = input.draft.session_id();
    let fields = fields_of(&input.draft);
    let token_fields = token_fields(token.expose_secret());
    // A concurrent registration may take the id we picked; pick again.
    for _ in 0..STALE_RETRIES {
        let taken = devices::session_ids_like(conn, &base)?;
        let session_id = first_free_session_id(&base, taken.iter().map(String::as_str));
        let keys = devices::DeviceKeys {
            hmac_key: generate_secret_token(),
            webhook_secret: wapim_webhooks::generate_secret(),
        };
        let server = place(conn)?;
        match devices::insert(
            conn,
            &fields,
            &session_id,
            &token_fields,
            &keys,
            server,
            now,
        ) {
            Err(StoreError::Conflict(_)) => continue,
            other => {
                return Ok(DeviceWithToken {
                    row: other?,
                    new_token: Some(token),
                    new_webhook_secret: Some(keys.webhook_secret),
                })
            }
        }
    }
    Err(AppError::Conflict(
        "name",
        "Too many devices are being created with this name right now; try again.".into(),
    ))
}

/// The WAHA server a new device goes to: the active one with the most room; `None` while no
/// server is registered (the default one). 409 when servers exist but none has room.
fn place(conn: &mut DbConn) -> Result<Option<i64>, AppError> {
    if let Some(server) = wapim_store::waha_servers::most_room(conn)? {
        return Ok(Some(server.id));
    }
    if wapim_store::waha_servers::list(conn)?.is_empty() {
        return Ok(None);
    }
    Err(AppError::Conflict(
        "waha_server",
        "No active WAHA server has room for another device; register one or raise a capacity \
         (/api/waha-servers)."
            .into(),
    ))
}

/// One device the actor may see (a device sees only itself; others are 404).
pub fn show(conn: &mut DbConn, actor: &Actor, id: i64) -> Result<DeviceRow, AppError> {
    own(actor, id)?;
    Ok(devices::find(conn, id, false)?)
}

/// The live device with `session_id`, if the actor may reach it (a device only itself; any other
/// session, or one no live device has, is 404).
pub fn by_session(
    conn: &mut DbConn,
    actor: &Actor,
    session_id: &str,
) -> Result<DeviceRow, AppError> {
    let row = devices::find_live_by_session(conn, session_id)?.ok_or(AppError::NotFound)?;
    own(actor, row.id)?;
    Ok(row)
}

/// A page of the devices the actor may see.
pub fn list(
    conn: &mut DbConn,
    actor: &Actor,
    mut filter: DeviceFilter,
    sort: Sort<DeviceSortColumn>,
    page: Page,
) -> Result<Paged<DeviceRow>, AppError> {
    filter.only_id = actor.device_scope();
    Ok(devices::list(conn, &filter, sort, page)?)
}

/// Updates a device (the operator, or the device itself): `Mode::Full` replaces its settings,
/// `Mode::Patch` changes the fields present; a `secret_token` in the body rotates the token.
/// Validated against the row as it is now and written only if it did not change meanwhile;
/// after a concurrent update the change is applied again to the fresh row.
pub fn update(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    body: &Map<String, Value>,
    mode: Mode,
    ctx: &ValidationContext,
    now: NaiveDateTime,
) -> Result<DeviceWithToken, AppError> {
    own(actor, id)?;
    for _ in 0..STALE_RETRIES {
        let stored = devices::find(conn, id, false)?;
        let input = validate_device(body, mode, Some(&draft_of(&stored)), ctx)?;
        let token = input.secret_token.clone();
        let token_fields = token.as_ref().map(|t| token_fields(t.expose_secret()));
        match devices::update(
            conn,
            id,
            stored.revision,
            &fields_of(&input.draft),
            token_fields.as_ref(),
            now,
        ) {
            Err(StoreError::Stale) => continue,
            other => {
                let row = other?;
                if limits_changed(&draft_of(&stored), &input.draft) {
                    // What its old limits held is decided again by the new ones, now.
                    dispatch::release_held(conn, id, LIMIT_HOLDS, now)?;
                }
                return Ok(DeviceWithToken {
                    row,
                    new_token: token,
                    new_webhook_secret: None,
                });
            }
        }
    }
    Err(AppError::Conflict(
        "revision",
        "The record was changed by another request meanwhile; try again.".into(),
    ))
}

/// The holds a device's own limits put on its messages.
const LIMIT_HOLDS: &[HoldReason] = &[
    HoldReason::SendingWindow,
    HoldReason::DailyCap,
    HoldReason::RecipientCap,
];

fn limits_changed(old: &DeviceDraft, new: &DeviceDraft) -> bool {
    (
        old.timezone,
        old.daily_cap,
        old.send_window,
        old.recipient_hourly_cap,
    ) != (
        new.timezone,
        new.daily_cap,
        new.send_window,
        new.recipient_hourly_cap,
    )
}

/// Soft-deletes a device (operator only) and, in the same transaction, cancels its pending
/// messages (reason `device_deleted`): nothing is sent for a deleted device.
pub fn delete(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    now: NaiveDateTime,
) -> Result<DeviceRow, AppError> {
    own(actor, id)?;
    actor.require_operator()?;
    wapim_store::transaction(conn, |conn| {
        let row = devices::soft_delete(conn, id, now)?;
        messages::cancel_pending_of_device(conn, id, now)?;
        Ok(row)
    })
}

/// Restores a deleted device (operator only) with its own session id, and brings back as
/// `pending` what its deletion cancelled, in one transaction. A live device is returned as is.
pub fn restore(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    now: NaiveDateTime,
) -> Result<DeviceRow, AppError> {
    own(actor, id)?;
    actor.require_operator()?;
    wapim_store::transaction(conn, |conn| match devices::undelete(conn, id, now)? {
        Some(row) => {
            messages::revive_cancelled_of_device(conn, id, now)?;
            Ok(row)
        }
        None => Ok(devices::find(conn, id, false)?),
    })
}

/// A device sees only itself: any other id is 404 (not 403), so ids of other tenants are not
/// confirmed.
fn own(actor: &Actor, id: i64) -> Result<(), AppError> {
    match actor.device_scope() {
        Some(own) if own != id => Err(AppError::NotFound),
        _ => Ok(()),
    }
}

fn fields_of(d: &DeviceDraft) -> DeviceFields {
    DeviceFields {
        name: d.name.clone(),
        phone_number: d.phone_number.clone(),
        webhook_status: d.webhook_status,
        webhook_url: d.webhook_url.clone(),
        webhook_options: d.webhook_options_json(),
        opening_message: d.opening_message.clone(),
        closing_message: d.closing_message.clone(),
        auto_reply: d.auto_reply.clone(),
        auto_forward: d.auto_forward.clone(),
        auto_forward_number: d.auto_forward_number.clone(),
        pacing_min_interval_ms: d.pacing_min_interval_ms.and_then(|v| i64::try_from(v).ok()),
        pacing_jitter_ms: d.pacing_jitter_ms.and_then(|v| i64::try_from(v).ok()),
        timezone: d.timezone.map(|tz| tz.name().to_owned()),
        daily_cap: d.daily_cap.and_then(|v| i64::try_from(v).ok()),
        send_window_start: d.send_window.map(|w| format_time_of_day(w.start)),
        send_window_end: d.send_window.map(|w| format_time_of_day(w.end)),
        recipient_hourly_cap: d.recipient_hourly_cap.and_then(|v| i64::try_from(v).ok()),
        simulate_typing: d.simulate_typing,
        opt_out_keywords: d
            .opt_out_keywords
            .as_ref()
            .and_then(|k| serde_json::to_string(k).ok()),
        opt_out_confirmation: d.opt_out_confirmation.clone(),
    }
}

fn draft_of(row: &DeviceRow) -> DeviceDraft {
    DeviceDraft {
        name: row.name.clone(),
        phone_number: row.phone_number.clone(),
        webhook_status: row.webhook_status,
        webhook_url: row.webhook_url.clone(),
        webhook_options: parse_webhook_options(row.webhook_options.as_deref()),
        opening_message: row.opening_message.clone(),
        closing_message: row.closing_message.clone(),
        auto_reply: row.auto_reply.clone(),
        auto_forward: row.auto_forward.clone(),
        auto_forward_number: row.auto_forward_number.clone(),
        pacing_min_interval_ms: row
            .pacing_min_interval_ms
            .and_then(|v| u64::try_from(v).ok()),
        pacing_jitter_ms: row.pacing_jitter_ms.and_then(|v| u64::try_from(v).ok()),
        timezone: row.timezone.as_deref().and_then(|tz| tz.parse().ok()),
        daily_cap: row.daily_cap.and_then(|v| u64::try_from(v).ok()),
        send_window: stored_window(
            row.send_window_start.as_deref(),
            row.send_window_end.as_deref(),
        ),
        recipient_hourly_cap: row.recipient_hourly_cap.and_then(|v| u64::try_from(v).ok()),
        simulate_typing: row.simulate_typing,
        opt_out_keywords: row
            .opt_out_keywords
            .as_deref()
            .and_then(|k| serde_json::from_str(k).ok()),
        opt_out_confirmation: row.opt_out_confirmation.clone(),
    }
}

fn token_fields(token: &str) -> TokenFields {
    TokenFields {
        secret_token_hash: hash_token(token),
        secret_token_masked: mask_token(token),
    }
}

/// Where a device stands with sending safety, for its read: what waits and why, how much it sent
/// today against its cap, and the earliest its next send may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendingState {
    /// Held (pending, waiting) messages by reason.
    pub held: Vec<(String, i64)>,
    /// Sends let through since its local day began.
    pub sent_today: i64,
    /// Its daily cap, if any.
    pub daily_cap: Option<u32>,
    /// The earliest its next send may go (its pause, its pacing gap, its window); `None`: now.
    pub next_send_at: Option<NaiveDateTime>,
    /// The time zone its day and window are reckoned in.
    pub timezone: wapim_domain::Tz,
}

/// A device (as [`show`]) with its [`SendingState`] at `now`.
pub fn show_with_sending_state(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    defaults: &SafetyDefaults,
    now: NaiveDateTime,
) -> Result<(DeviceRow, SendingState), AppError> {
    let row = show(conn, actor, id)?;
    let (safety, _) = dispatch::safety_of(conn, id, "", defaults)?;
    let tz = safety.limits.timezone;
    let counts = dispatch::sending_counts(conn, id, local_day_start(tz, now))?;
    let mut not_before = Vec::new();
    if let Some(pause) = safety.pause {
        not_before.push(pause.until);
    }
    if !safety.pace.is_off() {
        if let Some(last) = row.pace_last_send_at {
            not_before.push(last + safety.pace.interval);
        }
        if let Some(until) = row.pace_in_flight_until {
            not_before.push(until.min(now + safety.pace.interval));
        }
    }
    if let Some(window) = safety.limits.window {
        not_before.push(window.next_open(tz, now));
    }
    if let Some(cap) = safety.limits.daily_cap {
        if counts.sent_today >= i64::from(cap) {
            not_before.push(next_local_day_start(tz, now));
        }
    }
    let next_send_at = not_before.into_iter().max().filter(|t| *t > now);
    Ok((
        row,
        SendingState {
            held: counts.held,
            sent_today: counts.sent_today,
            daily_cap: safety.limits.daily_cap,
            next_send_at,
            timezone: tz,
        },
    ))
}

/// Ends a device's pause early (operator only): its held messages are due now. Returns the
/// device and how many messages it released; a device that was not paused is returned as is.
pub fn resume(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    now: NaiveDateTime,
) -> Result<(DeviceRow, usize), AppError> {
    own(actor, id)?;
    actor.require_operator()?;
    devices::find(conn, id, false)?;
    let (_, released) = dispatch::resume_device(conn, id, now)?;
    Ok((devices::find(conn, id, false)?, released))
}

/// Owes a sync of a device's WAHA session now (operator only): the dispatcher makes WAHA match
/// the device (recreating a session WAHA lost, restoring its configuration) and records its
/// status.
pub fn resync(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    now: NaiveDateTime,
) -> Result<DeviceRow, AppError> {
    own(actor, id)?;
    actor.require_operator()?;
    if !wapim_store::sessions::owe_sync(conn, id, now)? {
        return Err(AppError::NotFound);
    }
    Ok(devices::find(conn, id, false)?)
}

/// Replaces a device's webhook secret (the device itself or the operator) and returns the new
/// one, shown this once. Deliveries attempted from now on are signed with it, retries of older
/// events included.
pub fn rotate_webhook_secret(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    now: NaiveDateTime,
) -> Result<String, AppError> {
    own(actor, id)?;
    let secret = wapim_webhooks::generate_secret();
    devices::set_webhook_secret(conn, id, &secret, now)?;
    Ok(secret)
}
