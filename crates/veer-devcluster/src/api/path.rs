//! Resource paths, parsed by hand: `/api/{v}/…` and `/apis/{group}/{version}/…`, with or
//! without `namespaces/{ns}/`, down to a name and a subresource (`status`, `scale`).

use super::scale::has_scale;
use crate::catalog::ResourceType;
use crate::status::ApiError;
use crate::store::{State, Subresource};

/// A parsed resource path.
pub(super) struct Target {
    pub(super) rt: ResourceType,
    pub(super) version: String,
    pub(super) namespace: Option<String>,
    pub(super) name: Option<String>,
    pub(super) sub: Subresource,
    /// `/scale` (Deployments): the replica count seen as an `autoscaling/v1` Scale.
    pub(super) scale: bool,
}

pub(super) enum Parsed {
    /// `/api/v1` or `/apis/{g}/{v}`: the resource list of a group version.
    ResourceList(String, String),
    /// `/apis/{g}`.
    Group(String),
    Resource(Target),
}

pub(super) fn not_found_path() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

pub(super) fn parse_path(state: &State, path: &str) -> Result<Parsed, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g] => return Ok(Parsed::Group(g.to_string())),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(not_found_path()),
    };
    if rest.is_empty() {
        return Ok(Parsed::ResourceList(group.into(), version.into()));
    }
    let namespace_sub = |s: &str| matches!(s, "status" | "finalize");
    let (namespace, tail) = match rest {
        ["namespaces", ns, third, tail @ ..] if !(tail.is_empty() && namespace_sub(third)) => {
            (Some(ns.to_string()), &rest[2..])
        }
        _ => (None, rest),
    };
    let (plural, name, sub) = match tail {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(*sub)),
        _ => return Err(not_found_path()),
    };
    let rt = state
        .catalog
        .by_plural(group, version, plural)
        .cloned()
        .ok_or_else(not_found_path)?;
    let scale = sub == Some("scale") && has_scale(&rt);
    let sub = match sub {
        None => Subresource::Main,
        Some("status") if rt.status_subresource => Subresource::Status,
        Some("scale") if scale => Subresource::Main,
        Some(_) => return Err(not_found_path()),
    };
    if (rt.namespaced && namespace.is_none() && name.is_some())
        || (!rt.namespaced && namespace.is_some())
    {
        return Err(not_found_path());
    }
    Ok(Parsed::Resource(Target {
        rt,
        version: version.to_string(),
        namespace,
        name,
        sub,
        scale,
    }))
}
