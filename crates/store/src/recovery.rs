//! Start-up recovery for the in-process queue (`memory://`): the queue dies with its process,
//! so every job it held is gone. The rows are the durable record: whatever was published and
//! not yet done is owed again, and claims held by the dead process are released to the
//! sweeper's reconciliation at once (it looks a send up on WAHA before sending again). Only for
//! a process that is alone on its database with an in-process queue.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use wapim_domain::{MessageStatus, WebhookDeliveryStatus};

use crate::schema::{devices, messages, webhook_deliveries};
use crate::{DbConn, StoreError};

/// What a recovery found owed again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Pending messages whose send job was lost.
    pub messages: usize,
    /// Messages claimed by the dead process (reconciled by the sweeper now).
    pub claims: usize,
    /// Devices whose session sync job was lost.
    pub syncs: usize,
    /// Webhook deliveries whose job (or attempt) was lost.
    pub deliveries: usize,
}

/// Makes every job an in-process queue held owed again, and expires every claim, as of `now`.
pub fn owe_lost_jobs(conn: &mut DbConn, now: NaiveDateTime) -> Result<Recovered, StoreError> {
    crate::transaction(conn, |c| {
        let messages = diesel::update(
            messages::table
                .filter(messages::status.eq(MessageStatus::Pending.as_str()))
                .filter(messages::published_at.is_not_null()),
        )
        .set((
            messages::published_at.eq(None::<NaiveDateTime>),
            messages::relay_lease_until.eq(None::<NaiveDateTime>),
        ))
        .execute(c)?;
        let claims = diesel::update(
            messages::table
                .filter(messages::status.eq(MessageStatus::Processing.as_str()))
                .filter(messages::lease_until.gt(now)),
        )
        .set(messages::lease_until.eq(now - TimeDelta::seconds(1)))
        .execute(c)?;
        let syncs = diesel::update(
            devices::table
                .filter(devices::session_sync_due_at.is_not_null())
                .filter(devices::session_sync_published_at.is_not_null()),
        )
        .set((
            devices::session_sync_published_at.eq(None::<NaiveDateTime>),
            devices::session_sync_lease_until.eq(None::<NaiveDateTime>),
        ))
        .execute(c)?;
        let deliveries = diesel::update(
            webhook_deliveries::table
                .filter(webhook_deliveries::status.eq(WebhookDeliveryStatus::Pending.as_str()))
                .filter(
                    webhook_deliveries::published_at
                        .is_not_null()
                        .or(webhook_deliveries::lease_until.is_not_null()),
                ),
        )
        .set((
            webhook_deliveries::published_at.eq(None::<NaiveDateTime>),
            webhook_deliveries::relay_lease_until.eq(None::<NaiveDateTime>),
            webhook_deliveries::lease_until.eq(None::<NaiveDateTime>),
        ))
        .execute(c)?;
        Ok(Recovered {
            messages,
            claims,
            syncs,
            deliveries,
        })
    })
}
