//! Comparing JSON values the way an API server sees them: numbers by numeric value.
//!
//! Owns: the one total order on JSON values ([`compare_values`]) that field sets, ownership,
//! apply and the diff use, and equality derived from it ([`same_value`]). A real server
//! stores a custom resource's `25.0` and serves it back as `25`; comparing the JSON text (or
//! `serde_json`'s `==`, which tells a float from an integer) would see drift that never clears.

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// Are `a` and `b` the same value? Numbers compare by value (`25.0 == 25`), maps by their
/// entries whatever their order, lists item by item.
pub fn same_value(a: &Value, b: &Value) -> bool {
    compare_values(a, b) == Ordering::Equal
}

/// A total order on JSON values, for sorting set items and keys and for equality. Numbers
/// compare by value; maps as their entries sorted by key.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => {
            for (xi, yi) in x.iter().zip(y) {
                let o = compare_values(xi, yi);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<(&String, &Value)> = x.iter().collect();
            let mut ys: Vec<(&String, &Value)> = y.iter().collect();
            xs.sort_by(|p, q| p.0.cmp(q.0));
            ys.sort_by(|p, q| p.0.cmp(q.0));
            for ((xk, xv), (yk, yv)) in xs.iter().zip(&ys) {
                let o = xk.cmp(yk).then_with(|| compare_values(xv, yv));
                if o != Ordering::Equal {
                    return o;
                }
            }
            xs.len().cmp(&ys.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// A number as it compares: integers exactly (every `i64` and `u64` fits an `i128`), floats
/// by `f64` value.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

fn num(n: &Number) -> Num {
    if let Some(i) = n.as_i64() {
        Num::Int(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Num::Int(i128::from(u))
    } else {
        // Without serde_json's arbitrary_precision every number is i64, u64 or f64.
        Num::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Integral floats within `i128` compare exactly with integers (`2^63` as a float equals
/// `u64` `2^63`); others by `f64` value, where they cannot be equal to an integer anyway.
fn compare_numbers(x: &Number, y: &Number) -> Ordering {
    fn floats(a: f64, b: f64) -> Ordering {
        a.partial_cmp(&b).unwrap_or_else(|| a.total_cmp(&b))
    }
    fn int_float(i: i128, f: f64) -> Ordering {
        // 1.7e38 < i128::MAX: the cast is exact for integral floats below it.
        if f.is_finite() && f.fract() == 0.0 && f.abs() < 1.7e38 {
            i.cmp(&(f as i128))
        } else {
            floats(i as f64, f)
        }
    }
    match (num(x), num(y)) {
        (Num::Int(a), Num::Int(b)) => a.cmp(&b),
        (Num::Float(a), Num::Float(b)) => floats(a, b),
        (Num::Int(a), Num::Float(b)) => int_float(a, b),
        (Num::Float(a), Num::Int(b)) => int_float(b, a).reverse(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value() {
        let big = u64::MAX;
        let cases: &[(Value, Value, bool)] = &[
            (json!(25.0), json!(25), true),
            (json!(25), json!(25.0), true),
            (json!(100.0), json!(100), true),
            (json!(0.0), json!(0), true),
            (json!(-0.0), json!(0), true),
            (json!(-3.0), json!(-3), true),
            (json!(2.5), json!(2), false),
            (json!(2.5), json!(2.5), true),
            (json!(10.5), json!(10), false),
            // Large integers exactly: i64::MAX and its neighbour are not equal, though both
            // round to the same f64.
            (json!(i64::MAX), json!(i64::MAX - 1), false),
            (json!(big), json!(big - 1), false),
            (json!(big), json!(big), true),
            (json!(i64::MIN), json!(i64::MIN), true),
            // 2^63 is exactly representable as a float.
            (
                json!(9_223_372_036_854_775_808.0_f64),
                json!(1u64 << 63),
                true,
            ),
            (
                json!(9_223_372_036_854_775_808.0_f64),
                json!(i64::MAX),
                false,
            ),
            (json!(1e300), json!(big), false),
            (json!("25"), json!(25), false),
            (json!(null), json!(0), false),
        ];
        for (a, b, want) in cases {
            assert_eq!(same_value(a, b), *want, "{a} vs {b}");
            assert_eq!(same_value(b, a), *want, "{b} vs {a}");
        }
    }

    #[test]
    fn nested_values_compare_by_value_and_maps_ignore_key_order() {
        assert!(same_value(
            &json!({"percentage": {"value": 25.0}, "list": [1.0, {"a": 2.0, "b": 1}]}),
            &json!({"list": [1, {"b": 1.0, "a": 2}], "percentage": {"value": 25}}),
        ));
        assert!(!same_value(&json!([1, 2]), &json!([1, 2, 3])));
        assert!(!same_value(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!same_value(&json!({"a": 1}), &json!({"b": 1})));
    }

    #[test]
    fn the_order_is_total_and_consistent() {
        let values = [
            json!(null),
            json!(false),
            json!(-1),
            json!(0.5),
            json!(1),
            json!(1.0),
            json!(u64::MAX),
            json!("a"),
            json!([1]),
            json!({"a": 1}),
        ];
        for a in &values {
            for b in &values {
                assert_eq!(
                    compare_values(a, b),
                    compare_values(b, a).reverse(),
                    "{a} {b}"
                );
                for c in &values {
                    if compare_values(a, b).is_le() && compare_values(b, c).is_le() {
                        assert!(compare_values(a, c).is_le(), "{a} {b} {c}");
                    }
                }
            }
        }
    }
}
