//! Message rows and their repository functions.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::listing::{Page, Paged, Sort, Trashed};
use crate::schema::messages;
use crate::{DbConn, StoreError};

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
    pub status: String,
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
    /// UTC.
    pub created_at: NaiveDateTime,
    /// UTC.
    pub updated_at: NaiveDateTime,
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
    pub status: Option<String>,
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
/// transaction. backend-specific: one multi-row INSERT … RETURNING on PostgreSQL.
pub fn insert_many(conn: &mut DbConn, rows: &[NewMessage]) -> Result<Vec<MessageRow>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut inserted = diesel::insert_into(messages::table)
        .values(rows)
        .returning(messages::all_columns)
        .get_results(conn)?;
    // RETURNING order follows VALUES order in practice; sort by id to make it a guarantee.
    inserted.sort_by_key(|m: &MessageRow| m.id);
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
    if let Some(v) = &filter.status {
        query = query.filter(messages::status.eq(v));
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

/// Replaces a live message's content, but only while it is still `pending`: the status check is
/// in the UPDATE itself, so an edit can never race a dispatcher that has just claimed the row.
pub fn update_pending(
    conn: &mut DbConn,
    id: i64,
    device_id: Option<i64>,
    fields: &MessageFields,
    now: NaiveDateTime,
) -> Result<MessageRow, StoreError> {
    let mut update = diesel::update(messages::table)
        .filter(messages::id.eq(id))
        .filter(messages::deleted_at.is_null())
        .filter(messages::status.eq("pending"))
        .into_boxed();
    if let Some(device_id) = device_id {
        update = update.filter(messages::device_id.eq(device_id));
    }
    let updated = update
        .set((fields, messages::updated_at.eq(now)))
        .returning(messages::all_columns)
        .get_result(conn)
        .optional()?;
    match updated {
        Some(row) => Ok(row),
        // Tell "not there" (404) from "no longer editable" (422).
        None => {
            let current = find(conn, id, device_id, false)?;
            Err(StoreError::State(format!(
                "The message is {} and can no longer be edited.",
                current.status
            )))
        }
    }
}

/// Soft-deletes a live message; a `pending` one becomes `cancelled` in the same statement
/// (it must never be sent after its deletion was acknowledged).
pub fn soft_delete(
    conn: &mut DbConn,
    id: i64,
    device_id: Option<i64>,
    now: NaiveDateTime,
) -> Result<MessageRow, StoreError> {
    conn.transaction(|conn| {
        let current = find(conn, id, device_id, false)?;
        let cancel = current.status == "pending";
        let target = messages::table
            .filter(messages::id.eq(id))
            .filter(messages::deleted_at.is_null());
        let row = if cancel {
            diesel::update(target.filter(messages::status.eq("pending")))
                .set((
                    messages::deleted_at.eq(now),
                    messages::updated_at.eq(now),
                    messages::status.eq("cancelled"),
                    messages::status_updated_at.eq(now),
                ))
                .returning(messages::all_columns)
                .get_result(conn)
                .optional()?
        } else {
            None
        };
        match row {
            Some(row) => Ok(row),
            // Not pending (or claimed meanwhile): delete without touching the status.
            None => diesel::update(target)
                .set((messages::deleted_at.eq(now), messages::updated_at.eq(now)))
                .returning(messages::all_columns)
                .get_result(conn)
                .optional()?
                .ok_or(StoreError::NotFound),
        }
    })
}

/// Restores a soft-deleted message (a live one is returned as is); a message that deletion
/// cancelled goes back to `pending`.
pub fn restore(
    conn: &mut DbConn,
    id: i64,
    device_id: Option<i64>,
    now: NaiveDateTime,
) -> Result<MessageRow, StoreError> {
    conn.transaction(|conn| {
        let current = find(conn, id, device_id, true)?;
        if current.deleted_at.is_none() {
            return Ok(current);
        }
        let target = messages::table.filter(messages::id.eq(id));
        if current.status == "cancelled" {
            Ok(diesel::update(target)
                .set((
                    messages::deleted_at.eq(None::<NaiveDateTime>),
                    messages::updated_at.eq(now),
                    messages::status.eq("pending"),
                    messages::status_updated_at.eq(now),
                ))
                .returning(messages::all_columns)
                .get_result(conn)?)
        } else {
            Ok(diesel::update(target)
                .set((
                    messages::deleted_at.eq(None::<NaiveDateTime>),
                    messages::updated_at.eq(now),
                ))
                .returning(messages::all_columns)
                .get_result(conn)?)
        }
    })
}
