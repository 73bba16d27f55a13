//! Message use cases: accept (one or a batch), read, edit, delete (cancel) and restore.

use chrono::NaiveDateTime;
use serde_json::{Map, Value};
use wapim_domain::message::{validate_message, MessageDraft, MessageInput};
use wapim_domain::validation::Mode;
use wapim_domain::{MessageOrigin, MessageStatus, ValidationContext, ValidationErrors};
use wapim_store::devices;
use wapim_store::listing::Sort;
use wapim_store::messages::{
    self, MessageFields, MessageFilter, MessageRow, MessageSortColumn, NewMessage,
};
use wapim_store::{DbConn, Page, Paged, StoreError};

use crate::{Actor, AppError, DeviceRef, STALE_RETRIES};

/// The message used for an unknown, foreign or deleted session: the same words for all three so
/// that session ids of other tenants cannot be probed.
pub const UNKNOWN_SESSION: &str = "The selected session id is invalid.";

/// The device a new message belongs to: the operator names it by `session_id`; a device may
/// name only itself (or nothing). A session that names no live device is a validation error on
/// `session_id`; a database failure stays a database failure (503/500, never quoted in a 422).
fn owning_device(
    conn: &mut DbConn,
    actor: &Actor,
    session_id: Option<&str>,
) -> Result<Result<DeviceRef, String>, StoreError> {
    Ok(match (actor, session_id) {
        (Actor::Device(own), None) => Ok(own.clone()),
        (Actor::Device(own), Some(s)) if s == own.session_id => Ok(own.clone()),
        (Actor::Device(_), Some(_)) => Err(UNKNOWN_SESSION.to_owned()),
        (Actor::Operator, None) => Err("The session id field is required.".to_owned()),
        (Actor::Operator, Some(s)) => match devices::find_live_by_session(conn, s)? {
            Some(device) => Ok(DeviceRef {
                id: device.id.into(),
                session_id: device.session_id,
            }),
            None => Err(UNKNOWN_SESSION.to_owned()),
        },
    })
}

fn new_message(
    device: &DeviceRef,
    batch_id: Option<&str>,
    draft: &MessageDraft,
    now: NaiveDateTime,
    traceparent: Option<&str>,
) -> NewMessage {
    NewMessage {
        device_id: device.id.get(),
        session_id: device.session_id.clone(),
        batch_id: batch_id.map(str::to_owned),
        fields: fields_of(draft),
        due_at: draft.schedule_at.map_or(now, |t| t.naive_utc()),
        created_at: now,
        updated_at: now,
        traceparent: traceparent.map(str::to_owned),
        origin: MessageOrigin::Api.as_str(),
    }
}

/// The stored columns of a validated draft.
pub(crate) fn fields_of(d: &MessageDraft) -> MessageFields {
    MessageFields {
        is_queue: d.is_queue,
        recipient: d.recipient.clone(),
        message_type: d.message_type.as_str().to_owned(),
        message: d.message.clone(),
        file_mimetype: d.file_mimetype.clone(),
        file_filename: d.file_filename.clone(),
        file_url: d.file_url.clone(),
        calendar_type: d.calendar_type.as_str().to_owned(),
        schedule_at: d.schedule_at.map(|t| t.naive_utc()),
    }
}

fn draft_of(row: &MessageRow) -> Result<MessageDraft, AppError> {
    let bad = |what: &str| {
        AppError::Store(StoreError::Inconsistent(format!(
            "message {} has an unknown {what}",
            row.id
        )))
    };
    Ok(MessageDraft {
        is_queue: row.is_queue,
        recipient: row.recipient.clone(),
        message_type: row.message_type.parse().map_err(|_| bad("message_type"))?,
        message: row.message.clone(),
        file_url: row.file_url.clone(),
        file_mimetype: row.file_mimetype.clone(),
        file_filename: row.file_filename.clone(),
        calendar_type: row
            .calendar_type
            .parse()
            .map_err(|_| bad("calendar_type"))?,
        schedule_at: row.schedule_at.map(|t| t.and_utc()),
    })
}

/// Accepts one validated message as `pending` for the actor's device (or the one the operator
/// names). The single place a message enters the system. `traceparent`: the accepting
/// request's W3C trace context, which the send continues.
pub fn accept(
    conn: &mut DbConn,
    actor: &Actor,
    input: &MessageInput,
    now: NaiveDateTime,
    traceparent: Option<&str>,
) -> Result<MessageRow, AppError> {
    let device = owning_device(conn, actor, input.session_id.as_deref())?
        .map_err(|m| AppError::field("session_id", m))?;
    Ok(messages::insert(
        conn,
        &new_message(&device, None, &input.draft, now, traceparent),
    )?)
}

/// The row [`accept`] would insert, when it needs nothing from the database to know it: a
/// device acting for itself (the common case, which [`crate::intake::Intake`] writes together
/// with concurrent accepts). `None` when the operator names a device, or a device names a
/// session that is not its own: use [`accept`], which looks it up or refuses it.
pub fn prepare_own(
    actor: &Actor,
    input: &MessageInput,
    now: NaiveDateTime,
    traceparent: Option<&str>,
) -> Option<NewMessage> {
    match (actor, input.session_id.as_deref()) {
        (Actor::Device(own), None) => Some(own),
        (Actor::Device(own), Some(s)) if s == own.session_id => Some(own),
        _ => None,
    }
    .map(|device| new_message(device, None, &input.draft, now, traceparent))
}

/// What became of one batch item: its stored message, or why it was refused.
pub type BatchItemOutcome = Result<MessageRow, ValidationErrors>;

/// Accepts the valid items of a batch under one `batch_id`, in one statement per
/// [`messages::INSERT_CHUNK_ROWS`] rows; items refused by validation (or naming a session that
/// is not the actor's) are reported in place. One transaction: all valid items or none.
pub fn accept_batch(
    conn: &mut DbConn,
    actor: &Actor,
    items: &[Result<MessageInput, ValidationErrors>],
    batch_id: &str,
    now: NaiveDateTime,
    traceparent: Option<&str>,
) -> Result<Vec<BatchItemOutcome>, AppError> {
    wapim_store::transaction(conn, |conn| {
        accept_batch_in(conn, actor, items, batch_id, now, traceparent)
    })
}

fn accept_batch_in(
    conn: &mut DbConn,
    actor: &Actor,
    items: &[Result<MessageInput, ValidationErrors>],
    batch_id: &str,
    now: NaiveDateTime,
    traceparent: Option<&str>,
) -> Result<Vec<BatchItemOutcome>, AppError> {
    let mut devices_by_session: std::collections::HashMap<
        Option<String>,
        Result<DeviceRef, String>,
    > = std::collections::HashMap::new();
    let mut rows = Vec::new();
    let mut slots: Vec<Result<usize, ValidationErrors>> = Vec::with_capacity(items.len());
    for item in items {
        let input = match item {
            Err(e) => {
                slots.push(Err(e.clone()));
                continue;
            }
            Ok(input) => input,
        };
        let device = match devices_by_session.get(&input.session_id) {
            Some(d) => d.clone(),
            None => {
                let d = owning_device(conn, actor, input.session_id.as_deref())?;
                devices_by_session.insert(input.session_id.clone(), d.clone());
                d
            }
        };
        match device {
            Ok(device) => {
                slots.push(Ok(rows.len()));
                rows.push(new_message(
                    &device,
                    Some(batch_id),
                    &input.draft,
                    now,
                    traceparent,
                ));
            }
            Err(m) => {
                let mut e = ValidationErrors::new();
                e.add("session_id", m);
                slots.push(Err(e));
            }
        }
    }
    let mut inserted = messages::insert_many(conn, &rows)?
        .into_iter()
        .map(Some)
        .collect::<Vec<_>>();
    slots
        .into_iter()
        .map(|slot| match slot {
            Ok(at) => inserted
                .get_mut(at)
                .and_then(Option::take)
                .map(Ok)
                .ok_or_else(|| {
                    AppError::Store(StoreError::Inconsistent(
                        "batch insert returned fewer rows than it was given".into(),
                    ))
                }),
            Err(e) => Ok(Err(e)),
        })
        .collect()
}

/// One message the actor may see.
pub fn show(conn: &mut DbConn, actor: &Actor, id: i64) -> Result<MessageRow, AppError> {
    Ok(messages::find(conn, id, actor.device_scope(), false)?)
}

/// One message the actor may see, with its newest `limit` send attempts (oldest first).
pub fn show_with_attempts(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    limit: i64,
) -> Result<(MessageRow, Vec<wapim_store::dispatch::AttemptRow>), AppError> {
    let row = show(conn, actor, id)?;
    let attempts = wapim_store::dispatch::attempts_of(conn, row.id, limit)?;
    Ok((row, attempts))
}

/// A page of the messages the actor may see.
pub fn list(
    conn: &mut DbConn,
    actor: &Actor,
    mut filter: MessageFilter,
    sort: Sort<MessageSortColumn>,
    page: Page,
) -> Result<Paged<MessageRow>, AppError> {
    filter.device_id = actor.device_scope();
    Ok(messages::list(conn, &filter, sort, page)?)
}

/// Edits a pending message: `Mode::Full` replaces its content, `Mode::Patch` changes the fields
/// present. The body is validated against the row as it is now and written only if the row did
/// not change meanwhile; after a concurrent edit it is re-read and the change applied again, so
/// two concurrent PATCHes both land.
pub fn edit(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    body: &Map<String, Value>,
    mode: Mode,
    ctx: &ValidationContext,
    now: NaiveDateTime,
) -> Result<MessageRow, AppError> {
    for _ in 0..STALE_RETRIES {
        let stored = messages::find(conn, id, actor.device_scope(), false)?;
        if !stored.status.is_editable() {
            return Err(AppError::NotEditable(stored.status));
        }
        let MessageInput { session_id, draft } =
            validate_message(body, mode, Some(&draft_of(&stored)?), ctx)?;
        if session_id.is_some_and(|s| s != stored.session_id) {
            return Err(AppError::field(
                "session_id",
                "A message cannot be moved to another session.",
            ));
        }
        let due_at = draft
            .schedule_at
            .map_or(stored.created_at, |t| t.naive_utc());
        match messages::update_pending(conn, id, stored.revision, &fields_of(&draft), due_at, now) {
            Err(StoreError::Stale) => continue,
            other => return Ok(other?),
        }
    }
    Err(changed_meanwhile())
}

fn changed_meanwhile() -> AppError {
    AppError::Conflict(
        "revision",
        "The record was changed by another request meanwhile; try again.".into(),
    )
}

/// Soft-deletes a message. A `pending` one is cancelled in the same statement and will never be
/// sent; one being sent (`processing`) cannot be deleted now (409); any other keeps its status.
pub fn delete(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    now: NaiveDateTime,
) -> Result<MessageRow, AppError> {
    for _ in 0..STALE_RETRIES {
        let current = messages::find(conn, id, actor.device_scope(), false)?;
        let done = match current.status {
            MessageStatus::Processing => {
                return Err(AppError::Conflict(
                    "status",
                    "The message is being sent right now and cannot be deleted; try again once it is sent or failed.".into(),
                ))
            }
            MessageStatus::Pending => messages::cancel_and_delete(conn, id, now)?,
            other => messages::mark_deleted(conn, id, &[other], now)?,
        };
        // None: the status moved between the read and the write; look again.
        if let Some(row) = done {
            return Ok(row);
        }
    }
    Err(changed_meanwhile())
}

/// Undoes a message's deletion. What its own deletion cancelled is `pending` again; any other
/// status is kept. Refused (409) while its device is deleted: restore the device first. A live
/// message is returned as is. One transaction, in which the device's row stays locked until the
/// commit, so a concurrent deletion of the device either comes first (409) or cancels the
/// revived message after it.
pub fn restore(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    now: NaiveDateTime,
) -> Result<MessageRow, AppError> {
    wapim_store::transaction(conn, |conn| restore_in(conn, actor, id, now))
}

fn restore_in(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    now: NaiveDateTime,
) -> Result<MessageRow, AppError> {
    let current = messages::find(conn, id, actor.device_scope(), true)?;
    if current.deleted_at.is_none() {
        return Ok(current);
    }
    if !devices::lock_live(conn, current.device_id)? {
        return Err(AppError::Conflict(
            "session_id",
            "The message's device is deleted; restore the device first.".into(),
        ));
    }
    let revive = current.status == MessageStatus::Cancelled
        && current.cancel_reason() == Some(wapim_domain::CancelReason::MessageDeleted);
    messages::undelete(conn, id, revive, now)?
        .map_or_else(|| Ok(messages::find(conn, id, None, true)?), Ok)
}

/// Sends a `failed` message again: the same record, a new round of attempts. Anything else is
/// refused (422): a sent message is never sent twice by request.
pub fn resend(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    now: NaiveDateTime,
) -> Result<MessageRow, AppError> {
    let current = messages::find(conn, id, actor.device_scope(), false)?;
    if current.status != MessageStatus::Failed {
        return Err(AppError::field(
            "status",
            format!(
                "Only failed messages can be resent; this one is {}.",
                current.status
            ),
        ));
    }
    wapim_store::dispatch::resend(conn, id, actor.device_scope(), now)?.ok_or_else(|| {
        AppError::field(
            "status",
            "The message changed meanwhile and is no longer failed.",
        )
    })
}
