//! The exact one-sided Mann-Whitney p-value for small samples without ties: the share of the
//! C(n+m, n) equally likely arrangements of the pooled samples whose U is at least as
//! extreme as the observed one. On few samples the normal approximation is far off (4 new
//! against 4 old, completely separated: exactly 1/70 = 0.0143, where the approximation
//! without continuity correction says 0.0104), and few samples is what a short step has.

/// Sizes up to which the exact distribution is counted (n·m·(n·m) additions at most).
const MAX_EXACT: usize = 40;

/// P(U ≥ observed) when `greater` (the new version's values tend to be larger), else
/// P(U ≤ observed), where U counts the pairs (new, old) with new > old. `None` when the
/// exact distribution does not apply: a sample is empty or too large, or a value is tied.
pub(super) fn one_sided_p(new: &[f64], old: &[f64], greater: bool) -> Option<f64> {
    let (n, m) = (new.len(), old.len());
    if n == 0 || m == 0 || n > MAX_EXACT || m > MAX_EXACT {
        return None;
    }
    let mut pooled: Vec<f64> = new.iter().chain(old).copied().collect();
    pooled.sort_by(f64::total_cmp);
    if pooled.windows(2).any(|w| w[0] == w[1]) {
        return None;
    }
    let u: usize = new
        .iter()
        .map(|x| old.iter().filter(|y| x > *y).count())
        .sum();
    let counts = arrangements_by_u(n, m);
    let total: f64 = counts.iter().sum();
    let tail: f64 = if greater {
        counts[u..].iter().sum()
    } else {
        counts[..=u].iter().sum()
    };
    Some((tail / total).min(1.0))
}

/// How many arrangements of `n` new and `m` old values give each U (0..=n·m), by the
/// recurrence f(i, j, u) = f(i-1, j, u-j) + f(i, j-1, u): the largest value is either new
/// (beating all j old ones) or old. Counted in f64: C(80, 40) ≈ 1e23 is far inside its range.
fn arrangements_by_u(n: usize, m: usize) -> Vec<f64> {
    let size = n * m + 1;
    // row[j][u] = f(i, j, u) for the current i.
    let mut row: Vec<Vec<f64>> = (0..=m)
        .map(|_| {
            let mut v = vec![0.0; size];
            v[0] = 1.0;
            v
        })
        .collect();
    for _ in 1..=n {
        let mut next: Vec<Vec<f64>> = vec![vec![0.0; size]; m + 1];
        next[0][0] = 1.0;
        for j in 1..=m {
            for u in 0..size {
                let new_largest = if u >= j { row[j][u - j] } else { 0.0 };
                next[j][u] = new_largest + next[j - 1][u];
            }
        }
        row = next;
    }
    row.swap_remove(m)
}

/// The fewest samples of each version with which the test can reject at level `alpha` (4 at
/// 0.05): below that every comparison is inconclusive.
pub fn min_samples(alpha: f64) -> usize {
    (1..=MAX_MIN_SAMPLES)
        .find(|&k| smallest_one_sided_p(k, k) < alpha)
        .unwrap_or(MAX_MIN_SAMPLES)
}

/// Far beyond any sensible level (1 / C(128, 64) is about 1e-38).
pub(super) const MAX_MIN_SAMPLES: usize = 64;

/// The one-sided p-value when the samples are completely separated: 1 / C(n+m, n).
pub(super) fn smallest_one_sided_p(n: usize, m: usize) -> f64 {
    if n == 0 || m == 0 {
        return 1.0;
    }
    let mut c = 1.0_f64;
    for i in 1..=n.min(m) {
        c = c * ((n + m + 1 - i) as f64) / (i as f64);
    }
    1.0 / c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn exact_p_values_count_arrangements() {
        let old4 = [1.0, 2.0, 3.0, 4.0];
        // (new, old, greater, p): counted by hand from C(n+m, n) arrangements.
        let cases: &[(&[f64], &[f64], bool, f64)] = &[
            // Completely separated, 4 against 4: 1 arrangement in 70.
            (&[5.0, 6.0, 7.0, 8.0], &old4, true, 1.0 / 70.0),
            // The other direction: every arrangement has U >= 0.
            (&[5.0, 6.0, 7.0, 8.0], &old4, false, 1.0),
            (&[0.1, 0.2, 0.3, 0.4], &old4, false, 1.0 / 70.0),
            // 5 against 5 with U = 23 of 25: U = 25, 24 (1 each), 23 (2): 4 in 252.
            (
                &[3.5, 6.0, 7.0, 8.0, 9.0],
                &[1.0, 2.0, 3.0, 4.0, 5.0],
                true,
                4.0 / 252.0,
            ),
            // 1 against 3, the new one second largest: U = 2, P(U >= 2) = 2 of 4.
            (&[2.5], &[1.0, 2.0, 3.0], true, 0.5),
        ];
        for (new, old, greater, want) in cases {
            let p = one_sided_p(new, old, *greater).unwrap();
            assert!(close(p, *want), "{new:?} vs {old:?}: {p} != {want}");
        }
    }

    #[test]
    fn ties_and_large_samples_are_left_to_the_approximation() {
        assert_eq!(one_sided_p(&[1.0, 2.0], &[2.0, 3.0], true), None);
        let big: Vec<f64> = (0..41).map(f64::from).collect();
        let other: Vec<f64> = (0..41).map(|i| f64::from(i) + 0.5).collect();
        assert_eq!(one_sided_p(&big, &other, true), None);
        assert_eq!(one_sided_p(&[], &[1.0], true), None);
    }

    #[test]
    fn the_distribution_sums_to_the_arrangements() {
        for (n, m) in [(1, 1), (3, 5), (8, 8), (40, 40)] {
            let total: f64 = arrangements_by_u(n, m).iter().sum();
            let mut c = 1.0_f64;
            for i in 1..=n.min(m) {
                c = c * ((n + m + 1 - i) as f64) / (i as f64);
            }
            assert!((total / c - 1.0).abs() < 1e-9, "{n}x{m}: {total} vs {c}");
        }
    }
}
