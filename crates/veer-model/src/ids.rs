//! The identities veer's records and messages use: a git commit ([`CommitId`], with the one
//! short form every message shows), a rollout ([`RolloutId`]: its VirtualService), and the
//! digests that name things by their content ([`sha256_hex`]).

use std::fmt;

use sha2::{Digest, Sha256};

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

    /// Name of the ConfigMap holding this rollout's state, one per id (two ids share one only
    /// if two long names' 64-bit digests collide): `veer-rollout-NS.NAME`, the first dot
    /// ending the namespace (a DNS label: no dot). Past the 253 characters a ConfigMap name
    /// may have, the long form: no dot at all (the name's become dashes, so it never equals a
    /// short form), cut, then `-` and 16 hex digits of the SHA-256 of `NS/NAME`.
    pub fn config_map(&self) -> String {
        let readable = format!("veer-rollout-{}.{}", self.namespace, self.name);
        if readable.len() <= MAX_NAME {
            return readable;
        }
        let hex = sha256_hex(self.to_string().as_bytes(), DIGEST_HEX / 2);
        let dashed = readable.replace('.', "-");
        let mut end = MAX_NAME - 1 - DIGEST_HEX;
        while !dashed.is_char_boundary(end) {
            end -= 1;
        }
        let kept = dashed[..end].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
        format!("{kept}-{hex}")
    }
}

/// The first `bytes` bytes (all 32 at most) of the SHA-256 of `data`, in lowercase hex.
pub fn sha256_hex(data: &[u8], bytes: usize) -> String {
    use std::fmt::Write;
    let digest = Sha256::digest(data);
    let mut hex = String::with_capacity(2 * bytes.min(digest.len()));
    for b in digest.iter().take(bytes) {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// The longest ConfigMap name the API server takes.
const MAX_NAME: usize = 253;
/// Hex digits of the digest ending a long rollout ConfigMap name (64 bits).
const DIGEST_HEX: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    fn id(namespace: &str, name: &str) -> RolloutId {
        RolloutId {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// What the API server takes as a ConfigMap name (a lowercase RFC 1123 subdomain).
    fn valid_config_map_name(name: &str) -> bool {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        name.len() <= 253 && name.split('.').all(label_ok)
    }

    #[test]
    fn the_short_form_stays_readable() {
        assert_eq!(
            id("shop", "reviews").config_map(),
            "veer-rollout-shop.reviews"
        );
        assert_eq!(
            id("shop", "reviews.shop.svc").config_map(),
            "veer-rollout-shop.reviews.shop.svc"
        );
    }

    #[test]
    fn ids_a_dash_apart_no_longer_share_a_config_map() {
        let (left, right) = (id("a-b", "c"), id("a", "b-c"));
        assert_ne!(left.config_map(), right.config_map());
        assert!(valid_config_map_name(&left.config_map()));
        assert!(valid_config_map_name(&right.config_map()));
    }

    #[test]
    fn a_longest_name_gives_a_valid_name() {
        // A 253-character subdomain, its labels of 63 characters.
        let label = "r".repeat(63);
        let name = [label.as_str(); 3].join(".") + "." + &"r".repeat(61);
        assert_eq!(name.len(), 253);
        for ns in ["shop", &"n".repeat(63)] {
            let cm = id(ns, &name).config_map();
            assert!(cm.len() <= 253, "{} characters", cm.len());
            assert!(valid_config_map_name(&cm), "{cm}");
            assert!(cm.starts_with(&format!("veer-rollout-{ns}-rrr")), "{cm}");
        }
    }

    #[test]
    fn names_differing_past_the_cut_differ() {
        let stem = "reviews-".repeat(31);
        let (a, b) = (format!("{stem}a"), format!("{stem}b"));
        assert_ne!(id("shop", &a).config_map(), id("shop", &b).config_map());
        // Cut right after a dot or a dash, the name still ends with an alphanumeric.
        for cut_at in 230..240 {
            let name = format!("{}.{}", "a".repeat(cut_at - 18), "b".repeat(40));
            let cm = id("shop", &name).config_map();
            assert!(valid_config_map_name(&cm), "{cm}");
        }
    }

    #[test]
    fn a_long_name_never_takes_a_short_ones() {
        // The long form holds no dot; every short form holds one.
        let long = id("shop", &"r".repeat(253));
        let cm = long.config_map();
        assert!(!cm.contains('.'), "{cm}");
        let rest = cm.strip_prefix("veer-rollout-shop-").expect("prefix");
        assert_ne!(id("shop", rest).config_map(), cm);
    }

    proptest::proptest! {
        #[test]
        fn every_id_gets_its_own_valid_name(
            ns in "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
            labels in proptest::collection::vec("[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", 1..6),
            other in "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?",
        ) {
            let mut name = labels.join(".");
            name.truncate(253);
            let name = name.trim_end_matches(['.', '-']).to_string();
            proptest::prop_assume!(!name.is_empty());
            let cm = id(&ns, &name).config_map();
            proptest::prop_assert!(valid_config_map_name(&cm), "{}", cm);
            // Ids a dash or a dot apart from it (`NS-X/NAME`, `NS/X-NAME`, `NS/NAME.X`).
            let near = [
                id(&ns, &name),
                id(&format!("{ns}-{other}"), &name),
                id(&ns, &format!("{other}-{name}")),
                id(&ns, &format!("{name}.{other}")),
            ];
            let names: std::collections::BTreeSet<String> =
                near.iter().map(RolloutId::config_map).collect();
            proptest::prop_assert_eq!(names.len(), near.len());
        }
    }
}
