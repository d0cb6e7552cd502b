//! veer's decisions, as pure functions over plain data: [`validate`] (is a revision
//! acceptable), [`diff`] (`plan(desired, live)`), [`rollout`] (`decide(state, observation,
//! policy, now)`), the pure half of [`analysis`] (queries, answers, verdicts) and [`notice`]
//! (what people are told, as text). No I/O: the controller in the `veer` crate feeds these
//! and carries out what they return.
#![forbid(unsafe_code)]
// A new variant (a rollout phase, an action, a cause) must make every decision over it
// fail to build until someone decides what it means there (tests may match loosely).
#![cfg_attr(not(test), deny(clippy::wildcard_enum_match_arm))]

// The vocabulary, under the paths this crate's modules use (`crate::manifest::…`).
pub use veer_fields::{fields, schema};
pub use veer_model::{diagnostic, duration, figures, hosts, ids, manifest, secret};

pub mod analysis;
pub mod diff;
pub mod notice;
pub mod rollout;
pub mod validate;
