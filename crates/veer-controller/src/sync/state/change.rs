//! A change to the recorded state, applied in place: a pass that changed a few records
//! touches those, not a copy of every record. Pure.

use crate::manifest::{ObjectIdentity, ObjectKey};

use super::encoding::{OrderKey, order, owned};
use super::{ObjectRecord, SyncState};

/// Up to this many objects are looked up one scan each; beyond, one pass over the records.
const FEW: usize = 16;

/// What a pass changes in the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// Every field of the state but its records (its `objects` are ignored), as it is to be.
    pub header: SyncState,
    /// Records to put, each replacing every record of the same object (API version aside).
    pub put: Vec<ObjectRecord>,
    /// Objects whose records go (API version aside).
    pub remove: Vec<ObjectKey>,
}

impl StateChange {
    /// A change of `prev`'s header alone (a few fields: cheap to copy).
    pub fn header_of(prev: &SyncState) -> SyncState {
        SyncState {
            format: prev.format,
            revision: prev.revision.clone(),
            outcome: prev.outcome,
            applied_at: prev.applied_at.clone(),
            rejected: prev.rejected.clone(),
            last_error: prev.last_error.clone(),
            objects: Vec::new(),
            drift: prev.drift.clone(),
            updated_at: prev.updated_at.clone(),
        }
    }
}

impl SyncState {
    /// The records in key order, as [`SyncState::apply`] and the encoding of the state
    /// expect (veer writes them so; a state from elsewhere may not be). Linear when sorted.
    pub fn sort_records(&mut self) {
        self.objects.sort_by(|a, b| order(a).cmp(&order(b)));
    }

    /// Apply `change` in place, the records kept in key order. Returns the change that
    /// undoes it and the keys of the records taken out or put, sorted (what an encoding of
    /// the state must redo: `Encoded::encode`).
    pub fn apply(&mut self, change: StateChange) -> (StateChange, Vec<OrderKey>) {
        let StateChange {
            mut header,
            put,
            remove,
        } = change;
        header.objects = std::mem::take(&mut self.objects);
        let mut undo_header = std::mem::replace(self, header);
        undo_header.objects = Vec::new();
        let taken = {
            let mut ids: Vec<ObjectIdentity<'_>> = (put.iter().map(ObjectRecord::identity))
                .chain(remove.iter().map(ObjectKey::identity))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            positions(&self.objects, &ids)
        };
        let removed = take_out(&mut self.objects, &taken);
        // A record put where one of the same key was taken out (a pending record become
        // `created`: every record of a first sync) is touched once, and putting the old one
        // back undoes it: no key of it is kept twice.
        let replaced = |r: &ObjectRecord| {
            removed
                .binary_search_by(|o| order(o).cmp(&order(r)))
                .is_ok()
        };
        let mut touched: Vec<OrderKey> = removed.iter().map(owned).collect();
        touched.extend(put.iter().filter(|r| !replaced(r)).map(owned));
        touched.sort_unstable();
        touched.dedup();
        touched.shrink_to_fit();
        let undo_remove = (put.iter())
            .filter(|r| !replaced(r))
            .map(ObjectRecord::key)
            .collect();
        if put.len() <= FEW {
            for r in put {
                let at = self.objects.partition_point(|o| order(o) <= order(&r));
                self.objects.insert(at, r);
            }
        } else if self.objects.is_empty() {
            // Every record replaced (a first sync): the new records are the state, moved
            // rather than copied beside it.
            self.objects = put;
            self.objects.sort_by(|a, b| order(a).cmp(&order(b)));
        } else {
            self.objects.extend(put);
            self.objects.sort_by(|a, b| order(a).cmp(&order(b)));
        }
        let undo = StateChange {
            header: undo_header,
            put: removed,
            remove: undo_remove,
        };
        (undo, touched)
    }
}

/// Where the records of `ids` (sorted) are, in order.
fn positions(records: &[ObjectRecord], ids: &[ObjectIdentity<'_>]) -> Vec<usize> {
    if ids.len() <= FEW {
        let mut at: Vec<usize> = (ids.iter())
            .flat_map(|id| {
                (records.iter().enumerate())
                    .filter(move |(_, r)| r.identity() == *id)
                    .map(|(i, _)| i)
            })
            .collect();
        at.sort_unstable();
        at.dedup();
        return at;
    }
    (records.iter().enumerate())
        .filter(|(_, r)| ids.binary_search(&r.identity()).is_ok())
        .map(|(i, _)| i)
        .collect()
}

/// The records at `taken` (sorted), out of `records`, in order.
fn take_out(records: &mut Vec<ObjectRecord>, taken: &[usize]) -> Vec<ObjectRecord> {
    if taken.len() <= FEW {
        let mut out: Vec<ObjectRecord> = taken.iter().rev().map(|&i| records.remove(i)).collect();
        out.reverse();
        return out;
    }
    let mut out = Vec::with_capacity(taken.len());
    let mut next = taken.iter().peekable();
    let kept = std::mem::take(records)
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| {
            if next.peek() == Some(&&i) {
                next.next();
                out.push(r);
                None
            } else {
                Some(r)
            }
        })
        .collect();
    *records = kept;
    out
}
