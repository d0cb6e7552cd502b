//! A rollout's check history with each query held once: a record whose check's previous
//! record has the same query keeps none ([`CheckRecord::same_query`]), and dropping the
//! oldest records hands a query they held on to the first record of its check that stays.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::CheckRecord;

/// A rollout's check history (up to [`super::MAX_HISTORY`] records), shared between a state
/// and the next one a decision makes from it: copying a state copies a reference count, and
/// the records are copied only when a state that still shares them records a check.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(transparent)]
pub struct History(Arc<Vec<CheckRecord>>);

impl PartialEq for History {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Deref for History {
    type Target = Vec<CheckRecord>;

    fn deref(&self) -> &Vec<CheckRecord> {
        &self.0
    }
}

impl DerefMut for History {
    /// The records to change: this state's own, copied first if another state shares them.
    fn deref_mut(&mut self) -> &mut Vec<CheckRecord> {
        Arc::make_mut(&mut self.0)
    }
}

impl From<Vec<CheckRecord>> for History {
    fn from(records: Vec<CheckRecord>) -> Self {
        History(Arc::new(records))
    }
}

impl<'a> IntoIterator for &'a History {
    type Item = &'a CheckRecord;
    type IntoIter = std::slice::Iter<'a, CheckRecord>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The query of `history[index]`: its own, or that of the earlier record of its check it
/// repeats. Empty when there is none (or `index` is past the end).
pub(super) fn query_of(history: &[CheckRecord], index: usize) -> &str {
    let Some(record) = history.get(index) else {
        return "";
    };
    if !record.same_query {
        return &record.query;
    }
    history[..index]
        .iter()
        .rev()
        .find(|r| r.check == record.check && !r.same_query)
        .map_or("", |r| r.query.as_str())
}

/// Drop the `count` oldest records; a query one of them held for records that stay moves to
/// the first of those.
pub(super) fn drop_oldest(history: &mut Vec<CheckRecord>, count: usize) {
    let mut held: BTreeMap<String, String> = BTreeMap::new();
    for r in history.drain(..count.min(history.len())) {
        if !r.same_query {
            held.insert(r.check, r.query);
        }
    }
    for (check, query) in held {
        if let Some(first) = history.iter_mut().find(|r| r.check == check)
            && first.same_query
        {
            first.query = query;
            first.same_query = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{MAX_HISTORY, RolloutState};
    use crate::rollout::fixtures::{record, state};
    use crate::rollout::state::{CheckOutcome, Phase};

    fn check(second: u32, name: &str, query: &str) -> super::CheckRecord {
        let mut r = record(second, name, Some(99.5), CheckOutcome::Passed);
        r.query = query.into();
        r
    }

    fn queries(s: &RolloutState) -> Vec<String> {
        (0..s.history.len())
            .map(|i| s.query_of(i).to_string())
            .collect()
    }

    #[test]
    fn each_record_reads_its_query_and_repeats_are_held_once() {
        let mut s = state("r1", Phase::Progressing, (90, 10), (0, 100));
        let sequence = [
            ("success", "qs1"),
            ("p99", "qp1"),
            ("webhook/load", ""),
            ("success", "qs1"),
            ("p99", "qp2"),
            ("success", "qs1"),
            ("webhook/load", ""),
            ("p99", "qp2"),
        ];
        for (i, (name, query)) in sequence.iter().enumerate() {
            s.record(check(i as u32, name, query));
        }
        let want: Vec<String> = sequence.iter().map(|(_, q)| q.to_string()).collect();
        assert_eq!(queries(&s), want);
        let held: Vec<bool> = s.history.iter().map(|r| r.same_query).collect();
        assert_eq!(held, [false, false, false, true, false, true, false, true]);
        // Stored and read back: the same records.
        let back =
            RolloutState::decode("VirtualService shop/reviews", &s.encode()).expect("decodes");
        assert_eq!(back, s);
    }

    /// A copy of a state shares its history until one of the two records a check: the
    /// other keeps its records, and the two still compare by what they hold.
    #[test]
    fn a_copy_shares_the_history_until_it_records() {
        let mut before = state("r1", Phase::Progressing, (90, 10), (0, 100));
        before.record(check(0, "success", "qs"));
        let mut next = before.clone();
        assert!(std::sync::Arc::ptr_eq(&before.history.0, &next.history.0));
        assert_eq!(next, before);
        next.record(check(1, "success", "qs"));
        assert_eq!((before.history.len(), next.history.len()), (1, 2));
        assert_ne!(next, before);
        // Equal records, held apart, are equal.
        let apart = super::History::from(before.history.to_vec());
        assert!(!std::sync::Arc::ptr_eq(&apart.0, &before.history.0));
        assert_eq!(apart, before.history);
    }

    /// Past the history's bound the oldest records go; every record kept still reads the
    /// query it was recorded with, however the checks interleave.
    #[test]
    fn dropping_the_oldest_keeps_every_query_readable() {
        let mut s = state("r1", Phase::Progressing, (90, 10), (0, 100));
        let mut want = Vec::new();
        for i in 0..(MAX_HISTORY * 3) {
            let (name, query) = match i % 5 {
                0 | 2 => ("success", format!("qs{}", i / 40)),
                1 | 4 => ("p99", "qp".to_string()),
                _ => ("webhook/load", String::new()),
            };
            s.record(check(i as u32, name, &query));
            want.push(query);
            let kept = &want[want.len().saturating_sub(MAX_HISTORY)..];
            assert_eq!(queries(&s), kept, "after record {i}");
        }
        assert_eq!(s.history.len(), MAX_HISTORY);
    }

    /// A hundred checks of one metric with a real-sized query: stored in well under half
    /// the bytes of every record holding its query.
    #[test]
    fn a_full_history_stores_each_query_once() {
        let query = "sum(rate(istio_requests_total{reporter=\"destination\",destination_workload_namespace=\"shop\",destination_workload=\"reviews-v2\",response_code!~\"5.*\"}[1m])) / sum(rate(istio_requests_total{reporter=\"destination\",destination_workload_namespace=\"shop\",destination_workload=\"reviews-v2\"}[1m])) * 100";
        let mut s = state("r1", Phase::Progressing, (90, 10), (0, 100));
        let mut every = s.clone();
        for i in 0..MAX_HISTORY {
            s.record(check(i as u32, "success", query));
            every.history.push(check(i as u32, "success", query));
        }
        let (held_once, held_each) = (s.encode().len(), every.encode().len());
        assert!(
            held_once * 2 < held_each,
            "{held_once} bytes against {held_each} with every query"
        );
    }
}
