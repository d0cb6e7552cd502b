//! The reconcile loop against the embedded API server, over real HTTP with the real kube
//! client: create, update, prune (never what veer did not create), drift healed or only
//! reported, apply conflicts then force, retries of 409/5xx, per-object failures (a 500 that
//! refuses the request itself tried once, with the fix), server dry run, an idle pass that
//! makes no API call, a rejected revision, state surviving a restart, watches re-established
//! after the server restarts, a kind veer may not list failing only its objects, and a
//! Namespace never pruned while anything lives in it.
//!
//! One module per concern; the manifests, revision builder and pass helpers they share are in
//! [`helpers`].

#[path = "../support/faults.rs"]
mod faults;
#[path = "../support/mod.rs"]
mod support;

mod helpers;

mod apply;
mod drift;
mod failures;
mod namespaces;
mod restarts;
