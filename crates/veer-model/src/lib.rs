//! veer's vocabulary, shared by every other crate: what an object is ([`manifest::ObjectKey`]),
//! manifests as read from git with their positions, [`diagnostic`]s, the typed Istio kinds and
//! the `RolloutPolicy` kind, [`duration`]s, Istio [`hosts`] and [`secret`] sources. Pure.
#![forbid(unsafe_code)]

pub mod diagnostic;
pub mod duration;
pub mod figures;
pub mod hosts;
pub mod ids;
pub mod manifest;
pub mod secret;
