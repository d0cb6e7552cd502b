//! Writes as requests make them: create (a name or generateName, an existing namespace, no
//! duplicate), update (PUT, of the object or its status) and the write of a patched object,
//! each checked against the URL (kind, apiVersion, namespace, name) before the write rules.

use serde_json::{Value, json};

use super::{
    State, StoreKey, Subresource, Write, key_of, meta_str, remove_meta, set_meta, split_api_version,
};
use crate::catalog::ResourceType;
use crate::status::ApiError;

impl State {
    fn require_namespace(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
    ) -> Result<(), ApiError> {
        if !rt.namespaced {
            return Ok(());
        }
        let ns = namespace.ok_or_else(|| {
            ApiError::bad_request(format!(
                "{} is namespaced: the request needs a namespace",
                rt.kind
            ))
        })?;
        let key = StoreKey {
            group: String::new(),
            kind: "Namespace".into(),
            namespace: String::new(),
            name: ns.to_string(),
        };
        if self.objects.contains_key(&key) {
            Ok(())
        } else {
            Err(ApiError::namespace_not_found(ns))
        }
    }

    /// Check the body names the kind of the URL, fill namespace from the URL.
    fn check_body(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        object: &mut Value,
    ) -> Result<(), ApiError> {
        if !object.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON or YAML object",
            ));
        }
        if let Some(kind) = object.get("kind").and_then(Value::as_str)
            && kind != rt.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind of the body ({kind}) does not match the resource ({})",
                rt.kind
            )));
        }
        if let Some(av) = object.get("apiVersion").and_then(Value::as_str) {
            let (group, version) = split_api_version(av);
            if group != rt.group || !rt.serves(version) {
                return Err(ApiError::bad_request(format!(
                    "the apiVersion of the body ({av}) does not match the resource ({})",
                    rt.api_version(rt.preferred_version())
                )));
            }
        }
        if rt.namespaced {
            let url_ns = namespace.unwrap_or("");
            match meta_str(object, "namespace") {
                Some(ns) if ns != url_ns => {
                    return Err(ApiError::bad_request(format!(
                        "the namespace of the provided object ({ns}) does not match the namespace sent on the request ({url_ns})"
                    )));
                }
                _ => {
                    set_meta(object, "namespace", json!(url_ns));
                }
            }
        } else {
            remove_meta(object, "namespace");
        }
        Ok(())
    }

    pub fn create(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        mut object: Value,
        w: &Write,
    ) -> Result<Value, ApiError> {
        self.check_body(rt, namespace, &mut object)?;
        if meta_str(&object, "resourceVersion").is_some_and(|s| !s.is_empty()) {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let name = match (meta_str(&object, "name"), meta_str(&object, "generateName")) {
            (Some(n), _) if !n.is_empty() => n.to_string(),
            (_, Some(prefix)) if !prefix.is_empty() => {
                let suffix: String = uuid::Uuid::new_v4()
                    .simple()
                    .to_string()
                    .chars()
                    .take(5)
                    .collect();
                let name = format!("{prefix}{suffix}");
                set_meta(&mut object, "name", json!(name));
                name
            }
            _ => {
                return Err(ApiError::invalid(
                    rt,
                    "",
                    &[(
                        "metadata.name",
                        "Required value: name or generateName is required".into(),
                    )],
                ));
            }
        };
        self.require_namespace(rt, namespace)?;
        let key = key_of(rt, namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(rt, &name));
        }
        self.commit(rt, key, None, object, Subresource::Main, w)
    }

    /// Replace an object (PUT), or its status.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        mut object: Value,
        sub: Subresource,
        w: &Write,
    ) -> Result<Value, ApiError> {
        self.check_body(rt, namespace, &mut object)?;
        if let Some(body_name) = meta_str(&object, "name")
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        set_meta(&mut object, "name", json!(name));
        let key = key_of(rt, namespace, name);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        self.commit(rt, key, Some(old), object, sub, w)
    }

    /// Write a patched object: `patched` is the current object with the patch applied.
    pub fn write_patched(
        &mut self,
        rt: &ResourceType,
        old: Value,
        mut patched: Value,
        sub: Subresource,
        w: &Write,
    ) -> Result<Value, ApiError> {
        let name = meta_str(&old, "name").unwrap_or("").to_string();
        let namespace = meta_str(&old, "namespace").map(str::to_string);
        self.check_body(rt, namespace.as_deref(), &mut patched)?;
        if meta_str(&patched, "name") != Some(name.as_str()) {
            return Err(ApiError::bad_request("a patch cannot change metadata.name"));
        }
        let key = key_of(rt, namespace.as_deref(), &name);
        self.commit(rt, key, Some(old), patched, sub, w)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::{NOW, cm, now, rt, w};
    use super::super::{State, Subresource};

    #[test]
    fn create_sets_server_fields_and_refuses_duplicates() {
        let mut s = State::new(100, now());
        let r = rt(&s, "", "ConfigMap");
        let created = s
            .create(&r, Some("default"), cm("a", "1"), &w(false))
            .unwrap();
        assert_eq!(created["metadata"]["namespace"], "default");
        assert_eq!(created["metadata"]["creationTimestamp"], NOW);
        assert!(created["metadata"]["uid"].as_str().unwrap().len() == 36);
        assert!(
            created["metadata"].get("generation").is_none(),
            "ConfigMaps have no generation"
        );
        let err = s
            .create(&r, Some("default"), cm("a", "1"), &w(false))
            .unwrap_err();
        assert_eq!((err.code, err.reason), (409, "AlreadyExists"));
        let err = s
            .create(&r, Some("nope"), cm("b", "1"), &w(false))
            .unwrap_err();
        assert_eq!((err.code, err.reason), (404, "NotFound"));
        let err = s
            .create(&r, Some("default"), cm("Bad_Name", "1"), &w(false))
            .unwrap_err();
        assert_eq!((err.code, err.reason), (422, "Invalid"));
    }

    #[test]
    fn update_checks_resource_version_and_skips_no_ops() {
        let mut s = State::new(100, now());
        let r = rt(&s, "", "ConfigMap");
        let created = s
            .create(&r, Some("default"), cm("a", "1"), &w(false))
            .unwrap();
        let rv = created["metadata"]["resourceVersion"].clone();
        let mut next = created.clone();
        next["data"]["k"] = json!("2");
        let updated = s
            .update(
                &r,
                Some("default"),
                "a",
                next.clone(),
                Subresource::Main,
                &w(false),
            )
            .unwrap();
        assert_ne!(updated["metadata"]["resourceVersion"], rv);
        let err = s
            .update(&r, Some("default"), "a", next, Subresource::Main, &w(false))
            .unwrap_err();
        assert_eq!((err.code, err.reason), (409, "Conflict"));
        let before = s.resource_version();
        let same = s
            .update(
                &r,
                Some("default"),
                "a",
                updated.clone(),
                Subresource::Main,
                &w(false),
            )
            .unwrap();
        assert_eq!(same, updated);
        assert_eq!(
            s.resource_version(),
            before,
            "a no-op write gets no new version"
        );
    }
}
