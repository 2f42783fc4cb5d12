//! Property tests of the on-call resolver (`domain::schedule`): random
//! schedules in zones with every kind of DST (none, 1 h, 30 min, a
//! half-hour UTC offset), at random instants biased towards the Sundays
//! clocks change on.
//!
//! What must hold whatever the schedule: the answer is always someone the
//! schedule names; the interval `on_call_shift` gives contains the instant
//! and the answer is the same throughout it; a rotation's shifts tile time
//! with no gap or overlap, shift `k` goes to participant `k mod n`, and
//! calendar-length shifts hand off at the hand-off time on the local wall
//! clock (or at the end of a DST gap that swallowed it).

use chrono::{Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use incident_actors::domain::schedule::{
    nth_shift, on_call_at, on_call_shift, rotation_start, shift_at, Override, Rotation, Schedule,
    ShiftLength, Tz,
};
use incident_actors::time::Timestamp;
use proptest::prelude::*;

const HOUR: i64 = 3_600_000;

const ZONES: [Tz; 5] = [
    Tz::UTC,
    Tz::Europe__Berlin,
    Tz::America__New_York,
    // DST moves the clock by 30 minutes.
    Tz::Australia__Lord_Howe,
    // A half-hour offset and no DST.
    Tz::Asia__Kolkata,
];

/// Elapsed lengths (1, 5, 8, 12, 36 h) and calendar ones (1, 2, 7, 14 days).
const SHIFT_HOURS: [u32; 9] = [1, 5, 8, 12, 24, 36, 48, 168, 336];

const PEOPLE: [&str; 5] = ["ann", "bob", "cat", "dan", "eve"];
const STAND_INS: [&str; 3] = ["sub1", "sub2", "ann"];

fn ms(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis()
}

fn zone() -> impl Strategy<Value = Tz> {
    prop::sample::select(ZONES.to_vec())
}

fn date() -> impl Strategy<Value = NaiveDate> {
    (2020i32..2027, 1u32..=12, 1u32..=28)
        .prop_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap())
}

/// Any quarter hour, often one inside or next to a 01:00-03:00 DST change.
fn handoff() -> impl Strategy<Value = NaiveTime> {
    prop_oneof![
        (0u32..24, prop::sample::select(vec![0u32, 15, 30, 45]))
            .prop_map(|(h, m)| NaiveTime::from_hms_opt(h, m, 0).unwrap()),
        prop::sample::select(vec![(1u32, 30u32), (2, 0), (2, 15), (2, 30), (3, 0)])
            .prop_map(|(h, m)| NaiveTime::from_hms_opt(h, m, 0).unwrap()),
    ]
}

fn rotation() -> impl Strategy<Value = Rotation> {
    (
        prop::collection::vec(prop::sample::select(PEOPLE.to_vec()), 1..=4),
        prop::sample::select(SHIFT_HOURS.to_vec()),
        handoff(),
        date(),
    )
        .prop_map(|(people, hours, handoff, start)| Rotation {
            name: None,
            participants: people.into_iter().map(String::from).collect(),
            shift: ShiftLength::hours(hours),
            handoff,
            start,
        })
}

/// The `nth` Sunday (from 0, clamped to the month) of a month in which some
/// zone of the list changes its clocks, plus or minus 36 hours.
fn near_a_dst_sunday() -> impl Strategy<Value = Timestamp> {
    (
        2020i32..2031,
        prop::sample::select(vec![3u32, 4, 9, 10, 11]),
        0u64..5,
        -36 * HOUR..36 * HOUR,
    )
        .prop_map(|(y, m, nth, offset)| {
            let first = NaiveDate::from_ymd_opt(y, m, 1).unwrap();
            let to_sunday = (7 - first.weekday().num_days_from_sunday()) % 7;
            let mut sunday = first + Days::new(u64::from(to_sunday) + 7 * nth);
            while sunday.month() != m {
                sunday = sunday - Days::new(7);
            }
            Timestamp(ms(sunday) + offset)
        })
}

fn instant() -> impl Strategy<Value = Timestamp> {
    let lo = ms(NaiveDate::from_ymd_opt(2019, 6, 1).unwrap());
    let hi = ms(NaiveDate::from_ymd_opt(2031, 1, 1).unwrap());
    prop_oneof![(lo..hi).prop_map(Timestamp), near_a_dst_sunday()]
}

fn an_override() -> impl Strategy<Value = Override> {
    (
        prop::sample::select(STAND_INS.to_vec()),
        instant(),
        60_000i64..10 * 24 * HOUR,
    )
        .prop_map(|(user, start, len)| Override {
            user: user.to_string(),
            start,
            end: Timestamp(start.0 + len),
        })
}

fn schedule() -> impl Strategy<Value = Schedule> {
    (
        zone(),
        prop::collection::vec(rotation(), 0..=3),
        prop::collection::vec(an_override(), 0..=4),
    )
        .prop_map(|(time_zone, rotations, overrides)| Schedule {
            name: "prop".into(),
            time_zone,
            rotations,
            overrides,
        })
}

/// The instant an ordinary or repeated local time names (the earlier one),
/// straight from chrono-tz; `None` inside a gap.
fn chrono_instant(tz: Tz, local: NaiveDateTime) -> Option<Timestamp> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(Timestamp(t.timestamp_millis())),
        LocalResult::Ambiguous(a, b) => {
            Some(Timestamp(a.timestamp_millis().min(b.timestamp_millis())))
        }
        LocalResult::None => None,
    }
}

fn wall_clock(tz: Tz, at: Timestamp) -> NaiveDateTime {
    tz.timestamp_millis_opt(at.0).unwrap().naive_local()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn the_answer_is_someone_the_schedule_names(s in schedule(), at in instant()) {
        let users = on_call_at(&s, at);
        prop_assert!(users.len() <= 1);
        for user in &users {
            let named = s.rotations.iter().any(|r| r.participants.contains(user))
                || s.overrides.iter().any(|o| &o.user == user);
            prop_assert!(named, "{user} is on call but not in the schedule");
        }
        // Somebody is on call whenever a layer has started or an override applies.
        let started = s
            .rotations
            .iter()
            .any(|r| rotation_start(r, s.time_zone).is_some_and(|first| first <= at));
        let overridden = s.overrides.iter().any(|o| o.contains(at));
        prop_assert_eq!(users.len() == 1, started || overridden);
        match s.overrides.iter().rev().find(|o| o.contains(at)) {
            // The last override listed that covers the instant wins.
            Some(o) => prop_assert_eq!(&users, &vec![o.user.clone()]),
            // Otherwise a later rotation is a layer over the earlier ones:
            // the last one already started decides.
            None => {
                let top = s
                    .rotations
                    .iter()
                    .rev()
                    .find(|r| rotation_start(r, s.time_zone).is_some_and(|first| first <= at));
                let expected: Vec<String> = top
                    .and_then(|r| shift_at(r, s.time_zone, at))
                    .map(|shift| vec![shift.user])
                    .unwrap_or_default();
                prop_assert_eq!(&users, &expected);
            }
        }
    }

    #[test]
    fn the_answer_holds_throughout_its_interval(s in schedule(), at in instant()) {
        let oc = on_call_shift(&s, at);
        prop_assert_eq!(&oc.users, &on_call_at(&s, at));
        prop_assert!(oc.start.is_none_or(|start| start <= at), "{oc:?} starts after {at}");
        prop_assert!(oc.end.is_none_or(|end| at < end), "{oc:?} ends at or before {at}");
        if let Some(start) = oc.start {
            prop_assert_eq!(&on_call_at(&s, start), &oc.users, "at the start {}", start);
        }
        if let Some(end) = oc.end {
            let last = Timestamp(end.0 - 1);
            prop_assert_eq!(&on_call_at(&s, last), &oc.users, "just before the end {}", end);
        }
        if let (Some(start), Some(end)) = (oc.start, oc.end) {
            let middle = Timestamp(start.0 + (end.0 - start.0) / 2);
            prop_assert_eq!(&on_call_at(&s, middle), &oc.users, "in the middle {}", middle);
        }
    }

    #[test]
    fn shifts_tile_time_in_participant_order(r in rotation(), tz in zone(), k in 0u64..3000) {
        let n = r.participants.len() as u64;
        let this = nth_shift(&r, tz, k).unwrap();
        let next = nth_shift(&r, tz, k + 1).unwrap();
        prop_assert_eq!(&this.user, &r.participants[(k % n) as usize]);
        prop_assert_eq!(this.end, next.start, "a gap or overlap after shift {}", k);
        prop_assert!(this.start < this.end, "shift {k} is empty: {this:?}");
        prop_assert_eq!(shift_at(&r, tz, this.start), Some(this.clone()));
        prop_assert_eq!(shift_at(&r, tz, Timestamp(this.end.0 - 1)), Some(this.clone()));
        prop_assert_eq!(shift_at(&r, tz, this.end), Some(next));
        if k == 0 {
            prop_assert_eq!(shift_at(&r, tz, Timestamp(this.start.0 - 1)), None);
        }
    }

    #[test]
    fn handoffs_follow_the_wall_clock_or_the_stopwatch(r in rotation(), tz in zone(), k in 0u64..3000) {
        let shift = nth_shift(&r, tz, k).unwrap();
        match r.shift.whole_days() {
            Some(days) => {
                // Hand-off k is at `handoff` on local date start + k * days.
                let date = r.start + Days::new(k * u64::from(days));
                let local = date.and_time(r.handoff);
                match chrono_instant(tz, local) {
                    Some(expected) => prop_assert_eq!(shift.start, expected),
                    None => {
                        // Swallowed by a gap: the hand-off is the jump over it.
                        prop_assert!(wall_clock(tz, shift.start) > local);
                        prop_assert!(wall_clock(tz, Timestamp(shift.start.0 - 1)) < local);
                    }
                }
            }
            None => {
                prop_assert_eq!(shift.end.0 - shift.start.0, i64::from(r.shift.as_hours()) * HOUR);
            }
        }
    }

    #[test]
    fn the_shift_at_an_instant_is_numbered_from_the_start(r in rotation(), tz in zone(), at in instant()) {
        let Some(shift) = shift_at(&r, tz, at) else {
            prop_assert!(rotation_start(&r, tz).is_some_and(|first| at < first));
            return Ok(());
        };
        prop_assert!(shift.start <= at && at < shift.end);
        // Number the shift independently: by local date for calendar
        // lengths, by elapsed time for the others.
        let k = match r.shift.whole_days() {
            Some(days) => {
                let elapsed = (wall_clock(tz, shift.start).date() - r.start).num_days();
                prop_assert_eq!(elapsed % i64::from(days), 0);
                elapsed / i64::from(days)
            }
            None => {
                let first = rotation_start(&r, tz).unwrap();
                let length = i64::from(r.shift.as_hours()) * HOUR;
                prop_assert_eq!((shift.start.0 - first.0) % length, 0);
                (shift.start.0 - first.0) / length
            }
        };
        let n = r.participants.len() as i64;
        prop_assert_eq!(&shift.user, &r.participants[(k % n) as usize]);
        prop_assert_eq!(nth_shift(&r, tz, k as u64), Some(shift));
    }
}
