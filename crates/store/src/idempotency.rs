//! Stored first responses for `Idempotency-Key` replays.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::idempotency_keys;
use crate::{conflict_on, DbConn, StoreError};

/// A remembered response.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyRecord {
    /// Whose key: `admin` or `device:<id>`.
    pub scope: String,
    /// The client's key.
    pub idempotency_key: String,
    /// Hash of method, path and body of the first request.
    pub request_hash: String,
    /// HTTP status of the first response.
    pub response_status: i32,
    /// Body of the first response.
    pub response_body: String,
    /// UTC.
    pub created_at: NaiveDateTime,
}

/// The record for a key, if one was stored after `not_before` (older ones have expired).
pub fn find(
    conn: &mut DbConn,
    scope: &str,
    key: &str,
    not_before: NaiveDateTime,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    Ok(idempotency_keys::table
        .filter(idempotency_keys::scope.eq(scope))
        .filter(idempotency_keys::idempotency_key.eq(key))
        .filter(idempotency_keys::created_at.ge(not_before))
        .select(IdempotencyRecord::as_select())
        .first(conn)
        .optional()?)
}

/// Stores a record; a concurrent request that stored the same key first makes this a
/// `Conflict("idempotency_key")` (and the caller's transaction rolls back its work).
/// An expired record for the key is replaced.
pub fn insert(
    conn: &mut DbConn,
    record: &IdempotencyRecord,
    not_before: NaiveDateTime,
) -> Result<(), StoreError> {
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::scope.eq(&record.scope))
            .filter(idempotency_keys::idempotency_key.eq(&record.idempotency_key))
            .filter(idempotency_keys::created_at.lt(not_before)),
    )
    .execute(conn)?;
    diesel::insert_into(idempotency_keys::table)
        .values(record)
        .execute(conn)
        .map_err(conflict_on("idempotency_key"))?;
    Ok(())
}
