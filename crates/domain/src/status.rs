//! The closed sets of values the API speaks: message types, statuses, calendars.
//!
//! Each is stored as text (portable across PostgreSQL and SQLite) and parsed back strictly, so an
//! unknown value in a request is a validation error and an unknown value in the database is loud.

use std::fmt;
use std::str::FromStr;

/// A value outside a closed set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not one of: {allowed}")]
pub struct UnknownValue {
    /// What was given.
    pub value: String,
    /// The accepted values, comma separated, for the error message.
    pub allowed: &'static str,
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The accepted spellings, for error messages.
            pub const ALLOWED: &'static str = concat!($($text, ", "),+);

            /// The wire and storage spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue {
                        value: s.to_owned(),
                        allowed: Self::ALLOWED.trim_end_matches(", "),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// What kind of WhatsApp message to send; media kinds carry a `file_url`.
    MessageType {
        /// Plain text.
        Text => "text",
        /// A picture with an optional caption.
        Image => "image",
        /// A document.
        File => "file",
        /// A video with an optional caption.
        Video => "video",
        /// A voice note or audio file.
        Audio => "audio",
    }
}

impl MessageType {
    /// True for the kinds that need a `file_url`.
    pub const fn is_media(self) -> bool {
        !matches!(self, MessageType::Text)
    }
}

text_enum! {
    /// Where a message is in its life: created → queued → sent → delivered → read, or failed /
    /// cancelled.
    MessageStatus {
        /// Stored, waiting for its time or its turn.
        Pending => "pending",
        /// Claimed by a dispatcher, being handed to WAHA.
        Processing => "processing",
        /// WAHA accepted it (one grey tick).
        Sent => "sent",
        /// Reached the recipient's phone (two grey ticks).
        Delivered => "delivered",
        /// Read by the recipient (two blue ticks).
        Read => "read",
        /// Gave up after retries; `api_response` says why.
        Failed => "failed",
        /// Deleted while still pending: it will never be sent.
        Cancelled => "cancelled",
    }
}

impl MessageStatus {
    /// Whether the integrator may still change the message's content: only before any
    /// dispatcher has touched it.
    pub const fn is_editable(self) -> bool {
        matches!(self, MessageStatus::Pending)
    }
}

text_enum! {
    /// Which calendar the date part of `schedule_at` is written in.
    CalendarType {
        /// Gregorian.
        Masehi => "masehi",
        /// Hijri, Umm al-Qura reckoning.
        Hijriah => "hijriah",
    }
}

text_enum! {
    /// A device's connection state as WAHA reports it (driven by WAHA in a later step).
    DeviceStatus {
        /// Waiting for the phone to scan the pairing QR code.
        ScanQrCode => "scan_qr_code",
        /// WAHA is starting the session.
        Starting => "starting",
        /// Paired and online.
        Working => "working",
        /// The session failed; it needs a restart or a new pairing.
        Failed => "failed",
        /// The session is stopped.
        Stopped => "stopped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_unknown() {
        for t in MessageType::ALL {
            assert_eq!(t.as_str().parse::<MessageType>().unwrap(), *t);
        }
        let err = "sticker".parse::<MessageType>().unwrap_err();
        assert_eq!(err.allowed, "text, image, file, video, audio");
        assert!("Pending".parse::<MessageStatus>().is_err());
        assert!(MessageType::Image.is_media());
        assert!(!MessageType::Text.is_media());
    }
}
