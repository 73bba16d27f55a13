//! The jobs that travel through the queue: versioned JSON carrying ids, never message content
//! (the content lives in the database, where edits and deletions take effect until the claim).

use serde::{Deserialize, Serialize};

use crate::ids::{DeviceId, MessageId, WebhookDeliveryId};

/// The wire version of every job body; a consumer refuses (dead-letters) versions it does not
/// know instead of guessing.
pub const JOB_VERSION: u32 = 1;

/// A job on the send queue: `{"v": 1, "type": "send_message", "message_id": 42, "session_id": "wapi-x"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEnvelope {
    /// [`JOB_VERSION`].
    pub v: u32,
    /// What to do.
    #[serde(flatten)]
    pub job: Job,
}

/// What a job asks a dispatcher to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Job {
    /// Send one stored message through WAHA (if it is still pending and due when claimed).
    SendMessage {
        /// The message.
        message_id: MessageId,
        /// Its device's WAHA session (fixed for the device's life): lets a dispatcher ask WAHA
        /// for the WhatsApp id before the claim and store it in the claim's own write. Optional:
        /// without it the id is asked for after the claim.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<String>,
    },
    /// Make a device's WAHA session match its row: created, configured and started while the
    /// device is live; stopped (its login kept) once it is deleted.
    SyncSession {
        /// The device.
        device_id: DeviceId,
    },
    /// Make one attempt of a delivery to an integrator's webhook (if it is still pending and
    /// due when claimed), record it, and schedule the next one if it failed.
    DeliverWebhook {
        /// The delivery.
        delivery_id: WebhookDeliveryId,
    },
}

impl JobEnvelope {
    /// The current-version envelope of `job`.
    pub fn new(job: Job) -> Self {
        Self {
            v: JOB_VERSION,
            job,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_is_versioned_tagged_json_of_ids() {
        let job = JobEnvelope::new(Job::SendMessage {
            message_id: 42.into(),
            session_id: Some("wapi-x".to_owned()),
        });
        let text = serde_json::to_string(&job).unwrap();
        assert_eq!(
            text,
            r#"{"v":1,"type":"send_message","message_id":42,"session_id":"wapi-x"}"#
        );
        assert_eq!(serde_json::from_str::<JobEnvelope>(&text).unwrap(), job);
        let bare: JobEnvelope =
            serde_json::from_str(r#"{"v":1,"type":"send_message","message_id":42}"#).unwrap();
        assert_eq!(
            bare.job,
            Job::SendMessage {
                message_id: 42.into(),
                session_id: None
            }
        );
        assert!(serde_json::from_str::<JobEnvelope>(r#"{"v":1,"type":"fly"}"#).is_err());
        let sync = JobEnvelope::new(Job::SyncSession {
            device_id: 7.into(),
        });
        assert_eq!(
            serde_json::to_string(&sync).unwrap(),
            r#"{"v":1,"type":"sync_session","device_id":7}"#
        );
    }
}
