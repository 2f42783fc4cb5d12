//! Shifts of one rotation: shift `k` by number, and the shift at an instant.
//!
//! Shift `k` starts at hand-off `k`: for calendar lengths, the local date
//! `start + k * days` at `handoff` resolved with the gap/overlap rule; for
//! elapsed lengths, the first hand-off plus `k * hours`. Shift `k` ends where
//! shift `k + 1` starts, so shifts tile time by construction. Finding the
//! shift at an instant divides the elapsed (wall-clock, for calendar lengths)
//! time by the shift length and then corrects by a step around DST
//! changes, so the cost does not grow with the age of the rotation.

use chrono::Days;
use serde::{Deserialize, Serialize};

use super::{local, Rotation, Timestamp, Tz, HOUR_MS};

/// `user` is on call for one rotation during `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shift {
    pub user: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// When hand-off `k` happens; `None` for a zero length or beyond chrono's
/// range.
fn handoff(rotation: &Rotation, tz: Tz, k: u64) -> Option<Timestamp> {
    let hours = rotation.shift.as_hours();
    if hours == 0 {
        return None;
    }
    match rotation.shift.whole_days() {
        Some(days) => {
            let date = rotation
                .start
                .checked_add_days(Days::new(k.checked_mul(u64::from(days))?))?;
            local::resolve(tz, date.and_time(rotation.handoff))
        }
        None => {
            let first = local::resolve(tz, rotation.start.and_time(rotation.handoff))?;
            let offset = i64::try_from(k)
                .ok()?
                .checked_mul(i64::from(hours) * HOUR_MS)?;
            first.0.checked_add(offset).map(Timestamp)
        }
    }
}

/// When the rotation's first shift begins; `None` when it never has anyone
/// on call (no participants, zero length).
pub fn rotation_start(rotation: &Rotation, tz: Tz) -> Option<Timestamp> {
    if rotation.participants.is_empty() {
        return None;
    }
    handoff(rotation, tz, 0)
}

/// Shift number `k` (from 0), which goes to `participants[k % n]`.
///
/// In a zone that skipped a whole calendar day (Samoa, 2011-12-30) the shift
/// of that day can be empty (`start == end`); [`shift_at`] never returns one.
pub fn nth_shift(rotation: &Rotation, tz: Tz, k: u64) -> Option<Shift> {
    let n = rotation.participants.len() as u64;
    if n == 0 {
        return None;
    }
    let start = handoff(rotation, tz, k)?;
    let end = handoff(rotation, tz, k.checked_add(1)?)?;
    Some(Shift {
        user: rotation.participants[(k % n) as usize].clone(),
        start,
        end,
    })
}

/// The shift containing `at` (`start <= at < end`); `None` before the
/// rotation starts or when it has nobody.
pub fn shift_at(rotation: &Rotation, tz: Tz, at: Timestamp) -> Option<Shift> {
    let first = rotation_start(rotation, tz)?;
    if at < first {
        return None;
    }
    let mut k = estimate(rotation, tz, at, first)?;
    // The estimate falls one short in a fall-back overlap (the wall clock
    // reads 01:10 again after a 01:30 hand-off happened); it cannot
    // overshoot, since a wall clock at or past a hand-off time means that
    // hand-off has happened. Stepping down is only a safeguard.
    while k > 0 && handoff(rotation, tz, k)? > at {
        k -= 1;
    }
    while handoff(rotation, tz, k.checked_add(1)?)? <= at {
        k += 1;
    }
    nth_shift(rotation, tz, k)
}

/// The number of the shift containing `at`, or one less: elapsed time
/// since the first hand-off over the shift length, measured on the wall clock
/// for calendar lengths.
fn estimate(rotation: &Rotation, tz: Tz, at: Timestamp, first: Timestamp) -> Option<u64> {
    let length = i64::from(rotation.shift.as_hours()) * HOUR_MS;
    let elapsed = match rotation.shift.whole_days() {
        Some(_) => {
            let since = rotation.start.and_time(rotation.handoff);
            (local::wall_clock(tz, at)? - since).num_milliseconds()
        }
        None => at.0.checked_sub(first.0)?,
    };
    u64::try_from(elapsed.max(0) / length).ok()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{rotation, ts};
    use super::*;

    fn who(r: &Rotation, tz: Tz, at: &str) -> Option<String> {
        shift_at(r, tz, ts(at)).map(|s| s.user)
    }

    fn shift(user: &str, start: &str, end: &str) -> Shift {
        Shift {
            user: user.into(),
            start: ts(start),
            end: ts(end),
        }
    }

    #[test]
    fn weekly_rotation_of_three() {
        // 2024-01-01 is a Monday.
        let r = rotation(&["alice", "bob", "carol"], "1w", "10:00", "2024-01-01");
        let tz = Tz::UTC;
        assert_eq!(
            shift_at(&r, tz, ts("2024-01-03T12:00:00Z")),
            Some(shift(
                "alice",
                "2024-01-01T10:00:00Z",
                "2024-01-08T10:00:00Z"
            ))
        );
        assert_eq!(who(&r, tz, "2024-01-08T10:00:00Z").as_deref(), Some("bob"));
        assert_eq!(who(&r, tz, "2024-01-15T09:59:59Z").as_deref(), Some("bob"));
        assert_eq!(
            who(&r, tz, "2024-01-15T10:00:00Z").as_deref(),
            Some("carol")
        );
        assert_eq!(
            who(&r, tz, "2024-01-22T10:00:00Z").as_deref(),
            Some("alice")
        );
        assert_eq!(who(&r, tz, "2024-02-01T00:00:00Z").as_deref(), Some("bob"));
        // A year on: week 52 goes to participant 52 % 3 = 1.
        assert_eq!(
            shift_at(&r, tz, ts("2024-12-31T00:00:00Z")),
            Some(shift("bob", "2024-12-30T10:00:00Z", "2025-01-06T10:00:00Z"))
        );
    }

    #[test]
    fn nobody_before_the_start_and_shifts_are_half_open() {
        let r = rotation(&["alice", "bob"], "1d", "09:00", "2024-01-10");
        let tz = Tz::UTC;
        assert_eq!(who(&r, tz, "2024-01-01T00:00:00Z"), None);
        assert_eq!(who(&r, tz, "2024-01-10T08:59:59.999Z"), None);
        assert_eq!(
            who(&r, tz, "2024-01-10T09:00:00Z").as_deref(),
            Some("alice")
        );
        assert_eq!(
            who(&r, tz, "2024-01-11T08:59:59.999Z").as_deref(),
            Some("alice")
        );
        assert_eq!(who(&r, tz, "2024-01-11T09:00:00Z").as_deref(), Some("bob"));
        assert_eq!(rotation_start(&r, tz), Some(ts("2024-01-10T09:00:00Z")));
    }

    #[test]
    fn daily_handoff_stays_at_0900_berlin_across_spring_forward() {
        // Clocks go 02:00 CET -> 03:00 CEST on Sunday 2024-03-31.
        let r = rotation(&["a", "b", "c"], "1d", "09:00", "2024-03-28");
        let tz = Tz::Europe__Berlin;
        assert_eq!(
            nth_shift(&r, tz, 2),
            Some(shift("c", "2024-03-30T08:00:00Z", "2024-03-31T07:00:00Z"))
        );
        assert_eq!(
            nth_shift(&r, tz, 3),
            Some(shift("a", "2024-03-31T07:00:00Z", "2024-04-01T07:00:00Z"))
        );
        // The shift containing the change is 23 hours long.
        let c = nth_shift(&r, tz, 2).unwrap();
        assert_eq!(c.end.0 - c.start.0, 23 * HOUR_MS);
        assert_eq!(
            who(&r, tz, "2024-03-31T06:59:59.999Z").as_deref(),
            Some("c")
        );
        // 07:30Z is 09:30 CEST: already the next shift.
        assert_eq!(who(&r, tz, "2024-03-31T07:30:00Z").as_deref(), Some("a"));
    }

    #[test]
    fn daily_handoff_stays_at_0900_berlin_across_fall_back() {
        // Clocks go 03:00 CEST -> 02:00 CET on Sunday 2024-10-27.
        let r = rotation(&["a", "b", "c"], "1d", "09:00", "2024-10-24");
        let tz = Tz::Europe__Berlin;
        assert_eq!(
            nth_shift(&r, tz, 2),
            Some(shift("c", "2024-10-26T07:00:00Z", "2024-10-27T08:00:00Z"))
        );
        let c = nth_shift(&r, tz, 2).unwrap();
        assert_eq!(c.end.0 - c.start.0, 25 * HOUR_MS);
        // 07:30Z is 08:30 CET: still the long shift.
        assert_eq!(who(&r, tz, "2024-10-27T07:30:00Z").as_deref(), Some("c"));
        assert_eq!(who(&r, tz, "2024-10-27T08:00:00Z").as_deref(), Some("a"));
        assert_eq!(
            nth_shift(&r, tz, 3).map(|s| s.end),
            Some(ts("2024-10-28T08:00:00Z"))
        );
    }

    #[test]
    fn a_handoff_in_the_spring_gap_happens_when_the_clock_jumps() {
        // New York, 2024-03-10: 02:00 EST -> 03:00 EDT at 07:00Z, so 02:30
        // does not exist that day and the hand-off is at 03:00 EDT.
        let r = rotation(&["a", "b", "c", "d"], "1d", "02:30", "2024-03-08");
        let tz = Tz::America__New_York;
        assert_eq!(
            nth_shift(&r, tz, 1),
            Some(shift("b", "2024-03-09T07:30:00Z", "2024-03-10T07:00:00Z"))
        );
        assert_eq!(
            nth_shift(&r, tz, 2),
            Some(shift("c", "2024-03-10T07:00:00Z", "2024-03-11T06:30:00Z"))
        );
        assert_eq!(
            who(&r, tz, "2024-03-10T06:59:59.999Z").as_deref(),
            Some("b")
        );
        assert_eq!(who(&r, tz, "2024-03-10T07:00:00Z").as_deref(), Some("c"));
        // The next day's 02:30 EDT.
        assert_eq!(who(&r, tz, "2024-03-11T06:30:00Z").as_deref(), Some("d"));
    }

    #[test]
    fn a_handoff_in_the_fall_overlap_happens_the_first_time() {
        // New York, 2024-11-03: 02:00 EDT -> 01:00 EST at 06:00Z, so 01:30
        // happens at 05:30Z (EDT) and again at 06:30Z (EST).
        let r = rotation(&["a", "b", "c", "d"], "1d", "01:30", "2024-11-01");
        let tz = Tz::America__New_York;
        assert_eq!(
            nth_shift(&r, tz, 2),
            Some(shift("c", "2024-11-03T05:30:00Z", "2024-11-04T06:30:00Z"))
        );
        // The second 01:30 (EST) is not a hand-off.
        assert_eq!(who(&r, tz, "2024-11-03T06:29:59Z").as_deref(), Some("c"));
        assert_eq!(who(&r, tz, "2024-11-03T06:30:00Z").as_deref(), Some("c"));
        assert_eq!(who(&r, tz, "2024-11-04T06:30:00Z").as_deref(), Some("d"));
        assert_eq!(who(&r, tz, "2024-11-03T05:29:59Z").as_deref(), Some("b"));
    }

    #[test]
    fn hour_shifts_are_elapsed_time_across_dst() {
        // 12 h shifts from 09:00 CET (08:00Z) on 2024-03-30: every 12 hours
        // of real time, so after the change they hand off at 10:00/22:00 CEST.
        let r = rotation(&["day", "night"], "12h", "09:00", "2024-03-30");
        let tz = Tz::Europe__Berlin;
        assert_eq!(
            nth_shift(&r, tz, 1),
            Some(shift(
                "night",
                "2024-03-30T20:00:00Z",
                "2024-03-31T08:00:00Z"
            ))
        );
        // 09:30 CEST on the Sunday: still the night shift.
        assert_eq!(
            who(&r, tz, "2024-03-31T07:30:00Z").as_deref(),
            Some("night")
        );
        assert_eq!(who(&r, tz, "2024-03-31T08:00:00Z").as_deref(), Some("day"));
        for k in 0..10 {
            let s = nth_shift(&r, tz, k).unwrap();
            assert_eq!(s.end.0 - s.start.0, 12 * HOUR_MS);
        }
    }

    #[test]
    fn a_rotation_with_nobody_has_no_shifts() {
        let mut r = rotation(&["a"], "1d", "09:00", "2024-01-01");
        r.participants.clear();
        assert_eq!(shift_at(&r, Tz::UTC, ts("2024-06-01T00:00:00Z")), None);
        assert_eq!(rotation_start(&r, Tz::UTC), None);
        let mut r = rotation(&["a"], "1d", "09:00", "2024-01-01");
        r.shift = super::super::ShiftLength::hours(0);
        assert_eq!(shift_at(&r, Tz::UTC, ts("2024-06-01T00:00:00Z")), None);
    }

    #[test]
    fn far_away_instants_do_not_panic() {
        for shift in ["1d", "12h", "1w"] {
            let r = rotation(&["a", "b"], shift, "09:00", "2024-01-01");
            for at in [i64::MIN, -1, 0, i64::MAX / 2, i64::MAX] {
                let _ = shift_at(&r, Tz::Europe__Berlin, Timestamp(at));
            }
            assert_eq!(nth_shift(&r, Tz::Europe__Berlin, u64::MAX), None);
        }
    }
}
