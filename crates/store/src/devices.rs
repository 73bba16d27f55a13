//! Device rows and their repository functions.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use wapim_domain::DeviceStatus;

use crate::listing::{Page, Paged, Sort, Trashed};
use crate::schema::devices;
use crate::{conflict_on, DbConn, StoreError};

/// A stored device.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = devices)]
pub struct DeviceRow {
    /// Numeric id shown in the API.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Slug of the name at creation; fixed afterwards (WAHA and integrators know it).
    pub session_id: String,
    /// International digits.
    pub phone_number: String,
    /// WAHA session state.
    #[diesel(deserialize_as = String)]
    pub status: DeviceStatus,
    /// SHA-256 of the secret token.
    pub secret_token_hash: String,
    /// Masked token shown by reads.
    pub secret_token_masked: String,
    /// Forward events to `webhook_url`.
    pub webhook_status: bool,
    /// Integrator webhook.
    pub webhook_url: Option<String>,
    /// JSON array of event names.
    pub webhook_options: Option<String>,
    /// Automation: conversation opening text.
    pub opening_message: Option<String>,
    /// Automation: conversation closing text.
    pub closing_message: Option<String>,
    /// Automation: auto-reply text.
    pub auto_reply: Option<String>,
    /// Automation: auto-forward text.
    pub auto_forward: Option<String>,
    /// Automation: auto-forward target.
    pub auto_forward_number: Option<String>,
    /// UTC.
    pub created_at: NaiveDateTime,
    /// UTC.
    pub updated_at: NaiveDateTime,
    /// UTC; set when soft-deleted.
    pub deleted_at: Option<NaiveDateTime>,
    /// Bumped by every update; updates check the one they read (optimistic concurrency).
    pub revision: i64,
    /// Pacing: when its last send finished (its start while in flight).
    pub pace_last_send_at: Option<NaiveDateTime>,
    /// Pacing: the next free slot for a message that must wait.
    pub pace_next_slot_at: Option<NaiveDateTime>,
    /// Pacing: set while one of its sends is in flight, until that claim expires.
    pub pace_in_flight_until: Option<NaiveDateTime>,
    /// Its own least gap between sends, in milliseconds (`None`: the server's default).
    pub pacing_min_interval_ms: Option<i64>,
    /// Its own jitter bound, in milliseconds (`None`: the server's default).
    pub pacing_jitter_ms: Option<i64>,
    /// IANA time zone of its cap and window (`None`: the server's).
    pub timezone: Option<String>,
    /// Most sends per local day.
    pub daily_cap: Option<i64>,
    /// Local `HH:MM` its sending window opens.
    pub send_window_start: Option<String>,
    /// Local `HH:MM` its sending window closes.
    pub send_window_end: Option<String>,
    /// Most sends to one contact an hour.
    pub recipient_hourly_cap: Option<i64>,
    /// Seen + typing before each text.
    pub simulate_typing: bool,
    /// Its messages are held until then (WhatsApp's reach-out timelock); then one probe goes.
    pub paused_until: Option<NaiveDateTime>,
    /// Why it is paused (a hold reason).
    pub pause_reason: Option<String>,
    /// The key WAHA signs this session's webhooks with (never shown by the API).
    pub webhook_hmac_key: Option<String>,
    /// Set while the device owes a sync of its WAHA session (due then).
    pub session_sync_due_at: Option<NaiveDateTime>,
    /// When the owed sync's job was published (the debt stands until a sync completes).
    pub session_sync_published_at: Option<NaiveDateTime>,
    /// A relay's reservation of the owed sync.
    pub session_sync_lease_until: Option<NaiveDateTime>,
    /// Failed syncs since the last success.
    pub session_sync_attempts: i32,
    /// The last sync failure.
    pub session_sync_error: Option<String>,
    /// When WAHA last matched the row.
    pub session_synced_at: Option<NaiveDateTime>,
    /// The WAHA server its session lives on (`None`: the default one).
    pub waha_server_id: Option<i64>,
    /// The Standard Webhooks secret (`whsec_…`) its events are signed with; shown only when
    /// created or rotated.
    pub webhook_secret: Option<String>,
    /// JSON array of the words that opt a contact out (`None`: the defaults).
    pub opt_out_keywords: Option<String>,
    /// The text answering an opt-out (`None`: no answer).
    pub opt_out_confirmation: Option<String>,
}

/// The editable columns of a device, written on create and on update.
#[derive(Debug, Clone, Insertable, AsChangeset)]
// `treat_none_as_default_value = false`: None is written as NULL, so the INSERT text is the same
// every time and PostgreSQL can reuse its prepared statement (DEFAULT would vary the SQL).
#[diesel(table_name = devices, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct DeviceFields {
    /// Display name.
    pub name: String,
    /// International digits.
    pub phone_number: String,
    /// Forward events to `webhook_url`.
    pub webhook_status: bool,
    /// Integrator webhook.
    pub webhook_url: Option<String>,
    /// JSON array of event names.
    pub webhook_options: Option<String>,
    /// Automation texts and target.
    pub opening_message: Option<String>,
    /// See [`DeviceRow::closing_message`].
    pub closing_message: Option<String>,
    /// See [`DeviceRow::auto_reply`].
    pub auto_reply: Option<String>,
    /// See [`DeviceRow::auto_forward`].
    pub auto_forward: Option<String>,
    /// See [`DeviceRow::auto_forward_number`].
    pub auto_forward_number: Option<String>,
    /// Its own least gap between sends, in milliseconds (`None`: the server's default).
    pub pacing_min_interval_ms: Option<i64>,
    /// Its own jitter bound, in milliseconds (`None`: the server's default).
    pub pacing_jitter_ms: Option<i64>,
    /// See [`DeviceRow::timezone`].
    pub timezone: Option<String>,
    /// See [`DeviceRow::daily_cap`].
    pub daily_cap: Option<i64>,
    /// See [`DeviceRow::send_window_start`].
    pub send_window_start: Option<String>,
    /// See [`DeviceRow::send_window_end`].
    pub send_window_end: Option<String>,
    /// See [`DeviceRow::recipient_hourly_cap`].
    pub recipient_hourly_cap: Option<i64>,
    /// See [`DeviceRow::simulate_typing`].
    pub simulate_typing: bool,
    /// JSON array of opt-out words (`None`: the defaults).
    pub opt_out_keywords: Option<String>,
    /// The answer to an opt-out (`None`: none).
    pub opt_out_confirmation: Option<String>,
}

/// A new secret token, stored only as its hash and masked form.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = devices)]
pub struct TokenFields {
    /// SHA-256 hex.
    pub secret_token_hash: String,
    /// Masked form for reads.
    pub secret_token_masked: String,
}

/// Columns a device list may be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSortColumn {
    /// `id`.
    Id,
    /// `name`.
    Name,
    /// `session_id`.
    SessionId,
    /// `status`.
    Status,
    /// `created_at`.
    CreatedAt,
    /// `updated_at`.
    UpdatedAt,
}

/// Filters of `GET /devices`.
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    /// Restrict to one device (device credentials see only themselves).
    pub only_id: Option<i64>,
    /// Exact status.
    pub status: Option<DeviceStatus>,
    /// Exact session id.
    pub session_id: Option<String>,
    /// Soft-delete visibility.
    pub trashed: Trashed,
}

/// The columns that make a device owe a sync of its WAHA session from `now` (the relay
/// publishes a `sync_session` job; see `crate::sessions`). Every write that changes what WAHA
/// should hold sets these, in the same statement.
#[allow(clippy::type_complexity)]
pub(crate) fn session_sync_owed(
    now: NaiveDateTime,
) -> (
    diesel::dsl::Eq<devices::session_sync_due_at, Option<NaiveDateTime>>,
    diesel::dsl::Eq<devices::session_sync_published_at, Option<NaiveDateTime>>,
    diesel::dsl::Eq<devices::session_sync_lease_until, Option<NaiveDateTime>>,
) {
    (
        devices::session_sync_due_at.eq(Some(now)),
        devices::session_sync_published_at.eq(None),
        devices::session_sync_lease_until.eq(None),
    )
}

/// The secrets a device is created with.
#[derive(Debug, Clone)]
pub struct DeviceKeys {
    /// The key WAHA signs this session's webhooks with.
    pub hmac_key: String,
    /// The Standard Webhooks secret Wapim signs the integrator's events with.
    pub webhook_secret: String,
}

/// Replaces a live device's webhook secret (rotation); `NotFound` when it is deleted or gone.
pub fn set_webhook_secret(
    conn: &mut DbConn,
    id: i64,
    secret: &str,
    now: NaiveDateTime,
) -> Result<(), StoreError> {
    let changed = diesel::update(
        devices::table
            .filter(devices::id.eq(id))
            .filter(devices::deleted_at.is_null()),
    )
    .set((
        devices::webhook_secret.eq(secret),
        devices::updated_at.eq(now),
        devices::revision.eq(devices::revision + 1),
    ))
    .execute(conn)?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Inserts a device (owing the sync that creates its WAHA session, signed with its keys); a
/// device (live or deleted) with the same session id is a `Conflict("session_id")`: session ids
/// are never reused.
pub fn insert(
    conn: &mut DbConn,
    fields: &DeviceFields,
    session_id: &str,
    token: &TokenFields,
    keys: &DeviceKeys,
    waha_server_id: Option<i64>,
    now: NaiveDateTime,
) -> Result<DeviceRow, StoreError> {
    diesel::insert_into(devices::table)
        .values((
            fields,
            devices::session_id.eq(session_id),
            devices::secret_token_hash.eq(&token.secret_token_hash),
            devices::secret_token_masked.eq(&token.secret_token_masked),
            devices::webhook_hmac_key.eq(&keys.hmac_key),
            devices::webhook_secret.eq(&keys.webhook_secret),
            devices::waha_server_id.eq(waha_server_id),
            devices::created_at.eq(now),
            devices::updated_at.eq(now),
            session_sync_owed(now),
        ))
        .returning(devices::all_columns)
        .get_result(conn)
        .map_err(conflict_on("session_id"))
}

/// A device by id; soft-deleted ones only when `with_trashed`.
pub fn find(conn: &mut DbConn, id: i64, with_trashed: bool) -> Result<DeviceRow, StoreError> {
    let mut query = devices::table.filter(devices::id.eq(id)).into_boxed();
    if !with_trashed {
        query = query.filter(devices::deleted_at.is_null());
    }
    query
        .select(DeviceRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// The live device a session id names, if any (authentication and message ownership).
pub fn find_live_by_session(
    conn: &mut DbConn,
    session_id: &str,
) -> Result<Option<DeviceRow>, StoreError> {
    Ok(devices::table
        .filter(devices::session_id.eq(session_id))
        .filter(devices::deleted_at.is_null())
        .select(DeviceRow::as_select())
        .first(conn)
        .optional()?)
}

/// Locks a live device's row for the rest of the transaction (a no-op UPDATE, portable across
/// backends): a concurrent deletion waits for the caller's commit, or the caller sees it
/// committed. False when the device is deleted or gone.
pub fn lock_live(conn: &mut DbConn, id: i64) -> Result<bool, StoreError> {
    Ok(diesel::update(
        devices::table
            .filter(devices::id.eq(id))
            .filter(devices::deleted_at.is_null()),
    )
    .set(devices::revision.eq(devices::revision))
    .execute(conn)?
        == 1)
}

/// Session ids in use (by live or deleted devices) that are `base` or `base-<anything>`: the
/// candidates a new device named like `base` must avoid.
pub fn session_ids_like(conn: &mut DbConn, base: &str) -> Result<Vec<String>, StoreError> {
    // Slugs hold only [a-z0-9-], so `base` has no LIKE wildcards to escape.
    Ok(devices::table
        .filter(
            devices::session_id
                .eq(base)
                .or(devices::session_id.like(format!("{base}-%"))),
        )
        .select(devices::session_id)
        .load(conn)?)
}

/// One page of devices matching `filter`, sorted, with the total.
pub fn list(
    conn: &mut DbConn,
    filter: &DeviceFilter,
    sort: Sort<DeviceSortColumn>,
    page: Page,
) -> Result<Paged<DeviceRow>, StoreError> {
    let total: i64 = filtered(filter).count().get_result(conn)?;
    let mut query = filtered(filter);
    use DeviceSortColumn as C;
    query = match (sort.column, sort.descending) {
        (C::Id, true) => query.order(devices::id.desc()),
        (C::Id, false) => query.order(devices::id.asc()),
        (C::Name, true) => query.order((devices::name.desc(), devices::id.desc())),
        (C::Name, false) => query.order((devices::name.asc(), devices::id.asc())),
        (C::SessionId, true) => query.order(devices::session_id.desc()),
        (C::SessionId, false) => query.order(devices::session_id.asc()),
        (C::Status, true) => query.order((devices::status.desc(), devices::id.desc())),
        (C::Status, false) => query.order((devices::status.asc(), devices::id.asc())),
        (C::CreatedAt, true) => query.order((devices::created_at.desc(), devices::id.desc())),
        (C::CreatedAt, false) => query.order((devices::created_at.asc(), devices::id.asc())),
        (C::UpdatedAt, true) => query.order((devices::updated_at.desc(), devices::id.desc())),
        (C::UpdatedAt, false) => query.order((devices::updated_at.asc(), devices::id.asc())),
    };
    let rows = query
        .limit(page.size)
        .offset(page.offset())
        .select(DeviceRow::as_select())
        .load(conn)?;
    Ok(Paged { rows, total })
}

fn filtered(filter: &DeviceFilter) -> devices::BoxedQuery<'_, crate::Backend> {
    let mut query = devices::table.into_boxed();
    query = match filter.trashed {
        Trashed::Without => query.filter(devices::deleted_at.is_null()),
        Trashed::Only => query.filter(devices::deleted_at.is_not_null()),
        Trashed::With => query,
    };
    if let Some(id) = filter.only_id {
        query = query.filter(devices::id.eq(id));
    }
    if let Some(status) = filter.status {
        query = query.filter(devices::status.eq(status.as_str()));
    }
    if let Some(session_id) = &filter.session_id {
        query = query.filter(devices::session_id.eq(session_id));
    }
    query
}

/// Writes a live device's editable fields (and its token, when given) if it is still at
/// `revision`; `Stale` when another update came first, `NotFound` when it is gone.
pub fn update(
    conn: &mut DbConn,
    id: i64,
    revision: i64,
    fields: &DeviceFields,
    token: Option<&TokenFields>,
    now: NaiveDateTime,
) -> Result<DeviceRow, StoreError> {
    let target = devices::table
        .filter(devices::id.eq(id))
        .filter(devices::deleted_at.is_null())
        .filter(devices::revision.eq(revision));
    let bump = (
        devices::updated_at.eq(now),
        devices::revision.eq(devices::revision + 1),
        session_sync_owed(now),
    );
    let updated = match token {
        Some(token) => diesel::update(target)
            .set((fields, token, bump))
            .returning(devices::all_columns)
            .get_result(conn)
            .optional()?,
        None => diesel::update(target)
            .set((fields, bump))
            .returning(devices::all_columns)
            .get_result(conn)
            .optional()?,
    };
    match updated {
        Some(row) => Ok(row),
        None => {
            find(conn, id, false)?;
            Err(StoreError::Stale)
        }
    }
}

/// Soft-deletes a live device; `NotFound` when there is none.
pub fn soft_delete(
    conn: &mut DbConn,
    id: i64,
    now: NaiveDateTime,
) -> Result<DeviceRow, StoreError> {
    diesel::update(
        devices::table
            .filter(devices::id.eq(id))
            .filter(devices::deleted_at.is_null()),
    )
    .set((
        devices::deleted_at.eq(now),
        devices::updated_at.eq(now),
        devices::revision.eq(devices::revision + 1),
        // Its session is stopped (its login kept).
        session_sync_owed(now),
    ))
    .returning(devices::all_columns)
    .get_result(conn)
    .optional()?
    .ok_or(StoreError::NotFound)
}

/// Undoes a soft delete; `None` when the device is not deleted (then the caller decides).
/// Session ids are never reused, so the device gets its own id back without conflict.
pub fn undelete(
    conn: &mut DbConn,
    id: i64,
    now: NaiveDateTime,
) -> Result<Option<DeviceRow>, StoreError> {
    Ok(diesel::update(
        devices::table
            .filter(devices::id.eq(id))
            .filter(devices::deleted_at.is_not_null()),
    )
    .set((
        devices::deleted_at.eq(None::<NaiveDateTime>),
        devices::updated_at.eq(now),
        devices::revision.eq(devices::revision + 1),
        // Its session is started again.
        session_sync_owed(now),
    ))
    .returning(devices::all_columns)
    .get_result(conn)
    .optional()?)
}
