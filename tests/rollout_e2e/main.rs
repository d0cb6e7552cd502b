//! Progressive rollouts end to end: git (a real bare remote) → veer's reconcile loop → the
//! embedded API server → the synthetic Istio exporter (its traffic follows the live
//! VirtualService weights) → a real Prometheus (1 s scrapes) → veer's analysis.
//!
//! Every scenario has its own dev cluster, exporter, Prometheus and git remote, so they run in
//! parallel. Policies use a 1 s interval; each wait polls with a bounded deadline and fails
//! with what it last saw. A recorder polls the live VirtualService every 50 ms, so the order
//! of the weights veer set is asserted, not only where they ended.
//!
//! The scenarios, by concern: [`promotion`], [`rollback`], [`operator`] (commands and hand
//! edits), [`baseline`], [`phases`] (mirror, A/B match, fault) and [`two_routes`]; what they
//! share is in [`fixtures`] (the git side and live reads) and [`harness`] (a running scenario).

#[path = "../support/faults.rs"]
mod faults;
#[path = "../support/prometheus.rs"]
mod prometheus_support;
#[path = "../support/mod.rs"]
mod support;

mod fixtures;
mod harness;

mod baseline;
mod operator;
mod phases;
mod promotion;
mod rollback;
mod two_routes;
