//! Table tests for every transition of the rollout state machine, and whole rollouts through
//! a simulated I/O edge (`rollout_common::World`), one module per concern.

// One directory deeper than the other rollout test files, so the shared edge needs its path.
#[path = "../rollout_common/mod.rs"]
mod rollout_common;

mod commands;
mod commits;
mod entry;
mod finish;
mod helpers;
mod steps;
mod whole;
