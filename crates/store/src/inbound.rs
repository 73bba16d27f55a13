//! What contacts sent the devices (inbound messages, once per WhatsApp id) and what the
//! automations remember of each contact (its conversation).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use wapim_domain::automation::{self, AutomationTiming, ConversationState, Reaction};

use crate::listing::{Page, Paged};
use crate::schema::{conversations, inbound_messages};
use crate::{DbConn, StoreError};

/// A stored inbound message.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = inbound_messages)]
pub struct InboundRow {
    /// Numeric id shown in the API.
    pub id: i64,
    /// The device that received it.
    pub device_id: i64,
    /// Its session.
    pub session_id: String,
    /// WhatsApp's serialized id.
    pub provider_message_id: String,
    /// The chat it came from (WAHA's `from`).
    pub chat_id: String,
    /// The sender's phone digits; `None` while only a lid is known.
    pub sender: Option<String>,
    /// The sender's hidden-number id, when WhatsApp used one.
    pub sender_lid: Option<String>,
    /// Sent in a group.
    pub is_group: bool,
    /// `text`, `image`, `video`, `audio` or `file`.
    pub message_type: String,
    /// Text or caption.
    pub message: Option<String>,
    /// It carries media.
    pub has_media: bool,
    /// Where WAHA serves the media.
    pub media_url: Option<String>,
    /// Media MIME type.
    pub media_mimetype: Option<String>,
    /// Media file name.
    pub media_filename: Option<String>,
    /// When WhatsApp says it was sent (UTC).
    pub sent_at: NaiveDateTime,
    /// When Wapim stored it.
    pub created_at: NaiveDateTime,
    /// UTC.
    pub updated_at: NaiveDateTime,
    /// Soft deletion.
    pub deleted_at: Option<NaiveDateTime>,
}

/// An inbound message to store.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = inbound_messages, treat_none_as_default_value = false)]
pub struct NewInbound {
    /// The device that received it.
    pub device_id: i64,
    /// Its session.
    pub session_id: String,
    /// WhatsApp's serialized id.
    pub provider_message_id: String,
    /// WAHA's `from`.
    pub chat_id: String,
    /// Phone digits, when known.
    pub sender: Option<String>,
    /// The hidden-number id, when used.
    pub sender_lid: Option<String>,
    /// Sent in a group.
    pub is_group: bool,
    /// See [`InboundRow::message_type`].
    pub message_type: String,
    /// Text or caption.
    pub message: Option<String>,
    /// Carries media.
    pub has_media: bool,
    /// Media URL.
    pub media_url: Option<String>,
    /// Media MIME type.
    pub media_mimetype: Option<String>,
    /// Media file name.
    pub media_filename: Option<String>,
    /// When WhatsApp says it was sent.
    pub sent_at: NaiveDateTime,
    /// UTC.
    pub created_at: NaiveDateTime,
    /// UTC.
    pub updated_at: NaiveDateTime,
}

/// Stores an inbound message; `None` when the device has it already (a replayed event). Safe
/// inside a caller's transaction: the insert runs in a savepoint, so a duplicate does not abort
/// the caller's transaction (PostgreSQL would).
pub fn insert(conn: &mut DbConn, row: &NewInbound) -> Result<Option<InboundRow>, StoreError> {
    let inserted = crate::transaction(conn, |c| {
        diesel::insert_into(inbound_messages::table)
            .values(row)
            .returning(inbound_messages::all_columns)
            .get_result(c)
            .map_err(StoreError::Database)
    });
    match inserted {
        Ok(row) => Ok(Some(row)),
        Err(StoreError::Database(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ))) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Filters of `GET /api/inbox`.
#[derive(Debug, Clone, Default)]
pub struct InboundFilter {
    /// Only this device's (a device's own view, or the operator's `device_id`).
    pub device_id: Option<i64>,
    /// Only from this phone.
    pub sender: Option<String>,
    /// Only `text`, `image`, …
    pub message_type: Option<String>,
    /// Sent at or after.
    pub from: Option<NaiveDateTime>,
    /// Sent at or before.
    pub to: Option<NaiveDateTime>,
}

fn filtered(filter: &InboundFilter) -> inbound_messages::BoxedQuery<'static, crate::Backend> {
    let mut query = inbound_messages::table
        .filter(inbound_messages::deleted_at.is_null())
        .into_boxed();
    if let Some(device) = filter.device_id {
        query = query.filter(inbound_messages::device_id.eq(device));
    }
    if let Some(sender) = &filter.sender {
        query = query.filter(inbound_messages::sender.eq(sender.clone()));
    }
    if let Some(kind) = &filter.message_type {
        query = query.filter(inbound_messages::message_type.eq(kind.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(inbound_messages::sent_at.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(inbound_messages::sent_at.le(to));
    }
    query
}

/// One page of inbound messages matching `filter`, newest first, with the total.
pub fn list(
    conn: &mut DbConn,
    filter: &InboundFilter,
    page: Page,
) -> Result<Paged<InboundRow>, StoreError> {
    let total: i64 = filtered(filter).count().get_result(conn)?;
    let mut query = filtered(filter);
    if let Some(after) = page.after_id {
        query = query.filter(inbound_messages::id.lt(after));
    }
    let rows = query
        .order(inbound_messages::id.desc())
        .limit(page.size)
        .offset(page.offset())
        .select(InboundRow::as_select())
        .load(conn)?;
    Ok(Paged { rows, total })
}

/// One inbound message, optionally only if it is `device_id`'s.
pub fn find(conn: &mut DbConn, id: i64, device_id: Option<i64>) -> Result<InboundRow, StoreError> {
    let mut query = inbound_messages::table
        .filter(inbound_messages::id.eq(id))
        .filter(inbound_messages::deleted_at.is_null())
        .into_boxed();
    if let Some(device) = device_id {
        query = query.filter(inbound_messages::device_id.eq(device));
    }
    query
        .select(InboundRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// Records a contact's message at `at` in its conversation with the device and says what it
/// does (opens it, is due an auto-reply); a closing message becomes owed `silence` after it
/// when `closing` is set. Call inside the transaction that stores the message: two events of one
/// contact never both open a conversation (the second insert of a new contact conflicts and
/// its event is retried; an existing row is updated under its previous values).
pub fn touch_conversation(
    conn: &mut DbConn,
    device_id: i64,
    contact: &str,
    at: NaiveDateTime,
    timing: &AutomationTiming,
    closing: bool,
) -> Result<Reaction, StoreError> {
    type Stored = (i64, NaiveDateTime, NaiveDateTime, Option<NaiveDateTime>);
    let stored: Option<Stored> = conversations::table
        .filter(conversations::device_id.eq(device_id))
        .filter(conversations::contact.eq(contact))
        .select((
            conversations::id,
            conversations::opened_at,
            conversations::last_inbound_at,
            conversations::last_auto_reply_at,
        ))
        .first(conn)
        .optional()?;
    let before =
        stored.map(
            |(_, opened_at, last_inbound_at, last_auto_reply_at)| ConversationState {
                opened_at,
                last_inbound_at,
                last_auto_reply_at,
            },
        );
    let reaction = automation::react(before.as_ref(), at, timing);
    let next = reaction.next;
    let closing_due = closing.then(|| next.last_inbound_at + timing.silence);
    match stored {
        None => {
            diesel::insert_into(conversations::table)
                .values((
                    conversations::device_id.eq(device_id),
                    conversations::contact.eq(contact),
                    conversations::opened_at.eq(next.opened_at),
                    conversations::last_inbound_at.eq(next.last_inbound_at),
                    conversations::last_auto_reply_at.eq(next.last_auto_reply_at),
                    conversations::closing_due_at.eq(closing_due),
                ))
                .execute(conn)?;
        }
        Some((id, _, last_inbound_at, last_auto_reply_at)) => {
            let mut guarded = diesel::update(conversations::table)
                .filter(conversations::id.eq(id))
                .filter(conversations::last_inbound_at.eq(last_inbound_at))
                .into_boxed();
            guarded = match last_auto_reply_at {
                Some(t) => guarded.filter(conversations::last_auto_reply_at.eq(t)),
                None => guarded.filter(conversations::last_auto_reply_at.is_null()),
            };
            let changed = guarded
                .set((
                    conversations::opened_at.eq(next.opened_at),
                    conversations::last_inbound_at.eq(next.last_inbound_at),
                    conversations::last_auto_reply_at.eq(next.last_auto_reply_at),
                    conversations::closing_due_at.eq(closing_due),
                ))
                .execute(conn)?;
            if changed == 0 {
                return Err(StoreError::Conflict("conversation"));
            }
        }
    }
    Ok(reaction)
}

/// A conversation whose closing message is owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueClosing {
    /// The device.
    pub device_id: i64,
    /// The contact.
    pub contact: String,
}

/// Takes up to `limit` conversations whose closing message is due by `now`: each is cleared
/// (guarded, so two sweepers never take one) and returned for the caller to create the message
/// in the same transaction.
pub fn take_due_closings(
    conn: &mut DbConn,
    now: NaiveDateTime,
    limit: i64,
) -> Result<Vec<DueClosing>, StoreError> {
    let due: Vec<(i64, i64, String, Option<NaiveDateTime>)> = conversations::table
        .filter(conversations::closing_due_at.le(now))
        .order(conversations::closing_due_at.asc())
        .limit(limit)
        .select((
            conversations::id,
            conversations::device_id,
            conversations::contact,
            conversations::closing_due_at,
        ))
        .load(conn)?;
    let mut taken = Vec::with_capacity(due.len());
    for (id, device_id, contact, seen) in due {
        let cleared = diesel::update(conversations::table)
            .filter(conversations::id.eq(id))
            .filter(conversations::closing_due_at.eq(seen))
            .set(conversations::closing_due_at.eq(None::<NaiveDateTime>))
            .execute(conn)?;
        if cleared == 1 {
            taken.push(DueClosing { device_id, contact });
        }
    }
    Ok(taken)
}
