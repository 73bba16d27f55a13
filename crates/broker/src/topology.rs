//! Names of the exchanges and queues, the delay buckets, and the checks that keep every name and
//! header key sendable (AMQP short strings: at most 255 bytes).

use std::time::Duration;

use crate::BrokerError;

/// The retry delays a job can wait for: [`Broker::publish_delayed`](crate::Broker::publish_delayed)
/// rounds a requested delay up to one of these (one RabbitMQ queue each, `{prefix}delay.{ms}`).
pub const DELAY_BUCKETS: [Duration; 6] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(2 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(60 * 60),
];

/// The delay a job published with `requested` actually waits: the smallest bucket ≥ `requested`,
/// or the largest bucket beyond it. Callers use it to record when a retry will happen.
pub fn delay_bucket(requested: Duration) -> Duration {
    DELAY_BUCKETS
        .iter()
        .copied()
        .find(|bucket| *bucket >= requested)
        .unwrap_or(DELAY_BUCKETS[DELAY_BUCKETS.len() - 1])
}

/// Routing key of the send exchange.
pub(crate) const SEND_KEY: &str = "send";
/// Routing key of the dead-letter exchange.
pub(crate) const DEAD_KEY: &str = "dead";

/// AMQP short strings (names, header keys) hold at most this many bytes.
const MAX_SHORT_STRING: usize = 255;

/// The longest name derived from the prefix is the one of the largest delay bucket.
fn longest_suffix() -> usize {
    format!(
        "delay.{}",
        DELAY_BUCKETS[DELAY_BUCKETS.len() - 1].as_millis()
    )
    .len()
}

/// Every exchange and queue name of one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub(crate) prefix: String,
    pub(crate) send_exchange: String,
    pub(crate) send_queue: String,
    pub(crate) dead_exchange: String,
    pub(crate) dead_queue: String,
}

impl Names {
    pub(crate) fn new(prefix: &str) -> Result<Self, BrokerError> {
        if prefix.len() + longest_suffix() > MAX_SHORT_STRING {
            return Err(BrokerError::Config(format!(
                "prefix `{prefix}` is too long: names are limited to {MAX_SHORT_STRING} bytes"
            )));
        }
        if prefix.starts_with("amq.") {
            return Err(BrokerError::Config(format!(
                "prefix `{prefix}`: names starting with `amq.` are reserved by RabbitMQ"
            )));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            send_exchange: format!("{prefix}send"),
            send_queue: format!("{prefix}send.q"),
            dead_exchange: format!("{prefix}dead"),
            dead_queue: format!("{prefix}dead.q"),
        })
    }

    /// The delay queue of one bucket.
    pub(crate) fn delay_queue(&self, bucket: Duration) -> String {
        format!("{}delay.{}", self.prefix, bucket.as_millis())
    }

    /// Every delay queue with its TTL in milliseconds.
    pub(crate) fn delay_queues(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        DELAY_BUCKETS.iter().map(|bucket| {
            let ms = u64::try_from(bucket.as_millis()).unwrap_or(u64::MAX);
            (self.delay_queue(*bucket), ms)
        })
    }
}

/// A name sent as an AMQP short string (consumer tag).
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), BrokerError> {
    if name.len() > MAX_SHORT_STRING {
        return Err(BrokerError::Config(format!(
            "{what} is longer than {MAX_SHORT_STRING} bytes"
        )));
    }
    Ok(())
}

/// A caller header key: not empty, at most 255 bytes, not one of RabbitMQ's `x-` headers.
pub(crate) fn check_header(key: &str) -> Result<(), BrokerError> {
    let problem = if key.is_empty() {
        "empty key"
    } else if key.len() > MAX_SHORT_STRING {
        "longer than 255 bytes"
    } else if is_reserved_header(key) {
        "`x-` headers are reserved for RabbitMQ"
    } else {
        return Ok(());
    };
    Err(BrokerError::InvalidHeader(
        key.to_owned(),
        problem.to_owned(),
    ))
}

/// RabbitMQ's own headers (`x-delivery-count`, `x-death`, `x-first-death-*`, …) are not caller
/// headers.
pub(crate) fn is_reserved_header(key: &str) -> bool {
    key.get(..2)
        .is_some_and(|start| start.eq_ignore_ascii_case("x-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_smallest_bucket_at_least_as_long() {
        assert_eq!(delay_bucket(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(delay_bucket(Duration::from_secs(1)), Duration::from_secs(1));
        assert_eq!(
            delay_bucket(Duration::from_millis(1001)),
            Duration::from_secs(5)
        );
        assert_eq!(
            delay_bucket(Duration::from_secs(31)),
            Duration::from_secs(120)
        );
        assert_eq!(
            delay_bucket(Duration::from_secs(3600)),
            Duration::from_secs(3600)
        );
        assert_eq!(
            delay_bucket(Duration::from_secs(86_400)),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn names_carry_the_prefix() {
        let names = Names::new("wapim.").unwrap();
        assert_eq!(names.send_exchange, "wapim.send");
        assert_eq!(names.send_queue, "wapim.send.q");
        assert_eq!(names.dead_exchange, "wapim.dead");
        assert_eq!(names.dead_queue, "wapim.dead.q");
        let delays: Vec<_> = names.delay_queues().collect();
        assert_eq!(delays[0], ("wapim.delay.1000".to_owned(), 1000));
        assert_eq!(delays[5], ("wapim.delay.3600000".to_owned(), 3_600_000));
    }

    #[test]
    fn refuses_unsendable_names_and_headers() {
        assert!(Names::new(&"p".repeat(243)).is_err());
        assert!(Names::new(&"p".repeat(242)).is_ok());
        assert!(Names::new("amq.x").is_err());
        assert!(check_header("traceparent").is_ok());
        assert!(check_header("X-Death").is_err());
        assert!(check_header("").is_err());
        assert!(check_header(&"k".repeat(256)).is_err());
        assert!(check_name("consumer tag", &"t".repeat(256)).is_err());
    }
}
