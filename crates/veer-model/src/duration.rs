//! Durations as Istio writes them: Go syntax (`1h2m3.5s`, `250ms`, `1.5s`), the form Istio's
//! own CRD rules check with CEL `duration()`. A bare number has no unit and is refused, as
//! Istio refuses it.

mod human;
pub use human::human_duration;

use std::time::Duration;

/// Parse a Go-style duration. Negative durations are refused: no Istio field takes one.
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".to_string());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err(format!("`{text}` is negative"));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!(
                "`{text}` is not a duration like 10s, 250ms or 1h30m"
            ));
        }
        let number: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("`{text}` has a malformed number"))?;
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
            "" => return Err(format!("`{text}` needs a unit (ns, us, ms, s, m, h)")),
            other => {
                return Err(format!(
                    "`{text}` has unknown unit `{other}`; use ns, us, ms, s, m or h"
                ));
            }
        };
        rest = &rest[unit_len..];
        total += number * seconds_per_unit;
    }
    if !total.is_finite() || total > 1e12 {
        return Err(format!("`{text}` is too long"));
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
}
