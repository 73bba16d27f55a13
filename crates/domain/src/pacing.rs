//! Per-device pacing: the rule that decides, at the moment a dispatcher claims a message, whether
//! the device may send now or when the message's turn comes.
//!
//! The state lives on the device row and every decision is taken under that row's lock, so the
//! rule holds across any number of dispatcher replicas:
//! - two sends of one device are never closer than the interval: a send may start only once
//!   the previous one has *finished* (no send in flight) and `interval` has passed since then;
//! - waiting messages do not bounce: each one that must wait reserves its own slot (the next
//!   free one, `interval + jitter` after the previous slot) and is re-published for that slot,
//!   so 100 queued messages cost 100 deferrals, not 100²;
//! - a waiting message never holds a worker: the caller defers the job (the outbox re-publishes
//!   it when due) instead of sleeping.

use chrono::{NaiveDateTime, TimeDelta};

/// A device's pacing rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Least time between the end of one send and the start of the next.
    pub interval: TimeDelta,
    /// Upper bound of the random extra added to each slot (0: none).
    pub jitter: TimeDelta,
}

impl Pace {
    /// A rule from milliseconds (0 turns each part off).
    pub fn from_millis(interval_ms: u64, jitter_ms: u64) -> Self {
        let ms = |v: u64| TimeDelta::milliseconds(i64::try_from(v).unwrap_or(i64::MAX / 1_000_000));
        Self {
            interval: ms(interval_ms),
            jitter: ms(jitter_ms),
        }
    }

    /// No pacing at all: nothing to decide, nothing to record.
    pub fn is_off(&self) -> bool {
        self.interval <= TimeDelta::zero() && self.jitter <= TimeDelta::zero()
    }
}

/// A device's pacing state, as stored on its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PaceState {
    /// When its last send finished (or started, while it is in flight).
    pub last_send_at: Option<NaiveDateTime>,
    /// The next free slot: where the next waiting message will be placed.
    pub next_slot_at: Option<NaiveDateTime>,
    /// Set while a send is in flight: until when that claim holds.
    pub in_flight_until: Option<NaiveDateTime>,
}

/// What the claim of one message may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaceDecision {
    /// Send now; store `state` (the send is in flight until `in_flight_until`).
    Send {
        /// The device's new state.
        state: PaceState,
    },
    /// Not yet: the message is due again at `until`, keeping (or taking) slot `slot`.
    Wait {
        /// When to try again.
        until: NaiveDateTime,
        /// The slot the message holds.
        slot: NaiveDateTime,
        /// The device's new state (a newly taken slot moves the frontier).
        state: PaceState,
    },
}

/// How long a message waits before looking again while another send of its device is in flight
/// (a send normally finishes within milliseconds; a dead one is released when its claim expires).
pub const IN_FLIGHT_RECHECK: TimeDelta = TimeDelta::milliseconds(250);

/// Decides the claim of a message at `now`. `slot`: the slot the message already holds, if any;
/// `jitter_sample`: this decision's random extra, in `0..=pace.jitter` (drawn by the caller);
/// `in_flight_until`: how long the claim of a send started now holds.
pub fn decide(
    pace: Pace,
    state: PaceState,
    now: NaiveDateTime,
    slot: Option<NaiveDateTime>,
    jitter_sample: TimeDelta,
    in_flight_until: NaiveDateTime,
) -> PaceDecision {
    let spacing = pace.interval + jitter_sample.clamp(TimeDelta::zero(), pace.jitter);
    let gap_ends = state.last_send_at.map(|t| t + pace.interval);
    if let Some(busy) = state.in_flight_until.filter(|until| *until > now) {
        // Another send of this device is in flight: look again shortly (keep or take a slot).
        let (slot, state) = match slot {
            Some(s) => (s, state),
            None => take_slot(state, now, gap_ends, spacing),
        };
        let until = slot.max(now + IN_FLIGHT_RECHECK).min(busy.max(slot));
        return PaceDecision::Wait { until, slot, state };
    }
    let earliest = match slot {
        Some(s) => Some(gap_ends.map_or(s, |g| g.max(s))),
        None => max_opt(state.next_slot_at, gap_ends),
    };
    match earliest.filter(|t| *t > now) {
        None => PaceDecision::Send {
            state: PaceState {
                last_send_at: Some(now),
                next_slot_at: Some(max_opt(state.next_slot_at, Some(now + spacing)).unwrap_or(now)),
                in_flight_until: Some(in_flight_until),
            },
        },
        Some(until) => match slot {
            // Its slot came but the previous send ended late: wait out the gap, same slot.
            Some(s) => PaceDecision::Wait {
                until,
                slot: s,
                state,
            },
            None => {
                let (slot, state) = take_slot(state, now, gap_ends, spacing);
                PaceDecision::Wait {
                    until: slot,
                    slot,
                    state,
                }
            }
        },
    }
}

/// The next free slot for a message that has none, and the state with the frontier moved past it.
fn take_slot(
    state: PaceState,
    now: NaiveDateTime,
    gap_ends: Option<NaiveDateTime>,
    spacing: TimeDelta,
) -> (NaiveDateTime, PaceState) {
    let slot = max_opt(max_opt(state.next_slot_at, gap_ends), Some(now)).unwrap_or(now);
    (
        slot,
        PaceState {
            next_slot_at: Some(slot + spacing),
            ..state
        },
    )
}

fn max_opt(a: Option<NaiveDateTime>, b: Option<NaiveDateTime>) -> Option<NaiveDateTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(ms: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp_millis(1_700_000_000_000 + ms)
            .unwrap()
            .naive_utc()
    }

    const PACE: Pace = Pace {
        interval: TimeDelta::milliseconds(1000),
        jitter: TimeDelta::milliseconds(0),
    };

    fn lease(now: NaiveDateTime) -> NaiveDateTime {
        now + TimeDelta::seconds(90)
    }

    /// Finishes the in-flight send at `at`, as the dispatcher records it.
    fn finish(state: PaceState, at: NaiveDateTime) -> PaceState {
        PaceState {
            last_send_at: Some(at),
            in_flight_until: None,
            ..state
        }
    }

    #[test]
    fn a_quiet_device_sends_at_once_and_the_next_waits_for_its_own_slot() {
        let now = t(0);
        let PaceDecision::Send { state } = decide(
            PACE,
            PaceState::default(),
            now,
            None,
            TimeDelta::zero(),
            lease(now),
        ) else {
            panic!("a device that never sent sends now");
        };
        let state = finish(state, t(20));
        // Three more arrive at once: each takes the next slot, one interval apart.
        let mut slots = Vec::new();
        let mut s = state;
        for _ in 0..3 {
            match decide(PACE, s, t(30), None, TimeDelta::zero(), lease(t(30))) {
                PaceDecision::Wait { until, slot, state } => {
                    assert_eq!(until, slot);
                    slots.push(slot);
                    s = state;
                }
                other => panic!("must wait: {other:?}"),
            }
        }
        assert_eq!(
            slots,
            [t(1020), t(2020), t(3020)],
            "1 s after the end of the send, then 1 s apart"
        );
    }

    #[test]
    fn a_slot_is_honoured_only_once_the_gap_since_the_last_send_has_passed() {
        // The previous send finished late (at 1,500 ms); the holder of slot 2,000 must wait
        // until 2,500 ms, keeping its slot.
        let state = PaceState {
            last_send_at: Some(t(1500)),
            next_slot_at: Some(t(3000)),
            in_flight_until: None,
        };
        match decide(
            PACE,
            state,
            t(2000),
            Some(t(2000)),
            TimeDelta::zero(),
            lease(t(2000)),
        ) {
            PaceDecision::Wait { until, slot, .. } => {
                assert_eq!((until, slot), (t(2500), t(2000)));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decide(
                PACE,
                state,
                t(2500),
                Some(t(2000)),
                TimeDelta::zero(),
                lease(t(2500))
            ),
            PaceDecision::Send { .. }
        ));
    }

    #[test]
    fn nothing_starts_while_a_send_of_the_device_is_in_flight() {
        let state = PaceState {
            last_send_at: Some(t(0)),
            next_slot_at: Some(t(1000)),
            in_flight_until: Some(t(90_000)),
        };
        // Even its slot's holder waits: the previous send has not finished.
        match decide(
            PACE,
            state,
            t(5000),
            Some(t(1000)),
            TimeDelta::zero(),
            lease(t(5000)),
        ) {
            PaceDecision::Wait { until, slot, .. } => {
                assert_eq!(slot, t(1000));
                assert_eq!(until, t(5000) + IN_FLIGHT_RECHECK);
            }
            other => panic!("{other:?}"),
        }
        // An expired in-flight claim (its dispatcher died) no longer blocks.
        assert!(matches!(
            decide(
                PACE,
                state,
                t(90_001),
                Some(t(1000)),
                TimeDelta::zero(),
                lease(t(90_001))
            ),
            PaceDecision::Send { .. }
        ));
    }

    #[test]
    fn jitter_spreads_slots_within_its_bound() {
        let pace = Pace::from_millis(1000, 500);
        let state = PaceState {
            last_send_at: Some(t(0)),
            next_slot_at: Some(t(1000)),
            in_flight_until: None,
        };
        let PaceDecision::Wait { slot, state, .. } = decide(
            pace,
            state,
            t(10),
            None,
            TimeDelta::milliseconds(9999),
            lease(t(10)),
        ) else {
            panic!()
        };
        assert_eq!(slot, t(1000));
        assert_eq!(
            state.next_slot_at,
            Some(t(2500)),
            "a sample above the bound is clamped to it"
        );
    }

    #[test]
    fn consecutive_sends_are_never_closer_than_the_interval() {
        // A random walk of claims at arbitrary times, sends finishing after arbitrary latency.
        let pace = Pace::from_millis(1000, 300);
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut state = PaceState::default();
        let mut slots: Vec<Option<NaiveDateTime>> = vec![None; 50];
        let mut due: Vec<NaiveDateTime> = vec![t(0); 50];
        let mut sent: Vec<(NaiveDateTime, NaiveDateTime)> = Vec::new();
        let mut now = t(0);
        let mut pending: Vec<usize> = (0..50).collect();
        while !pending.is_empty() && now < t(200_000) {
            now += TimeDelta::milliseconds((next() % 400) as i64);
            if let Some(in_flight) = state.in_flight_until {
                if in_flight > now && next() % 2 == 0 {
                    state = finish(state, now);
                }
            }
            let ready: Vec<usize> = pending.iter().copied().filter(|m| due[*m] <= now).collect();
            for m in ready {
                let jitter = TimeDelta::milliseconds((next() % 300) as i64);
                match decide(
                    pace,
                    state,
                    now,
                    slots[m],
                    jitter,
                    now + TimeDelta::seconds(90),
                ) {
                    PaceDecision::Send { state: s } => {
                        state = s;
                        sent.push((now, now));
                        pending.retain(|p| *p != m);
                    }
                    PaceDecision::Wait {
                        until,
                        slot,
                        state: s,
                    } => {
                        assert!(until > now);
                        state = s;
                        slots[m] = Some(slot);
                        due[m] = until;
                    }
                }
            }
        }
        assert!(pending.is_empty(), "every message is sent eventually");
        for pair in sent.windows(2) {
            assert!(pair[1].0 - pair[0].0 >= pace.interval, "{pair:?}");
        }
    }
}
