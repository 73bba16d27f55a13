//! `schedule_at` parsing: local wall-clock times in the configured zone, RFC 3339 with an offset,
//! and Hijri (Umm al-Qura) dates, all resolved to one UTC instant.

use chrono::{
    DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;
use icu_calendar::cal::Hijri;
use icu_calendar::{Date, Iso};

use crate::status::CalendarType;

/// Why a `schedule_at` was refused; the text is shown to the integrator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Not `YYYY-MM-DD HH:MM[:SS]` nor RFC 3339.
    #[error("must be a date and time like 2025-09-08 09:44:00 or 2025-09-08T09:44:00+07:00")]
    Format,
    /// The Gregorian date or the time does not exist (e.g. February 30th, 25:00).
    #[error("is not a real date and time")]
    Impossible,
    /// The Hijri date does not exist in the Umm al-Qura calendar (e.g. day 30 of a 29-day month).
    #[error("is not a valid Hijri (Umm al-Qura) date")]
    ImpossibleHijri,
    /// The local time falls in a daylight-saving gap of the configured zone.
    #[error("does not exist in time zone {0} (daylight-saving gap)")]
    LocalGap(String),
    /// Outside the years Wapim schedules for.
    #[error("must be between the years 1970 and 2199")]
    OutOfRange,
}

struct Parts {
    year: i32,
    month: u8,
    day: u8,
    time: NaiveTime,
    offset: Option<FixedOffset>,
}

/// Resolves a `schedule_at` string to a UTC instant, truncated to microseconds.
///
/// Without an offset the wall-clock time is read in `zone` (the reference's `2025-09-08 09:44:00`
/// in Asia/Jakarta is `2025-09-08T02:44:00Z`); with `calendar = Hijriah` the date part is an
/// Umm al-Qura Hijri date converted with ICU4X.
pub fn parse_schedule(
    input: &str,
    calendar: CalendarType,
    zone: Tz,
) -> Result<DateTime<Utc>, ScheduleError> {
    let parts = split(input.trim()).ok_or(ScheduleError::Format)?;
    let date = match calendar {
        CalendarType::Masehi => {
            NaiveDate::from_ymd_opt(parts.year, u32::from(parts.month), u32::from(parts.day))
                .ok_or(ScheduleError::Impossible)?
        }
        CalendarType::Hijriah => hijri_to_gregorian(parts.year, parts.month, parts.day)?,
    };
    let local = NaiveDateTime::new(date, parts.time);
    let utc = match parts.offset {
        Some(offset) => match offset.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            _ => return Err(ScheduleError::Impossible),
        },
        None => match zone.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            // On a repeated hour, take the first occurrence: the earlier send is the safer guess.
            LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            LocalResult::None => return Err(ScheduleError::LocalGap(zone.name().to_owned())),
        },
    };
    let year = chrono::Datelike::year(&utc);
    if !(1970..=2199).contains(&year) {
        return Err(ScheduleError::OutOfRange);
    }
    Ok(chrono::SubsecRound::trunc_subsecs(utc, 6))
}

/// Converts an Umm al-Qura Hijri date to the Gregorian date it falls on.
pub fn hijri_to_gregorian(year: i32, month: u8, day: u8) -> Result<NaiveDate, ScheduleError> {
    if !(1300..=1700).contains(&year) {
        return Err(ScheduleError::OutOfRange);
    }
    let hijri = Date::try_new_hijri_with_calendar(year, month, day, Hijri::new_umm_al_qura())
        .map_err(|_| ScheduleError::ImpossibleHijri)?;
    let iso = hijri.to_calendar(Iso);
    NaiveDate::from_ymd_opt(
        iso.year().extended_year(),
        u32::from(iso.month().ordinal),
        u32::from(iso.day_of_month().0),
    )
    .ok_or(ScheduleError::ImpossibleHijri)
}

fn digits<T: std::str::FromStr>(s: &str, len: usize) -> Option<T> {
    if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Splits `YYYY-MM-DD[ T]HH:MM[:SS[.f]][Z|±HH:MM|±HHMM]` without deciding the calendar.
fn split(s: &str) -> Option<Parts> {
    if !s.is_ascii() || s.len() < 16 {
        return None;
    }
    let year = digits(&s[0..4], 4)?;
    if &s[4..5] != "-" || &s[7..8] != "-" || !matches!(&s[10..11], " " | "T" | "t") {
        return None;
    }
    let month = digits(&s[5..7], 2)?;
    let day = digits(&s[8..10], 2)?;
    let rest = &s[11..];
    // Time ends where an offset starts.
    let offset_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (time_text, offset_text) = rest.split_at(offset_at);
    let time = parse_time(time_text)?;
    let offset = if offset_text.is_empty() {
        None
    } else {
        Some(parse_offset(offset_text)?)
    };
    Some(Parts {
        year,
        month,
        day,
        time,
        offset,
    })
}

fn parse_time(t: &str) -> Option<NaiveTime> {
    let (hms, frac) = match t.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (t, None),
    };
    let mut fields = hms.split(':');
    let hour: u32 = digits(fields.next()?, 2)?;
    let minute: u32 = digits(fields.next()?, 2)?;
    let second: u32 = match fields.next() {
        Some(sec) => digits(sec, 2)?,
        None if frac.is_none() => 0,
        None => return None,
    };
    if fields.next().is_some() {
        return None;
    }
    let nanos: u32 = match frac {
        None => 0,
        Some(f) if (1..=9).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()) => {
            let padded = format!("{f:0<9}");
            padded.parse().ok()?
        }
        Some(_) => return None,
    };
    NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)
}

fn parse_offset(o: &str) -> Option<FixedOffset> {
    if o.eq_ignore_ascii_case("z") {
        return FixedOffset::east_opt(0);
    }
    let sign = match &o[..1] {
        "+" => 1,
        "-" => -1,
        _ => return None,
    };
    let body = o[1..].replace(':', "");
    let hours: i32 = digits(body.get(0..2)?, 2)?;
    let minutes: i32 = digits(body.get(2..)?, 2)?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::format_api_timestamp;

    const JKT: Tz = chrono_tz::Asia::Jakarta;

    fn at(input: &str, cal: CalendarType) -> Result<String, ScheduleError> {
        parse_schedule(input, cal, JKT).map(|t| format_api_timestamp(&t))
    }

    #[test]
    fn reference_local_time_is_jakarta() {
        assert_eq!(
            at("2025-09-08 09:44:00", CalendarType::Masehi).unwrap(),
            "2025-09-08T02:44:00.000000Z"
        );
        assert_eq!(
            at("2025-09-08 09:44", CalendarType::Masehi).unwrap(),
            "2025-09-08T02:44:00.000000Z"
        );
    }

    #[test]
    fn rfc3339_offsets_win_over_zone() {
        assert_eq!(
            at("2025-09-08T09:44:00+07:00", CalendarType::Masehi).unwrap(),
            "2025-09-08T02:44:00.000000Z"
        );
        assert_eq!(
            at("2025-09-08T02:44:00.123456789Z", CalendarType::Masehi).unwrap(),
            "2025-09-08T02:44:00.123456Z"
        );
        assert_eq!(
            at("2025-09-08T00:00:00-0330", CalendarType::Masehi).unwrap(),
            "2025-09-08T03:30:00.000000Z"
        );
    }

    #[test]
    fn hijri_eid_morning() {
        // 1 Shawwal 1447 AH (Umm al-Qura) is 20 March 2026; 08:00 in Jakarta is 01:00Z.
        assert_eq!(
            at("1447-10-01 08:00:00", CalendarType::Hijriah).unwrap(),
            "2026-03-20T01:00:00.000000Z"
        );
        // 1 Ramadan 1446 AH was 1 March 2025.
        assert_eq!(
            hijri_to_gregorian(1446, 9, 1).unwrap(),
            NaiveDate::from_ymd_opt(2025, 3, 1).unwrap()
        );
    }

    #[test]
    fn impossible_dates() {
        assert_eq!(
            at("2025-02-30 10:00:00", CalendarType::Masehi),
            Err(ScheduleError::Impossible)
        );
        assert_eq!(
            at("2025-01-01 25:00:00", CalendarType::Masehi),
            Err(ScheduleError::Format)
        );
        assert_eq!(
            at("1447-13-01 08:00:00", CalendarType::Hijriah),
            Err(ScheduleError::ImpossibleHijri)
        );
        // Months of the Hijri calendar have 29 or 30 days, never 31.
        assert_eq!(
            at("1447-10-31 08:00:00", CalendarType::Hijriah),
            Err(ScheduleError::ImpossibleHijri)
        );
        for bad in [
            "",
            "tomorrow",
            "2025-9-8 09:44:00",
            "2025-09-08",
            "2025-09-08 09:44:00+7",
        ] {
            assert_eq!(
                at(bad, CalendarType::Masehi),
                Err(ScheduleError::Format),
                "{bad}"
            );
        }
        assert_eq!(
            at("1900-01-01 00:00:00", CalendarType::Masehi),
            Err(ScheduleError::OutOfRange)
        );
    }

    #[test]
    fn hijri_range_edges_never_panic() {
        for (y, m, d) in [
            (1300, 1, 1),
            (1700, 12, 29),
            (1700, 12, 30),
            (1500, 6, 30),
            (1299, 1, 1),
            (1701, 1, 1),
            (1447, 0, 1),
            (1447, 1, 0),
        ] {
            let _ = hijri_to_gregorian(y, m, d);
        }
        assert_eq!(
            hijri_to_gregorian(1299, 1, 1),
            Err(ScheduleError::OutOfRange)
        );
    }

    #[test]
    fn dst_gap_is_refused() {
        let berlin = chrono_tz::Europe::Berlin;
        assert!(matches!(
            parse_schedule("2025-03-30 02:30:00", CalendarType::Masehi, berlin),
            Err(ScheduleError::LocalGap(_))
        ));
    }
}
