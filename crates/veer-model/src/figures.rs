//! Numbers for people: what logs, `veer rollout status`, the page and notifications print
//! (`24.8`, not `24.849999999999998`). JSON outputs and stored states keep the raw value.

/// `v` to 3 significant digits, but never fewer than its integer digits (`1234.6` → `1235`),
/// without trailing zeros: `24.849999999999998` → `24.8`, `0.012345` → `0.0123`, `5.0` → `5`.
pub fn for_people(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let digits = v.abs().log10().floor() as i32 + 1;
    let decimals = usize::try_from(3 - digits).unwrap_or(0);
    // Halves away from zero, as people round (`{:.0}` alone rounds 248.5 to 248).
    let factor = 10f64.powi(i32::try_from(decimals).unwrap_or(0));
    let rounded = (v * factor).round() / factor;
    let text = format!("{rounded:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    if text == "-0" { "0".to_string() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_significant_digits_for_people() {
        let cases = [
            (24.849999999999998, "24.8"),
            (248.5, "249"),
            (1234.56, "1235"),
            (99.95, "100"),
            (99.5, "99.5"),
            (0.012345, "0.0123"),
            (5.0, "5"),
            (0.0, "0"),
            (-1.23456, "-1.23"),
            (-0.0001, "-0.0001"),
            (100.0, "100"),
            (f64::INFINITY, "inf"),
        ];
        for (v, want) in cases {
            assert_eq!(for_people(v), want, "{v}");
        }
    }
}
