//! Discovery: which resource (plural, scope) serves a (group, version, kind). Answers are
//! cached; a kind not served yet is asked for again next time, so a CRD applied a moment ago
//! is found as soon as the server serves it.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Scope};

use super::ClusterError;
use crate::manifest::ObjectKey;

/// A kind the cluster serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub resource: ApiResource,
    pub namespaced: bool,
}

type Gvk = (String, String, String);

fn gvk(key: &ObjectKey) -> Gvk {
    (key.group.clone(), key.version.clone(), key.kind.clone())
}

#[derive(Default)]
pub(super) struct Discovery {
    known: Mutex<HashMap<Gvk, Resolved>>,
}

impl Discovery {
    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<Gvk, Resolved>> {
        // The map is only ever inserted into whole entries; a poisoned lock still holds a
        // consistent map.
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What discovery said before, without asking the server.
    pub(super) fn cached(&self, key: &ObjectKey) -> Option<Resolved> {
        self.known().get(&gvk(key)).cloned()
    }

    pub(super) fn forget(&self, key: &ObjectKey) {
        self.known().remove(&gvk(key));
    }

    pub(super) async fn resolve(
        &self,
        client: &kube::Client,
        key: &ObjectKey,
    ) -> Result<Resolved, ClusterError> {
        if let Some(r) = self.cached(key) {
            return Ok(r);
        }
        let wanted = GroupVersionKind::gvk(&key.group, &key.version, &key.kind);
        let unknown = || ClusterError::UnknownKind {
            api_version: key.api_version(),
            kind: key.kind.clone(),
        };
        match kube::discovery::pinned_kind(client, &wanted).await {
            Ok((resource, caps)) => {
                let resolved = Resolved {
                    resource,
                    namespaced: match caps.scope {
                        Scope::Namespaced => true,
                        Scope::Cluster => false,
                    },
                };
                self.known().insert(gvk(key), resolved.clone());
                Ok(resolved)
            }
            Err(kube::Error::Api(status)) if status.code == 404 => Err(unknown()),
            Err(kube::Error::Discovery(_)) => Err(unknown()),
            Err(e) => Err(ClusterError::Discovery {
                api_version: key.api_version(),
                reason: e.to_string(),
            }),
        }
    }
}
