//! The Helm chart, through the real `helm` (3.17, fetched by `scripts/install-deps.sh`):
//! `helm lint --strict`, then `helm install --dry-run=server` against the embedded API server
//! with the default values and with `ci/full-values.yaml`; every document is checked (valid
//! YAML, apiVersion/kind/name, RBAC without wildcards, a non-root read-only pod, probes,
//! secrets mounted where veer.yaml points, veer.yaml accepted by `veer::config::resolve`) and
//! applied to the embedded API server with server-side apply. The manifests are golden files:
//! `UPDATE_GOLDEN=1 cargo test --test chart`.

#[path = "../support/devcluster.rs"]
mod devcluster;
#[path = "../support/helm.rs"]
mod helm;

mod common;
mod renders;
mod server_apply;
mod values;
