//! The delivery log of the integrator's webhooks (`/api/webhook-deliveries`): listed,
//! inspected with every attempt, and replayed. A device sees and replays its own deliveries,
//! the operator every device's.

use chrono::NaiveDateTime;
use wapim_store::webhooks::{self, AttemptRow, DeliveryFilter, DeliveryRow};
use wapim_store::{DbConn, Page, Paged, StoreError};

use crate::{Actor, AppError};

/// A page of deliveries, newest first.
pub fn list(
    conn: &mut DbConn,
    actor: &Actor,
    mut filter: DeliveryFilter,
    page: Page,
) -> Result<Paged<DeliveryRow>, AppError> {
    if let Some(own) = actor.device_scope() {
        filter.device_id = Some(own);
    }
    Ok(webhooks::list(conn, &filter, page)?)
}

/// One delivery and its attempts.
pub fn show(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
) -> Result<(DeliveryRow, Vec<AttemptRow>), AppError> {
    Ok(webhooks::find(conn, id, actor.device_scope())?)
}

/// Sends a delivery again now, with the same `webhook-id` and a fresh day of retries; one
/// being attempted this moment is a 409.
pub fn replay(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    now: NaiveDateTime,
) -> Result<DeliveryRow, AppError> {
    webhooks::find(conn, id, actor.device_scope())?;
    match webhooks::replay(conn, id, now) {
        Err(StoreError::Conflict(_)) => Err(AppError::Conflict(
            "delivery",
            "The delivery is being attempted right now; try again in a moment.".into(),
        )),
        other => Ok(other?),
    }
}
