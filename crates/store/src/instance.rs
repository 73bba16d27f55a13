//! Settings an instance decides for itself and keeps across restarts (`instance_settings`):
//! e.g. the hash of the operator token the single binary generated at its first start.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::instance_settings;
use crate::{DbConn, StoreError};

/// The name under which the operator token's SHA-256 (hex) is kept.
pub const OPERATOR_TOKEN_HASH: &str = "operator_token_hash";

/// The value kept under `name`, if any.
pub fn get(conn: &mut DbConn, name: &str) -> Result<Option<String>, StoreError> {
    Ok(instance_settings::table
        .find(name)
        .select(instance_settings::value)
        .first(conn)
        .optional()?)
}

/// Keeps `value` under `name` unless something is kept there already; returns what is kept
/// afterwards (two processes starting at once agree on the first one's value).
pub fn keep_first(
    conn: &mut DbConn,
    name: &str,
    value: &str,
    now: NaiveDateTime,
) -> Result<String, StoreError> {
    let inserted = crate::transaction(conn, |c| {
        diesel::insert_into(instance_settings::table)
            .values((
                instance_settings::name.eq(name),
                instance_settings::value.eq(value),
                instance_settings::updated_at.eq(now),
            ))
            .execute(c)
            .map_err(StoreError::Database)
    });
    match inserted {
        Ok(_) => Ok(value.to_owned()),
        Err(StoreError::Database(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ))) => get(conn, name)?.ok_or(StoreError::NotFound),
        Err(e) => Err(e),
    }
}

/// Replaces (or sets) the value kept under `name`.
pub fn replace(
    conn: &mut DbConn,
    name: &str,
    value: &str,
    now: NaiveDateTime,
) -> Result<(), StoreError> {
    crate::transaction(conn, |c| {
        diesel::delete(instance_settings::table.find(name)).execute(c)?;
        diesel::insert_into(instance_settings::table)
            .values((
                instance_settings::name.eq(name),
                instance_settings::value.eq(value),
                instance_settings::updated_at.eq(now),
            ))
            .execute(c)?;
        Ok(())
    })
}
