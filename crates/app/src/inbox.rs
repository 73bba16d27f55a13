//! Reading what contacts sent the devices (`/api/inbox`): a device sees its own, the operator
//! every device's.

use wapim_store::inbound::{self, InboundFilter, InboundRow};
use wapim_store::{DbConn, Page, Paged};

use crate::{Actor, AppError};

/// A page of inbound messages, newest first (a device's own only).
pub fn list(
    conn: &mut DbConn,
    actor: &Actor,
    mut filter: InboundFilter,
    page: Page,
) -> Result<Paged<InboundRow>, AppError> {
    if let Some(own) = actor.device_scope() {
        filter.device_id = Some(own);
    }
    Ok(inbound::list(conn, &filter, page)?)
}

/// One inbound message; another device's is a 404.
pub fn show(conn: &mut DbConn, actor: &Actor, id: i64) -> Result<InboundRow, AppError> {
    Ok(inbound::find(conn, id, actor.device_scope())?)
}
