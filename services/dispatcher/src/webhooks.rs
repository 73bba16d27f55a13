//! Deliveries to the integrator's webhook: claim, sign and POST, record the attempt, and
//! schedule the next one with exponential backoff (jittered) until the delivery's deadline.

use std::time::Duration;

use chrono::TimeDelta;
use rand::Rng;
use wapim_store::webhooks::{self, AfterAttempt, AttemptRecord};
use wapim_webhooks::{ClientError, Delivery, WebhookSender};

use crate::{blocking, now, DispatchError, Dispatcher, Outcome};

/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2 * 3600);

/// The sender and its retry schedule.
#[derive(Clone)]
pub(crate) struct WebhookDelivery {
    sender: WebhookSender,
    timeout: Duration,
    retry_base: Duration,
}

impl WebhookDelivery {
    /// The defaults: 10 s per attempt, private targets refused, first retry after 5 s.
    pub(crate) fn guarded() -> Result<Self, ClientError> {
        let timeout = Duration::from_secs(10);
        Ok(Self {
            sender: WebhookSender::new(timeout, false)?,
            timeout,
            retry_base: Duration::from_secs(5),
        })
    }

    pub(crate) fn new(settings: &wapim_settings::WebhookSettings) -> Result<Self, ClientError> {
        let timeout = Duration::from_secs(settings.timeout_secs.max(1));
        Ok(Self {
            sender: WebhookSender::new(timeout, settings.allow_private)?,
            timeout,
            retry_base: Duration::from_millis(settings.retry_base_ms.max(1)),
        })
    }

    /// The wait after the `attempts`-th failed attempt: base × 3^(attempts−1), at most two
    /// hours, plus up to 20 % jitter (receivers that failed together are not retried together).
    fn backoff(&self, attempts: i32) -> TimeDelta {
        let exponent = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
        let wait = self
            .retry_base
            .saturating_mul(3u32.saturating_pow(exponent))
            .min(MAX_BACKOFF);
        let jitter = rand::rng().random_range(0.0..=0.2);
        TimeDelta::from_std(wait.mul_f64(1.0 + jitter)).unwrap_or(TimeDelta::hours(2))
    }
}

/// `WebhookSender::new` only fails when the TLS backend cannot start, which the settings path
/// reports; the defaults' path has nothing to report it to.
#[allow(clippy::panic)]
impl Dispatcher {
    /// Makes one attempt of a delivery, if it is still pending and due: signed with its device's
    /// current secret, recorded with what the receiver answered, and scheduled again (or given
    /// up) when it failed.
    pub async fn deliver_webhook(&self, id: i64) -> Result<Outcome, DispatchError> {
        let hooks = self.webhooks.as_ref().ok_or(DispatchError::WebhookClient)?;
        let at = now();
        let timeout = TimeDelta::from_std(hooks.timeout).unwrap_or(TimeDelta::seconds(10));
        let claimed_until = at + timeout + TimeDelta::seconds(30);
        let Some(claimed) = blocking(&self.pool, move |c| {
            webhooks::claim(c, id, at, claimed_until)
        })
        .await?
        else {
            return Ok(Outcome::Skipped);
        };
        let delivery = claimed.delivery;
        let secret = match claimed.secret {
            Some(secret) => secret,
            None => {
                // A device from before secrets existed: it gets one now (its integrator reads
                // it by rotating).
                let fresh = wapim_webhooks::generate_secret();
                let device = delivery.device_id;
                blocking(&self.pool, move |c| {
                    webhooks::ensure_secret(c, device, &fresh)
                })
                .await?
                .unwrap_or_default()
            }
        };
        let attempt = hooks
            .sender
            .attempt(&Delivery {
                url: &delivery.url,
                webhook_id: &delivery.webhook_id,
                secret: &secret,
                body: &delivery.payload,
                timestamp: chrono::Utc::now().timestamp(),
            })
            .await;
        let finished = now();
        let after = if attempt.delivered() {
            AfterAttempt::Delivered
        } else {
            let next = finished + hooks.backoff(delivery.attempts);
            if attempt.retryable() && next <= delivery.give_up_at {
                AfterAttempt::RetryAt(next)
            } else {
                AfterAttempt::Failed
            }
        };
        wapim_metrics::metrics()
            .webhook_attempts
            .with_label_values(&[match after {
                AfterAttempt::Delivered => "delivered",
                AfterAttempt::RetryAt(_) => "retry",
                AfterAttempt::Failed => "failed",
            }])
            .inc();
        let record = AttemptRecord {
            status_code: attempt.status_code.map(i32::from),
            error: attempt.error.clone(),
            response_body: attempt.response_body.clone(),
            duration_ms: i64::try_from(attempt.duration.as_millis()).unwrap_or(i64::MAX),
        };
        tracing::info!(
            delivery = id,
            event = %delivery.event,
            status = ?attempt.status_code,
            error = ?attempt.error,
            "webhook attempt"
        );
        blocking(&self.pool, move |c| {
            webhooks::record_attempt(c, id, claimed_until, &record, after, finished)
        })
        .await?;
        Ok(match after {
            AfterAttempt::Delivered => Outcome::Sent,
            AfterAttempt::RetryAt(_) => Outcome::Deferred,
            AfterAttempt::Failed => Outcome::Failed,
        })
    }
}
