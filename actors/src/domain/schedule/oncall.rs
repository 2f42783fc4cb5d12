//! Who a schedule says is on call: overrides over layers over nobody.
//!
//! [`on_call_at`] is the answer; [`on_call_shift`] is the same answer with the
//! interval around the instant during which it holds. That interval is the
//! winning shift or override, cut wherever something that outranks it begins
//! or ends: a later override, or a higher layer's first hand-off. Lower
//! layers and earlier overrides cannot change the answer and do not cut it.
//! Two adjacent intervals may give the same user (Alice's override ends
//! where Alice's own shift goes on); they are not merged, so the interval is
//! "this assignment", not "until Alice is off".

use serde::{Deserialize, Serialize};

use super::rotation::{rotation_start, shift_at};
use super::{Override, Schedule, Timestamp};

/// The answer for an instant and how long it holds: from `start` (`None`:
/// always has) until `end` (`None`: nothing scheduled ever changes it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnCall {
    /// Who is on call: one user name, or none.
    pub users: Vec<String>,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub source: OnCallSource,
}

/// What decided the answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnCallSource {
    /// `schedule.overrides[index]`.
    Override { index: usize },
    /// A shift of `schedule.rotations[layer]`.
    Rotation { layer: usize },
    /// No override applies and no layer has started.
    Nobody,
}

/// Who is on call in `schedule` at `at`: the last override containing `at`,
/// else the last layer that has a shift at `at`, else nobody.
pub fn on_call_at(schedule: &Schedule, at: Timestamp) -> Vec<String> {
    if let Some(o) = schedule.overrides.iter().rev().find(|o| o.contains(at)) {
        return vec![o.user.clone()];
    }
    schedule
        .rotations
        .iter()
        .rev()
        .find_map(|r| shift_at(r, schedule.time_zone, at))
        .map(|shift| vec![shift.user])
        .unwrap_or_default()
}

/// [`on_call_at`] together with the interval around `at` during which the
/// answer holds; `start <= at < end`.
pub fn on_call_shift(schedule: &Schedule, at: Timestamp) -> OnCall {
    let overrides = &schedule.overrides;
    if let Some(index) = overrides.iter().rposition(|o| o.contains(at)) {
        // Only later overrides outrank this one, and none contains `at`.
        let later = &overrides[index + 1..];
        let o = &overrides[index];
        return OnCall {
            users: vec![o.user.clone()],
            start: Some(latest_end_before(later, at).map_or(o.start, |e| e.max(o.start))),
            end: Some(earliest_start_after(later, at).map_or(o.end, |s| s.min(o.end))),
            source: OnCallSource::Override { index },
        };
    }
    // No override contains `at`, so every one of them outranks the rotations
    // from its start to its end.
    let start = latest_end_before(overrides, at);
    let mut end = earliest_start_after(overrides, at);
    let tz = schedule.time_zone;
    for (layer, rotation) in schedule.rotations.iter().enumerate().rev() {
        if let Some(shift) = shift_at(rotation, tz, at) {
            return OnCall {
                users: vec![shift.user],
                start: Some(start.map_or(shift.start, |s| s.max(shift.start))),
                end: Some(end.map_or(shift.end, |e| e.min(shift.end))),
                source: OnCallSource::Rotation { layer },
            };
        }
        // A layer above the winner that has not started takes over when it does.
        if let Some(first) = rotation_start(rotation, tz).filter(|&first| first > at) {
            end = Some(end.map_or(first, |e| e.min(first)));
        }
    }
    OnCall {
        users: Vec::new(),
        start,
        end,
        source: OnCallSource::Nobody,
    }
}

/// The last end, at or before `at`, of the overrides that apply at all.
fn latest_end_before(overrides: &[Override], at: Timestamp) -> Option<Timestamp> {
    overrides
        .iter()
        .filter(|o| o.start < o.end && o.end <= at)
        .map(|o| o.end)
        .max()
}

/// The first start, after `at`, of the overrides that apply at all.
fn earliest_start_after(overrides: &[Override], at: Timestamp) -> Option<Timestamp> {
    overrides
        .iter()
        .filter(|o| o.start < o.end && o.start > at)
        .map(|o| o.start)
        .min()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{over, rotation, schedule, ts};
    use super::*;

    fn at(s: &Schedule, t: &str) -> Vec<String> {
        on_call_at(s, ts(t))
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    /// Alice, Bob, Carol weekly from Monday 2024-01-01 10:00 UTC.
    fn weekly(overrides: Vec<Override>) -> Schedule {
        schedule(
            "UTC",
            vec![rotation(
                &["alice", "bob", "carol"],
                "1w",
                "10:00",
                "2024-01-01",
            )],
            overrides,
        )
    }

    #[test]
    fn an_override_inside_a_shift_splits_it_in_three() {
        let s = weekly(vec![over(
            "dave",
            "2024-01-03T18:00:00Z",
            "2024-01-04T06:00:00Z",
        )]);
        assert_eq!(at(&s, "2024-01-03T17:59:59Z"), names(&["alice"]));
        assert_eq!(at(&s, "2024-01-03T18:00:00Z"), names(&["dave"]));
        assert_eq!(at(&s, "2024-01-04T05:59:59Z"), names(&["dave"]));
        assert_eq!(at(&s, "2024-01-04T06:00:00Z"), names(&["alice"]));

        let before = on_call_shift(&s, ts("2024-01-02T00:00:00Z"));
        assert_eq!(
            before,
            OnCall {
                users: names(&["alice"]),
                start: Some(ts("2024-01-01T10:00:00Z")),
                end: Some(ts("2024-01-03T18:00:00Z")),
                source: OnCallSource::Rotation { layer: 0 },
            }
        );
        let during = on_call_shift(&s, ts("2024-01-03T20:00:00Z"));
        assert_eq!(
            during,
            OnCall {
                users: names(&["dave"]),
                start: Some(ts("2024-01-03T18:00:00Z")),
                end: Some(ts("2024-01-04T06:00:00Z")),
                source: OnCallSource::Override { index: 0 },
            }
        );
        let after = on_call_shift(&s, ts("2024-01-05T00:00:00Z"));
        assert_eq!(after.start, Some(ts("2024-01-04T06:00:00Z")));
        assert_eq!(after.end, Some(ts("2024-01-08T10:00:00Z")));
    }

    #[test]
    fn an_override_spanning_a_handoff_covers_both_shifts() {
        let s = weekly(vec![over(
            "dave",
            "2024-01-07T00:00:00Z",
            "2024-01-09T00:00:00Z",
        )]);
        assert_eq!(at(&s, "2024-01-08T10:00:00Z"), names(&["dave"]));
        assert_eq!(at(&s, "2024-01-09T00:00:00Z"), names(&["bob"]));
        let o = on_call_shift(&s, ts("2024-01-08T12:00:00Z"));
        assert_eq!(o.start, Some(ts("2024-01-07T00:00:00Z")));
        assert_eq!(o.end, Some(ts("2024-01-09T00:00:00Z")));
        // Bob's shift is cut by the override's end on one side.
        let bob = on_call_shift(&s, ts("2024-01-10T00:00:00Z"));
        assert_eq!(bob.start, Some(ts("2024-01-09T00:00:00Z")));
        assert_eq!(bob.end, Some(ts("2024-01-15T10:00:00Z")));
    }

    #[test]
    fn overlapping_overrides_the_later_in_the_list_wins() {
        let s = weekly(vec![
            over("dave", "2024-01-02T00:00:00Z", "2024-01-06T00:00:00Z"),
            over("erin", "2024-01-03T00:00:00Z", "2024-01-04T00:00:00Z"),
            // Listed later but inside erin's: wins over both.
            over("frank", "2024-01-03T06:00:00Z", "2024-01-03T07:00:00Z"),
        ]);
        assert_eq!(at(&s, "2024-01-02T12:00:00Z"), names(&["dave"]));
        assert_eq!(at(&s, "2024-01-03T05:00:00Z"), names(&["erin"]));
        assert_eq!(at(&s, "2024-01-03T06:30:00Z"), names(&["frank"]));
        assert_eq!(at(&s, "2024-01-03T07:00:00Z"), names(&["erin"]));
        assert_eq!(at(&s, "2024-01-04T00:00:00Z"), names(&["dave"]));
        assert_eq!(at(&s, "2024-01-06T00:00:00Z"), names(&["alice"]));

        let erin = on_call_shift(&s, ts("2024-01-03T12:00:00Z"));
        assert_eq!(erin.start, Some(ts("2024-01-03T07:00:00Z")));
        assert_eq!(erin.end, Some(ts("2024-01-04T00:00:00Z")));
        assert_eq!(erin.source, OnCallSource::Override { index: 1 });
        let dave = on_call_shift(&s, ts("2024-01-02T12:00:00Z"));
        assert_eq!(dave.start, Some(ts("2024-01-02T00:00:00Z")));
        assert_eq!(dave.end, Some(ts("2024-01-03T00:00:00Z")));

        // Order is what counts, not length: an earlier, shorter override
        // inside a later, longer one never shows.
        let s = weekly(vec![
            over("erin", "2024-01-03T00:00:00Z", "2024-01-04T00:00:00Z"),
            over("dave", "2024-01-02T00:00:00Z", "2024-01-06T00:00:00Z"),
        ]);
        assert_eq!(at(&s, "2024-01-03T12:00:00Z"), names(&["dave"]));
        let dave = on_call_shift(&s, ts("2024-01-03T12:00:00Z"));
        assert_eq!(dave.start, Some(ts("2024-01-02T00:00:00Z")));
        assert_eq!(dave.end, Some(ts("2024-01-06T00:00:00Z")));
    }

    #[test]
    fn override_bounds_are_half_open() {
        let s = weekly(vec![over(
            "dave",
            "2024-01-03T00:00:00Z",
            "2024-01-04T00:00:00Z",
        )]);
        assert_eq!(at(&s, "2024-01-02T23:59:59.999Z"), names(&["alice"]));
        assert_eq!(at(&s, "2024-01-03T00:00:00Z"), names(&["dave"]));
        assert_eq!(at(&s, "2024-01-03T23:59:59.999Z"), names(&["dave"]));
        assert_eq!(at(&s, "2024-01-04T00:00:00Z"), names(&["alice"]));
        // An empty override (rejected by validation) never applies.
        let s = weekly(vec![over(
            "dave",
            "2024-01-04T00:00:00Z",
            "2024-01-03T00:00:00Z",
        )]);
        assert_eq!(at(&s, "2024-01-03T12:00:00Z"), names(&["alice"]));
        assert_eq!(
            on_call_shift(&s, ts("2024-01-03T12:00:00Z")).end,
            Some(ts("2024-01-08T10:00:00Z"))
        );
    }

    #[test]
    fn a_later_layer_takes_over_from_its_start() {
        // The old daily rotation, replaced by a weekly one from 2024-02-05.
        let s = schedule(
            "Europe/Berlin",
            vec![
                rotation(&["alice", "bob"], "1d", "09:00", "2024-01-01"),
                rotation(&["carol", "dave"], "1w", "09:00", "2024-02-05"),
            ],
            vec![],
        );
        // 2024-02-03 is day 33 of the daily rotation: bob.
        assert_eq!(at(&s, "2024-02-03T12:00:00Z"), names(&["bob"]));
        let bob = on_call_shift(&s, ts("2024-02-04T12:00:00Z"));
        assert_eq!(bob.users, names(&["alice"]));
        assert_eq!(bob.source, OnCallSource::Rotation { layer: 0 });
        // Cut by the weekly layer's first hand-off, 09:00 CET.
        assert_eq!(bob.end, Some(ts("2024-02-05T08:00:00Z")));
        let carol = on_call_shift(&s, ts("2024-02-06T12:00:00Z"));
        assert_eq!(carol.users, names(&["carol"]));
        assert_eq!(carol.source, OnCallSource::Rotation { layer: 1 });
        // Lower layers' hand-offs do not cut a higher layer's shift.
        assert_eq!(carol.start, Some(ts("2024-02-05T08:00:00Z")));
        assert_eq!(carol.end, Some(ts("2024-02-12T08:00:00Z")));
        // Overrides still beat every layer.
        let mut s = s;
        s.overrides
            .push(over("erin", "2024-02-06T00:00:00Z", "2024-02-07T00:00:00Z"));
        assert_eq!(at(&s, "2024-02-06T12:00:00Z"), names(&["erin"]));
    }

    #[test]
    fn nobody_before_any_layer_starts() {
        let s = weekly(vec![over(
            "dave",
            "2023-12-20T00:00:00Z",
            "2023-12-21T00:00:00Z",
        )]);
        assert!(at(&s, "2023-12-01T00:00:00Z").is_empty());
        assert_eq!(at(&s, "2023-12-20T00:00:00Z"), names(&["dave"]));
        assert_eq!(
            on_call_shift(&s, ts("2023-12-01T00:00:00Z")),
            OnCall {
                users: vec![],
                start: None,
                end: Some(ts("2023-12-20T00:00:00Z")),
                source: OnCallSource::Nobody,
            }
        );
        let gap = on_call_shift(&s, ts("2023-12-25T00:00:00Z"));
        assert!(gap.users.is_empty());
        assert_eq!(gap.start, Some(ts("2023-12-21T00:00:00Z")));
        assert_eq!(gap.end, Some(ts("2024-01-01T10:00:00Z")));
        let empty = schedule("UTC", vec![], vec![]);
        assert_eq!(
            on_call_shift(&empty, ts("2024-01-01T00:00:00Z")),
            OnCall {
                users: vec![],
                start: None,
                end: None,
                source: OnCallSource::Nobody,
            }
        );
    }

    #[test]
    fn the_answer_flips_exactly_at_a_dst_handoff() {
        let s = schedule(
            "Europe/Berlin",
            vec![rotation(&["a", "b", "c"], "1d", "09:00", "2024-03-28")],
            vec![],
        );
        assert_eq!(at(&s, "2024-03-31T06:59:59.999Z"), names(&["c"]));
        assert_eq!(at(&s, "2024-03-31T07:00:00Z"), names(&["a"]));
        let c = on_call_shift(&s, ts("2024-03-31T00:00:00Z"));
        assert_eq!(c.start, Some(ts("2024-03-30T08:00:00Z")));
        assert_eq!(c.end, Some(ts("2024-03-31T07:00:00Z")));
    }

    #[test]
    fn serialises_for_the_api() {
        let s = weekly(vec![]);
        let json = serde_json::to_value(on_call_shift(&s, ts("2024-01-02T00:00:00Z"))).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "users": ["alice"],
                "start": "2024-01-01T10:00:00.000Z",
                "end": "2024-01-08T10:00:00.000Z",
                "source": {"rotation": {"layer": 0}},
            })
        );
    }
}
