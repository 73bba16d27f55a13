//! Sending safety beyond pacing: the limits a device may set on itself (a daily cap, a sending
//! window, a cap per recipient), WhatsApp's reach-out pause, and the rule that decides, for a
//! message whose claim came up, whether those let it go now or until when it waits.
//!
//! Limits never drop or fail a message: one that may not go now is held (`pending`, with a
//! [`HoldReason`]) until the limit lets it. Times are UTC `NaiveDateTime`s like every stored
//! timestamp; the window and the day are the device's local ones (its time zone).

use chrono::{Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone};
use chrono_tz::Tz;

use crate::HoldReason;

/// The span a per-recipient cap counts over (WAHA's guidance is about 4 an hour to one contact).
pub const RECIPIENT_CAP_SPAN: TimeDelta = TimeDelta::hours(1);

/// When a device may send each day, in its local time; `end` before `start` spans midnight
/// (`22:00`–`06:00`). `start == end` is refused by validation (it would mean "never" or
/// "always").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendWindow {
    /// Opening time, inclusive.
    pub start: NaiveTime,
    /// Closing time, exclusive.
    pub end: NaiveTime,
}

impl SendWindow {
    /// Whether local time `t` is inside the window.
    pub fn contains_time(&self, t: NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// Whether the UTC instant `at` is inside the window in `tz`.
    pub fn contains(&self, tz: Tz, at: NaiveDateTime) -> bool {
        self.contains_time(tz.from_utc_datetime(&at).time())
    }

    /// The first UTC instant at or after `at` when the window is open in `tz` (`at` itself when
    /// it is open).
    pub fn next_open(&self, tz: Tz, at: NaiveDateTime) -> NaiveDateTime {
        if self.contains(tz, at) {
            return at;
        }
        let today = tz.from_utc_datetime(&at).date_naive();
        // Today's opening if it is still ahead, else tomorrow's (a DST gap pushes it later).
        [today, today + Days::new(1), today + Days::new(2)]
            .into_iter()
            .map(|day| local_to_utc(tz, day, self.start))
            .find(|open| *open > at)
            .unwrap_or(at + TimeDelta::days(1))
    }
}

/// Parses a window bound: `HH:MM` (or `HH:MM:SS`), 24-hour.
pub fn parse_time_of_day(text: &str) -> Option<NaiveTime> {
    let text = text.trim();
    NaiveTime::parse_from_str(text, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S"))
        .ok()
}

/// A stored window (both bounds as `HH:MM`); `None` unless both are there and readable.
pub fn stored_window(start: Option<&str>, end: Option<&str>) -> Option<SendWindow> {
    Some(SendWindow {
        start: parse_time_of_day(start?)?,
        end: parse_time_of_day(end?)?,
    })
}

/// A window bound as stored and shown: `HH:MM` (`HH:MM:SS` when it has seconds).
pub fn format_time_of_day(t: NaiveTime) -> String {
    use chrono::Timelike;
    if t.second() == 0 {
        t.format("%H:%M").to_string()
    } else {
        t.format("%H:%M:%S").to_string()
    }
}

/// The UTC instant of local `day` at `time` in `tz`: the earlier of an ambiguous (DST fall-back)
/// time, the first valid minute after a skipped (DST spring-forward) one.
fn local_to_utc(tz: Tz, day: NaiveDate, time: NaiveTime) -> NaiveDateTime {
    let mut local = day.and_time(time);
    for _ in 0..(4 * 60) {
        if let Some(t) = tz.from_local_datetime(&local).earliest() {
            return t.naive_utc();
        }
        local += TimeDelta::minutes(1);
    }
    // No zone skips four hours; fall back to reading the local time as UTC.
    day.and_time(time)
}

/// The UTC instant the local day containing `at` began in `tz`.
pub fn local_day_start(tz: Tz, at: NaiveDateTime) -> NaiveDateTime {
    let day = tz.from_utc_datetime(&at).date_naive();
    local_to_utc(tz, day, NaiveTime::MIN)
}

/// The UTC instant the local day after the one containing `at` begins in `tz`.
pub fn next_local_day_start(tz: Tz, at: NaiveDateTime) -> NaiveDateTime {
    let day = tz.from_utc_datetime(&at).date_naive() + Days::new(1);
    local_to_utc(tz, day, NaiveTime::MIN)
}

/// A device's limits, each off when `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The device's time zone (its own, else the server's).
    pub timezone: Tz,
    /// Most sends per local day.
    pub daily_cap: Option<u32>,
    /// When it may send.
    pub window: Option<SendWindow>,
    /// Most sends to one contact within [`RECIPIENT_CAP_SPAN`].
    pub recipient_hourly_cap: Option<u32>,
}

impl Limits {
    /// Whether any limit is set (else nothing needs counting or locking).
    pub fn any(&self) -> bool {
        self.daily_cap.is_some() || self.window.is_some() || self.recipient_hourly_cap.is_some()
    }
}

/// What the device has sent, counted under its lock when a limit needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Sends let through since the local day began.
    pub sent_today: u64,
    /// Sends to this message's recipient within the last [`RECIPIENT_CAP_SPAN`].
    pub to_recipient_recently: u64,
    /// The oldest of those (the cap frees a place a span after it).
    pub oldest_to_recipient: Option<NaiveDateTime>,
}

/// What the limits say about a message at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// It may go now (pacing still applies).
    Open,
    /// Not before `until`, because of `reason`.
    Hold {
        /// When to look again.
        until: NaiveDateTime,
        /// Which limit holds it.
        reason: HoldReason,
    },
}

/// Applies `limits` to a message at `now`: the window first (outside it, wait for it to open),
/// then the daily cap (full: wait for the next local day), then the recipient cap (full: wait
/// until its oldest send leaves the span). A later opening is always moved into the window.
pub fn check(limits: &Limits, usage: &Usage, now: NaiveDateTime) -> Gate {
    let tz = limits.timezone;
    let in_window = |t: NaiveDateTime| match limits.window {
        Some(w) => w.next_open(tz, t),
        None => t,
    };
    if let Some(w) = limits.window {
        if !w.contains(tz, now) {
            return Gate::Hold {
                until: w.next_open(tz, now),
                reason: HoldReason::SendingWindow,
            };
        }
    }
    if let Some(cap) = limits.daily_cap {
        if usage.sent_today >= u64::from(cap) {
            return Gate::Hold {
                until: in_window(next_local_day_start(tz, now)),
                reason: HoldReason::DailyCap,
            };
        }
    }
    if let Some(cap) = limits.recipient_hourly_cap {
        if usage.to_recipient_recently >= u64::from(cap) {
            let frees = usage
                .oldest_to_recipient
                .map_or(now + RECIPIENT_CAP_SPAN, |t| t + RECIPIENT_CAP_SPAN)
                .max(now + TimeDelta::seconds(1));
            return Gate::Hold {
                until: in_window(frees),
                reason: HoldReason::RecipientCap,
            };
        }
    }
    Gate::Open
}

/// A device's pause as stored: until when nothing goes, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// Until when its messages are held; after it, one message goes as a probe.
    pub until: NaiveDateTime,
    /// Why (WhatsApp's reach-out timelock).
    pub reason: HoldReason,
}

/// What a pause means for a claim at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseGate {
    /// Not paused: go on.
    Clear,
    /// Paused: hold the message until the pause ends.
    Hold(Pause),
    /// The pause ran out: this message is the one probe; the pause is extended by the probe
    /// interval meanwhile (to `until`) so no other message goes with it.
    Probe {
        /// The pause while the probe is out.
        until: NaiveDateTime,
    },
}

/// Decides a claim against a device's `pause` at `now`, one probe per `probe_every` after it ran
/// out.
pub fn check_pause(pause: Option<Pause>, now: NaiveDateTime, probe_every: TimeDelta) -> PauseGate {
    match pause {
        None => PauseGate::Clear,
        Some(p) if now < p.until => PauseGate::Hold(p),
        Some(_) => PauseGate::Probe {
            until: now + probe_every,
        },
    }
}

/// Reads WAHA's `reachoutTimelock` (from `me` or a `session.status` event): the end of an active
/// timelock, when WAHA says it. `timeEnforcementEnds` is accepted as an RFC 3339 string or as Unix
/// seconds or milliseconds.
pub fn timelock_ends(reachout_timelock: &serde_json::Value) -> Option<NaiveDateTime> {
    if reachout_timelock.get("isActive").and_then(|v| v.as_bool()) != Some(true) {
        return None;
    }
    let ends = reachout_timelock.get("timeEnforcementEnds")?;
    if let Some(s) = ends.as_str() {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
            return Some(t.naive_utc());
        }
        return s.parse::<i64>().ok().and_then(from_unix);
    }
    ends.as_i64().and_then(from_unix)
}

fn from_unix(n: i64) -> Option<NaiveDateTime> {
    // Milliseconds past 2001-09-09 in seconds would be year 33658: tell them apart by size.
    let t = if n > 100_000_000_000 {
        chrono::DateTime::from_timestamp_millis(n)
    } else {
        chrono::DateTime::from_timestamp(n, 0)
    };
    t.map(|t| t.naive_utc())
}

/// How long "typing…" shows before a text: about a fast typist's speed (≈ 25 characters a
/// second) with a random ±20 %, at least 1 s and at most 8 s, so a long text does not hold its
/// worker long. `fraction` in `0..=1` is drawn by the caller.
pub fn typing_time(text: &str, fraction: f64) -> std::time::Duration {
    let chars = text.chars().count() as f64;
    let base = (chars / 25.0).clamp(1.0, 8.0);
    let factor = 0.8 + 0.4 * fraction.clamp(0.0, 1.0);
    std::time::Duration::from_secs_f64((base * factor).clamp(1.0, 8.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    const JKT: Tz = chrono_tz::Asia::Jakarta; // UTC+7, no DST
    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    fn utc(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn window(a: &str, b: &str) -> SendWindow {
        SendWindow {
            start: parse_time_of_day(a).unwrap(),
            end: parse_time_of_day(b).unwrap(),
        }
    }

    fn limits() -> Limits {
        Limits {
            timezone: JKT,
            daily_cap: None,
            window: None,
            recipient_hourly_cap: None,
        }
    }

    #[test]
    fn a_window_opens_at_its_start_in_local_time() {
        let w = window("08:00", "20:00");
        // 00:30Z is 07:30 in Jakarta: closed, opens at 01:00Z.
        assert!(!w.contains(JKT, utc("2026-03-02 00:30")));
        assert_eq!(
            w.next_open(JKT, utc("2026-03-02 00:30")),
            utc("2026-03-02 01:00")
        );
        // 12:59Z is 19:59: open; 13:00Z is 20:00: closed until tomorrow 08:00.
        assert!(w.contains(JKT, utc("2026-03-02 12:59")));
        assert_eq!(
            w.next_open(JKT, utc("2026-03-02 13:00")),
            utc("2026-03-03 01:00")
        );
    }

    #[test]
    fn an_overnight_window_spans_midnight() {
        let w = window("22:00", "06:00");
        assert!(w.contains_time(parse_time_of_day("23:15").unwrap()));
        assert!(w.contains_time(parse_time_of_day("05:59").unwrap()));
        assert!(!w.contains_time(parse_time_of_day("06:00").unwrap()));
        // 12:00 local (05:00Z) waits for 22:00 local (15:00Z).
        assert_eq!(
            w.next_open(JKT, utc("2026-03-02 05:00")),
            utc("2026-03-02 15:00")
        );
    }

    #[test]
    fn a_window_opening_in_a_dst_gap_opens_when_the_clock_allows() {
        // Berlin skips 02:00–03:00 on 2026-03-29: a 02:30 opening is 03:00 local (01:00Z).
        let w = window("02:30", "04:00");
        assert_eq!(
            w.next_open(BERLIN, utc("2026-03-28 23:00")),
            utc("2026-03-29 01:00")
        );
    }

    #[test]
    fn the_local_day_starts_at_local_midnight() {
        // 2026-03-02 20:00Z is 03:00 on the 3rd in Jakarta: that day began at 17:00Z on the 2nd.
        assert_eq!(
            local_day_start(JKT, utc("2026-03-02 20:00")),
            utc("2026-03-02 17:00")
        );
        assert_eq!(
            next_local_day_start(JKT, utc("2026-03-02 20:00")),
            utc("2026-03-03 17:00")
        );
        let d = NaiveDate::from_ymd_opt(2026, 10, 25).unwrap();
        // Berlin's fall-back day is 25 hours long: it still starts at local midnight (22:00Z).
        assert_eq!(
            next_local_day_start(BERLIN, d.and_hms_opt(12, 0, 0).unwrap()),
            utc("2026-10-25 23:00")
        );
    }

    #[test]
    fn a_full_daily_cap_holds_until_the_next_local_day_inside_the_window() {
        let mut l = limits();
        l.daily_cap = Some(2);
        let now = utc("2026-03-02 05:00");
        let under = Usage {
            sent_today: 1,
            ..Usage::default()
        };
        assert_eq!(check(&l, &under, now), Gate::Open);
        let full = Usage {
            sent_today: 2,
            ..Usage::default()
        };
        assert_eq!(
            check(&l, &full, now),
            Gate::Hold {
                until: utc("2026-03-02 17:00"),
                reason: HoldReason::DailyCap
            }
        );
        l.window = Some(window("08:00", "20:00"));
        assert_eq!(
            check(&l, &full, now),
            Gate::Hold {
                until: utc("2026-03-03 01:00"),
                reason: HoldReason::DailyCap
            }
        );
    }

    #[test]
    fn outside_the_window_a_message_waits_for_it_whatever_the_caps() {
        let mut l = limits();
        l.window = Some(window("08:00", "20:00"));
        l.daily_cap = Some(100);
        assert_eq!(
            check(&l, &Usage::default(), utc("2026-03-02 14:00")),
            Gate::Hold {
                until: utc("2026-03-03 01:00"),
                reason: HoldReason::SendingWindow
            }
        );
    }

    #[test]
    fn a_full_recipient_cap_frees_a_span_after_its_oldest_send() {
        let mut l = limits();
        l.recipient_hourly_cap = Some(4);
        let now = utc("2026-03-02 05:00");
        let full = Usage {
            to_recipient_recently: 4,
            oldest_to_recipient: Some(utc("2026-03-02 04:10")),
            ..Usage::default()
        };
        assert_eq!(
            check(&l, &full, now),
            Gate::Hold {
                until: utc("2026-03-02 05:10"),
                reason: HoldReason::RecipientCap
            }
        );
        let room = Usage {
            to_recipient_recently: 3,
            ..full
        };
        assert_eq!(check(&l, &room, now), Gate::Open);
    }

    #[test]
    fn a_pause_holds_then_lets_one_probe_through() {
        let every = TimeDelta::minutes(5);
        let now = utc("2026-03-02 05:00");
        assert_eq!(check_pause(None, now, every), PauseGate::Clear);
        let p = Pause {
            until: utc("2026-03-02 05:03"),
            reason: HoldReason::ReachOutTimelock,
        };
        assert_eq!(check_pause(Some(p), now, every), PauseGate::Hold(p));
        let later = utc("2026-03-02 05:04");
        assert_eq!(
            check_pause(Some(p), later, every),
            PauseGate::Probe {
                until: utc("2026-03-02 05:09")
            }
        );
    }

    #[test]
    fn waha_timelock_ends_are_read_in_each_form() {
        let rfc =
            serde_json::json!({"isActive": true, "timeEnforcementEnds": "2026-03-02T06:00:00Z"});
        assert_eq!(timelock_ends(&rfc), Some(utc("2026-03-02 06:00")));
        let secs = serde_json::json!({"isActive": true, "timeEnforcementEnds": 1_772_431_200});
        assert_eq!(timelock_ends(&secs), Some(utc("2026-03-02 06:00")));
        let ms =
            serde_json::json!({"isActive": true, "timeEnforcementEnds": 1_772_431_200_000_i64});
        assert_eq!(timelock_ends(&ms), Some(utc("2026-03-02 06:00")));
        let inactive = serde_json::json!({"isActive": false, "timeEnforcementEnds": 1_772_431_200});
        assert_eq!(timelock_ends(&inactive), None);
    }

    #[test]
    fn typing_grows_with_the_text_within_bounds() {
        assert_eq!(typing_time("hi", 0.5), std::time::Duration::from_secs(1));
        assert!(typing_time(&"x".repeat(100), 0.5) > std::time::Duration::from_secs(3));
        assert!(typing_time(&"x".repeat(10_000), 1.0) <= std::time::Duration::from_secs(8));
    }
}
