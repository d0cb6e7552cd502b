//! Rollout detection: which HTTP routes of a VirtualService change weights between live and
//! git, the split each starts from and must end at, and the fields a running rollout owns (so
//! the diff neither reports them as drift nor applies git's weights over them).
//!
//! Works on the JSON form of both sides: live objects may carry fields a newer Istio added,
//! which the typed form would refuse.
//!
//! Routes are paired by `name` when both sides name them, else by position. A route is
//! shifted when its split differs as traffic (zero weights aside); a destination only one side
//! has weighs 0 on the other. When the destination lists are the same (same destinations in
//! the same order) the rollout owns `spec.http[N].route[M].weight`; when destinations are
//! added or removed it owns the whole `spec.http[N].route` list, because the list itself is
//! in flight.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::split::{DestinationId, TrafficSplit};
use super::{Overlay, RolloutError};
use crate::fields::{FieldPath, PathElement};

/// Which HTTP route of a VirtualService.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteRef {
    /// Position in `spec.http` (in git).
    pub index: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl std::fmt::Display for RouteRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(n) => write!(f, "spec.http[{}] ({n})", self.index),
            None => write!(f, "spec.http[{}]", self.index),
        }
    }
}

/// One route whose weights change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteShift {
    pub route: RouteRef,
    /// Position of the route in live `spec.http` (differs from git's when routes were named
    /// and reordered).
    pub live_index: usize,
    /// Live, with git-only destinations at 0.
    pub start: TrafficSplit,
    /// Git, with live-only destinations at 0.
    pub target: TrafficSplit,
    /// Do both sides list the same destinations in the same order?
    pub same_destinations: bool,
    /// Length of the route's destination list in git.
    pub destinations: usize,
}

impl RouteShift {
    /// The fields the rollout owns while it only moves weights (no overlay phase).
    pub fn owned_fields(&self) -> Vec<FieldPath> {
        owned_fields(self, None)
    }
}

fn route_path(index: usize, rest: &[PathElement]) -> FieldPath {
    let mut p = vec![
        PathElement::field("spec"),
        PathElement::field("http"),
        PathElement::Index(index),
    ];
    p.extend_from_slice(rest);
    FieldPath(p)
}

/// Fields a rollout owns for `shift` while `overlay` (mirror, A/B match, fault) is in place.
/// An A/B match adds a route ahead of the shifted one, so it owns the whole `spec.http` list.
pub fn owned_fields(shift: &RouteShift, overlay: Option<&Overlay>) -> Vec<FieldPath> {
    let i = shift.route.index;
    let mut out = Vec::new();
    match overlay {
        Some(Overlay::Match { .. }) => {
            return vec![FieldPath::fields(&["spec", "http"])];
        }
        Some(Overlay::Mirror { .. }) => {
            out.push(route_path(i, &[PathElement::field("mirror")]));
            out.push(route_path(i, &[PathElement::field("mirrorPercentage")]));
        }
        Some(Overlay::Fault { .. }) => {
            out.push(route_path(i, &[PathElement::field("fault")]));
        }
        None => {}
    }
    if shift.same_destinations {
        for m in 0..shift.destinations {
            out.push(route_path(
                i,
                &[
                    PathElement::field("route"),
                    PathElement::Index(m),
                    PathElement::field("weight"),
                ],
            ));
        }
    } else {
        out.push(route_path(i, &[PathElement::field("route")]));
    }
    out
}

/// The destination and weight of each item of an HTTP route's `route` list. Istio gives a
/// lone destination all traffic when its weight is unset.
fn route_weights(route: &Value, object: &str) -> Result<Vec<(DestinationId, u32)>, RolloutError> {
    let items = route
        .get("route")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let lone = items.len() == 1;
    let mut out = Vec::new();
    for item in items {
        let d = item.get("destination").unwrap_or(&Value::Null);
        let Some(host) = d.get("host").and_then(Value::as_str) else {
            return Err(RolloutError::MalformedRoute {
                object: object.to_string(),
                reason: "a route destination has no host".to_string(),
            });
        };
        let id = destination_id(d, host);
        let weight = match item.get("weight").and_then(Value::as_i64) {
            Some(w) => u32::try_from(w).map_err(|_| RolloutError::MalformedRoute {
                object: object.to_string(),
                reason: format!("weight {w} of {id} is negative"),
            })?,
            None if lone => 100,
            None => 0,
        };
        out.push((id, weight));
    }
    Ok(out)
}

fn to_split(
    weights: &[(DestinationId, u32)],
    object: &str,
    side: &str,
) -> Result<TrafficSplit, RolloutError> {
    // A destination listed twice gets the sum, as Envoy would send it both shares.
    let mut seen = std::collections::BTreeMap::new();
    for (d, w) in weights {
        *seen.entry(d.clone()).or_insert(0u32) += w;
    }
    let split: TrafficSplit = seen.into_iter().collect();
    if split.total() != 100 {
        return Err(RolloutError::WeightsDoNotSum {
            object: object.to_string(),
            side: side.to_string(),
            sum: split.total(),
        });
    }
    Ok(split)
}

/// The shifted routes of one VirtualService (`desired` from git, `live` from the cluster).
/// Routes with delegates, redirects or direct responses carry no weights and never shift. A
/// VirtualService that does not exist yet has nothing to shift from: it is created at once.
pub fn detect(desired: &Value, live: Option<&Value>) -> Result<Vec<RouteShift>, RolloutError> {
    let Some(live) = live else {
        return Ok(Vec::new());
    };
    let object = format!(
        "VirtualService {}/{}",
        metadata_str(desired, "namespace").unwrap_or("default"),
        metadata_str(desired, "name").unwrap_or("")
    );
    let empty = Vec::new();
    let git_routes = http_routes(desired).unwrap_or(&empty);
    let live_routes = http_routes(live).unwrap_or(&empty);
    let mut out = Vec::new();
    for (index, git_route) in git_routes.iter().enumerate() {
        let name = git_route
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string);
        let route = RouteRef {
            index,
            name: name.clone(),
        };
        let Some(live_index) = pair_live_route(live, &route) else {
            continue;
        };
        let Some(live_route) = live_routes.get(live_index) else {
            continue;
        };
        let git_weights = route_weights(git_route, &object)?;
        let live_weights = route_weights(live_route, &object)?;
        if git_weights.is_empty() || live_weights.is_empty() {
            continue;
        }
        let git_split = to_split(&git_weights, &object, "git")?;
        let live_split = to_split(&live_weights, &object, "live")?;
        if git_split.same_traffic(&live_split) {
            continue;
        }
        let same_destinations = git_weights.len() == live_weights.len()
            && git_weights
                .iter()
                .zip(&live_weights)
                .all(|((a, _), (b, _))| a == b);
        out.push(RouteShift {
            route: RouteRef { index, name },
            live_index,
            start: live_split.extended(&git_split),
            target: git_split.extended(&live_split),
            same_destinations,
            destinations: git_weights.len(),
        });
    }
    Ok(out)
}

/// The position in live `spec.http` of git's route `route`, as a rollout pairs them: the live
/// route of the same name; else the one at the same position among the user's routes (veer's
/// own A/B routes left out), if that one has no name either or git's has none. The one
/// pairing for detecting a shift, reading the live split and writing a step. Pure.
pub fn pair_live_route(live: &Value, route: &RouteRef) -> Option<usize> {
    fn name_of(r: &Value) -> Option<&str> {
        r.get("name").and_then(Value::as_str)
    }
    let users: Vec<(usize, &Value)> = http_routes(live)?
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            !name_of(r).is_some_and(|n| n.starts_with(super::render::MATCH_ROUTE_PREFIX))
        })
        .collect();
    let at = match &route.name {
        Some(n) => users
            .iter()
            .position(|(_, r)| name_of(r) == Some(n.as_str()))
            .or_else(|| {
                users
                    .get(route.index)
                    .filter(|(_, r)| name_of(r).is_none())
                    .map(|_| route.index)
            }),
        None => (route.index < users.len()).then_some(route.index),
    }?;
    users.get(at).map(|(i, _)| *i)
}

/// Write `split` into the route `route` of `object` (a VirtualService as JSON, usually live):
/// existing destinations get their weight, missing ones are appended. Zero weights are kept
/// (Istio accepts them) so a destination can come back without reordering the list; the final
/// apply of git's object removes them.
pub fn write_split(
    object: &mut Value,
    live_index: usize,
    split: &TrafficSplit,
) -> Result<(), RolloutError> {
    let name = metadata_str(object, "name").unwrap_or("").to_string();
    let Some(items) = http_routes_mut(object)
        .and_then(|h| h.get_mut(live_index))
        .and_then(|r| r.get_mut("route"))
        .and_then(Value::as_array_mut)
    else {
        return Err(RolloutError::MalformedRoute {
            object: format!("VirtualService {name}"),
            reason: format!("spec.http[{live_index}] has no route list"),
        });
    };
    let mut written = std::collections::BTreeSet::new();
    for item in items.iter_mut() {
        let d = item.get("destination").unwrap_or(&Value::Null);
        let host = d.get("host").and_then(Value::as_str).unwrap_or("");
        let id = destination_id(d, host);
        if let Value::Object(map) = item {
            map.insert("weight".to_string(), json!(split.weight(&id)));
        }
        written.insert(id);
    }
    for (d, w) in split.iter() {
        if written.contains(d) {
            continue;
        }
        let mut destination = json!({ "host": d.host });
        if let Some(s) = &d.subset {
            destination["subset"] = json!(s);
        }
        if let Some(p) = d.port {
            destination["port"] = json!({ "number": p });
        }
        items.push(json!({ "destination": destination, "weight": w }));
    }
    Ok(())
}

/// The destination a route item's `destination` (`d`, its `host` read by the caller) names.
fn destination_id(d: &Value, host: &str) -> DestinationId {
    DestinationId {
        host: host.into(),
        subset: d.get("subset").and_then(Value::as_str).map(Into::into),
        port: d
            .get("port")
            .and_then(|p| p.get("number"))
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok()),
    }
}

/// The split of route `live_index` as written in `object`, for read-back after a write.
pub fn read_split(object: &Value, live_index: usize) -> Result<TrafficSplit, RolloutError> {
    let route = http_routes(object)
        .and_then(|routes| routes.get(live_index))
        .unwrap_or(&Value::Null);
    let object_name = metadata_str(object, "name").unwrap_or("");
    to_split(&route_weights(route, object_name)?, object_name, "live")
}

/// `spec.http` of the VirtualService `object`. Read field by field, not through a JSON
/// pointer (which allocates a string per segment): a tick reads it several times for each
/// of its rollouts.
pub(crate) fn http_routes(object: &Value) -> Option<&Vec<Value>> {
    object.get("spec")?.get("http")?.as_array()
}

/// [`http_routes`], to change them.
pub(crate) fn http_routes_mut(object: &mut Value) -> Option<&mut Vec<Value>> {
    object.get_mut("spec")?.get_mut("http")?.as_array_mut()
}

/// `metadata.<field>` of `object`, when a string.
pub(crate) fn metadata_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}
