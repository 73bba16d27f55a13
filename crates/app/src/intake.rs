//! Group commit for accepted messages: concurrent single-message accepts are written together,
//! as one multi-row INSERT in one transaction, instead of one statement and one commit each.
//!
//! Every accept still gets its own stored row back, and only after that row is committed; a
//! batch that fails is retried row by row, so one row's failure is never its neighbours'. Under
//! light load a batch is a single row and costs what a direct insert costs; under load the rows
//! that arrived while the previous batch was being written go together, which is where the
//! database's per-commit cost (a WAL flush) and the per-request hand-offs to the blocking pool
//! dominate.

use tokio::sync::{mpsc, oneshot};
use wapim_store::messages::{self, MessageRow, NewMessage};
use wapim_store::{Pool, StoreError};

/// Why an accept could not be written.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// More accepts are waiting than the intake holds: try again shortly.
    #[error("too many messages are waiting to be stored")]
    Saturated,
    /// The writer is gone (the process is stopping).
    #[error("the message writer has stopped")]
    Stopped,
    /// The database refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Reply = oneshot::Sender<Result<MessageRow, StoreError>>;

/// A handle on the writer; cheap to clone, one writer per process.
#[derive(Clone)]
pub struct Intake {
    queue: mpsc::Sender<(NewMessage, Reply)>,
}

impl Intake {
    /// Starts the writer on the current tokio runtime: batches of up to `max_batch` rows,
    /// at most `capacity` accepts waiting (more are refused with [`IntakeError::Saturated`]).
    pub fn start(pool: Pool, max_batch: usize, capacity: usize) -> Self {
        let (queue, waiting) = mpsc::channel(capacity.max(1));
        tokio::spawn(write_batches(pool, waiting, max_batch.max(1)));
        Self { queue }
    }

    /// Stores `row`; returns it as stored once it is committed.
    pub async fn insert(&self, row: NewMessage) -> Result<MessageRow, IntakeError> {
        let (reply, stored) = oneshot::channel();
        self.queue.try_send((row, reply)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => IntakeError::Saturated,
            mpsc::error::TrySendError::Closed(_) => IntakeError::Stopped,
        })?;
        Ok(stored.await.map_err(|_| IntakeError::Stopped)??)
    }
}

async fn write_batches(
    pool: Pool,
    mut waiting: mpsc::Receiver<(NewMessage, Reply)>,
    max_batch: usize,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while waiting.recv_many(&mut batch, max_batch).await > 0 {
        let (rows, replies): (Vec<NewMessage>, Vec<Reply>) =
            std::mem::take(&mut batch).into_iter().unzip();
        let outcomes = match crate::with_connection(&pool, move |c| Ok(write(c, &rows))).await {
            Ok(outcomes) => outcomes,
            Err(e) => {
                // No connection (or the blocking task died): every waiting accept learns it.
                let message = match e {
                    StoreError::Unavailable(m) => m,
                    other => other.to_string(),
                };
                replies
                    .iter()
                    .map(|_| Err(StoreError::Unavailable(message.clone())))
                    .collect()
            }
        };
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            // The request may have given up (client gone); its row is stored all the same.
            let _ = reply.send(outcome);
        }
    }
}

/// One transaction for the whole batch; if it fails, each row alone.
fn write(
    conn: &mut wapim_store::DbConn,
    rows: &[NewMessage],
) -> Vec<Result<MessageRow, StoreError>> {
    if rows.len() > 1 {
        if let Ok(stored) = wapim_store::transaction(conn, |c| messages::insert_many(c, rows)) {
            if stored.len() == rows.len() {
                return stored.into_iter().map(Ok).collect();
            }
        }
    }
    rows.iter().map(|row| messages::insert(conn, row)).collect()
}
