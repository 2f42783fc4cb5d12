//! Local wall-clock time <-> instants, with the gap and overlap rule.
//!
//! A local date and time names the first instant at which the zone's wall
//! clock reads that time or later: `min { t : wall_clock(t) >= local }`. For
//! an ordinary time that is its only instant; in a fall-back overlap it is the
//! earlier of the two; in a spring-forward gap it is the transition itself
//! (02:30 in a 02:00 -> 03:00 gap names the instant the clock shows 03:00).
//! The rule is monotonic, so hand-offs computed with it stay in order.
//!
//! chrono-tz answers the first two cases directly; the gap is found by
//! bisecting to the millisecond, since chrono-tz does not expose its
//! transition table.

use chrono::{LocalResult, NaiveDateTime, TimeZone};

use super::{Tz, HOUR_MS};
use crate::time::Timestamp;

/// The instant `local` names in `tz`; `None` only beyond chrono's range.
pub(super) fn resolve(tz: Tz, local: NaiveDateTime) -> Option<Timestamp> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(Timestamp(t.timestamp_millis())),
        LocalResult::Ambiguous(a, b) => {
            Some(Timestamp(a.timestamp_millis().min(b.timestamp_millis())))
        }
        LocalResult::None => end_of_gap(tz, local),
    }
}

/// What the wall clock in `tz` reads at `at`.
pub(super) fn wall_clock(tz: Tz, at: Timestamp) -> Option<NaiveDateTime> {
    tz.timestamp_millis_opt(at.0)
        .single()
        .map(|t| t.naive_local())
}

/// The first instant whose wall-clock reading is at least `local`, which lies
/// in a gap: the transition that skips over it.
fn end_of_gap(tz: Tz, local: NaiveDateTime) -> Option<Timestamp> {
    // Wider than any UTC offset, so the reading at `lo` is before `local` and
    // the one at `hi` after it.
    const SPAN: i64 = 26 * HOUR_MS;
    let as_utc = local.and_utc().timestamp_millis();
    let (mut lo, mut hi) = (as_utc.checked_sub(SPAN)?, as_utc.checked_add(SPAN)?);
    // Invariant: wall_clock(lo) < local <= wall_clock(hi).
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if wall_clock(tz, Timestamp(mid))? >= local {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(Timestamp(hi))
}

#[cfg(test)]
mod tests {
    use super::super::testing::ts;
    use super::*;

    fn local(s: &str) -> NaiveDateTime {
        s.parse().unwrap()
    }

    #[test]
    fn ordinary_times_have_one_instant() {
        assert_eq!(
            resolve(Tz::Europe__Berlin, local("2024-01-15T09:00:00")),
            Some(ts("2024-01-15T08:00:00Z"))
        );
        assert_eq!(
            resolve(Tz::Asia__Kolkata, local("2024-01-15T09:00:00")),
            Some(ts("2024-01-15T03:30:00Z"))
        );
    }

    #[test]
    fn a_time_in_the_spring_gap_is_the_jump() {
        // New York, 2024-03-10: 02:00 EST -> 03:00 EDT at 07:00Z.
        let tz = Tz::America__New_York;
        assert_eq!(
            resolve(tz, local("2024-03-10T02:30:00")),
            Some(ts("2024-03-10T07:00:00Z"))
        );
        assert_eq!(
            resolve(tz, local("2024-03-10T02:00:00")),
            Some(ts("2024-03-10T07:00:00Z"))
        );
        assert_eq!(
            resolve(tz, local("2024-03-10T03:00:00")),
            Some(ts("2024-03-10T07:00:00Z"))
        );
        assert_eq!(
            resolve(tz, local("2024-03-10T01:59:59")),
            Some(ts("2024-03-10T06:59:59Z"))
        );
        // Lord Howe Island, 2024-10-06: 02:00 +10:30 -> 02:30 +11 at 15:30Z
        // the day before.
        assert_eq!(
            resolve(Tz::Australia__Lord_Howe, local("2024-10-06T02:15:00")),
            Some(ts("2024-10-05T15:30:00Z"))
        );
    }

    #[test]
    fn a_time_in_the_fall_overlap_is_the_earlier() {
        // New York, 2024-11-03: 02:00 EDT -> 01:00 EST at 06:00Z.
        assert_eq!(
            resolve(Tz::America__New_York, local("2024-11-03T01:30:00")),
            Some(ts("2024-11-03T05:30:00Z"))
        );
        assert_eq!(
            wall_clock(Tz::America__New_York, ts("2024-11-03T06:30:00Z")),
            Some(local("2024-11-03T01:30:00"))
        );
    }

    #[test]
    fn far_away_dates_do_not_panic() {
        assert_eq!(wall_clock(Tz::UTC, Timestamp(i64::MAX)), None);
        assert_eq!(wall_clock(Tz::UTC, Timestamp(i64::MIN)), None);
        let max = NaiveDateTime::MAX;
        let _ = resolve(Tz::America__New_York, max);
        let _ = resolve(Tz::America__New_York, NaiveDateTime::MIN);
    }
}
