//! Fixtures for veer's tests, as builders, so that no test file keeps its own copy of "a
//! time" or "a key": [`at`] gives a time on a fixed day of November 2026, [`key`] an object
//! key with the API group and version its kind has, and [`config_map`] / [`service`] the keys
//! most unit tests use (namespace `shop`).
#![forbid(unsafe_code)]

use chrono::{DateTime, TimeZone, Utc};
use veer_model::manifest::ObjectKey;

/// 10:`minute` on November `day`, 2026 (UTC). Panics on an impossible date: a broken test.
pub fn at(day: u32, minute: u32) -> DateTime<Utc> {
    at_second(day, minute, 0)
}

/// 10:`minute`:`second` on November `day`, 2026 (UTC).
pub fn at_second(day: u32, minute: u32, second: u32) -> DateTime<Utc> {
    match Utc
        .with_ymd_and_hms(2026, 11, day, 10, minute, second)
        .single()
    {
        Some(t) => t,
        None => panic!("November {day}, 10:{minute}:{second} is not a time"),
    }
}

/// The API group and version of the kinds tests use; others are taken as core `v1`.
const KINDS: &[(&str, &str, &str)] = &[
    ("Deployment", "apps", "v1"),
    ("VirtualService", "networking.istio.io", "v1"),
    ("DestinationRule", "networking.istio.io", "v1"),
    ("Gateway", "networking.istio.io", "v1"),
    ("ServiceEntry", "networking.istio.io", "v1"),
    ("Sidecar", "networking.istio.io", "v1"),
    ("CustomResourceDefinition", "apiextensions.k8s.io", "v1"),
    ("RolloutPolicy", "veer.io", "v1alpha1"),
];

/// The key of `kind` `namespace`/`name` (`namespace` empty: a cluster-scoped object).
pub fn key(kind: &str, namespace: &str, name: &str) -> ObjectKey {
    let (group, version) = KINDS
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map_or(("", "v1"), |(_, g, v)| (*g, *v));
    ObjectKey {
        group: group.to_string(),
        version: version.to_string(),
        kind: kind.to_string(),
        namespace: (!namespace.is_empty()).then(|| namespace.to_string()),
        name: name.to_string(),
    }
}

/// ConfigMap `shop/<name>`.
pub fn config_map(name: &str) -> ObjectKey {
    key("ConfigMap", "shop", name)
}

/// Service `shop/<name>`.
pub fn service(name: &str) -> ObjectKey {
    key("Service", "shop", name)
}

/// Compare `actual` with the golden file at `path`, or (re)write it when `UPDATE_GOLDEN` is
/// set. Panics with the path and what to do when they differ or the file is missing.
pub fn golden(path: &std::path::Path, actual: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        if let Some(dir) = path.parent()
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            panic!("{}: {e}", dir.display());
        }
        if let Err(e) = std::fs::write(path, actual) {
            panic!("{}: {e}", path.display());
        }
        return;
    }
    let expected = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it, and review it",
            path.display()
        ),
    };
    assert_eq!(
        actual,
        expected,
        "{} differs; if the change is intended, rerun with UPDATE_GOLDEN=1 and review it",
        path.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_their_kind_s_group() {
        let vs = key("VirtualService", "shop", "reviews");
        assert_eq!(
            (vs.group.as_str(), vs.version.as_str()),
            ("networking.istio.io", "v1")
        );
        assert_eq!(config_map("a").to_string(), "ConfigMap shop/a");
        assert_eq!(key("Namespace", "", "shop").namespace, None);
        assert_eq!(at(25, 3).to_rfc3339(), "2026-11-25T10:03:00+00:00");
    }
}
