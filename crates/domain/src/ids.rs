//! Typed row ids, so a device id cannot be passed where a message id is meant.

use std::fmt;

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// The raw database id, for queries and wire formats that speak plain numbers.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                $name(id)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

typed_id! {
    /// A device's primary key: one WhatsApp phone.
    DeviceId
}

typed_id! {
    /// A message's primary key.
    MessageId
}

typed_id! {
    /// The primary key of a delivery to an integrator's webhook.
    WebhookDeliveryId
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_numbers_on_the_wire() {
        let d = DeviceId::from(42);
        assert_eq!(d.get(), 42);
        assert_eq!(i64::from(d), 42);
        assert_eq!(d.to_string(), "42");
        assert_eq!(serde_json::to_string(&d).unwrap(), "42");
        assert_eq!(
            serde_json::from_str::<MessageId>("7").unwrap(),
            MessageId::from(7)
        );
        assert!(MessageId::from(1) < MessageId::from(2));
    }
}
