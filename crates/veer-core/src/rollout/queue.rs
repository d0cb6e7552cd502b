//! `maxConcurrentRollouts` as a pure decision: which queued rollouts may start now.
//!
//! A rollout occupies a slot from its health gate until it succeeds or fails (paused ones
//! too: their weights are in flight). Queued rollouts start oldest first (ties by key), so the
//! order is stable across restarts. `max == 0` means no limit.

use super::state::{Phase, RolloutState};

/// Keys of the queued rollouts admitted now.
pub fn admit<K: Ord + Clone>(rollouts: &[(K, &RolloutState)], max: usize) -> Vec<K> {
    let mut queued: Vec<&(K, &RolloutState)> = rollouts
        .iter()
        .filter(|(_, s)| s.phase == Phase::Queued)
        .collect();
    queued.sort_by(|a, b| (a.1.created_at, &a.0).cmp(&(b.1.created_at, &b.0)));
    let free = if max == 0 {
        queued.len()
    } else {
        let active = rollouts
            .iter()
            .filter(|(_, s)| s.phase.occupies_slot())
            .count();
        max.saturating_sub(active)
    };
    queued
        .into_iter()
        .take(free)
        .map(|(k, _)| k.clone())
        .collect()
}
