//! veer's product library: the edges (git, the cluster, HTTP, Slack, Prometheus' client) and
//! the controller that joins them to the pure crates.
//!
//! The pipeline: `source` (git) → `manifest` → `validate` → `cluster` (live state) → `diff` →
//! `sync` → `rollout` → `analysis` → `notify`. What decides is pure and lives in crates that
//! cannot name an I/O crate: `veer-model` (the vocabulary: manifests, diagnostics, kinds),
//! `veer-fields` (server-side apply's field sets) and `veer-core` (validate, diff, rollout,
//! the pure half of analysis). They are re-exported under their usual paths
//! (`veer_controller::manifest`, `crate::diff`, …). The embedded API server and the demo are
//! crates of their own (`veer-devcluster`, `veer-demo`); nothing here depends on them.

pub use veer_core::{diff, rollout, validate};
pub use veer_fields::{fields, schema};
pub use veer_model::{diagnostic, duration, figures, hosts, ids, manifest, secret};

/// Analysis: the pure half from `veer-core`, and the real Prometheus client.
pub mod analysis {
    pub use crate::prometheus_http::Prometheus;
    pub use veer_core::analysis::*;
}

pub mod cluster;
pub mod config;
pub mod controller;
pub mod exit;
pub mod gate;
pub mod http_client;
pub mod leader;
pub mod metrics;
pub mod notify;
pub mod pass;
mod prometheus_http;
pub mod server;
pub mod shutdown;
pub mod source;
pub mod sync;
