//! The write rules every create, update and patch goes through, as a real API server applies
//! them: valid names, resourceVersion preconditions, the status subresource, uid,
//! creationTimestamp and generation, defaults, immutable fields, managedFields, CRD
//! registration, no new version for a write that changes nothing, and dry runs.

use serde_json::{Value, json};

use super::defaults::{apply_defaults, fake_deployment_status};
use super::{
    ChangeType, Ownership, State, StoreKey, Subresource, Write, meta_str, remove_meta, set_meta,
};
use crate::catalog::ResourceType;
use crate::status::ApiError;

/// DNS-1123 subdomain, as Kubernetes requires of most names.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Everything outside `metadata` and `status`: what bumps `generation`.
fn spec_part(object: &Value) -> Value {
    match object.as_object() {
        Some(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        None => Value::Null,
    }
}

impl State {
    /// The write rules shared by create, update and patch.
    pub(super) fn commit(
        &mut self,
        rt: &ResourceType,
        key: StoreKey,
        old: Option<Value>,
        mut new: Value,
        sub: Subresource,
        w: &Write,
    ) -> Result<Value, ApiError> {
        let name = key.name.clone();
        let now = w.timestamp();
        if !valid_name(&name) {
            return Err(ApiError::invalid(
                rt,
                &name,
                &[(
                    "metadata.name",
                    format!(
                        "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
                    ),
                )],
            ));
        }
        new["apiVersion"] = json!(rt.api_version(rt.preferred_version()));
        new["kind"] = json!(rt.kind);
        // Stored as a real server encodes it: `25.0` is served back as `25`.
        crate::numbers::canonical_numbers(&mut new);
        if let Some(old) = &old {
            // Optimistic concurrency: a stated resourceVersion must be the current one.
            if let Some(rv) = meta_str(&new, "resourceVersion").filter(|s| !s.is_empty())
                && Some(rv) != meta_str(old, "resourceVersion")
            {
                return Err(ApiError::stale(rt, &name));
            }
            if rt.status_subresource {
                match sub {
                    Subresource::Main => match old.get("status") {
                        Some(s) => new["status"] = s.clone(),
                        None => {
                            if let Some(m) = new.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    },
                    Subresource::Status => {
                        let status = new.get("status").cloned();
                        let rv = meta_str(old, "resourceVersion").map(str::to_string);
                        new = old.clone();
                        match status {
                            Some(s) => new["status"] = s,
                            None => {
                                if let Some(m) = new.as_object_mut() {
                                    m.remove("status");
                                }
                            }
                        }
                        if let Some(rv) = rv {
                            set_meta(&mut new, "resourceVersion", json!(rv));
                        }
                    }
                }
            }
            for field in ["uid", "creationTimestamp", "generation"] {
                match old.get("metadata").and_then(|om| om.get(field)) {
                    Some(v) => set_meta(&mut new, field, v.clone()),
                    None => remove_meta(&mut new, field),
                };
            }
        } else {
            set_meta(&mut new, "uid", json!(uuid::Uuid::new_v4().to_string()));
            set_meta(&mut new, "creationTimestamp", json!(now));
            remove_meta(&mut new, "generation");
            if rt.status_subresource
                && let Some(obj) = new.as_object_mut()
            {
                obj.remove("status");
            }
        }
        if let Some(old) = &old {
            crate::immutable::keep_allocated(&rt.group, &rt.kind, old, &mut new);
        }
        apply_defaults(rt, &mut new, self.rv + 1);
        // Immutable fields: refused before anything (a dry run included) is stored.
        if let Some(old) = &old {
            let violations = crate::immutable::immutable_violations(&rt.group, &rt.kind, old, &new);
            if !violations.is_empty() {
                return Err(ApiError::invalid(rt, &name, &violations));
            }
        }
        drop_empty_metadata(&mut new);
        match w.ownership {
            // Defaults are in by now: a real server defaults while decoding, so an updater owns
            // the defaulted fields too (an applier does not: they were not in its config).
            Ownership::Update { manager } => {
                new = veer_fields::fields::update_with(
                    old.as_ref(),
                    &new,
                    manager,
                    w.now,
                    self.catalog.semantics(),
                );
            }
            Ownership::Applied => {}
        }
        if rt.tracks_generation {
            let generation = match &old {
                None => 1,
                Some(o) => {
                    let g = o
                        .pointer("/metadata/generation")
                        .and_then(Value::as_i64)
                        .unwrap_or(1);
                    if spec_part(o) != spec_part(&new) {
                        g + 1
                    } else {
                        g
                    }
                }
            };
            set_meta(&mut new, "generation", json!(generation));
        }
        if rt.group == "apps" && rt.kind == "Deployment" {
            fake_deployment_status(&mut new);
        }
        if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
            let t = crate::catalog::resource_type_of_crd(&new)
                .map_err(|why| ApiError::invalid(rt, &name, &[("spec", why.to_string())]))?;
            new["status"] = json!({
                "acceptedNames": new.pointer("/spec/names").cloned().unwrap_or(json!({})),
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now}
                ],
                "storedVersions": [t.preferred_version()],
            });
            if let Some(o) = &old
                && let Some(lt) = o.pointer("/status/conditions")
            {
                new["status"]["conditions"] = lt.clone();
            }
        }
        // A write that changes nothing gets no new version and no event, as on a real server.
        if let Some(old) = &old {
            let mut same = new.clone();
            if let Some(rv) = meta_str(old, "resourceVersion") {
                set_meta(&mut same, "resourceVersion", json!(rv));
            }
            if &same == old {
                return Ok(old.clone());
            }
        }
        if w.dry_run {
            // Nothing is stored, so no version is issued: a dry-run update shows the current
            // one, a dry-run create none.
            match old.as_ref().and_then(|o| meta_str(o, "resourceVersion")) {
                Some(rv) => set_meta(&mut new, "resourceVersion", json!(rv)),
                None => remove_meta(&mut new, "resourceVersion"),
            }
            return Ok(new);
        }
        let rv = self.rv + 1;
        set_meta(&mut new, "resourceVersion", json!(rv.to_string()));
        if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
            self.catalog
                .register_crd(&new)
                .map_err(|why| ApiError::invalid(rt, &name, &[("spec", why.to_string())]))?;
        }
        self.rv = rv;
        let change = if old.is_some() {
            ChangeType::Modified
        } else {
            ChangeType::Added
        };
        self.objects.insert(key.clone(), new.clone());
        self.record(change, key, new.clone(), old);
        Ok(new)
    }
}

/// Go's `omitempty`: a real server never returns empty labels, annotations, finalizers or
/// owner references, so neither do we (kubectl's patches often leave `annotations: {}`).
fn drop_empty_metadata(object: &mut Value) {
    if let Some(m) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in ["labels", "annotations", "finalizers", "ownerReferences"] {
            let empty = match m.get(field) {
                Some(Value::Object(o)) => o.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Null) => true,
                _ => false,
            };
            if empty {
                m.remove(field);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::{cm, now, rt, w};
    use super::super::{State, Subresource};

    #[test]
    fn generation_follows_spec_and_status_is_a_subresource() {
        let mut s = State::new(100, now());
        let r = rt(&s, "networking.istio.io", "VirtualService");
        let vs = json!({"apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
                        "metadata": {"name": "v"}, "spec": {"hosts": ["a"]}, "status": {"x": 1}});
        let created = s.create(&r, Some("default"), vs, &w(false)).unwrap();
        assert_eq!(
            created["apiVersion"], "networking.istio.io/v1",
            "stored at the preferred version"
        );
        assert_eq!(created["metadata"]["generation"], 1);
        assert!(
            created.get("status").is_none(),
            "status is ignored on create"
        );
        let mut labelled = created.clone();
        labelled["metadata"]["labels"] = json!({"a": "b"});
        let labelled = s
            .update(
                &r,
                Some("default"),
                "v",
                labelled,
                Subresource::Main,
                &w(false),
            )
            .unwrap();
        assert_eq!(
            labelled["metadata"]["generation"], 1,
            "metadata changes keep generation"
        );
        let mut status = labelled.clone();
        status["status"] = json!({"ok": true});
        status["spec"] = json!({"hosts": ["ignored"]});
        let with_status = s
            .update(
                &r,
                Some("default"),
                "v",
                status,
                Subresource::Status,
                &w(false),
            )
            .unwrap();
        assert_eq!(with_status["status"], json!({"ok": true}));
        assert_eq!(with_status["spec"], json!({"hosts": ["a"]}));
        let mut spec = with_status.clone();
        spec["spec"] = json!({"hosts": ["b"]});
        spec["status"] = json!({"ignored": true});
        let changed = s
            .update(&r, Some("default"), "v", spec, Subresource::Main, &w(false))
            .unwrap();
        assert_eq!(changed["metadata"]["generation"], 2);
        assert_eq!(changed["status"], json!({"ok": true}));
    }

    #[test]
    fn dry_run_changes_nothing() {
        let mut s = State::new(100, now());
        let r = rt(&s, "", "ConfigMap");
        let before = s.resource_version();
        let out = s
            .create(&r, Some("default"), cm("a", "1"), &w(true))
            .unwrap();
        assert_eq!(out["metadata"]["name"], "a");
        assert_eq!(s.resource_version(), before);
        assert!(s.get(&r, Some("default"), "a").is_err());
    }
}
