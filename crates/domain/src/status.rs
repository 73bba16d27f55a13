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

        impl TryFrom<String> for $name {
            type Error = UnknownValue;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> Self {
                v.as_str().to_owned()
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

    /// Whether a message may go from `self` to `next`; every status write checks this, so a late
    /// ack or a racing dispatcher cannot move a message backwards. Staying put is not a move.
    pub const fn can_move_to(self, next: MessageStatus) -> bool {
        use MessageStatus::*;
        matches!(
            (self, next),
            (Pending, Processing)
                | (Pending, Cancelled)
                | (Processing, Sent)
                | (Processing, Failed)
                // A claim released: the lease expired or the send must wait.
                | (Processing, Pending)
                | (Sent, Delivered)
                | (Sent, Read)
                | (Delivered, Read)
                // An ERROR ack from WAHA.
                | (Sent, Failed)
                // An ERROR ack that is NOWEB's reach-out timelock: sent again once allowed.
                | (Sent, Pending)
                // Resend.
                | (Failed, Pending)
                // Restore.
                | (Cancelled, Pending)
        )
    }

    /// The statuses from which `next` may be reached (those `s` with `s.can_move_to(next)`), for a
    /// guarded `UPDATE ... WHERE status IN (...)`.
    pub const fn sources_of(next: MessageStatus) -> &'static [MessageStatus] {
        use MessageStatus::*;
        match next {
            Pending => &[Processing, Failed, Cancelled, Sent],
            Processing => &[Pending],
            Sent => &[Processing],
            Delivered => &[Sent],
            Read => &[Sent, Delivered],
            Failed => &[Processing, Sent],
            Cancelled => &[Pending],
        }
    }
}

text_enum! {
    /// Why a message was cancelled, so a restore brings back only what its own deletion
    /// cancelled (restoring a device does not revive messages deleted one by one).
    CancelReason {
        /// The message itself was deleted while pending.
        MessageDeleted => "message_deleted",
        /// Its device was deleted, cancelling everything it still had pending.
        DeviceDeleted => "device_deleted",
    }
}

text_enum! {
    /// Why a due `pending` message is waiting (shown as `hold_reason`), so an integrator can tell
    /// a paced or held message from a stuck one.
    HoldReason {
        /// Its device's pacing: it waits for its slot.
        Pacing => "pacing",
        /// WAHA says the device's session cannot send (not WORKING, unknown, or the API key is
        /// refused); it is tried again later without using an attempt.
        SessionNotReady => "session_not_ready",
        /// WhatsApp's reach-out timelock (463) on the device.
        ReachOutTimelock => "reach_out_timelock",
        /// A failed attempt; the next one is due after a backoff.
        Retry => "retry",
        /// Outside its device's sending window: it waits for the window to open.
        SendingWindow => "sending_window",
        /// Its device reached its daily cap: it waits for the next local day.
        DailyCap => "daily_cap",
        /// Its recipient got the most messages an hour its device allows: it waits for room.
        RecipientCap => "recipient_cap",
    }
}

impl DeviceStatus {
    /// The device status a WAHA session status means (`None`: one Wapim does not track).
    pub fn from_waha(status: &str) -> Option<DeviceStatus> {
        match status {
            "STARTING" => Some(DeviceStatus::Starting),
            "SCAN_QR_CODE" => Some(DeviceStatus::ScanQrCode),
            "WORKING" => Some(DeviceStatus::Working),
            "FAILED" => Some(DeviceStatus::Failed),
            "STOPPED" => Some(DeviceStatus::Stopped),
            _ => None,
        }
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

    #[test]
    fn string_conversions_for_storage() {
        for r in CancelReason::ALL {
            assert_eq!(CancelReason::try_from(String::from(*r)).unwrap(), *r);
        }
        assert_eq!(String::from(MessageStatus::Read), "read");
        let err = MessageStatus::try_from("gone".to_owned()).unwrap_err();
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(err);
        assert!(boxed.to_string().contains("gone"));
        assert_eq!(
            "device_deleted".parse::<CancelReason>().unwrap(),
            CancelReason::DeviceDeleted
        );
    }

    /// The whole from × to matrix, written out: `1` is a legal move.
    #[test]
    fn message_status_moves_match_the_table() {
        use MessageStatus::*;
        let order = [
            Pending, Processing, Sent, Delivered, Read, Failed, Cancelled,
        ];
        assert_eq!(order.as_slice(), MessageStatus::ALL);
        #[rustfmt::skip]
        let table: [[u8; 7]; 7] = [
            //            to: pend proc sent deli read fail canc
            /* pending    */ [0,   1,   0,   0,   0,   0,   1],
            /* processing */ [1,   0,   1,   0,   0,   1,   0],
            /* sent       */ [1,   0,   0,   1,   1,   1,   0],
            /* delivered  */ [0,   0,   0,   0,   1,   0,   0],
            /* read       */ [0,   0,   0,   0,   0,   0,   0],
            /* failed     */ [1,   0,   0,   0,   0,   0,   0],
            /* cancelled  */ [1,   0,   0,   0,   0,   0,   0],
        ];
        for (i, from) in order.iter().enumerate() {
            for (j, to) in order.iter().enumerate() {
                assert_eq!(from.can_move_to(*to), table[i][j] == 1, "{from} -> {to}");
                assert_eq!(
                    MessageStatus::sources_of(*to).contains(from),
                    table[i][j] == 1,
                    "sources_of({to}) and {from}"
                );
            }
        }
        assert!(!Delivered.can_move_to(Failed));
    }
}

text_enum! {
    /// Who created an outbound message: the API, or one of the device's automations answering
    /// an inbound message (listed and tracked like any other).
    MessageOrigin {
        /// `POST /api/messages` or a batch.
        Api => "api",
        /// The greeting when a contact's conversation opens.
        OpeningMessage => "opening_message",
        /// The goodbye after a conversation went silent.
        ClosingMessage => "closing_message",
        /// The answer to an inbound message (at most once per window).
        AutoReply => "auto_reply",
        /// A copy of an inbound message sent to the device's forward number.
        AutoForward => "auto_forward",
        /// The answer to an opt-out keyword (the only message an opted-out contact gets).
        OptOutConfirmation => "opt_out_confirmation",
    }
}

text_enum! {
    /// Where a delivery to the integrator's webhook stands.
    WebhookDeliveryStatus {
        /// Not delivered yet: waiting for its (next) attempt.
        Pending => "pending",
        /// The receiver answered 2xx.
        Delivered => "delivered",
        /// Given up: every attempt until the deadline failed, or the target was refused.
        Failed => "failed",
    }
}
