//! Typed client for the WAHA (WhatsApp HTTP API) calls Wapim makes.
//!
//! [`WahaClient`] sends messages ([`SendRequest`] → [`Sent`], whichever engine answers),
//! pre-generates message ids, looks messages up after a crash or a timeout, and reads a
//! session's status. Every failure is a [`WahaError`] that says whether retrying can help.
//! What Wapim relies on in WAHA's API is described in `shared/waha/README.md`.

mod account;
mod client;
mod error;
mod events;
mod send;
mod session;

pub use account::{redact_secrets, AccountCall};
pub use client::{SessionInfo, WahaClient};
pub use error::WahaError;
pub use events::{InboundMedia, InboundMessage};
pub use send::{bare_message_id, chat_id, ChatAction, RemoteFile, SendRequest, Sent};
pub use session::{config_matches, SessionSpec, SESSION_EVENTS};

#[cfg(test)]
mod tests;
