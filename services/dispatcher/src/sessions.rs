//! Keeps each device's WAHA session in line with its row (the `sync_session` job): a live
//! device's session exists, carries Wapim's configuration (webhook to the ingest with the
//! device's own HMAC key, metadata naming the device, NOWEB store on) and runs; a deleted
//! device's session is stopped, its login kept. The sync is idempotent and only changes what is
//! wrong (WAHA restarts a running session to apply a new configuration), so duplicated jobs,
//! start-up resyncs and operator resyncs are all safe. A WAHA that is down delays the sync
//! (backoff, owed again) and loses nothing.

use chrono::TimeDelta;
use serde_json::Value;
use wapim_domain::token::generate_secret_token;
use wapim_domain::DeviceStatus;
use wapim_store::sessions::{self, SessionTarget};
use wapim_waha::{config_matches, SessionSpec, WahaError, SESSION_EVENTS};

use crate::{blocking, now, DispatchError, Dispatcher, Outcome};

fn status_of(session: &Value) -> Option<DeviceStatus> {
    session
        .get("status")
        .and_then(Value::as_str)
        .and_then(DeviceStatus::from_waha)
}

/// Longest wait between two tries of a failing sync.
const MAX_SYNC_BACKOFF: TimeDelta = TimeDelta::minutes(5);

impl Dispatcher {
    /// Handles a `sync_session` job: makes WAHA match the device's row and records the
    /// session's status; on a WAHA failure the sync is owed again after a backoff.
    pub async fn sync_session(&self, device_id: i64) -> Result<Outcome, DispatchError> {
        let Some(target) =
            blocking(&self.pool, move |c| sessions::session_target(c, device_id)).await?
        else {
            return Ok(Outcome::Skipped);
        };
        let owed_since = target.owed_since;
        match self.make_waha_match(&target).await {
            Ok(status) => {
                let at = now();
                blocking(&self.pool, move |c| {
                    sessions::record_synced(c, device_id, owed_since, status, at)
                })
                .await?;
                Ok(Outcome::Sent)
            }
            Err(e) => {
                let error = e.to_string();
                let at = now();
                tracing::warn!(device_id, session = %target.session_id, error = %error, "WAHA session sync failed; owed again");
                // The first retry comes soon (a create racing another), then backs off.
                let retry = at + self.backoff(target.failed_syncs + 1).min(MAX_SYNC_BACKOFF);
                blocking(&self.pool, move |c| {
                    sessions::record_sync_failed(c, device_id, owed_since, &error, retry)
                })
                .await?;
                Ok(Outcome::Deferred)
            }
        }
    }

    /// One reconciliation; returns the session's status as WAHA last reported it.
    async fn make_waha_match(
        &self,
        target: &SessionTarget,
    ) -> Result<Option<DeviceStatus>, WahaError> {
        let name = target.session_id.as_str();
        let waha = self.waha.for_session(name).await;
        let current = waha.session_details(name).await?;
        if !target.live {
            // Deleted: stopped, login kept; nothing to do for a session WAHA does not have.
            return match current {
                Some(s) if status_of(&s) != Some(DeviceStatus::Stopped) => {
                    let stopped = waha.set_session_running(name, false).await?;
                    Ok(status_of(&stopped).or(Some(DeviceStatus::Stopped)))
                }
                Some(_) => Ok(Some(DeviceStatus::Stopped)),
                None => Ok(None),
            };
        }
        let key = match target.hmac_key.clone() {
            Some(k) => k,
            None => {
                let (id, candidate) = (target.device_id, generate_secret_token());
                blocking(&self.pool, move |c| {
                    sessions::ensure_hmac_key(c, id, &candidate)
                })
                .await
                .map_err(|e| WahaError::Connect(format!("cannot store the session's key: {e}")))?
            }
        };
        let config = SessionSpec {
            webhook_url: self.sessions.webhook_url.clone(),
            hmac_key: key,
            metadata: vec![
                ("wapim.device_id".to_owned(), target.device_id.to_string()),
                ("wapim.device_name".to_owned(), target.name.clone()),
            ],
            // WAHA's own events the integrator asked for (Wapim's `device.*` are not WAHA's).
            extra_events: target
                .webhook_events
                .iter()
                .flatten()
                .filter(|e| !e.starts_with("device.") && !SESSION_EVENTS.contains(&e.as_str()))
                .cloned()
                .collect(),
        }
        .config();
        let after = match current {
            None => waha.create_session(name, &config).await?,
            Some(s) => {
                let mut s = if config_matches(s.get("config").unwrap_or(&Value::Null), &config) {
                    s
                } else {
                    waha.update_session(name, &config).await?
                };
                if status_of(&s) == Some(DeviceStatus::Stopped) {
                    s = waha.set_session_running(name, true).await?;
                }
                s
            }
        };
        Ok(status_of(&after))
    }

    /// On start-up: owes a sync of every live device (whatever drifted while no dispatcher ran
    /// is repaired), and reports sessions WAHA has that no device of Wapim's knows (never
    /// deleted: they may be somebody's).
    pub async fn resync_all(&self) -> Result<(), DispatchError> {
        let at = now();
        let owed = blocking(&self.pool, move |c| sessions::owe_all_syncs(c, at)).await?;
        tracing::info!(devices = owed, "resync of every device's WAHA session owed");
        let known = blocking(&self.pool, sessions::known_session_ids).await?;
        let mut servers: Vec<(String, wapim_waha::WahaClient)> = self
            .waha
            .all()
            .await?
            .into_iter()
            .map(|(row, client)| (row.name, client))
            .collect();
        if servers.is_empty() {
            servers.push(("default".to_owned(), self.waha.default_client().clone()));
        }
        for (server, client) in servers {
            match client.session_names().await {
                Ok(names) => {
                    for name in names.iter().filter(|n| !known.contains(n)) {
                        tracing::warn!(%server, session = %name, "WAHA has a session no Wapim device knows; left alone");
                    }
                }
                Err(e) => tracing::warn!(%server, error = %e, "cannot list WAHA's sessions"),
            }
        }
        Ok(())
    }
}
