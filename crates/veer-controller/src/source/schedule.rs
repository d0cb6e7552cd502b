//! When to poll: a fixed interval (`30s`, `2m`, `1h`) or a cron expression with a seconds
//! field first (the `cron` crate's syntax). Computing the next wait is pure: the caller passes
//! the current time.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::SourceError;
use crate::duration::DurationError;

/// Shortest interval accepted: polling faster only loads the git server.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Wait used if a cron schedule has no future time left (e.g. it names only past years).
const EXHAUSTED_WAIT: Duration = Duration::from_secs(3600);

/// Why a one-word schedule is not a usable interval (the reason of
/// [`SourceError::InvalidSchedule`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntervalError {
    #[error("{0}; give an interval like `30s`, `2m`, `1h` or a cron expression")]
    NotADuration(DurationError),
    /// Shorter than [`MIN_INTERVAL`]: polling faster only loads the git server.
    #[error("`{text}` is shorter than the minimum of 1s")]
    TooShort { text: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Interval(Duration),
    Cron(Box<cron::Schedule>),
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, SourceError> {
        let input = text.trim();
        let invalid = |reason: String| SourceError::InvalidSchedule {
            input: input.to_string(),
            reason,
        };
        if input.is_empty() {
            return Err(invalid(
                "it is empty; give an interval like `30s`, `2m`, `1h`, or a cron expression"
                    .to_string(),
            ));
        }
        let fields = input.split_whitespace().count();
        if fields == 1 {
            return parse_interval(input)
                .map(Schedule::Interval)
                .map_err(|e| invalid(e.to_string()));
        }
        match fields {
            5 => Err(invalid(
                "this looks like a 5-field crontab line; veer's cron syntax has a seconds field \
                 first: add one, e.g. `0 */5 * * * *` for every five minutes"
                    .to_string(),
            )),
            6 | 7 => {
                let schedule = cron::Schedule::from_str(input).map_err(|e| {
                    invalid(format!(
                        "{e}; the fields are: sec min hour day-of-month month day-of-week [year]"
                    ))
                })?;
                Ok(Schedule::Cron(Box::new(schedule)))
            }
            n => Err(invalid(format!(
                "it has {n} fields; a cron expression has 6 or 7 (sec min hour day-of-month \
                 month day-of-week [year]), an interval is one word like `30s`"
            ))),
        }
    }

    /// How long to wait after `now` before the next poll.
    pub fn next_after(&self, now: DateTime<Utc>) -> Duration {
        match self {
            Schedule::Interval(d) => *d,
            Schedule::Cron(s) => match s.after(&now).next() {
                Some(at) => (at - now).to_std().unwrap_or(Duration::ZERO),
                None => EXHAUSTED_WAIT,
            },
        }
    }
}

/// An interval in Go duration syntax (`30s`, `2m`, `1h30m`), the same syntax as every other
/// duration veer reads.
fn parse_interval(text: &str) -> Result<Duration, IntervalError> {
    let interval = crate::duration::parse(text).map_err(IntervalError::NotADuration)?;
    if interval < MIN_INTERVAL {
        return Err(IntervalError::TooShort {
            text: text.to_string(),
        });
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 10, h, m, s).unwrap()
    }

    #[test]
    fn intervals_and_cron_give_the_next_wait() {
        let table: &[(&str, DateTime<Utc>, u64)] = &[
            ("30s", at(10, 0, 0), 30),
            ("2m", at(10, 0, 0), 120),
            ("1h", at(10, 0, 0), 3600),
            ("1m30s", at(10, 0, 0), 90),
            ("0 */5 * * * *", at(10, 3, 0), 120),
            ("0 */5 * * * *", at(10, 4, 59), 1),
            ("*/10 * * * * *", at(10, 0, 5), 5),
            ("0 0 12 * * * 2026", at(10, 0, 0), 2 * 3600),
        ];
        for (text, now, secs) in table {
            let s = Schedule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(s.next_after(*now), Duration::from_secs(*secs), "{text}");
        }
    }

    #[test]
    fn bad_schedules_are_refused_with_a_reason() {
        let table: &[(&str, &str)] = &[
            ("", "empty"),
            ("*/5 * * * *", "add one"),
            ("0s", "minimum"),
            ("10", "needs a unit"),
            ("5d", "unknown unit"),
            ("-1s", "negative"),
            ("0 61 * * * *", "sec min hour"),
            ("* *", "6 or 7"),
        ];
        for (text, needle) in table {
            let err = Schedule::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        assert_eq!(
            Schedule::parse("10").unwrap_err().to_string(),
            "schedule `10` is not usable: `10` needs a unit (ns, us, ms, s, m, h); give an \
             interval like `30s`, `2m`, `1h` or a cron expression"
        );
        assert_eq!(
            Schedule::parse("0s").unwrap_err().to_string(),
            "schedule `0s` is not usable: `0s` is shorter than the minimum of 1s"
        );
    }

    #[test]
    fn exhausted_cron_waits_an_hour() {
        let s = Schedule::parse("0 0 0 1 1 * 2020").unwrap();
        assert_eq!(s.next_after(at(0, 0, 0)), EXHAUSTED_WAIT);
    }
}
