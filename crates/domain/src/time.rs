//! The one timestamp format of the API: `2025-09-08T02:44:00.000000Z`.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};

/// Formats an instant the way the API reference shows it (UTC, microseconds, `Z`).
pub fn format_api_timestamp(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Formats a stored naive UTC timestamp the way the API reference shows it.
pub fn format_naive_utc(at: &NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The current instant truncated to microseconds, the precision every backend stores.
pub fn now_micros() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn format_matches_reference() {
        let at = Utc.with_ymd_and_hms(2025, 9, 8, 2, 44, 0).unwrap();
        assert_eq!(format_api_timestamp(&at), "2025-09-08T02:44:00.000000Z");
        assert_eq!(
            format_naive_utc(&at.naive_utc()),
            "2025-09-08T02:44:00.000000Z"
        );
    }
}
