//! When a rollout's next check falls due: on its interval's grid, so that every rollout with
//! that interval is judged at the same moments and their analyses go out as one grouped
//! query (`analysis::batch`), however long the writes of a thousand rollouts take. Pure.
//!
//! - The grid: the multiples of the interval since the Unix epoch (the same for every
//!   rollout and every policy with that interval, across restarts, with nothing stored).
//! - A check that follows the last one (a hold, a failed check, or the next step's split
//!   written at most half an interval after the last check was due) is due one interval
//!   after the last one was: the rollout keeps its cadence, whatever the write took. The
//!   window it is judged on then starts with the last moments of the step before (the same
//!   new version, at the weight just judged good), as a ticker-driven canary's does.
//! - Anything else (a phase's first split, a split written again after a hand edit or a
//!   failed write, a rollout that fell behind) is due at the first grid point at least one
//!   interval after `now`: never judged on less than a full interval of its own split.

use chrono::{DateTime, TimeDelta, Utc};

/// When the next check is due, at `now`, for a rollout whose last check was due at `last`
/// (`None`: the cadence starts over) under `interval`. Never before `now`.
pub fn next_due(
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    interval: TimeDelta,
) -> DateTime<Utc> {
    if interval <= TimeDelta::zero() {
        return now;
    }
    match last {
        Some(last) if now >= last && now - last <= interval / 2 => last + interval,
        Some(_) | None => grid_at_or_after(now + interval, interval),
    }
}

/// The first multiple of `interval` since the Unix epoch at or after `at` (millisecond
/// grid; `at` itself when the grid cannot be computed).
pub fn grid_at_or_after(at: DateTime<Utc>, interval: TimeDelta) -> DateTime<Utc> {
    let step = interval.num_milliseconds();
    if step <= 0 {
        return at;
    }
    let ms = at.timestamp_millis();
    let down = ms.div_euclid(step) * step;
    let up = if down == ms {
        down
    } else {
        down.saturating_add(step)
    };
    DateTime::from_timestamp_millis(up).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::fixtures::t;

    fn ms(base: DateTime<Utc>, ms: i64) -> DateTime<Utc> {
        base + TimeDelta::milliseconds(ms)
    }

    /// Name, the last check's due, now, the next due.
    type Case = (
        &'static str,
        Option<DateTime<Utc>>,
        DateTime<Utc>,
        DateTime<Utc>,
    );

    #[test]
    fn next_due_table() {
        let ten = TimeDelta::seconds(10);
        // t(0) is 10:00:00, on every whole-second grid up to a minute.
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("first split, on the grid", None, t(0), t(10)),
            ("first split, just after a grid point: the next but one", None, ms(t(0), 1), t(20)),
            ("first split, late in the interval", None, t(9), t(20)),
            ("after a check due at 10, judged at once", Some(t(10)), t(10), t(20)),
            ("after a check due at 10, split written 3 s later", Some(t(10)), t(13), t(20)),
            ("written half an interval after: still the cadence", Some(t(10)), t(15), t(20)),
            ("written later: starts over", Some(t(10)), ms(t(15), 1), t(30)),
            ("a check due later than now (not a check): starts over", Some(t(20)), t(13), t(30)),
            ("an off-grid cadence is kept", Some(ms(t(10), 300)), t(11), ms(t(20), 300)),
        ];
        for (name, last, now, want) in cases {
            assert_eq!(next_due(last, now, ten), want, "{name}");
        }
        assert_eq!(next_due(None, t(3), TimeDelta::zero()), t(3), "no interval");
    }

    #[test]
    fn grid_table() {
        let ten = TimeDelta::seconds(10);
        assert_eq!(grid_at_or_after(t(10), ten), t(10));
        assert_eq!(grid_at_or_after(ms(t(10), 1), ten), t(20));
        assert_eq!(grid_at_or_after(ms(t(19), 999), ten), t(20));
        let seven = TimeDelta::seconds(7);
        let g = grid_at_or_after(t(0), seven);
        assert_eq!(g.timestamp_millis() % 7_000, 0);
        assert!(g >= t(0) && g < t(7));
    }

    /// For any rollouts written at any moments: the due time is never before a full interval
    /// of its own split, except on the cadence (at most half an interval shorter); never more
    /// than two intervals away; and rollouts that start over within one interval of each other
    /// share at most two due times, all on the grid.
    #[test]
    fn properties() {
        let interval = TimeDelta::milliseconds(10_000);
        let base = t(0);
        let mut starts = std::collections::BTreeSet::new();
        for k in 0..2_000i64 {
            // A spread of write moments over one interval, and cadences before them.
            let now = ms(base, (k * 7_919) % 10_000 + 20_000);
            let fresh = next_due(None, now, interval);
            assert!(fresh >= now + interval, "a full interval at least");
            assert!(fresh < now + interval * 2, "less than two");
            assert_eq!(fresh.timestamp_millis() % 10_000, 0, "on the grid");
            starts.insert(fresh);
            let last = ms(base, 20_000);
            let kept = next_due(Some(last), now, interval);
            assert!(kept > now, "never due before it is written");
            assert!(
                kept >= now + interval / 2,
                "at least half an interval of its split"
            );
            assert!(kept == last + interval || kept >= now + interval);
        }
        assert!(starts.len() <= 2, "{starts:?}");
    }
}
