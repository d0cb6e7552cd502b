//! Debian's kubectl (1.20, `kubernetes-client`) against the embedded API server: the commands
//! a user of the demo runs. `make deps` installs that kubectl into target/tools/.

// The dev-cluster helpers only: tests/support/mod.rs (git remotes) is another suite's.
#[path = "../support/devcluster.rs"]
mod support;

mod apply;
mod command;
mod helpers;
mod tables;
mod watch;
