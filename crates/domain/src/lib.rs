//! Wapim's vocabulary: the types and rules every service shares.
//!
//! Nothing here performs I/O: phone numbers, session ids, schedules, tokens and the validation of
//! request bodies are pure functions, so the gateway, the dispatcher and the tests agree on them.

pub mod automation;
pub mod device;
pub mod ids;
pub mod jobs;
pub mod media;
pub mod message;
pub mod pacing;
pub mod phone;
pub mod safety;
pub mod schedule;
pub mod session;
pub mod status;
pub mod time;
pub mod token;
pub mod validation;

/// Time zones (IANA), re-exported so other crates need not depend on `chrono-tz` themselves.
pub use chrono_tz::Tz;
pub use ids::{DeviceId, MessageId, WebhookDeliveryId};
pub use phone::PhoneNormalizer;
/// Secrets (client-chosen tokens) travel wrapped so `Debug` and logs never show them; re-exported
/// so other crates need not depend on `secrecy` themselves.
pub use secrecy::{ExposeSecret, SecretString};
pub use status::{
    CalendarType, CancelReason, DeviceStatus, HoldReason, MessageOrigin, MessageStatus,
    MessageType, WebhookDeliveryStatus,
};
pub use validation::{ValidationContext, ValidationErrors};
