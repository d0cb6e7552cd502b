//! Which rollouts a pass drives, and when the driver wakes.
//!
//! Each rollout keeps its own schedule: the time it wants to act next (`RolloutDriver::due`).
//! A tick drives the rollouts that are due, a full pass all of them; each drive is a future of
//! its own (`tick::drive_one`), at most `RolloutOptions::concurrency` working at once, polled
//! beside the pass's analysis batcher. While one rollout still waits (a slow Prometheus
//! answer, a slow write), the pass drives the others again as they fall due, so a slow
//! rollout delays no other's step. The driver wakes for the earliest due rollout, or up to
//! [`COALESCE`] later for those due just after it ([`coalesce`]), so rollouts due close
//! together are driven, and their analyses measured, together.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::Semaphore;
use tracing::error;

use super::analyse::Counted;
use super::batcher::Batcher;
use super::ports::Ports;
use super::tick::{Drive, Env, drive_one};
use super::{Mailbox, RolloutDriver, RolloutId, Work};
use crate::analysis::MetricsProvider;
use crate::rollout::RolloutState;
use crate::rollout::work::RolloutWork;

/// How late a rollout may be driven so that others due just after it go with it.
pub(super) const COALESCE: TimeDelta = TimeDelta::milliseconds(500);

/// A rollout that wants to act again at once is not driven again sooner than this within a
/// pass (the loop's own floor between ticks).
const AGAIN: TimeDelta = TimeDelta::milliseconds(50);

/// Which rollouts a pass drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    /// Every rollout (a pass after a git poll: commands, new commits, hand edits).
    All,
    /// Those due (a tick).
    Due,
}

/// When to wake for rollouts due at `dues`: the last of those due within [`COALESCE`] of the
/// earliest. Pure.
pub(super) fn coalesce(dues: impl Iterator<Item = DateTime<Utc>>) -> Option<DateTime<Utc>> {
    let dues: Vec<DateTime<Utc>> = dues.collect();
    let first = *dues.iter().min()?;
    dues.into_iter().filter(|d| *d <= first + COALESCE).max()
}

/// Whether a rollout whose wake is `due` (`None`: not driven yet) is due at `now`.
pub(super) fn is_due(due: Option<&Option<DateTime<Utc>>>, now: DateTime<Utc>) -> bool {
    match due {
        None => true,
        Some(None) => false,
        Some(Some(at)) => *at <= now,
    }
}

impl RolloutDriver {
    /// Drive `which` of the tracked rollouts of `work` concurrently, until none is working.
    /// `commands`: the mailboxes the caller read for the pass; `None`: read them here (every
    /// rollout's for [`Which::All`], those labelled pending for [`Which::Due`]).
    pub(super) async fn run_pass(
        &mut self,
        ports: &Ports<'_>,
        work: &RolloutWork,
        which: Which,
        commands: Option<BTreeMap<RolloutId, Mailbox>>,
    ) {
        // Every mailbox the pass looks at, in one read (not one per rollout); a rollout's first
        // drive of the pass takes its command, later ones keep what that one left.
        let mut commands = match commands {
            Some(c) => c,
            None => match self.read_commands(ports, which == Which::All).await {
                Some(c) => c,
                None => return,
            },
        };
        let concurrency = self.options.concurrency();
        let counted = self.provider.as_deref().map(|inner| Counted {
            inner,
            counts: &self.queries,
            metrics: &self.metrics,
        });
        let provider = counted.as_ref().map(|c| c as &dyn MetricsProvider);
        let batcher = Batcher::new(provider, concurrency);
        let slots = Semaphore::new(concurrency);
        let reads = Semaphore::new(concurrency);
        let env = Env {
            ports: *ports,
            gate: &*self.gate,
            revert: &*self.revert,
            notifications: self.notifications.as_deref(),
            metrics: &self.metrics,
            provider,
            analysis: &batcher,
            slots: &slots,
            reads: &reads,
        };
        let env = &env;
        let tracked: Vec<&Work> = work
            .rollouts
            .iter()
            .filter(|w| self.rollouts.contains_key(&w.id))
            .collect();
        let index: BTreeMap<&RolloutId, usize> = tracked
            .iter()
            .enumerate()
            .map(|(i, w)| (&w.id, i))
            .collect();
        let now = ports.clock.now();
        let mut ready: Vec<&Work> = tracked
            .iter()
            .copied()
            .filter(|w| which == Which::All || is_due(self.due.get(&w.id), now))
            .collect();
        let mut driven: HashSet<&RolloutId> = HashSet::new();
        // Rollouts not working now (by their place in `tracked`), by when they are due again
        // (those finished: not here).
        let mut idle: BTreeSet<(DateTime<Utc>, usize)> = tracked
            .iter()
            .enumerate()
            .filter_map(|(i, w)| self.due.get(&w.id).copied().flatten().map(|at| (at, i)))
            .collect();
        let mut flying = FuturesUnordered::new();
        let batching = batcher.run();
        tokio::pin!(batching);
        loop {
            if !ready.is_empty() {
                let admitted = self.admitted_now();
                for w in ready.drain(..) {
                    let Some(mut state) = self.rollouts.get(&w.id).cloned() else {
                        continue;
                    };
                    let how = Drive {
                        admitted: admitted.contains(&w.id),
                        compare_live: driven.insert(&w.id),
                    };
                    if how.compare_live {
                        state.command = commands.remove(&w.id);
                    }
                    if let (Some(Some(at)), Some(i)) = (self.due.get(&w.id), index.get(&w.id)) {
                        idle.remove(&(*at, *i));
                    }
                    // Counted now, before any rollout asks, so the batch waits for it.
                    let pending = batcher.pending();
                    flying.push(async move { (w, drive_one(env, w, state, how, pending).await) });
                }
            }
            if flying.is_empty() {
                break;
            }
            // The next rollout due again while others still work.
            let next = idle.first().map(|(first, _)| {
                idle.range(..=(*first + COALESCE, usize::MAX))
                    .next_back()
                    .map_or(*first, |(at, _)| *at)
            });
            let pause = next.map(|at| {
                (at - ports.clock.now())
                    .max(AGAIN)
                    .to_std()
                    .unwrap_or_default()
            });
            tokio::select! {
                Some((w, out)) = flying.next() => {
                    if let (Some(at), Some(i)) = (out.wake, index.get(&w.id)) {
                        idle.insert((at, *i));
                    }
                    let before = self.rollouts.insert(w.id.clone(), out.tracked);
                    let now = self.rollouts.get(&w.id).map(|t| &t.state);
                    // A drive replaces the state only when it changed (`tick::rounds`).
                    let same = match (before.as_ref().map(|t| &t.state), now) {
                        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                        (a, b) => a.is_none() && b.is_none(),
                    };
                    if !same {
                        self.changed.insert(w.id.clone());
                    }
                    self.due.insert(w.id.clone(), out.wake);
                    if let Some(text) = out.interfered {
                        self.interfered.insert(w.id.clone(), text);
                    }
                }
                () = &mut batching => {}
                () = async {
                    match pause {
                        Some(p) => tokio::time::sleep(p).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let now = ports.clock.now();
                    ready = idle
                        .iter()
                        .take_while(|(at, _)| *at <= now)
                        .filter_map(|(_, i)| tracked.get(*i).copied())
                        .collect();
                }
            }
        }
    }

    /// The commands waiting, by rollout, in one read: those labelled pending, or with
    /// `every`, whatever any rollout's mailbox holds. `None` when they cannot be read: said
    /// in the log, and the driver comes back in 5 s.
    pub(crate) async fn read_commands(
        &mut self,
        ports: &Ports<'_>,
        every: bool,
    ) -> Option<BTreeMap<RolloutId, Mailbox>> {
        match ports.store.read_commands(every).await {
            Ok(c) => Some(c),
            Err(e) => {
                error!(error = %e, "cannot read the rollout commands; rollouts wait 5 s");
                self.retry = Some(ports.clock.now() + TimeDelta::seconds(5));
                None
            }
        }
    }

    /// The queued rollouts `maxConcurrentRollouts` lets start now.
    fn admitted_now(&self) -> BTreeSet<RolloutId> {
        let list: Vec<(RolloutId, &RolloutState)> = self
            .rollouts
            .iter()
            .map(|(k, t)| (k.clone(), &*t.state))
            .collect();
        crate::rollout::queue::admit(&list, self.options.max_concurrent)
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::rollouts::fixtures::t;

    /// Name, the rollouts' wakes, the driver's.
    type WakeCase = (&'static str, Vec<DateTime<Utc>>, Option<DateTime<Utc>>);

    #[test]
    fn wakes_coalesce_table() {
        let ms = |s: u32, ms: i64| t(s) + TimeDelta::milliseconds(ms);
        #[rustfmt::skip]
        let cases: Vec<WakeCase> = vec![
            ("nothing running", vec![], None),
            ("one rollout: its own time", vec![t(10)], Some(t(10))),
            ("due together", vec![t(10), t(10)], Some(t(10))),
            ("just after: wait for it", vec![t(10), ms(10, 300)], Some(ms(10, 300))),
            ("at the edge", vec![ms(10, 500), t(10)], Some(ms(10, 500))),
            ("later: not waited for", vec![t(10), ms(10, 501), t(20)], Some(t(10))),
        ];
        for (name, dues, want) in cases {
            assert_eq!(coalesce(dues.into_iter()), want, "{name}");
        }
    }

    #[test]
    fn due_table() {
        assert!(is_due(None, t(0)), "not driven yet");
        assert!(!is_due(Some(&None), t(0)), "finished");
        assert!(is_due(Some(&Some(t(0))), t(0)));
        assert!(!is_due(Some(&Some(t(1))), t(0)));
    }
}
