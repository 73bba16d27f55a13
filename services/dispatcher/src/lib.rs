//! Wapim's dispatcher: consumes send jobs, claims each message once, sends it through WAHA and
//! records what happened.
//!
//! Exactly once, as the outside world can tell:
//! - a job only names a message; the claim (`pending → processing` with a lease, in one guarded
//!   UPDATE) is what decides who sends, so a duplicated or redelivered job sends nothing;
//! - before a text is sent on NOWEB/GOWS, a WhatsApp id is generated and stored with the claim;
//!   a message that already carries one (an earlier attempt died or timed out) is first looked
//!   up on WAHA and recorded `sent` if it is there, so a retry never sends it twice;
//! - a claim whose dispatcher died is swept when its lease (past WAHA's own send timeout) runs
//!   out, and reconciled the same way: looked up, then sent again with the same id if absent;
//! - where there is no id to look up (media, WEBJS), an outcome that is unknown (timeout, a
//!   dispatcher that died mid-send) ends `failed` with that reason rather than risk a duplicate.
//!
//! Failures: timeouts before the request reached WAHA, connection errors and 5xx are retried with
//! exponential backoff and jitter up to `max_attempts`, then `failed` with the last error; a 4xx
//! that cannot succeed is `failed` at once; WAHA's 422 "session status is not as expected", an
//! unknown session (404), a wrong API key and WhatsApp's reach-out timelock (463) hold the message
//! (`pending` again after `hold_secs`, no attempt used).

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta};
use rand::Rng;
use tracing::Instrument;
use wapim_app::cache::ExpiringMap;
use wapim_app::waha_servers::WahaDirectory;
use wapim_broker::{Broker, Delivery};
use wapim_domain::jobs::{Job, JobEnvelope, JOB_VERSION};
use wapim_domain::message::is_immediate_send;
use wapim_domain::pacing::Pace;
use wapim_domain::time::now_micros;
use wapim_domain::{HoldReason, MessageOrigin, MessageType};
use wapim_settings::{DispatcherSettings, PacingSettings};
use wapim_store::dispatch::{Admission, Release, SafetyDefaults};
use wapim_store::messages::MessageRow;
use wapim_store::{dispatch, DbConn, Pool, StoreError};
use wapim_telemetry::{TraceContext, TRACEPARENT};
use wapim_waha::{chat_id, ChatAction, RemoteFile, SendRequest, WahaClient, WahaError};

mod sessions;
mod webhooks;

/// Why handling one job stopped; the job is given back to the broker (redelivered later).
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The database could not be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The broker failed to acknowledge or republish.
    #[error("broker: {0}")]
    Broker(#[from] wapim_broker::BrokerError),
    /// No HTTP client for the integrator's webhooks could be built (TLS set-up failed): the
    /// delivery stays owed and is tried again.
    #[error("the HTTP client for webhooks could not be built")]
    WebhookClient,
}

/// What became of one job, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The job was not for a message that can be sent now (edited, deleted, already claimed or
    /// sent, not due yet): dropped.
    Skipped,
    /// WAHA accepted it (or a lookup found it already sent).
    Sent,
    /// Given back to `pending`, due again later (retry or hold).
    Deferred,
    /// Ended `failed`.
    Failed,
    /// The job body was unreadable: dead-lettered.
    DeadLettered,
}

/// Engines Wapim knows how to make crash-safe (pre-generated ids and message lookup).
fn engine_has_ids(engine: Option<&str>) -> bool {
    matches!(engine, Some("NOWEB") | Some("GOWS"))
}

/// How the dispatcher configures devices' WAHA sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    /// Where each session posts its events: Wapim's webhook ingest (`WAPIM_WAHA__WEBHOOK_URL`).
    pub webhook_url: String,
}

/// Consumes jobs and sends messages; cheap to clone (one per consumer task).
#[derive(Clone)]
pub struct Dispatcher {
    pool: Pool,
    broker: Broker,
    /// Each session's WAHA server.
    waha: WahaDirectory,
    settings: DispatcherSettings,
    /// What a device does not set itself.
    defaults: SafetyDefaults,
    /// How devices' WAHA sessions are configured.
    sessions: SessionSettings,
    /// Each session's pacing, as its device last said ([`PACE_CACHE`]).
    paces: Arc<ExpiringMap<String, Pace>>,
    /// Each session's engine, as WAHA last said (five minutes).
    engines: Arc<ExpiringMap<String, Option<String>>>,
    /// Delivers the integrator's webhooks (`None`: its HTTP client could not be built).
    webhooks: Option<webhooks::WebhookDelivery>,
}

/// How long a dispatcher trusts what it read of a device's pacing.
const PACE_CACHE: Duration = Duration::from_secs(5);

pub(crate) async fn blocking<T: Send + 'static>(
    pool: &Pool,
    work: impl FnOnce(&mut DbConn) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, DispatchError> {
    Ok(wapim_app::with_connection(pool, work).await?)
}

pub(crate) fn now() -> NaiveDateTime {
    now_micros().naive_utc()
}

fn secs(s: u64) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 2_000))
}

fn error_json(e: &WahaError) -> String {
    match e.body() {
        Some(body) => serde_json::json!({ "error": e.to_string(), "waha": body }).to_string(),
        None => serde_json::json!({ "error": e.to_string() }).to_string(),
    }
}

impl Dispatcher {
    /// A dispatcher over `pool`, consuming from `broker`, sending through `waha`, pacing each
    /// device by `pacing`.
    pub fn new(
        pool: Pool,
        broker: Broker,
        waha: WahaClient,
        settings: DispatcherSettings,
        pacing: &PacingSettings,
        sessions: SessionSettings,
    ) -> Self {
        let timeout = waha.timeout();
        Self {
            sessions,
            waha: WahaDirectory::new(pool.clone(), waha, timeout),
            pool,
            broker,
            defaults: SafetyDefaults {
                pace: Pace::from_millis(pacing.min_interval_ms, pacing.jitter_ms),
                timezone: wapim_domain::Tz::Asia__Jakarta,
                probe_every: secs(settings.pause_probe_secs.max(1)),
            },
            settings,
            paces: Arc::new(ExpiringMap::new(PACE_CACHE)),
            engines: Arc::new(ExpiringMap::new(Duration::from_secs(300))),
            webhooks: webhooks::WebhookDelivery::guarded().ok(),
        }
    }

    /// The time zone of devices that name none (the server's `timezone` setting; Asia/Jakarta
    /// unless told).
    pub fn with_timezone(mut self, timezone: wapim_domain::Tz) -> Self {
        self.defaults.timezone = timezone;
        self
    }

    /// How the integrator's webhooks are delivered (`[webhooks]` settings); without it, with
    /// the defaults (private targets refused).
    pub fn with_webhooks(
        mut self,
        settings: &wapim_settings::WebhookSettings,
    ) -> Result<Self, wapim_webhooks::ClientError> {
        self.webhooks = Some(webhooks::WebhookDelivery::new(settings)?);
        Ok(self)
    }

    /// Consumes jobs until the consumer ends, handling up to `prefetch` at once; reconnects the
    /// consumer when its channel dies. Never returns unless the broker is gone for good.
    pub async fn run(self, consumer_tag: &str) {
        self.run_until(consumer_tag, std::future::pending(), Duration::ZERO)
            .await;
    }

    /// [`Self::run`] until `stop` completes (e.g. SIGTERM); then it takes no new job, lets the
    /// jobs in hand finish for up to `deadline` (each records its outcome and acks), and
    /// returns; jobs prefetched but not started go back to the queue when the consumer is
    /// dropped, and a job still running at the deadline is given back by the broker when the
    /// process exits (its claim makes the redelivery harmless). Returns whether everything in
    /// hand finished in time.
    pub async fn run_until(
        self,
        consumer_tag: &str,
        stop: impl std::future::Future<Output = ()>,
        deadline: Duration,
    ) -> bool {
        tokio::pin!(stop);
        let sweeper = self.clone();
        let sweeping = tokio::spawn(async move { sweeper.sweep_forever().await });
        let slots = u32::from(self.settings.prefetch.max(1));
        let limit = Arc::new(tokio::sync::Semaphore::new(slots as usize));
        // Kept until the jobs in hand are done: dropping it would return them to the queue.
        let mut held_consumer = None;
        'consume: loop {
            let mut consumer = tokio::select! {
                biased;
                () = &mut stop => break 'consume,
                c = self.broker.consumer(consumer_tag) => match c {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot consume yet; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                },
            };
            loop {
                let next = tokio::select! {
                    biased;
                    () = &mut stop => {
                        held_consumer = Some(consumer);
                        break 'consume;
                    }
                    next = consumer.next() => next,
                };
                let Some(next) = next else { break };
                let delivery = match next {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(error = %e, "consumer failed; reconnecting");
                        break;
                    }
                };
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    break;
                };
                let this = self.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Err(e) = this.handle(delivery).await {
                        tracing::warn!(error = %e, "job given back for redelivery");
                    }
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        tracing::info!("stopping: no new jobs; finishing the ones in hand");
        sweeping.abort();
        let finished = tokio::time::timeout(deadline, limit.acquire_many(slots))
            .await
            .is_ok();
        if !finished {
            tracing::warn!(
                ?deadline,
                "jobs still running at the shutdown deadline; the broker gives them back"
            );
        }
        drop(held_consumer);
        finished
    }

    /// Handles one delivery to the end: acknowledges it when its outcome is recorded, gives it
    /// back (nack, requeue) when the outcome could not be recorded.
    pub async fn handle(&self, delivery: Delivery) -> Result<Outcome, DispatchError> {
        let kind = match delivery.job::<JobEnvelope>().map(|e| e.job) {
            Ok(Job::SendMessage { .. }) => "send_message",
            Ok(Job::SyncSession { .. }) => "sync_session",
            Ok(Job::DeliverWebhook { .. }) => "deliver_webhook",
            Err(_) => "unreadable",
        };
        let outcome = self.handle_job(delivery).await;
        let label = match &outcome {
            Ok(Outcome::Sent) => "sent",
            Ok(Outcome::Deferred) => "deferred",
            Ok(Outcome::Failed) => "failed",
            Ok(Outcome::Skipped) => "skipped",
            Ok(Outcome::DeadLettered) => "dead_lettered",
            Err(_) => "given_back",
        };
        wapim_metrics::metrics()
            .jobs_handled
            .with_label_values(&[kind, label])
            .inc();
        outcome
    }

    async fn handle_job(&self, delivery: Delivery) -> Result<Outcome, DispatchError> {
        let envelope: JobEnvelope = match delivery.job() {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(error = %e, "unreadable job; dead-lettering it");
                delivery.dead_letter().await?;
                return Ok(Outcome::DeadLettered);
            }
        };
        if envelope.v != JOB_VERSION {
            tracing::error!(
                v = envelope.v,
                "job of an unknown version; dead-lettering it"
            );
            delivery.dead_letter().await?;
            return Ok(Outcome::DeadLettered);
        }
        let (message_id, session_id) = match envelope.job {
            Job::SendMessage {
                message_id,
                session_id,
            } => (message_id, session_id),
            Job::DeliverWebhook { delivery_id } => {
                let span = tracing::info_span!("deliver_webhook", delivery_id = delivery_id.get());
                return match self
                    .deliver_webhook(delivery_id.get())
                    .instrument(span)
                    .await
                {
                    Ok(outcome) => {
                        delivery.ack().await?;
                        Ok(outcome)
                    }
                    Err(e) => {
                        let _ = delivery.nack_requeue().await;
                        Err(e)
                    }
                };
            }
            Job::SyncSession { device_id } => {
                let span = tracing::info_span!("sync_session", device_id = device_id.get());
                return match self.sync_session(device_id.get()).instrument(span).await {
                    Ok(outcome) => {
                        delivery.ack().await?;
                        Ok(outcome)
                    }
                    Err(e) => {
                        let _ = delivery.nack_requeue().await;
                        Err(e)
                    }
                };
            }
        };
        // One trace from the accepting request to WAHA: the job's traceparent is the parent.
        let span = tracing::info_span!("send_message", message_id = message_id.get());
        if let Some(trace) = delivery
            .headers()
            .get(TRACEPARENT)
            .and_then(|t| TraceContext::parse(t))
        {
            trace.adopt(&span);
        }
        match self
            .send_message_of(message_id.get(), session_id.as_deref())
            .instrument(span)
            .await
        {
            Ok(outcome) => {
                delivery.ack().await?;
                Ok(outcome)
            }
            Err(e) => {
                // The database (or a task) failed: give the job back; the claim's lease protects
                // against a double send when it comes again.
                let _ = delivery.nack_requeue().await;
                Err(e)
            }
        }
    }

    /// Claims and sends one message; the outcome is recorded before this returns.
    pub async fn send_message(&self, id: i64) -> Result<Outcome, DispatchError> {
        self.send_message_of(id, None).await
    }

    /// [`Self::send_message`] knowing the message's session (the job says it): on an engine with
    /// pre-generated ids, the WhatsApp id is asked for first and stored by the claim itself.
    pub async fn send_message_of(
        &self,
        id: i64,
        session: Option<&str>,
    ) -> Result<Outcome, DispatchError> {
        // Under pacing most claims wait for their slot: asking WAHA for an id first would be
        // wasted on them (the id is asked for after the pacing decision instead).
        let prefetched = match session {
            Some(s)
                if self.pace_of(s).await.is_off()
                    && engine_has_ids(self.engine(s).await.as_deref()) =>
            {
                // A failure here is not the message's: the claim goes on without an id and
                // the send path asks again (and records what WAHA says).
                self.waha.for_session(s).await.new_message_id(s).await.ok()
            }
            _ => None,
        };
        let at = now();
        let lease_until = at + secs(self.settings.lease_secs);
        let candidate = prefetched.clone();
        let Some(row) = blocking(&self.pool, move |c| {
            dispatch::claim_with_wa_id(c, id, at, lease_until, candidate.as_deref())
        })
        .await?
        else {
            return Ok(Outcome::Skipped);
        };
        // Sending safety: opt-outs, the device's pause and limits, then its pacing. A message
        // that must wait goes back to pending at once (the worker moves on).
        let immediate = is_immediate_send(row.is_queue, row.schedule_at, row.created_at);
        let (device, recipient, defaults) = (row.device_id, row.recipient.clone(), self.defaults);
        let (safety, suppressed) = blocking(&self.pool, move |c| {
            dispatch::safety_of(c, device, &recipient, &defaults)
        })
        .await?;
        // The confirmation of an opt-out is the one message an opted-out contact still gets.
        if suppressed && row.origin != MessageOrigin::OptOutConfirmation.as_str() {
            return self.refuse_opted_out(&row).await;
        }
        let must_admit =
            safety.pause.is_some() || safety.limits.any() || (!immediate && !safety.pace.is_off());
        let (paced, probe) = if must_admit {
            let jitter: f64 = rand::rng().random_range(0.0..=1.0);
            let claimed = row.clone();
            let admission = blocking(&self.pool, move |c| {
                dispatch::admit(
                    c,
                    &claimed,
                    &defaults,
                    now(),
                    jitter,
                    lease_until,
                    immediate,
                )
            })
            .await?;
            match admission {
                Admission::Wait { until, reason } => {
                    if reason == HoldReason::Pacing {
                        let wait = (until - now()).num_milliseconds().max(0) as f64 / 1000.0;
                        wapim_metrics::metrics().pacing_wait.observe(wait);
                    }
                    return Ok(Outcome::Deferred);
                }
                Admission::Send { paced, probe } => (paced, probe),
            }
        } else {
            (false, false)
        };
        if safety.simulate_typing {
            self.look_like_a_person(&row).await;
        }
        let outcome = self.send_claimed(row, prefetched).await;
        let at = now();
        if paced {
            // The next send of the device may start an interval after this one ended.
            if let Err(e) = blocking(&self.pool, move |c| {
                dispatch::pace_finished(c, device, at, lease_until)
            })
            .await
            {
                tracing::warn!(device_id = device, error = %e, "could not record the end of a paced send; the device waits until its claim expires");
            }
        } else if immediate && !safety.pace.is_off() {
            // Not delayed, but a send all the same: the device's next paced one keeps its gap.
            if let Err(e) = blocking(&self.pool, move |c| {
                dispatch::pace_note_unpaced_send(c, device, at)
            })
            .await
            {
                tracing::warn!(device_id = device, error = %e, "could not record an immediate send for pacing");
            }
        }
        if probe && matches!(outcome, Ok(Outcome::Sent)) {
            // The probe went through: WhatsApp lets the device reach out again.
            let (resumed, released) =
                blocking(&self.pool, move |c| dispatch::resume_device(c, device, at)).await?;
            if resumed {
                tracing::info!(
                    device_id = device,
                    released,
                    "device resumed: its probe was sent"
                );
            }
        }
        outcome
    }

    /// A message to a contact on its device's suppression list: `failed`, never sent.
    async fn refuse_opted_out(&self, row: &MessageRow) -> Result<Outcome, DispatchError> {
        let id = row.id;
        let response = serde_json::json!({
            "error": "opted_out",
            "message": "The recipient is on this device's suppression list (they asked not to be messaged); the message was not sent.",
        })
        .to_string();
        blocking(&self.pool, move |c| {
            dispatch::record_failed(c, id, &response, now())
        })
        .await?;
        tracing::info!(message_id = id, "not sent: the recipient opted out");
        Ok(Outcome::Failed)
    }

    /// WAHA's guidance before a send: mark the chat seen, show "typing…" for a time that grows
    /// with the text, stop it. Best effort: a failed touch never stops the send.
    async fn look_like_a_person(&self, row: &MessageRow) {
        let chat = chat_id(&row.recipient);
        let waha = self.waha.for_session(&row.session_id).await;
        let text = row.message.clone().unwrap_or_default();
        let typing = wapim_domain::safety::typing_time(&text, rand::rng().random_range(0.0..=1.0));
        for action in [ChatAction::Seen, ChatAction::StartTyping] {
            if let Err(e) = waha.chat_action(&row.session_id, &chat, action).await {
                tracing::debug!(message_id = row.id, error = %e, "chat touch failed");
            }
        }
        tokio::time::sleep(typing).await;
        if let Err(e) = waha
            .chat_action(&row.session_id, &chat, ChatAction::StopTyping)
            .await
        {
            tracing::debug!(message_id = row.id, error = %e, "chat touch failed");
        }
    }

    /// Sends a claimed message (its turn come) and records the outcome.
    async fn send_claimed(
        &self,
        row: MessageRow,
        prefetched: Option<String>,
    ) -> Result<Outcome, DispatchError> {
        // An earlier attempt stored an id (not the one just asked for): it may have been sent
        // after all.
        let earlier_id = row
            .wa_message_id
            .clone()
            .filter(|stored| Some(stored) != prefetched.as_ref());
        if let Some(wa_id) = earlier_id {
            match self.look_up(&row, &wa_id).await {
                Ok(Some(found)) => return self.record_found(&row, &wa_id, found).await,
                Ok(None) => {}
                Err(e) => return self.after_failure(&row, e, false).await,
            }
        }
        let engine = self.engine(&row.session_id).await;
        let request = match self.request_for(&row, engine.as_deref()).await {
            Ok(r) => r,
            Err(e) => return self.after_failure(&row, e, false).await,
        };
        match self
            .waha
            .for_session(&row.session_id)
            .await
            .send(&row.session_id, &request)
            .await
        {
            Ok(sent) => {
                let (id, response) = (row.id, sent.raw.to_string());
                let at = now();
                blocking(&self.pool, move |c| {
                    dispatch::record_sent(c, id, &sent.id, &response, at)
                })
                .await?;
                let waited = (at - row.due_at).num_milliseconds().max(0) as f64 / 1000.0;
                wapim_metrics::metrics().send_latency.observe(waited);
                Ok(Outcome::Sent)
            }
            Err(e) => {
                let has_handle = matches!(request, SendRequest::Text { id: Some(_), .. });
                self.after_failure(&row, e, has_handle).await
            }
        }
    }

    async fn look_up(
        &self,
        row: &MessageRow,
        wa_id: &str,
    ) -> Result<Option<serde_json::Value>, WahaError> {
        self.waha
            .for_session(&row.session_id)
            .await
            .find_message(&row.session_id, &chat_id(&row.recipient), wa_id)
            .await
    }

    async fn record_found(
        &self,
        row: &MessageRow,
        wa_id: &str,
        found: serde_json::Value,
    ) -> Result<Outcome, DispatchError> {
        let provider = found
            .get("id")
            .and_then(|v| {
                v.as_str().map(str::to_owned).or_else(|| {
                    v.get("_serialized")
                        .and_then(|s| s.as_str())
                        .map(str::to_owned)
                })
            })
            .unwrap_or_else(|| format!("true_{}_{wa_id}", chat_id(&row.recipient)));
        let (id, response) = (row.id, found.to_string());
        blocking(&self.pool, move |c| {
            dispatch::record_sent(c, id, &provider, &response, now())
        })
        .await?;
        Ok(Outcome::Sent)
    }

    /// A session's pacing: its device's own, else the default (cached [`PACE_CACHE`]; the
    /// claim reads the device's own under its lock, so a change applies there at once and here
    /// within that time). A lookup failure reads as the default.
    async fn pace_of(&self, session: &str) -> Pace {
        if let Some(pace) = self.paces.get(session) {
            return pace;
        }
        let (name, default) = (session.to_owned(), self.defaults.pace);
        let pace = blocking(&self.pool, move |c| {
            dispatch::device_pace(c, &name, default)
        })
        .await
        .ok()
        .flatten()
        .unwrap_or(default);
        self.paces.put(session.to_owned(), pace);
        pace
    }

    /// The engine of a session (cached five minutes); `None` when WAHA does not say.
    async fn engine(&self, session: &str) -> Option<String> {
        if let Some(engine) = self.engines.get(session) {
            return engine;
        }
        let engine = match self.waha.for_session(session).await.session(session).await {
            Ok(Some(info)) => info.engine,
            _ => None,
        };
        self.engines.put(session.to_owned(), engine.clone());
        engine
    }

    /// WAHA's request for a message; a text on NOWEB/GOWS carries its stored WhatsApp id (asked
    /// for and stored now if the claim did not store one), so its outcome can be looked up.
    async fn request_for(
        &self,
        row: &MessageRow,
        engine: Option<&str>,
    ) -> Result<SendRequest, WahaError> {
        let chat = chat_id(&row.recipient);
        let file = || RemoteFile {
            url: row.file_url.clone().unwrap_or_default(),
            mimetype: row
                .file_mimetype
                .clone()
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
            filename: row.file_filename.clone(),
        };
        let kind: MessageType = row.message_type.parse().map_err(|_| {
            WahaError::InvalidResponse(format!("unknown type {}", row.message_type))
        })?;
        Ok(match kind {
            MessageType::Text => {
                let id = if let Some(stored) = row.wa_message_id.clone() {
                    // Stored by the claim, or by an attempt a lookup showed never arrived: the
                    // same id again.
                    Some(stored)
                } else if engine_has_ids(engine) {
                    let wa_id = self
                        .waha
                        .for_session(&row.session_id)
                        .await
                        .new_message_id(&row.session_id)
                        .await?;
                    let (id, stored) = (row.id, wa_id.clone());
                    let ok = blocking(&self.pool, move |c| {
                        dispatch::set_wa_message_id(c, id, &stored)
                    })
                    .await
                    .unwrap_or(false);
                    // Without the id stored, the send would have no handle: do not send.
                    if !ok {
                        return Err(WahaError::Connect(
                            "the generated message id could not be stored".into(),
                        ));
                    }
                    Some(wa_id)
                } else {
                    None
                };
                SendRequest::Text {
                    chat_id: chat,
                    text: row.message.clone().unwrap_or_default(),
                    id,
                }
            }
            MessageType::Image => SendRequest::Image {
                chat_id: chat,
                file: file(),
                caption: row.message.clone(),
            },
            MessageType::File => SendRequest::File {
                chat_id: chat,
                file: file(),
                caption: row.message.clone(),
            },
            MessageType::Video => SendRequest::Video {
                chat_id: chat,
                file: file(),
                caption: row.message.clone(),
            },
            MessageType::Audio => SendRequest::Voice {
                chat_id: chat,
                file: file(),
            },
        })
    }

    /// Records what a failed WAHA call means for the message. `has_handle`: the send carried a
    /// stored id, so an unknown outcome can be looked up later instead of guessed.
    async fn after_failure(
        &self,
        row: &MessageRow,
        error: WahaError,
        has_handle: bool,
    ) -> Result<Outcome, DispatchError> {
        let id = row.id;
        let response = error_json(&error);
        let at = now();
        match &error {
            WahaError::ReachOutTimelock { .. } => {
                // Not transient, and retrying makes it worse: the whole device pauses until WAHA
                // says the timelock ends, else for a probe interval.
                let until = self.timelock_end(&row.session_id, at).await;
                tracing::warn!(message_id = id, device_id = row.device_id, %until, "device paused: WhatsApp's reach-out timelock (463)");
                let device = row.device_id;
                blocking(&self.pool, move |c| {
                    dispatch::pause_after(
                        c,
                        id,
                        device,
                        until,
                        HoldReason::ReachOutTimelock,
                        &response,
                        at,
                    )
                })
                .await?;
                Ok(Outcome::Deferred)
            }
            WahaError::SessionNotWorking { .. }
            | WahaError::SessionNotFound { .. }
            | WahaError::Unauthorized => {
                tracing::info!(message_id = id, error = %error, "held: the session cannot send now");
                let due = at + secs(self.settings.hold_secs);
                blocking(&self.pool, move |c| {
                    let how = Release {
                        refund_attempt: true,
                        api_response: Some(&response),
                        hold: Some(HoldReason::SessionNotReady),
                        ..Release::at(due)
                    };
                    dispatch::release(c, id, &how, at)
                })
                .await?;
                Ok(Outcome::Deferred)
            }
            WahaError::Timeout if !has_handle => {
                // WAHA may still complete it and there is nothing to look it up by: the safe side
                // is not to send it again.
                let response = serde_json::json!({
                    "error": "WAHA did not answer in time; the message may have been sent, so it is not retried (no id to check it by)",
                })
                .to_string();
                blocking(&self.pool, move |c| {
                    dispatch::record_failed(c, id, &response, at)
                })
                .await?;
                Ok(Outcome::Failed)
            }
            WahaError::Timeout => {
                // Keep the claim: when its lease runs out the sweep looks the id up (WAHA may
                // still be sending it) before anything is sent again.
                Ok(Outcome::Deferred)
            }
            e if e.is_retryable() && row.attempts < self.settings.max_attempts => {
                let due = at + self.backoff(row.attempts);
                blocking(&self.pool, move |c| {
                    let how = Release {
                        api_response: Some(&response),
                        hold: Some(HoldReason::Retry),
                        ..Release::at(due)
                    };
                    dispatch::release(c, id, &how, at)
                })
                .await?;
                Ok(Outcome::Deferred)
            }
            _ => {
                blocking(&self.pool, move |c| {
                    dispatch::record_failed(c, id, &response, at)
                })
                .await?;
                Ok(Outcome::Failed)
            }
        }
    }

    /// When a device's reach-out timelock ends: WAHA's `timeEnforcementEnds` when `me` reports an
    /// active one (newer builds), else one probe interval from `at`.
    async fn timelock_end(&self, session: &str, at: NaiveDateTime) -> NaiveDateTime {
        let probe = at + self.defaults.probe_every;
        let said = match self.waha.for_session(session).await.me(session).await {
            Ok(Some(me)) => me
                .get("reachoutTimelock")
                .and_then(wapim_domain::safety::timelock_ends),
            _ => None,
        };
        match said {
            // Never sooner than a minute (a clock apart is no reason to hammer), never later
            // than a week (a misread date must not park a device for good).
            Some(ends) => ends.clamp(at + TimeDelta::minutes(1), at + TimeDelta::days(7)),
            None => probe,
        }
    }

    /// Exponential backoff from `backoff_base_ms` per attempt, capped, with ±20 % jitter.
    pub(crate) fn backoff(&self, attempts: i32) -> TimeDelta {
        let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
        let base = self
            .settings
            .backoff_base_ms
            .saturating_mul(2u64.saturating_pow(exp))
            .min(self.settings.backoff_max_ms);
        let jitter = rand::rng().random_range(0.8..1.2);
        TimeDelta::milliseconds((base as f64 * jitter) as i64)
    }

    /// Reconciles claims whose lease ran out (their dispatcher died or WAHA never answered):
    /// found on WAHA → `sent`; absent → `pending` again (sent again with the same id); no id to
    /// look up → `failed` as an unknown outcome. Returns how many were handled.
    pub async fn sweep_once(&self) -> Result<usize, DispatchError> {
        let at = now();
        let expired = blocking(&self.pool, move |c| dispatch::expired_claims(c, at, 100)).await?;
        let mut handled = 0;
        for row in expired {
            let Some(old) = row.lease_until else { continue };
            let (id, until) = (row.id, at + secs(self.settings.lease_secs));
            if !blocking(&self.pool, move |c| {
                dispatch::take_over_claim(c, id, old, until)
            })
            .await?
            {
                continue;
            }
            handled += 1;
            match row.wa_message_id.clone() {
                Some(wa_id) => match self.look_up(&row, &wa_id).await {
                    Ok(Some(found)) => {
                        self.record_found(&row, &wa_id, found).await?;
                    }
                    Ok(None) => {
                        blocking(&self.pool, move |c| {
                            dispatch::release(c, id, &Release::at(at), at)
                        })
                        .await?;
                    }
                    Err(e) => {
                        tracing::warn!(message_id = id, error = %e, "cannot reconcile yet");
                        let retry = at + self.backoff(1);
                        blocking(&self.pool, move |c| {
                            dispatch::take_over_claim(c, id, until, retry)
                        })
                        .await?;
                    }
                },
                None if row.message_type == MessageType::Text.as_str()
                    && engine_has_ids(self.engine(&row.session_id).await.as_deref()) =>
                {
                    // Its id is stored before any send: without one, the send never started.
                    blocking(&self.pool, move |c| {
                        let how = Release {
                            refund_attempt: true,
                            ..Release::at(at)
                        };
                        dispatch::release(c, id, &how, at)
                    })
                    .await?;
                }
                None => {
                    let response = serde_json::json!({
                        "error": "the dispatcher stopped during the send and there is no id to check it by; not retried to avoid a duplicate",
                    })
                    .to_string();
                    blocking(&self.pool, move |c| {
                        dispatch::record_failed(c, id, &response, at)
                    })
                    .await?;
                }
            }
        }
        Ok(handled)
    }

    async fn sweep_forever(&self) {
        loop {
            if let Err(e) = self.sweep_once().await {
                tracing::warn!(error = %e, "lease sweep failed");
            }
            tokio::time::sleep(Duration::from_secs(self.settings.sweep_secs.max(1))).await;
        }
    }
}
