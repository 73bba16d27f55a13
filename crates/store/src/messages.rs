//! Message rows and their repository functions.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use wapim_domain::{CancelReason, MessageStatus};

use crate::listing::{Page, Paged, Sort, Trashed};
use crate::schema::messages;
use crate::{DbConn, StoreError};

/// Rows per multi-row INSERT: 1,000 rows × 16 columns stays far below PostgreSQL's 65,535 bind
/// parameters, whatever `batch_max_items` is set to.
pub const INSERT_CHUNK_ROWS: usize = 1000;

/// A stored message.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = messages)]
pub struct MessageRow {
    /// Numeric id shown in the API.
    pub id: i64,
    /// Owning device.
    pub device_id: i64,
    /// The owning device's session id (fixed for a device's life).
    pub session_id: String,
    /// UUID of the batch that created it, if any.
    pub batch_id: Option<String>,
    /// Send through the queue.
    pub is_queue: bool,
    /// International digits.
    pub recipient: String,
    /// `text`, `image`, ...
    pub message_type: String,
    /// Text or caption.
    pub message: Option<String>,
    /// Media MIME type.
    pub file_mimetype: Option<String>,
    /// Media file name.
    pub file_filename: Option<String>,
    /// Media URL.
    pub file_url: Option<String>,
    /// `masehi` or `hijriah`.
    pub calendar_type: String,
    /// When to send (UTC).
    pub schedule_at: Option<NaiveDateTime>,
    /// Life-cycle status.
    #[diesel(deserialize_as = String)]
    pub status: MessageStatus,
    /// WAHA accepted it.
    pub is_sent: bool,
    /// WhatsApp's message id once sent.
    pub provider_message_id: Option<String>,
    /// WAHA's last answer, for diagnosis.
    pub api_response: Option<String>,
    /// UTC.
    pub sent_at: Option<NaiveDateTime>,
    /// UTC.
    pub delivered_at: Option<NaiveDateTime>,
    /// UTC.
    pub read_at: Option<NaiveDateTime>,
    /// UTC of the last status change.
    pub status_updated_at: Option<NaiveDateTime>,
    /// UTC.
    pub created_at: NaiveDateTime,
    /// UTC.
    pub updated_at: NaiveDateTime,
    /// UTC; set when soft-deleted.
    pub deleted_at: Option<NaiveDateTime>,
    /// Bumped by every update; edits check the one they read (optimistic concurrency).
    pub revision: i64,
    /// Why it was cancelled (`message_deleted`, `device_deleted`), while it is.
    pub cancel_reason: Option<String>,
    /// When it may be sent: `schedule_at`, or when it was accepted.
    pub due_at: NaiveDateTime,
    /// When the broker confirmed its send job; `None` while the relay still owes it.
    pub published_at: Option<NaiveDateTime>,
    /// A relay reserved it for publishing until then.
    pub relay_lease_until: Option<NaiveDateTime>,
    /// A dispatcher's claim (status `processing`) holds until then.
    pub lease_until: Option<NaiveDateTime>,
    /// WhatsApp message id generated before the send (NOWEB/GOWS), stored with the claim.
    pub wa_message_id: Option<String>,
    /// Sends tried so far.
    pub attempts: i32,
    /// W3C `traceparent` of the request that accepted it; the relay and dispatcher continue it.
    pub traceparent: Option<String>,
    /// The pacing slot reserved for it, while it waits for one.
    pub pace_slot_at: Option<NaiveDateTime>,
    /// Why it waits while `pending` (`pacing`, ...); `None` when it does not.
    pub hold_reason: Option<String>,
    /// When its latest send was let through by its device's limits (what caps count).
    pub admitted_at: Option<NaiveDateTime>,
    /// Who created it: `api`, or the automation that did (see `wapim_domain::automation::MessageOrigin`).
    pub origin: String,
}

impl MessageRow {
    /// Why the message is cancelled, if it is and the reason is known.
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.cancel_reason.as_deref().and_then(|r| r.parse().ok())
    }
}

/// The integrator-editable columns of a message.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = messages, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct MessageFields {
    /// Send through the queue.
    pub is_queue: bool,
    /// International digits.
    pub recipient: String,
    /// `text`, `image`, ...
    pub message_type: String,
    /// Text or caption.
    pub message: Option<String>,
    /// Media MIME type.
    pub file_mimetype: Option<String>,
    /// Media file name.
    pub file_filename: Option<String>,
    /// Media URL.
    pub file_url: Option<String>,
    /// `masehi` or `hijriah`.
    pub calendar_type: String,
    /// When to send (UTC).
    pub schedule_at: Option<NaiveDateTime>,
}

/// A message to insert: its content and where it belongs.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = messages, treat_none_as_default_value = false)]
pub struct NewMessage {
    /// Owning device.
    pub device_id: i64,
    /// Owning device's session id.
    pub session_id: String,
    /// Batch UUID, if created by a batch.
    pub batch_id: Option<String>,
    /// The content.
    #[diesel(embed)]
    pub fields: MessageFields,
    /// When it may be sent (`schedule_at`, else `created_at`).
    pub due_at: NaiveDateTime,
    /// UTC.
    pub created_at: NaiveDateTime,
    /// UTC.
    pub updated_at: NaiveDateTime,
    /// W3C `traceparent` of the accepting request, if it was traced.
    pub traceparent: Option<String>,
    /// Who creates it (`MessageOrigin::as_str`).
    pub origin: &'static str,
}

/// Columns a message list may be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageSortColumn {
    /// `id`.
    Id,
    /// `created_at`.
    CreatedAt,
    /// `updated_at`.
    UpdatedAt,
    /// `schedule_at`.
    ScheduleAt,
    /// `sent_at`.
    SentAt,
    /// `status`.
    Status,
    /// `recipient`.
    Recipient,
}

/// Filters of `GET /messages`.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    /// Restrict to one device (device credentials see only their own).
    pub device_id: Option<i64>,
    /// Exact session id.
    pub session_id: Option<String>,
    /// Exact status.
    pub status: Option<MessageStatus>,
    /// Exact recipient (normalised).
    pub recipient: Option<String>,
    /// Exact message type.
    pub message_type: Option<String>,
    /// Exact batch UUID.
    pub batch_id: Option<String>,
    /// `created_at >= from` (UTC).
    pub created_from: Option<NaiveDateTime>,
    /// `created_at < to` (UTC).
    pub created_to: Option<NaiveDateTime>,
    /// Soft-delete visibility.
    pub trashed: Trashed,
}

/// Inserts messages in order and returns them with their ids. Callers wrap batches in a
/// transaction. backend-specific: multi-row INSERT … RETURNING on PostgreSQL, in chunks of
/// [`INSERT_CHUNK_ROWS`]; one INSERT per row on SQLite (cheap there: no round trips).
pub fn insert_many(conn: &mut DbConn, rows: &[NewMessage]) -> Result<Vec<MessageRow>, StoreError> {
    let mut inserted: Vec<MessageRow> = Vec::with_capacity(rows.len());
    if let DbConn::Pg(pg) = conn {
        for chunk in rows.chunks(INSERT_CHUNK_ROWS) {
            let mut part: Vec<MessageRow> = diesel::insert_into(messages::table)
                .values(chunk)
                .returning(messages::all_columns)
                .get_results(pg)?;
            // Ids come from the sequence as the VALUES rows are inserted, in order, so sorted ids
            // are input order; RETURNING itself promises no order, hence the sort. (PostgreSQL
            // does not document the evaluation order; the store's batch test would catch a change.)
            part.sort_by_key(|m| m.id);
            inserted.append(&mut part);
        }
        return Ok(inserted);
    }
    for row in rows {
        inserted.push(insert(conn, row)?);
    }
    Ok(inserted)
}

/// Inserts one message.
pub fn insert(conn: &mut DbConn, row: &NewMessage) -> Result<MessageRow, StoreError> {
    Ok(diesel::insert_into(messages::table)
        .values(row)
        .returning(messages::all_columns)
        .get_result(conn)?)
}

/// A message by id, optionally restricted to one device; soft-deleted only when `with_trashed`.
pub fn find(
    conn: &mut DbConn,
    id: i64,
    device_id: Option<i64>,
    with_trashed: bool,
) -> Result<MessageRow, StoreError> {
    let mut query = messages::table.filter(messages::id.eq(id)).into_boxed();
    if let Some(device_id) = device_id {
        query = query.filter(messages::device_id.eq(device_id));
    }
    if !with_trashed {
        query = query.filter(messages::deleted_at.is_null());
    }
    query
        .select(MessageRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// One page of messages matching `filter`, sorted, with the total.
pub fn list(
    conn: &mut DbConn,
    filter: &MessageFilter,
    sort: Sort<MessageSortColumn>,
    page: Page,
) -> Result<Paged<MessageRow>, StoreError> {
    let total: i64 = filtered(filter).count().get_result(conn)?;
    let mut query = filtered(filter);
    use MessageSortColumn as C;
    if let Some(after) = page.after_id {
        // Keyset pagination (only with an id sort): no OFFSET, however deep.
        query = if sort.descending {
            query.filter(messages::id.lt(after))
        } else {
            query.filter(messages::id.gt(after))
        };
    }
    query = match (sort.column, sort.descending) {
        (C::Id, true) => query.order(messages::id.desc()),
        (C::Id, false) => query.order(messages::id.asc()),
        (C::CreatedAt, true) => query.order((messages::created_at.desc(), messages::id.desc())),
        (C::CreatedAt, false) => query.order((messages::created_at.asc(), messages::id.asc())),
        (C::UpdatedAt, true) => query.order((messages::updated_at.desc(), messages::id.desc())),
        (C::UpdatedAt, false) => query.order((messages::updated_at.asc(), messages::id.asc())),
        (C::ScheduleAt, true) => query.order((messages::schedule_at.desc(), messages::id.desc())),
        (C::ScheduleAt, false) => query.order((messages::schedule_at.asc(), messages::id.asc())),
        (C::SentAt, true) => query.order((messages::sent_at.desc(), messages::id.desc())),
        (C::SentAt, false) => query.order((messages::sent_at.asc(), messages::id.asc())),
        (C::Status, true) => query.order((messages::status.desc(), messages::id.desc())),
        (C::Status, false) => query.order((messages::status.asc(), messages::id.asc())),
        (C::Recipient, true) => query.order((messages::recipient.desc(), messages::id.desc())),
        (C::Recipient, false) => query.order((messages::recipient.asc(), messages::id.asc())),
    };
    let rows = query
        .limit(page.size)
        .offset(page.offset())
        .select(MessageRow::as_select())
        .load(conn)?;
    Ok(Paged { rows, total })
}

fn filtered(filter: &MessageFilter) -> messages::BoxedQuery<'_, crate::Backend> {
    let mut query = messages::table.into_boxed();
    query = match filter.trashed {
        Trashed::Without => query.filter(messages::deleted_at.is_null()),
        Trashed::Only => query.filter(messages::deleted_at.is_not_null()),
        Trashed::With => query,
    };
    if let Some(v) = filter.device_id {
        query = query.filter(messages::device_id.eq(v));
    }
    if let Some(v) = &filter.session_id {
        query = query.filter(messages::session_id.eq(v));
    }
    if let Some(v) = filter.status {
        query = query.filter(messages::status.eq(v.as_str()));
    }
    if let Some(v) = &filter.recipient {
        query = query.filter(messages::recipient.eq(v));
    }
    if let Some(v) = &filter.message_type {
        query = query.filter(messages::message_type.eq(v));
    }
    if let Some(v) = &filter.batch_id {
        query = query.filter(messages::batch_id.eq(v));
    }
    if let Some(v) = filter.created_from {
        query = query.filter(messages::created_at.ge(v));
    }
    if let Some(v) = filter.created_to {
        query = query.filter(messages::created_at.lt(v));
    }
    query
}

/// The columns that make a message's send job owed again: the relay publishes a new job, and a
/// relay still mid-pass over the old one loses its reservation, so it cannot mark the new job
/// published (see [`crate::dispatch::mark_published`]). Every write that re-owes a job sets these.
pub(crate) fn job_owed_again() -> (
    diesel::dsl::Eq<messages::published_at, Option<NaiveDateTime>>,
    diesel::dsl::Eq<messages::relay_lease_until, Option<NaiveDateTime>>,
) {
    (
        messages::published_at.eq(None::<NaiveDateTime>),
        messages::relay_lease_until.eq(None::<NaiveDateTime>),
    )
}

/// The statuses a guarded UPDATE may move from to reach `to`: `from` restricted to the legal
/// moves of [`MessageStatus::can_move_to`], as text for the WHERE clause. Every status write of
/// the store goes through here, so an illegal move can never be written.
pub(crate) fn legal_sources(from: &[MessageStatus], to: MessageStatus) -> Vec<&'static str> {
    from.iter()
        .filter(|s| s.can_move_to(to))
        .map(|s| s.as_str())
        .collect()
}

/// Replaces a live message's content, but only while it is still `pending` and still at
/// `revision`: both checks are in the UPDATE itself, so an edit can never race a dispatcher that
/// has just claimed the row, nor overwrite a concurrent edit. `Status` when it is no longer
/// pending, `Stale` when another edit came first, `NotFound` when it is gone.
///
/// The send job is owed again (`published_at` cleared, `due_at` from the new schedule): a job
/// published for the old schedule finds the message not due and is dropped by the dispatcher.
pub fn update_pending(
    conn: &mut DbConn,
    id: i64,
    revision: i64,
    fields: &MessageFields,
    due_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<MessageRow, StoreError> {
    let updated = diesel::update(messages::table)
        .filter(messages::id.eq(id))
        .filter(messages::deleted_at.is_null())
        .filter(messages::status.eq(MessageStatus::Pending.as_str()))
        .filter(messages::revision.eq(revision))
        .set((
            fields,
            messages::due_at.eq(due_at),
            job_owed_again(),
            messages::updated_at.eq(now),
            messages::revision.eq(messages::revision + 1),
        ))
        .returning(messages::all_columns)
        .get_result(conn)
        .optional()?;
    match updated {
        Some(row) => Ok(row),
        None => {
            let current = find(conn, id, None, false)?;
            if current.status != MessageStatus::Pending {
                Err(StoreError::Status(current.status))
            } else {
                Err(StoreError::Stale)
            }
        }
    }
}

/// Moves one live message to `to` from any of `from` (restricted to legal moves), stamping
/// `status_updated_at`; `None` when the row is deleted or not in one of those statuses (any more).
pub fn set_status(
    conn: &mut DbConn,
    id: i64,
    from: &[MessageStatus],
    to: MessageStatus,
    now: NaiveDateTime,
) -> Result<Option<MessageRow>, StoreError> {
    Ok(diesel::update(messages::table)
        .filter(messages::id.eq(id))
        .filter(messages::deleted_at.is_null())
        .filter(messages::status.eq_any(legal_sources(from, to)))
        .set((
            messages::status.eq(to.as_str()),
            messages::status_updated_at.eq(now),
            messages::updated_at.eq(now),
            messages::revision.eq(messages::revision + 1),
        ))
        .returning(messages::all_columns)
        .get_result(conn)
        .optional()?)
}

/// Soft-deletes a live `pending` message and cancels it in the same statement (reason
/// `message_deleted`), so it can never be sent after its deletion was acknowledged. `None` when
/// it is not live and pending (any more).
pub fn cancel_and_delete(
    conn: &mut DbConn,
    id: i64,
    now: NaiveDateTime,
) -> Result<Option<MessageRow>, StoreError> {
    let to = MessageStatus::Cancelled;
    Ok(diesel::update(messages::table)
        .filter(messages::id.eq(id))
        .filter(messages::deleted_at.is_null())
        .filter(messages::status.eq_any(legal_sources(&[MessageStatus::Pending], to)))
        .set((
            messages::deleted_at.eq(now),
            messages::updated_at.eq(now),
            messages::status.eq(to.as_str()),
            messages::status_updated_at.eq(now),
            messages::cancel_reason.eq(CancelReason::MessageDeleted.as_str()),
            messages::revision.eq(messages::revision + 1),
        ))
        .returning(messages::all_columns)
        .get_result(conn)
        .optional()?)
}

/// Soft-deletes a live message whose status is one of `statuses`, keeping the status (a sent,
/// failed or cancelled message stays what it is). `None` when it is not (any more).
pub fn mark_deleted(
    conn: &mut DbConn,
    id: i64,
    statuses: &[MessageStatus],
    now: NaiveDateTime,
) -> Result<Option<MessageRow>, StoreError> {
    let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    Ok(diesel::update(messages::table)
        .filter(messages::id.eq(id))
        .filter(messages::deleted_at.is_null())
        .filter(messages::status.eq_any(statuses))
        .set((
            messages::deleted_at.eq(now),
            messages::updated_at.eq(now),
            messages::revision.eq(messages::revision + 1),
        ))
        .returning(messages::all_columns)
        .get_result(conn)
        .optional()?)
}

/// Undoes a soft delete. With `revive`, a message its own deletion cancelled (reason
/// `message_deleted`) is `pending` again in the same statement; otherwise the status is kept.
pub fn undelete(
    conn: &mut DbConn,
    id: i64,
    revive: bool,
    now: NaiveDateTime,
) -> Result<Option<MessageRow>, StoreError> {
    let target = messages::table
        .filter(messages::id.eq(id))
        .filter(messages::deleted_at.is_not_null());
    let undeleted = (
        messages::deleted_at.eq(None::<NaiveDateTime>),
        messages::updated_at.eq(now),
        messages::revision.eq(messages::revision + 1),
    );
    let row = if revive {
        let to = MessageStatus::Pending;
        diesel::update(
            target
                .filter(messages::status.eq_any(legal_sources(&[MessageStatus::Cancelled], to)))
                .filter(messages::cancel_reason.eq(CancelReason::MessageDeleted.as_str())),
        )
        .set((
            undeleted,
            messages::status.eq(to.as_str()),
            messages::status_updated_at.eq(now),
            messages::cancel_reason.eq(None::<String>),
            job_owed_again(),
        ))
        .returning(messages::all_columns)
        .get_result(conn)
        .optional()?
    } else {
        diesel::update(target)
            .set(undeleted)
            .returning(messages::all_columns)
            .get_result(conn)
            .optional()?
    };
    Ok(row)
}

/// Cancels every live `pending` message of a device (reason `device_deleted`); part of the
/// device's deletion, in its transaction. Returns how many.
pub fn cancel_pending_of_device(
    conn: &mut DbConn,
    device_id: i64,
    now: NaiveDateTime,
) -> Result<usize, StoreError> {
    let to = MessageStatus::Cancelled;
    Ok(diesel::update(messages::table)
        .filter(messages::device_id.eq(device_id))
        .filter(messages::deleted_at.is_null())
        .filter(messages::status.eq_any(legal_sources(&[MessageStatus::Pending], to)))
        .set((
            messages::status.eq(to.as_str()),
            messages::status_updated_at.eq(now),
            messages::updated_at.eq(now),
            messages::cancel_reason.eq(CancelReason::DeviceDeleted.as_str()),
            messages::revision.eq(messages::revision + 1),
        ))
        .execute(conn)?)
}

/// Brings back what a device's deletion cancelled (its live messages with reason
/// `device_deleted`) as `pending`; part of the device's restore. Returns how many.
pub fn revive_cancelled_of_device(
    conn: &mut DbConn,
    device_id: i64,
    now: NaiveDateTime,
) -> Result<usize, StoreError> {
    let to = MessageStatus::Pending;
    Ok(diesel::update(messages::table)
        .filter(messages::device_id.eq(device_id))
        .filter(messages::deleted_at.is_null())
        .filter(messages::status.eq_any(legal_sources(&[MessageStatus::Cancelled], to)))
        .filter(messages::cancel_reason.eq(CancelReason::DeviceDeleted.as_str()))
        .set((
            messages::status.eq(to.as_str()),
            messages::status_updated_at.eq(now),
            messages::updated_at.eq(now),
            messages::cancel_reason.eq(None::<String>),
            job_owed_again(),
            messages::revision.eq(messages::revision + 1),
        ))
        .execute(conn)?)
}

/// How many messages (deleted ones included) are in each status: operators' and soak tests'
/// view of the pipeline.
pub fn status_counts(conn: &mut DbConn) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(messages::table
        .group_by(messages::status)
        .select((messages::status, diesel::dsl::count_star()))
        .load(conn)?)
}

/// One batch's progress: how many of its messages are in each status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchProgress {
    /// The batch's UUID.
    pub batch_id: String,
    /// When its first message was accepted.
    pub started_at: NaiveDateTime,
    /// Its messages.
    pub total: i64,
    /// Messages per status (only statuses it has).
    pub by_status: Vec<(String, i64)>,
}

impl BatchProgress {
    /// How many of its messages are in one of `statuses`.
    pub fn count_of(&self, statuses: &[MessageStatus]) -> i64 {
        self.by_status
            .iter()
            .filter(|(s, _)| statuses.iter().any(|t| t.as_str() == s))
            .map(|(_, n)| n)
            .sum()
    }
}

/// The `limit` latest batches (of one device, or all), newest first, with their progress.
pub fn batch_progress(
    conn: &mut DbConn,
    device_id: Option<i64>,
    limit: i64,
) -> Result<Vec<BatchProgress>, StoreError> {
    use diesel::dsl::{count_star, min};
    let mut latest = messages::table
        .filter(messages::batch_id.is_not_null())
        .group_by(messages::batch_id)
        .select((messages::batch_id, min(messages::created_at)))
        .order_by(min(messages::created_at).desc())
        .limit(limit)
        .into_boxed();
    if let Some(device) = device_id {
        latest = latest.filter(messages::device_id.eq(device));
    }
    let latest: Vec<(Option<String>, Option<NaiveDateTime>)> = latest.load(conn)?;
    let ids: Vec<String> = latest.iter().filter_map(|(b, _)| b.clone()).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let counts: Vec<(Option<String>, String, i64)> = messages::table
        .filter(messages::batch_id.eq_any(&ids))
        .group_by((messages::batch_id, messages::status))
        .select((messages::batch_id, messages::status, count_star()))
        .load(conn)?;
    Ok(latest
        .into_iter()
        .filter_map(|(batch, started)| {
            let batch = batch?;
            let mut by_status: Vec<(String, i64)> = counts
                .iter()
                .filter(|(b, _, _)| b.as_deref() == Some(batch.as_str()))
                .map(|(_, s, n)| (s.clone(), *n))
                .collect();
            by_status.sort();
            Some(BatchProgress {
                total: by_status.iter().map(|(_, n)| n).sum(),
                started_at: started?,
                batch_id: batch,
                by_status,
            })
        })
        .collect())
}
