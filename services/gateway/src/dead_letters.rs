//! The broker's dead-letter queue as the dashboard's queues page shows it: how many jobs wait
//! there, and moving them back to the send queue. The single binary shares its in-process queue;
//! the `gateway` service connects to RabbitMQ on first use (its relay has its own connection, and
//! the API never waits for the broker).

use std::time::Duration;

use wapim_broker::{Broker, BrokerConfig, BrokerError};

/// How long the page waits for the broker before it says it is unreachable.
const PATIENCE: Duration = Duration::from_secs(3);

/// Access to the dead letters.
pub enum DeadLetters {
    /// The process's own broker handle (the single binary).
    Shared(Broker),
    /// Connected to RabbitMQ on first use, then kept.
    OnDemand {
        /// Where.
        config: BrokerConfig,
        /// The connection, once made.
        broker: tokio::sync::Mutex<Option<Broker>>,
    },
}

impl DeadLetters {
    /// Over a broker the process already holds.
    pub fn shared(broker: Broker) -> Self {
        DeadLetters::Shared(broker)
    }

    /// Over a connection made when first needed.
    pub fn on_demand(config: BrokerConfig) -> Self {
        DeadLetters::OnDemand {
            config,
            broker: tokio::sync::Mutex::new(None),
        }
    }

    async fn broker(&self) -> Result<Broker, BrokerError> {
        match self {
            DeadLetters::Shared(b) => Ok(b.clone()),
            DeadLetters::OnDemand { config, broker } => {
                let mut held = broker.lock().await;
                if let Some(b) = held.as_ref() {
                    return Ok(b.clone());
                }
                let made = tokio::time::timeout(PATIENCE, Broker::connect(config))
                    .await
                    .map_err(|_| BrokerError::Timeout(PATIENCE))??;
                *held = Some(made.clone());
                Ok(made)
            }
        }
    }

    /// How many jobs wait in the dead-letter queue.
    pub async fn count(&self) -> Result<u32, BrokerError> {
        let broker = self.broker().await?;
        tokio::time::timeout(PATIENCE, broker.dead_letter_count())
            .await
            .map_err(|_| BrokerError::Timeout(PATIENCE))?
    }

    /// Moves up to `max` dead letters back to the send queue; returns how many moved.
    pub async fn replay(&self, max: usize) -> Result<usize, BrokerError> {
        self.broker().await?.replay_dead_letters(max).await
    }
}
