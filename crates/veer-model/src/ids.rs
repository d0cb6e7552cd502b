//! The identities veer's records and messages use: a git commit ([`CommitId`], with the one
//! short form every message shows) and a rollout ([`RolloutId`]: its VirtualService).

use std::fmt;

use crate::manifest::ObjectKey;

/// How many hex digits of a commit id messages, pages and notifications show.
pub const SHORT_COMMIT: usize = 12;

/// A commit id, as full lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitId(pub String);

impl CommitId {
    /// The first [`SHORT_COMMIT`] digits, for messages.
    pub fn short(&self) -> &str {
        short(&self.0)
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The short form of a commit id kept as text (in a stored state or an event).
pub fn short(commit: &str) -> &str {
    commit.get(..SHORT_COMMIT).unwrap_or(commit)
}

/// A rollout's identity: its VirtualService.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RolloutId {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for RolloutId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl RolloutId {
    pub fn of(key: &ObjectKey) -> Self {
        RolloutId {
            namespace: key.namespace.clone().unwrap_or_else(|| "default".into()),
            name: key.name.clone(),
        }
    }

    /// `NS/NAME`.
    pub fn parse(text: &str) -> Option<Self> {
        let (ns, name) = text.split_once('/')?;
        (!ns.is_empty() && !name.is_empty() && !name.contains('/')).then(|| RolloutId {
            namespace: ns.to_string(),
            name: name.to_string(),
        })
    }

    /// Name of the ConfigMap holding this rollout's state.
    pub fn config_map(&self) -> String {
        let name = format!("veer-rollout-{}-{}", self.namespace, self.name);
        name.chars().take(253).collect()
    }
}
