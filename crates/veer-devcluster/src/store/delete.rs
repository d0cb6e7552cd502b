//! Deletes, with their preconditions (uid, resourceVersion): a Namespace goes Terminating and
//! takes its objects with it, a CRD its kind and that kind's objects.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{ChangeType, State, StoreKey, key_of, meta_str, set_meta};
use crate::catalog::ResourceType;
use crate::status::ApiError;

impl State {
    /// Delete an object; a Namespace takes its objects with it, a CRD its kind and objects.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        preconditions: &Value,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<Value, ApiError> {
        let key = key_of(rt, namespace, name);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        if let Some(uid) = preconditions.get("uid").and_then(Value::as_str)
            && Some(uid) != meta_str(&old, "uid")
        {
            return Err(ApiError::conflict(
                rt,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid").unwrap_or("")
                ),
            ));
        }
        if let Some(rv) = preconditions.get("resourceVersion").and_then(Value::as_str)
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::stale(rt, name));
        }
        if dry_run {
            return Ok(old);
        }
        let mut dependents: Vec<StoreKey> = Vec::new();
        let mut answer = None;
        if rt.group.is_empty() && rt.kind == "Namespace" {
            // As Kubernetes does: the namespace goes Terminating (watchers see it), everything
            // in it is deleted, then it goes; the answer is the Terminating namespace. A real
            // server's namespace controller takes seconds; here it is one step, so a client
            // never meets a half-emptied namespace.
            let mut terminating = old.clone();
            set_meta(
                &mut terminating,
                "deletionTimestamp",
                json!(now.to_rfc3339_opts(SecondsFormat::Secs, true)),
            );
            terminating["status"] = json!({"phase": "Terminating"});
            self.rv += 1;
            set_meta(
                &mut terminating,
                "resourceVersion",
                json!(self.rv.to_string()),
            );
            self.objects.insert(key.clone(), terminating.clone());
            self.record(
                ChangeType::Modified,
                key.clone(),
                terminating.clone(),
                Some(old.clone()),
            );
            answer = Some(terminating);
            dependents = self
                .objects
                .keys()
                .filter(|k| k.namespace == name)
                .cloned()
                .collect();
        }
        if rt.group == "apiextensions.k8s.io"
            && rt.kind == "CustomResourceDefinition"
            && let Some(gone) = self.catalog.unregister_crd(&old)
        {
            dependents = self
                .objects
                .keys()
                .filter(|k| k.group == gone.group && k.kind == gone.kind)
                .cloned()
                .collect();
        }
        for k in dependents {
            self.remove(k);
        }
        let gone = self.remove(key).unwrap_or(old);
        Ok(answer.unwrap_or(gone))
    }

    fn remove(&mut self, key: StoreKey) -> Option<Value> {
        let mut object = self.objects.remove(&key)?;
        self.rv += 1;
        set_meta(&mut object, "resourceVersion", json!(self.rv.to_string()));
        self.record(ChangeType::Deleted, key, object.clone(), None);
        Some(object)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::Selection;
    use super::super::State;
    use super::super::fixtures::{cm, now, rt, w};

    #[test]
    fn deleting_a_namespace_deletes_its_objects() {
        let mut s = State::new(100, now());
        let ns = rt(&s, "", "Namespace");
        let r = rt(&s, "", "ConfigMap");
        s.create(&ns, None, json!({"metadata": {"name": "team"}}), &w(false))
            .unwrap();
        s.create(&r, Some("team"), cm("a", "1"), &w(false)).unwrap();
        s.create(&r, Some("default"), cm("a", "1"), &w(false))
            .unwrap();
        let mut feed = s.watch(&ns, None, &Selection::default()).unwrap().feed;
        let answer = s
            .delete(&ns, None, "team", &Value::Null, false, now())
            .unwrap();
        assert_eq!(answer["status"]["phase"], "Terminating");
        assert!(answer["metadata"]["deletionTimestamp"].is_string());
        assert!(s.get(&r, Some("team"), "a").is_err());
        assert!(s.get(&r, Some("default"), "a").is_ok());
        assert!(s.get(&ns, None, "team").is_err());
        // Watchers see Terminating, the contents go, then the namespace.
        let mut seen = Vec::new();
        while let Ok(c) = feed.try_recv() {
            seen.push(format!(
                "{} {} {}",
                c.change.as_str(),
                c.key.kind,
                c.object["status"]["phase"].as_str().unwrap_or("-")
            ));
        }
        assert_eq!(
            seen,
            [
                "MODIFIED Namespace Terminating",
                "DELETED ConfigMap -",
                "DELETED Namespace Terminating"
            ]
        );
    }
}
