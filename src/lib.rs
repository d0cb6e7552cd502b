//! veer: a GitOps controller for Istio traffic.
//!
//! The pipeline, one module each: `source` (git) → `manifest` → `validate` → `cluster` (live
//! state) → `diff` → `sync` → `rollout` → `analysis` → `notify`. `manifest`, `validate`,
//! `diff` and `rollout` are pure: no kube, no HTTP, no git.

pub mod analysis;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod controller;
pub mod demo;
pub mod devcluster;
pub mod diagnostic;
pub mod diff;
pub mod duration;
pub mod exporter;
pub mod fields;
pub mod gate;
pub mod hosts;
pub mod http_client;
pub mod leader;
pub mod manifest;
pub mod metrics;
pub mod notify;
pub mod pass;
pub mod rollout;
pub mod schema;
pub mod secret;
pub mod server;
pub mod shutdown;
pub mod source;
pub mod sync;
pub mod validate;
