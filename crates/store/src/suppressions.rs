//! Each device's suppression list: contacts who asked not to be messaged by it again. The
//! dispatcher reads it before every send ([`crate::dispatch::safety_of`]).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::listing::{Page, Paged};
use crate::schema::suppressions;
use crate::{DbConn, StoreError};

/// One suppressed contact of a device.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = suppressions)]
pub struct SuppressionRow {
    /// Row id.
    pub id: i64,
    /// The device that must not message `phone`.
    pub device_id: i64,
    /// International digits.
    pub phone: String,
    /// Why (free text from whoever added it).
    pub reason: Option<String>,
    /// UTC.
    pub created_at: NaiveDateTime,
}

/// A device's suppressed contacts, newest first.
pub fn list(
    conn: &mut DbConn,
    device_id: i64,
    page: Page,
) -> Result<Paged<SuppressionRow>, StoreError> {
    let total: i64 = suppressions::table
        .filter(suppressions::device_id.eq(device_id))
        .count()
        .get_result(conn)?;
    let rows = suppressions::table
        .filter(suppressions::device_id.eq(device_id))
        .order(suppressions::id.desc())
        .limit(page.size)
        .offset(page.offset())
        .select(SuppressionRow::as_select())
        .load(conn)?;
    Ok(Paged { rows, total })
}

/// Suppresses `phone` for a device. Adding a contact already on the list changes nothing and
/// returns the existing entry; the flag says whether it was new.
pub fn add(
    conn: &mut DbConn,
    device_id: i64,
    phone: &str,
    reason: Option<&str>,
    now: NaiveDateTime,
) -> Result<(SuppressionRow, bool), StoreError> {
    let existing = |conn: &mut DbConn| {
        suppressions::table
            .filter(suppressions::device_id.eq(device_id))
            .filter(suppressions::phone.eq(phone))
            .select(SuppressionRow::as_select())
            .first(conn)
            .optional()
    };
    if let Some(row) = existing(conn)? {
        return Ok((row, false));
    }
    // (The multi-backend connection has no portable upsert: insert, and on a concurrent insert of
    // the same contact read the winner's row.)
    // A savepoint: a concurrent duplicate must not abort a caller's transaction (PostgreSQL).
    let inserted = crate::transaction(conn, |c| {
        diesel::insert_into(suppressions::table)
            .values((
                suppressions::device_id.eq(device_id),
                suppressions::phone.eq(phone),
                suppressions::reason.eq(reason),
                suppressions::created_at.eq(now),
            ))
            .execute(c)
            .map_err(StoreError::Database)
    });
    let new = match inserted {
        Ok(_) => true,
        Err(StoreError::Database(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ))) => false,
        Err(e) => return Err(e),
    };
    let row = existing(conn)?.ok_or(StoreError::Database(diesel::result::Error::NotFound))?;
    Ok((row, new))
}

/// Takes `phone` off a device's list; `false` when it was not on it.
pub fn remove(conn: &mut DbConn, device_id: i64, phone: &str) -> Result<bool, StoreError> {
    Ok(diesel::delete(
        suppressions::table
            .filter(suppressions::device_id.eq(device_id))
            .filter(suppressions::phone.eq(phone)),
    )
    .execute(conn)?
        == 1)
}

/// Whether `phone` is on the device's suppression list.
pub fn contains(conn: &mut DbConn, device_id: i64, phone: &str) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(
        suppressions::table
            .filter(suppressions::device_id.eq(device_id))
            .filter(suppressions::phone.eq(phone)),
    ))
    .get_result(conn)?)
}
