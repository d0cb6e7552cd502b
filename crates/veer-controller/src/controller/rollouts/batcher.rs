//! Gathering the analyses of one pass's rollouts into few Prometheus queries: each rollout
//! hands its instant queries to the [`Batcher`] and waits; the batcher sends what it gathered
//! as one batch (`analysis::batch`: deduplicated, built-ins grouped) and answers each rollout
//! as soon as the queries it needs are answered.
//!
//! When to send: once no rollout of the pass is still before its first decision (every one
//! that will analyse now has asked: the wake's rollouts share one batch, one query per
//! metric), else, as a safety net only, when none has come to one for [`GAP`] (one stuck in
//! a slow read does not hold the others up for longer) or [`MAX_GATHER`] after the first
//! ask. A rollout that has decided something else (a write, a wait) is not waited for, so a
//! slow write holds up no analysis; and the reads before a first decision do not queue
//! behind writes (`tick::Env::reads`), so a wake's rollouts all ask before any is answered.

use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tracing::debug;

use crate::analysis::batch::{self, Instant as InstantQuery};
use crate::analysis::{MetricsProvider, QueryOutcome};

/// How long the batch waits for the next rollout to come to a decision: long enough for a
/// namespace's health read on a busy API server (a thousand rollouts' asks in a few such
/// reads), short enough that a stuck read costs the others less than their step's second.
pub(super) const GAP: Duration = Duration::from_millis(400);
/// How long the batch waits at most after its first rollout asked.
pub(super) const MAX_GATHER: Duration = Duration::from_secs(2);

/// One rollout's ask: its instant queries and where their answers go.
struct Ask {
    instants: Vec<InstantQuery>,
    reply: oneshot::Sender<Vec<QueryOutcome>>,
}

/// What the batcher has gathered and whom it still waits for.
#[derive(Default)]
struct Gather {
    open: Vec<Ask>,
    /// When the first ask of `open` came.
    opened: Option<Instant>,
    /// When a rollout last came to a decision (or asked).
    progress: Option<Instant>,
    /// Rollouts driven now that have not come to their first decision yet.
    undecided: usize,
}

impl Gather {
    /// `Ok(asks)` to send now, or `Err(when)` to look again (`None`: when told).
    fn due(&mut self, now: Instant) -> Result<Vec<Ask>, Option<Instant>> {
        let Some(opened) = self.opened else {
            return Err(None);
        };
        let deadline = (opened + MAX_GATHER).min(self.progress.unwrap_or(opened) + GAP);
        if self.undecided == 0 || now >= deadline {
            self.opened = None;
            Ok(std::mem::take(&mut self.open))
        } else {
            Err(Some(deadline))
        }
    }
}

/// The analyses of one pass, gathered. Its [`Batcher::run`] future sends them and must be
/// polled alongside the rollouts (`schedule`).
pub(super) struct Batcher<'a> {
    provider: Option<&'a dyn MetricsProvider>,
    concurrency: usize,
    gather: Mutex<Gather>,
    changed: Notify,
}

/// A rollout the batch may wait for: from when it is driven until its first decision (or its
/// ask). Dropped, it is not waited for any more.
pub(super) struct Pending<'b> {
    gather: &'b Mutex<Gather>,
    changed: &'b Notify,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        with(self.gather, |g| {
            g.undecided = g.undecided.saturating_sub(1);
            g.progress = Some(Instant::now());
        });
        self.changed.notify_one();
    }
}

/// `f` on the gathered state; a poisoned lock (a panic elsewhere) is taken as it is.
fn with<T>(gather: &Mutex<Gather>, f: impl FnOnce(&mut Gather) -> T) -> T {
    match gather.lock() {
        Ok(mut g) => f(&mut g),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

impl<'a> Batcher<'a> {
    pub(super) fn new(provider: Option<&'a dyn MetricsProvider>, concurrency: usize) -> Self {
        Batcher {
            provider,
            concurrency,
            gather: Mutex::new(Gather::default()),
            changed: Notify::new(),
        }
    }

    /// A rollout about to be driven: the batch waits for it (see [`Pending`]).
    pub(super) fn pending(&self) -> Pending<'_> {
        with(&self.gather, |g| g.undecided += 1);
        Pending {
            gather: &self.gather,
            changed: &self.changed,
        }
    }

    /// The answers to `instants` (in their order), measured with the other rollouts' asks.
    pub(super) async fn measure(
        &self,
        pending: Option<Pending<'_>>,
        instants: Vec<InstantQuery>,
    ) -> Vec<QueryOutcome> {
        let asked = instants.len();
        let (reply, answer) = oneshot::channel();
        with(&self.gather, |g| {
            let now = Instant::now();
            g.open.push(Ask { instants, reply });
            g.opened.get_or_insert(now);
            g.progress = Some(now);
        });
        // Asking is this rollout's decision: the batch no longer waits for it.
        drop(pending);
        self.changed.notify_one();
        let mut outcomes = answer.await.unwrap_or_default();
        outcomes.resize_with(asked, || {
            QueryOutcome::Unreachable("the analysis batch ended without an answer".into())
        });
        outcomes
    }

    /// Sends each batch when it is due and answers its rollouts; never ends (the pass stops
    /// polling it once every rollout is done, and so answered).
    pub(super) async fn run(&self) {
        let mut sending = FuturesUnordered::new();
        loop {
            let due = with(&self.gather, |g| g.due(Instant::now()));
            let wake = match due {
                Ok(asks) => {
                    sending.push(self.send(asks));
                    continue;
                }
                Err(wake) => wake,
            };
            tokio::select! {
                () = self.changed.notified() => {}
                () = async {
                    match wake {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {}
                Some(()) = sending.next(), if !sending.is_empty() => {}
            }
        }
    }

    /// One batch: planned, sent, and each ask answered once all its queries are.
    async fn send(&self, asks: Vec<Ask>) {
        let Some(provider) = self.provider else {
            // The driver never asks without a provider; answer rather than hang.
            for ask in asks {
                let _ = ask.reply.send(Vec::new());
            }
            return;
        };
        let mut owner = Vec::new();
        let mut instants = Vec::new();
        let mut answers: Vec<Vec<QueryOutcome>> = Vec::with_capacity(asks.len());
        let mut left: Vec<usize> = Vec::with_capacity(asks.len());
        let mut replies = Vec::with_capacity(asks.len());
        for (a, ask) in asks.into_iter().enumerate() {
            let count = ask.instants.len();
            for (n, instant) in ask.instants.into_iter().enumerate() {
                owner.push((a, n));
                instants.push(instant);
            }
            answers.push(vec![QueryOutcome::NoData; count]);
            left.push(count);
            replies.push(Some(ask.reply));
        }
        let plan = batch::plan(&instants, provider.answers_series());
        debug!(
            rollouts = replies.len(),
            instants = instants.len(),
            queries = plan.queries.len(),
            "analysis batch"
        );
        for (a, reply) in replies.iter_mut().enumerate() {
            if left.get(a) == Some(&0)
                && let Some(r) = reply.take()
            {
                let _ = r.send(Vec::new());
            }
        }
        let mut stream = std::pin::pin!(batch::answers(provider, &plan, self.concurrency));
        while let Some((i, outcome)) = stream.next().await {
            let Some(&(a, n)) = owner.get(i) else {
                continue;
            };
            if let Some(slot) = answers.get_mut(a).and_then(|v| v.get_mut(n)) {
                *slot = outcome;
            }
            if let Some(l) = left.get_mut(a) {
                *l = l.saturating_sub(1);
                if *l == 0
                    && let (Some(r), Some(v)) = (
                        replies.get_mut(a).and_then(Option::take),
                        answers.get_mut(a),
                    )
                {
                    // A rollout that stopped waiting (its pass ended) needs no answer.
                    let _ = r.send(std::mem::take(v));
                }
            }
        }
    }
}
