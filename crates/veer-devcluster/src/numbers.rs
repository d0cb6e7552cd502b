//! Numbers as a real API server stores them.
//!
//! kube-apiserver decodes a custom resource into Go's unstructured JSON (integers as int64,
//! other numbers as float64) and encodes float64 the way Go's `encoding/json` does: a float
//! with an integral value has no fraction (`25.0` is served back as `25`), `2.5` stays `2.5`.
//! The store writes every object through [`canonical_numbers`] so that clients (and veer's
//! diff) meet the same numbers they would on a real cluster.

use serde_json::{Number, Value};

/// Go prints floats at and above this magnitude with an exponent (`1e+21`); they stay floats.
const EXPONENT_FROM: f64 = 1e21;

/// Rewrite, in place, every float with an integral value that fits `i64` or `u64` as an
/// integer.
pub fn canonical_numbers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(i) = integral(n) {
                *n = i;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(canonical_numbers),
        Value::Object(map) => map.values_mut().for_each(canonical_numbers),
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}

/// The integer a float stands for, when it is one (`None` for integers and fractions).
fn integral(n: &Number) -> Option<Number> {
    if !n.is_f64() {
        return None;
    }
    let f = n.as_f64()?;
    if !f.is_finite() || f.fract() != 0.0 || f.abs() >= EXPONENT_FROM {
        return None;
    }
    // The casts are exact: `f` is integral and within the range checked.
    if f >= i64::MIN as f64 && f < i64::MAX as f64 {
        Some(Number::from(f as i64))
    } else if f >= 0.0 && f < u64::MAX as f64 {
        Some(Number::from(f as u64))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integral_floats_become_integers() {
        let cases: &[(Value, &str)] = &[
            (json!(25.0), "25"),
            (json!(100.0), "100"),
            (json!(-3.0), "-3"),
            (json!(0.0), "0"),
            (json!(-0.0), "0"),
            (json!(2.5), "2.5"),
            (json!(0.1), "0.1"),
            (json!(7), "7"),
            (json!(u64::MAX), "18446744073709551615"),
            (json!(1e19), "10000000000000000000"),
            // Beyond u64: Go would print the digits, serde_json cannot hold them as an integer.
            (json!(1e20), "1e+20"),
            (json!(1e300), "1e+300"),
            (json!("25.0"), "\"25.0\""),
        ];
        for (input, want) in cases {
            let mut v = input.clone();
            canonical_numbers(&mut v);
            assert_eq!(v.to_string(), *want, "{input}");
        }
    }

    #[test]
    fn the_whole_object_is_rewritten() {
        let mut vs = json!({"spec": {"http": [{
            "mirrorPercentage": {"value": 25.0},
            "fault": {"abort": {"percentage": {"value": 10.0}, "httpStatus": 500}},
            "route": [{"weight": 100}],
            "retries": {"attempts": 3.0, "perTryTimeout": "2s"},
            "ratio": 2.5
        }]}});
        canonical_numbers(&mut vs);
        assert_eq!(
            vs,
            json!({"spec": {"http": [{
                "mirrorPercentage": {"value": 25},
                "fault": {"abort": {"percentage": {"value": 10}, "httpStatus": 500}},
                "route": [{"weight": 100}],
                "retries": {"attempts": 3, "perTryTimeout": "2s"},
                "ratio": 2.5
            }]}})
        );
        assert!(
            vs.pointer("/spec/http/0/mirrorPercentage/value")
                .is_some_and(Value::is_i64)
        );
    }
}
