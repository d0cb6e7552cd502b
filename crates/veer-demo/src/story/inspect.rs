//! What the committed tree holds, as veer will read it: its manifests, a VirtualService with
//! its routes and faults, the effect those faults have on callers, and the rollout policy
//! bound to it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::edit::parse_vs;
use super::{StoryError, Tree};
use veer_controller::manifest::rollout_policy::{self as rpolicy, RolloutPolicy};
use veer_controller::manifest::{self, ManifestSet, ReadOptions};
use veer_devcluster::exporter::{Routes, ServiceKey, routes_from_virtual_service};

/// The tree's manifests, read as a git source reads them.
pub fn manifests(tree: &Tree) -> ManifestSet {
    let options = ReadOptions::default();
    let mut set = ManifestSet::default();
    for (path, text) in tree {
        if manifest::is_manifest_path(path) {
            set.extend(&manifest::parse_file(path, text.as_bytes(), &options));
        }
    }
    set
}

/// A VirtualService of the story, as committed.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualServiceInfo {
    pub namespace: String,
    pub name: String,
    pub value: Value,
}

impl VirtualServiceInfo {
    /// The routes of its traffic, per service, as the exporter reads them (plain requests,
    /// and those carrying an A/B header).
    pub fn routes(&self) -> BTreeMap<ServiceKey, Routes> {
        self.value
            .get("spec")
            .map(|spec| routes_from_virtual_service(&self.namespace, spec))
            .unwrap_or_default()
    }

    /// Each HTTP route's fault, described: `route: delay 7s for 100% of matching requests`.
    /// A route without a `match` takes what no earlier route matched (Istio tries the
    /// routes in order), so its percentage is of those requests, not of all.
    pub fn faults(&self) -> Vec<String> {
        let routes = self
            .value
            .pointer("/spec/http")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let percent = |v: &Value| {
            v.pointer("/percentage/value")
                .and_then(Value::as_f64)
                .unwrap_or(100.0)
        };
        let mut out = Vec::new();
        for (i, r) in routes.iter().enumerate() {
            let Some(fault) = r.get("fault") else {
                continue;
            };
            let name = r
                .get("name")
                .and_then(Value::as_str)
                .map_or_else(|| format!("route {i}"), str::to_string);
            let who = if r.get("match").is_some() {
                "matching requests"
            } else if i == 0 {
                "all requests"
            } else {
                "the requests no earlier route matches"
            };
            if let Some(d) = fault.get("delay") {
                let by = d.get("fixedDelay").and_then(Value::as_str).unwrap_or("?");
                out.push(format!("{name}: delay {by} for {}% of {who}", percent(d)));
            }
            if let Some(a) = fault.get("abort") {
                let status = a.get("httpStatus").and_then(Value::as_u64).unwrap_or(0);
                out.push(format!(
                    "{name}: abort with HTTP {status} for {}% of {who}",
                    percent(a)
                ));
            }
        }
        out
    }
}

/// What a service's faults do to the requests its callers send, as the exporter models Istio:
/// a share `matched_share` of them carries the A/B header (and takes the matched route, when
/// there is one); an abort answers its percentage of a route's requests at once, a delay
/// holds back its percentage of the rest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultEffect {
    /// Percent of all requests aborted.
    pub aborted: f64,
    /// Percent of all requests delayed, and by how long (the longest delay).
    pub delayed: f64,
    pub delay_ms: f64,
}

pub fn fault_effect(routes: &Routes, matched_share: f64) -> FaultEffect {
    let (matched, share) = match &routes.matched {
        Some(m) => (Some(m), matched_share),
        None => (routes.plain.as_ref(), 0.0),
    };
    let mut effect = FaultEffect {
        aborted: 0.0,
        delayed: 0.0,
        delay_ms: 0.0,
    };
    for (split, part) in [(routes.plain.as_ref(), 1.0 - share), (matched, share)] {
        let Some(fault) = split.and_then(|s| s.fault.as_ref()) else {
            continue;
        };
        let aborted = fault.abort.as_ref().map_or(0.0, |a| a.percent / 100.0);
        effect.aborted += 100.0 * part * aborted;
        if let Some(d) = &fault.delay {
            effect.delayed += 100.0 * part * (1.0 - aborted) * d.percent / 100.0;
            effect.delay_ms = effect.delay_ms.max(d.delay_ms);
        }
    }
    effect
}

/// The VirtualService in `file` of the tree.
pub fn virtual_service(tree: &Tree, file: &str) -> Result<VirtualServiceInfo, StoryError> {
    let text = tree.get(file).ok_or_else(|| StoryError::Missing {
        file: file.to_string(),
    })?;
    let (mut docs, index) = parse_vs(file, text)?;
    let value = docs.swap_remove(index);
    let meta = |field: &str| {
        value
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let (Some(name), namespace) = (meta("name"), meta("namespace")) else {
        return Err(StoryError::NotVirtualService {
            file: file.to_string(),
            reason: "it has no metadata.name".to_string(),
        });
    };
    Ok(VirtualServiceInfo {
        namespace: namespace.unwrap_or_else(|| "default".to_string()),
        name,
        value,
    })
}

/// The rollout policy the VirtualService in `file` is bound to by annotation: the
/// repository's, else the shipped one of that name.
pub fn policy_for(tree: &Tree, file: &str) -> Result<Option<RolloutPolicy>, StoryError> {
    let vs = virtual_service(tree, file)?;
    let Some(name) = vs
        .value
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(rpolicy::POLICY_ANNOTATION))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    let set = manifests(tree);
    let repo: Vec<RolloutPolicy> = set
        .manifests
        .iter()
        .filter_map(|m| manifest::policy::rollout_policy(m).cloned())
        .collect();
    Ok(rpolicy::effective(&repo)
        .into_iter()
        .find(|p| p.name() == name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use veer_devcluster::exporter::Split;

    #[test]
    fn a_fault_is_described_as_a_share_of_the_requests_its_route_gets() {
        let abort =
            serde_json::json!({"abort": {"percentage": {"value": 10.0}, "httpStatus": 500}});
        let vs = |http: Value| VirtualServiceInfo {
            namespace: "bookinfo".into(),
            name: "ratings".into(),
            value: serde_json::json!({"spec": {"http": http}}),
        };
        // Alone, the route gets every request.
        let alone = vs(serde_json::json!([{"name": "all", "fault": abort}]));
        assert_eq!(
            alone.faults(),
            vec!["all: abort with HTTP 500 for 10% of all requests"]
        );
        // After a matched route, only what that route did not take.
        let after = vs(serde_json::json!([
            {"name": "test-user", "match": [{"headers": {"end-user": {"exact": "jason"}}}]},
            {"name": "rest", "fault": abort},
        ]));
        assert_eq!(
            after.faults(),
            vec!["rest: abort with HTTP 500 for 10% of the requests no earlier route matches"]
        );
    }

    #[test]
    fn a_delay_holds_back_what_the_abort_lets_through() {
        let mut split = Split::weights([("v1", 100)]);
        split.fault = Some(veer_devcluster::exporter::Fault {
            delay: Some(veer_devcluster::exporter::FaultDelay {
                delay_ms: 200.0,
                percent: 50.0,
            }),
            abort: Some(veer_devcluster::exporter::FaultAbort {
                http_status: 503,
                percent: 20.0,
            }),
        });
        let routes = Routes {
            plain: Some(split),
            matched: None,
        };
        let effect = fault_effect(&routes, 0.1);
        assert!((effect.aborted - 20.0).abs() < 1e-9, "{effect:?}");
        assert!((effect.delayed - 40.0).abs() < 1e-9, "{effect:?}");
    }
}
