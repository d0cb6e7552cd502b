//! Durations as Istio writes them: Go syntax (`1h2m3.5s`, `250ms`, `1.5s`), the form Istio's
//! own CRD rules check with CEL `duration()`. A bare number has no unit and is refused, as
//! Istio refuses it.

mod human;
pub use human::human_duration;

use std::time::Duration;

/// Why a text is not a duration; the message quotes the text and says how to write one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("`{text}` is negative")]
    Negative { text: String },
    #[error("`{text}` is not a duration like 10s, 250ms or 1h30m")]
    NotADuration { text: String },
    #[error("`{text}` has a malformed number")]
    MalformedNumber { text: String },
    #[error("`{text}` needs a unit (ns, us, ms, s, m, h)")]
    NoUnit { text: String },
    #[error("`{text}` has unknown unit `{unit}`; use ns, us, ms, s, m or h")]
    UnknownUnit { text: String, unit: String },
    #[error("`{text}` is too long")]
    TooLong { text: String },
}

/// Parse a Go-style duration. Negative durations are refused: no Istio field takes one.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let owned = || text.to_string();
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative { text: owned() });
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(DurationError::NotADuration { text: owned() });
        }
        let number: f64 = rest[..num_len]
            .parse()
            .map_err(|_| DurationError::MalformedNumber { text: owned() })?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(DurationError::NoUnit { text: owned() }),
            other => {
                return Err(DurationError::UnknownUnit {
                    text: owned(),
                    unit: other.to_string(),
                });
            }
        };
        rest = &rest[unit_len..];
        total += number * seconds_per_unit;
    }
    if !total.is_finite() || total > 1e12 {
        return Err(DurationError::TooLong { text: owned() });
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let ok = [
            ("10s", 10_000),
            ("250ms", 250),
            ("1.5s", 1_500),
            ("1h30m", 5_400_000),
            ("2m", 120_000),
            ("0", 0),
            ("1m0.5s", 60_500),
        ];
        for (text, ms) in ok {
            assert_eq!(parse(text).map(|d| d.as_millis()), Ok(ms), "{text}");
        }
        for bad in ["", "10", "-1s", "1d", "s", "1..2s", "abc", "5 s"] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn a_refused_duration_is_quoted_with_how_to_write_one() {
        let cases = [
            ("", "empty duration"),
            ("-1s", "`-1s` is negative"),
            ("s", "`s` is not a duration like 10s, 250ms or 1h30m"),
            ("1..2s", "`1..2s` has a malformed number"),
            ("10", "`10` needs a unit (ns, us, ms, s, m, h)"),
            ("1d", "`1d` has unknown unit `d`; use ns, us, ms, s, m or h"),
            (
                "1e13s",
                "`1e13s` has unknown unit `e`; use ns, us, ms, s, m or h",
            ),
            ("9999999999999s", "`9999999999999s` is too long"),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse(text).map_err(|e| e.to_string()),
                Err(want.to_string()),
                "{text}"
            );
        }
    }
}
