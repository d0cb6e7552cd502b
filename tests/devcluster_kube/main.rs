//! The embedded API server against the real kube 5 client, over real HTTP on 127.0.0.1.

// The dev-cluster helpers only: tests/support/mod.rs (git remotes) is another suite's.
#[path = "../support/devcluster.rs"]
mod support;

mod helpers;
mod kinds;
mod tables;
mod watch;
mod writes;
