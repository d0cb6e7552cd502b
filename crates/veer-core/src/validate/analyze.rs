//! The traffic analyzers of `istioctl analyze` that look across objects (and, when a cluster
//! is reachable, at the live Services): each finding carries the istioctl code beside ours.

use super::catalog::Check;

pub const CHECKS: &[Check] = &[];
