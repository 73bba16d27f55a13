//! The outbox relay: publishes the send jobs the database owes, so that accepting a message is a
//! single database write and nothing is lost when the broker is down at that moment.
//!
//! A pass reserves owed rows (due, pending, unpublished; `FOR UPDATE SKIP LOCKED` so relays on
//! several replicas never take the same rows), publishes one job per row and waits for the
//! broker's confirm, then marks the confirmed rows published. A relay that dies mid-pass loses
//! nothing: its reservation expires and another pass publishes again (the dispatcher's claim makes
//! a duplicated job harmless). While the broker is down, passes fail and the backlog waits in the
//! database; it drains when the broker is back.

use std::time::Duration;

use chrono::TimeDelta;
use wapim_broker::{Broker, Headers};
use wapim_domain::jobs::{Job, JobEnvelope};
use wapim_domain::time::now_micros;
use wapim_store::dispatch::OwedJob;
use wapim_store::{dispatch, sessions, webhooks, Pool, StoreError};
use wapim_telemetry::TRACEPARENT;

/// Why a relay pass stopped early; the next pass retries.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The database could not be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The broker refused or could not confirm a job.
    #[error("broker: {0}")]
    Broker(#[from] wapim_broker::BrokerError),
    /// A publishing task died.
    #[error("relay task: {0}")]
    Task(String),
}

/// How a relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Rows reserved per pass.
    pub batch: i64,
    /// Pause between passes when nothing was owed.
    pub poll: Duration,
    /// How long a reservation holds.
    pub lease: Duration,
}

/// Publishes owed send jobs from one process.
#[derive(Clone)]
pub struct Relay {
    pool: Pool,
    broker: Broker,
    config: RelayConfig,
}

async fn blocking<T: Send + 'static>(
    pool: &Pool,
    work: impl FnOnce(&mut wapim_store::DbConn) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, RelayError> {
    Ok(crate::with_connection(pool, work).await?)
}

impl Relay {
    /// A relay over `pool` publishing to `broker`.
    pub fn new(pool: Pool, broker: Broker, config: RelayConfig) -> Self {
        Self {
            pool,
            broker,
            config,
        }
    }

    /// One pass: reserve owed rows (messages due, devices owing a session sync, webhook
    /// deliveries due), publish their
    /// jobs (confirmed, concurrently), mark the confirmed ones published. Returns how many were
    /// published; an error after some were published still marks those.
    pub async fn publish_due(&self) -> Result<usize, RelayError> {
        let now = now_micros().naive_utc();
        let lease = TimeDelta::from_std(self.config.lease).unwrap_or(TimeDelta::seconds(30));
        let batch = self.config.batch;
        let reserved_until = now + lease;
        let (owed, syncs, deliveries) = blocking(&self.pool, move |c| {
            let owed = dispatch::reserve_due(c, now, reserved_until, batch)?;
            let syncs = sessions::reserve_due_syncs(c, now, reserved_until, batch)?;
            let deliveries = webhooks::reserve_due(c, now, reserved_until, batch)?;
            Ok((owed, syncs, deliveries))
        })
        .await?;
        if owed.is_empty() && syncs.is_empty() && deliveries.is_empty() {
            return Ok(0);
        }
        let sends = owed.into_iter().map(
            |OwedJob {
                 id,
                 session_id,
                 traceparent,
             }| {
                // The job continues the trace of the request that accepted the message.
                let mut headers = Headers::new();
                if let Some(traceparent) = traceparent {
                    headers.insert(TRACEPARENT.to_owned(), traceparent);
                }
                let job = Job::SendMessage {
                    message_id: id.into(),
                    session_id: Some(session_id),
                };
                (id, job, headers)
            },
        );
        let (sent, send_failure) = self.publish_all(sends.collect()).await;
        let sync_jobs = syncs.into_iter().map(|id| {
            (
                id,
                Job::SyncSession {
                    device_id: id.into(),
                },
                Headers::new(),
            )
        });
        let (synced, sync_failure) = self.publish_all(sync_jobs.collect()).await;
        let delivery_jobs = deliveries.into_iter().map(|id| {
            (
                id,
                Job::DeliverWebhook {
                    delivery_id: id.into(),
                },
                Headers::new(),
            )
        });
        let (handed, delivery_failure) = self.publish_all(delivery_jobs.collect()).await;
        let published = &wapim_metrics::metrics().jobs_published;
        published
            .with_label_values(&["send_message"])
            .inc_by(sent.len() as u64);
        published
            .with_label_values(&["sync_session"])
            .inc_by(synced.len() as u64);
        published
            .with_label_values(&["deliver_webhook"])
            .inc_by(handed.len() as u64);
        let count = sent.len() + synced.len() + handed.len();
        if count > 0 {
            let at = now_micros().naive_utc();
            blocking(&self.pool, move |c| {
                dispatch::mark_published(c, &sent, reserved_until, at)?;
                sessions::mark_syncs_published(c, &synced, reserved_until, at)?;
                webhooks::mark_published(c, &handed, reserved_until, at)
            })
            .await?;
        }
        match send_failure.or(sync_failure).or(delivery_failure) {
            Some(e) => Err(e),
            None => Ok(count),
        }
    }

    /// Publishes `jobs` concurrently, each confirmed; returns the ids whose job the broker
    /// confirmed, and the last failure if any.
    async fn publish_all(&self, jobs: Vec<(i64, Job, Headers)>) -> (Vec<i64>, Option<RelayError>) {
        let mut publishes = tokio::task::JoinSet::new();
        for (id, job, headers) in jobs {
            let broker = self.broker.clone();
            publishes.spawn(async move {
                broker
                    .publish(&JobEnvelope::new(job), &headers)
                    .await
                    .map(|()| id)
            });
        }
        let mut published = Vec::new();
        let mut failure = None;
        while let Some(outcome) = publishes.join_next().await {
            match outcome {
                Ok(Ok(id)) => published.push(id),
                Ok(Err(e)) => failure = Some(RelayError::Broker(e)),
                Err(e) => failure = Some(RelayError::Task(e.to_string())),
            }
        }
        (published, failure)
    }

    /// Runs passes forever: back to back while a pass fills its batch, every `poll` otherwise,
    /// and with a growing pause (up to 5 s) while the database or broker fails.
    pub async fn run(self) {
        let mut failures: u32 = 0;
        loop {
            match self.publish_due().await {
                Ok(n) => {
                    failures = 0;
                    if n as i64 >= self.config.batch {
                        continue;
                    }
                    tokio::time::sleep(self.config.poll).await;
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %e, failures, "relay pass failed; the backlog waits in the database");
                    let pause = self.config.poll * 2u32.saturating_pow(failures.min(5));
                    tokio::time::sleep(pause.min(Duration::from_secs(5))).await;
                }
            }
        }
    }
}

/// Connects to the broker (retrying every few seconds while it is unreachable, so a gateway
/// starts and accepts messages with RabbitMQ down) and then runs a relay forever.
pub async fn connect_and_run(pool: Pool, broker: wapim_broker::BrokerConfig, config: RelayConfig) {
    let mut pause = Duration::from_millis(500);
    loop {
        match Broker::connect(&broker).await {
            Ok(b) => {
                tracing::info!("relay connected to the broker");
                Relay::new(pool, b, config).run().await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "relay cannot reach the broker yet; accepted messages wait in the database");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}
