//! The optional phases before the traffic shift (mirror, A/B match, fault injection), the
//! webhooks a rollout calls, and whether a rollback is reverted in git.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::istio::virtual_service::StringMatch;

/// Mirror `weight`% of the traffic to the new version for `iterations` passing checks before
/// any real traffic moves.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MirrorPhase {
    pub weight: u32,
    pub iterations: u32,
}

/// A/B: only requests matching `headers` (or carrying `cookie`, `name=value`) go to the new
/// version for `iterations` passing checks.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MatchPhase {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, StringMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    pub iterations: u32,
}

/// Inject a delay or an abort into `percent`% of the new version's traffic for `iterations`
/// passing checks: the metrics must hold under it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultPhase {
    /// A duration, e.g. `500ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    /// An HTTP status, e.g. `503`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<u32>,
    pub percent: f64,
    pub iterations: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Webhook {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: WebhookKind,
    pub url: String,
    /// A duration; defaults to 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookKind {
    /// Before any traffic moves; a failure counts as a failed check.
    PreRollout,
    /// Before every check; a failure counts as a failed check.
    #[default]
    Rollout,
    /// Before promotion; a failure holds (a gate, e.g. a human approval), never rolls back.
    ConfirmPromotion,
    /// After promotion; a failure is reported only.
    PostRollout,
    /// After a rollback; a failure is reported only.
    Rollback,
}

impl WebhookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookKind::PreRollout => "pre-rollout",
            WebhookKind::Rollout => "rollout",
            WebhookKind::ConfirmPromotion => "confirm-promotion",
            WebhookKind::PostRollout => "post-rollout",
            WebhookKind::Rollback => "rollback",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Revert {
    /// After a rollback, push a revert commit of the offending change.
    Git,
    #[default]
    None,
}
