//! veer: a GitOps controller for Istio traffic, as one binary for users.
//!
//! This crate is the binary's command line (`cli`) and one name for the workspace's crates, so
//! `veer::manifest`, `veer::controller` or `veer::devcluster` read the same everywhere:
//! `veer-controller` (the product: edges and controller, which re-exports the pure crates
//! `veer-model`, `veer-fields` and `veer-core`), `veer-devcluster` (the embedded API server and
//! the synthetic Istio exporter, for tests, the demo and trying veer without a cluster) and
//! `veer-demo` (`veer demo`). README's "Code layout" draws them.
// The workspace's rule, for this crate's own code; its integration tests (tests/) may unwrap.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub use veer_controller::*;
pub use veer_demo as demo;
pub use veer_devcluster as devcluster;
pub use veer_devcluster::exporter;

pub mod cli;
pub mod log_filter;
