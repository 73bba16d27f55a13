//! Suppression-list use cases: a device's opted-out contacts, managed by the operator or by the
//! device itself (a device sees only its own list; another device's is 404).

use chrono::NaiveDateTime;
use serde_json::{Map, Value};
use wapim_domain::validation::{Field, FieldReader};
use wapim_domain::ValidationContext;
use wapim_store::suppressions::{self, SuppressionRow};
use wapim_store::{devices, DbConn, Page, Paged};

use crate::{Actor, AppError};

/// Longest free-text reason kept with an entry.
const MAX_REASON: usize = 255;

fn device_of(conn: &mut DbConn, actor: &Actor, device_id: i64) -> Result<(), AppError> {
    if actor.device_scope().is_some_and(|own| own != device_id) {
        return Err(AppError::NotFound);
    }
    devices::find(conn, device_id, false)?;
    Ok(())
}

/// A page of a device's suppressed contacts, newest first.
pub fn list(
    conn: &mut DbConn,
    actor: &Actor,
    device_id: i64,
    page: Page,
) -> Result<Paged<SuppressionRow>, AppError> {
    device_of(conn, actor, device_id)?;
    Ok(suppressions::list(conn, device_id, page)?)
}

/// Adds a contact (`phone`, normalised like every phone field; optional `reason`) to a device's
/// list. Adding one already there keeps the existing entry; the flag says whether it is new.
pub fn add(
    conn: &mut DbConn,
    actor: &Actor,
    device_id: i64,
    body: &Map<String, Value>,
    ctx: &ValidationContext,
    now: NaiveDateTime,
) -> Result<(SuppressionRow, bool), AppError> {
    let mut r = FieldReader::new(body);
    let phone = match r.string("phone", 64) {
        Field::Value(raw) => match ctx.phones.normalize(&raw) {
            Ok(p) => Some(p),
            Err(_) => {
                r.fail("phone", "The phone is not a valid phone number.");
                None
            }
        },
        Field::Invalid => None,
        _ => {
            r.required("phone");
            None
        }
    };
    let reason = r.string("reason", MAX_REASON).into_option();
    let errors = std::mem::take(&mut r.errors);
    let Some(phone) = phone.filter(|_| errors.is_empty()) else {
        return Err(AppError::Invalid(errors));
    };
    device_of(conn, actor, device_id)?;
    Ok(suppressions::add(
        conn,
        device_id,
        &phone,
        reason.as_deref(),
        now,
    )?)
}

/// Takes a contact off a device's list (the phone in any accepted form); 404 when it is not on
/// it.
pub fn remove(
    conn: &mut DbConn,
    actor: &Actor,
    device_id: i64,
    raw_phone: &str,
    ctx: &ValidationContext,
) -> Result<(), AppError> {
    device_of(conn, actor, device_id)?;
    let phone = ctx
        .phones
        .normalize(raw_phone)
        .map_err(|_| AppError::NotFound)?;
    if suppressions::remove(conn, device_id, &phone)? {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}
