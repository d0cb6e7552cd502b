//! Traffic splits: destination (host, subset, port) → integer weight, always summing to 100,
//! and the splits a rollout passes through on its way from one split to another.
//!
//! The distribution rule, for any start and target split over the same destinations:
//! destinations whose weight grows are "gaining" (the new version), those whose weight shrinks
//! are "losing". A step is a total weight `x` for the gaining destinations. The amount moved,
//! `x - gaining(start)`, is shared among the gaining destinations in proportion to how much
//! each gains overall, and taken from the losing ones in proportion to how much each loses
//! overall; integer shares use the largest-remainder method (ties to the destination that sorts
//! first), so weights are integers, sum to 100, and each stays between its start and target.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Where traffic goes: an Istio route destination. Its names are shared, not owned: splits,
/// states and observations copy destinations at every decision, and a copy is then two
/// reference counts, not two allocations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationId {
    pub host: Arc<str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
}

impl DestinationId {
    pub fn new(host: &str, subset: Option<&str>) -> Self {
        DestinationId {
            host: Arc::from(host),
            subset: subset.map(Arc::from),
            port: None,
        }
    }
}

impl fmt::Display for DestinationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host)?;
        if let Some(s) = &self.subset {
            write!(f, "/{s}")?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// One destination and its weight, the stored form of a split.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightedDestination {
    #[serde(flatten)]
    pub destination: DestinationId,
    pub weight: u32,
}

/// Destination → weight. Stored as a list (JSON maps need string keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "Vec<WeightedDestination>")]
pub struct TrafficSplit {
    weights: BTreeMap<DestinationId, u32>,
}

/// The stored form, a list of [`WeightedDestination`]s, written from the map as it is: a
/// state holds four splits and is stored at every step, and `serde(into)` would copy each
/// into a list first.
impl Serialize for TrafficSplit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// [`WeightedDestination`]'s fields, in its order, borrowed.
        #[derive(Serialize)]
        struct Entry<'a> {
            host: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            subset: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            port: Option<u32>,
            weight: u32,
        }
        serializer.collect_seq(self.weights.iter().map(|(d, weight)| Entry {
            host: &d.host,
            subset: d.subset.as_deref(),
            port: d.port,
            weight: *weight,
        }))
    }
}

impl From<Vec<WeightedDestination>> for TrafficSplit {
    fn from(v: Vec<WeightedDestination>) -> Self {
        TrafficSplit {
            weights: v.into_iter().map(|w| (w.destination, w.weight)).collect(),
        }
    }
}

impl From<TrafficSplit> for Vec<WeightedDestination> {
    fn from(s: TrafficSplit) -> Self {
        s.weights
            .into_iter()
            .map(|(destination, weight)| WeightedDestination {
                destination,
                weight,
            })
            .collect()
    }
}

impl FromIterator<(DestinationId, u32)> for TrafficSplit {
    fn from_iter<I: IntoIterator<Item = (DestinationId, u32)>>(iter: I) -> Self {
        TrafficSplit {
            weights: iter.into_iter().collect(),
        }
    }
}

impl TrafficSplit {
    pub fn weight(&self, destination: &DestinationId) -> u32 {
        self.weights.get(destination).copied().unwrap_or(0)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&DestinationId, u32)> {
        self.weights.iter().map(|(d, w)| (d, *w))
    }

    pub fn destinations(&self) -> impl Iterator<Item = &DestinationId> {
        self.weights.keys()
    }

    pub fn total(&self) -> u64 {
        self.weights.values().map(|w| u64::from(*w)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// The same split with `others`' destinations added at weight 0.
    pub fn extended(&self, others: &TrafficSplit) -> TrafficSplit {
        let mut out = self.clone();
        for d in others.destinations() {
            out.weights.entry(d.clone()).or_insert(0);
        }
        out
    }

    /// Equal as traffic: zero-weight destinations do not count.
    pub fn same_traffic(&self, other: &TrafficSplit) -> bool {
        fn nonzero(s: &TrafficSplit) -> impl Iterator<Item = (&DestinationId, &u32)> {
            s.weights.iter().filter(|(_, w)| **w > 0)
        }
        nonzero(self).eq(nonzero(other))
    }

    /// Destinations whose weight grows from `self` to `target`, in order (only `target`'s
    /// can grow: any other goes to 0).
    pub fn gaining_toward(&self, target: &TrafficSplit) -> Vec<DestinationId> {
        target
            .iter()
            .filter(|(d, w)| *w > self.weight(d))
            .map(|(d, _)| d.clone())
            .collect()
    }

    /// Total weight of `destinations` in this split.
    pub fn weight_of(&self, destinations: &[DestinationId]) -> u32 {
        destinations.iter().map(|d| self.weight(d)).sum()
    }
}

impl fmt::Display for TrafficSplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (d, w)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}:{w}")?;
        }
        Ok(())
    }
}

/// Share `amount` among `keys` in proportion to `parts` (largest remainder; ties to the first).
pub(crate) fn apportion(amount: u32, parts: &[(DestinationId, u32)]) -> Vec<(DestinationId, u32)> {
    let total: u64 = parts.iter().map(|(_, p)| u64::from(*p)).sum();
    if total == 0 {
        return parts.iter().map(|(d, _)| (d.clone(), 0)).collect();
    }
    let mut shares: Vec<(DestinationId, u32, u64)> = parts
        .iter()
        .map(|(d, p)| {
            let exact = u64::from(amount) * u64::from(*p);
            (d.clone(), (exact / total) as u32, exact % total)
        })
        .collect();
    let given: u32 = shares.iter().map(|s| s.1).sum();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    // Stable sort: equal remainders keep destination order.
    order.sort_by(|a, b| shares[*b].2.cmp(&shares[*a].2));
    for i in order.into_iter().take((amount - given) as usize) {
        shares[i].1 += 1;
    }
    shares.into_iter().map(|(d, s, _)| (d, s)).collect()
}

/// The split between `from` and `target` where the gaining destinations together weigh `x`
/// (clamped to the range between their weight in `from` and in `target`). See the module
/// header for the rule. Both splits must sum to 100.
pub fn split_at(from: &TrafficSplit, target: &TrafficSplit, x: u32) -> TrafficSplit {
    let from = from.extended(target);
    let target = target.extended(&from);
    let gaining: Vec<(DestinationId, u32)> = from
        .iter()
        .filter(|(d, w)| target.weight(d) > *w)
        .map(|(d, w)| (d.clone(), target.weight(d) - w))
        .collect();
    let losing: Vec<(DestinationId, u32)> = from
        .iter()
        .filter(|(d, w)| target.weight(d) < *w)
        .map(|(d, w)| (d.clone(), w - target.weight(d)))
        .collect();
    let start: u32 = gaining.iter().map(|(d, _)| from.weight(d)).sum();
    let gain: u32 = gaining.iter().map(|(_, g)| g).sum();
    let loss: u32 = losing.iter().map(|(_, l)| l).sum();
    let moved = x.clamp(start, start + gain) - start;
    // With both sums at 100, gain == loss; clamp anyway so a malformed input cannot
    // underflow.
    let moved = moved.min(loss);
    let mut out = from.clone();
    for (d, share) in apportion(moved, &gaining) {
        if let Some(w) = out.weights.get_mut(&d) {
            *w += share;
        }
    }
    for (d, share) in apportion(moved, &losing) {
        if let Some(w) = out.weights.get_mut(&d) {
            *w -= share;
        }
    }
    out
}

/// The gaining destinations' total weight at each step before promotion: the policy's step
/// values strictly between where they start (`from`) and where they end (`target`).
pub fn plan_steps(from: &TrafficSplit, target: &TrafficSplit, step_values: &[u32]) -> Vec<u32> {
    let gaining = from.gaining_toward(target);
    let start = from.weight_of(&gaining);
    let end = target.weight_of(&gaining);
    step_values
        .iter()
        .copied()
        .filter(|w| *w > start && *w < end)
        .collect()
}

/// `weight` percent as a bar of `width` cells of `full` then `empty` (`#####-----`), as
/// `veer rollout status` and the demo draw it. Any weight above 0 fills at least one cell,
/// so a 1 % canary is visible.
pub fn weight_bar(weight: u32, width: usize, full: char, empty: char) -> String {
    let weight = weight.min(100) as usize;
    let filled = (weight * width).div_ceil(100).min(width);
    let mut bar = String::with_capacity(width * full.len_utf8().max(empty.len_utf8()));
    bar.extend(std::iter::repeat_n(full, filled));
    bar.extend(std::iter::repeat_n(empty, width - filled));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(pairs: &[(&str, u32)]) -> TrafficSplit {
        pairs
            .iter()
            .map(|(subset, w)| (DestinationId::new("reviews", Some(subset)), *w))
            .collect()
    }

    #[test]
    fn full_shift_follows_the_gaining_total() {
        let from = s(&[("v1", 100)]);
        let to = s(&[("v2", 100)]);
        assert_eq!(split_at(&from, &to, 10), s(&[("v1", 90), ("v2", 10)]));
        assert_eq!(split_at(&from, &to, 100), s(&[("v1", 0), ("v2", 100)]));
        assert_eq!(split_at(&from, &to, 0), s(&[("v1", 100), ("v2", 0)]));
    }

    #[test]
    fn partial_and_multi_destination_targets_are_proportional() {
        let from = s(&[("v1", 100)]);
        assert_eq!(
            split_at(&from, &s(&[("v1", 50), ("v2", 50)]), 25),
            s(&[("v1", 75), ("v2", 25)])
        );
        // Two gaining destinations share each step by their gains; remainders go to the first.
        assert_eq!(
            split_at(&from, &s(&[("v2", 50), ("v3", 50)]), 5),
            s(&[("v1", 95), ("v2", 3), ("v3", 2)])
        );
        // Two losing destinations give in proportion to their losses.
        let from = s(&[("v1", 60), ("v2", 40)]);
        assert_eq!(
            split_at(&from, &s(&[("v3", 100)]), 50),
            s(&[("v1", 30), ("v2", 20), ("v3", 50)])
        );
    }

    #[test]
    fn steps_are_the_values_strictly_between() {
        let from = s(&[("v1", 100)]);
        assert_eq!(
            plan_steps(&from, &s(&[("v2", 100)]), &[5, 10, 25, 50]),
            [5, 10, 25, 50]
        );
        assert_eq!(
            plan_steps(&from, &s(&[("v1", 50), ("v2", 50)]), &[5, 10, 25, 50]),
            [5, 10, 25]
        );
        let mid = s(&[("v1", 80), ("v2", 20)]);
        assert_eq!(
            plan_steps(&mid, &s(&[("v2", 100)]), &[5, 10, 25, 50]),
            [25, 50]
        );
    }

    #[test]
    fn serde_round_trip_as_a_list() {
        let split = s(&[("v1", 90), ("v2", 10)]);
        let json = serde_json::to_value(&split).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"host": "reviews", "subset": "v1", "weight": 90},
                {"host": "reviews", "subset": "v2", "weight": 10}
            ])
        );
        assert_eq!(serde_json::from_value::<TrafficSplit>(json).unwrap(), split);
    }

    /// The split is written as its list of [`WeightedDestination`]s would be, byte for byte
    /// (states stored by an older veer compare equal), ports and subsetless hosts included.
    #[test]
    fn a_split_is_written_as_its_weighted_destinations() {
        let mut with_port = DestinationId::new("ratings.shop.svc.cluster.local", None);
        with_port.port = Some(9080);
        let split: TrafficSplit = [
            (DestinationId::new("reviews", Some("v1")), 90),
            (with_port, 10),
            (DestinationId::new("reviews", None), 0),
        ]
        .into_iter()
        .collect();
        for split in [split, TrafficSplit::default()] {
            let list: Vec<WeightedDestination> = split.clone().into();
            assert_eq!(
                serde_json::to_string(&split).unwrap(),
                serde_json::to_string(&list).unwrap()
            );
        }
    }
}
