//! VirtualService checks: route weights, subsets and gateways that must exist in the revision,
//! host names, fault-injection and mirror percentages, abort status codes, match regexes,
//! durations, retry attempts, and two VirtualServices claiming one host on one gateway.
//!
//! This file runs the checks and holds what they share (the destinations and the `mesh`
//! gateway); `routes` checks hosts and weights, `references` what must exist or must not
//! clash in the revision, `faults` fault-injection and mirror settings, `http` regexes,
//! durations and retries.

/// The checks of this module, for the catalog (`validate::catalog`).
pub const CHECKS: &[super::catalog::Check] = &[];

mod faults;
mod http;
mod references;
mod routes;

pub use faults::{check_abort_status, check_percentages};
pub(crate) use http::duration_at_least_1ms;
pub use http::{check_durations, check_regexes, check_retry_attempts};
pub use references::{check_gateways, check_host_conflicts, check_subsets};
pub use routes::{check_hosts, check_weights};

use super::Index;
use crate::diagnostic::Diagnostic;
use crate::manifest::istio::virtual_service::{Destination, VirtualService};

/// The gateway name meaning "every sidecar in the mesh"; always exists.
pub const MESH_GATEWAY: &str = "mesh";

pub fn check(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    for (m, vs) in &index.virtual_services {
        let vs = &vs.spec;
        check_hosts(m, vs, out);
        check_weights(m, vs, out);
        check_subsets(index, m, vs, out);
        check_gateways(index, m, vs, out);
        check_percentages(m, vs, out);
        check_abort_status(m, vs, out);
        check_regexes(m, vs, out);
        check_durations(m, vs, out);
        check_retry_attempts(m, vs, out);
    }
    check_host_conflicts(index, out);
}

/// Every destination of a VirtualService with the JSON pointer of its `destination` field.
fn destinations(vs: &VirtualService) -> Vec<(String, &Destination)> {
    let mut found = Vec::new();
    for (i, http) in vs.http.iter().enumerate() {
        let base = format!("/spec/http/{i}");
        for (j, r) in http.route.iter().enumerate() {
            found.push((format!("{base}/route/{j}/destination"), &r.destination));
        }
        if let Some(mirror) = &http.mirror {
            found.push((format!("{base}/mirror"), mirror));
        }
        for (j, mirror) in http.mirrors.iter().enumerate() {
            found.push((
                format!("{base}/mirrors/{j}/destination"),
                &mirror.destination,
            ));
        }
    }
    for (i, tcp) in vs.tcp.iter().enumerate() {
        for (j, r) in tcp.route.iter().enumerate() {
            found.push((
                format!("/spec/tcp/{i}/route/{j}/destination"),
                &r.destination,
            ));
        }
    }
    for (i, tls) in vs.tls.iter().enumerate() {
        for (j, r) in tls.route.iter().enumerate() {
            found.push((
                format!("/spec/tls/{i}/route/{j}/destination"),
                &r.destination,
            ));
        }
    }
    found
}

/// Fixtures the submodules' tests share.
#[cfg(test)]
mod fixtures {
    use super::*;
    use crate::manifest::{Manifest, ReadOptions, parse_file};

    pub(super) type Check = fn(&Manifest, &VirtualService, &mut Vec<Diagnostic>);

    pub(super) const VS: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec:\n";

    /// Parse `text` (which must read cleanly) and run `check` over the whole revision.
    pub(super) fn run_index(
        text: &str,
        check: impl Fn(&Index<'_>, &mut Vec<Diagnostic>),
    ) -> Vec<Diagnostic> {
        let f = parse_file("t.yaml", text.as_bytes(), &ReadOptions::default());
        assert!(
            f.diagnostics.is_empty(),
            "fixture does not read: {:?}",
            f.diagnostics
        );
        let index = Index::new(&f.manifests);
        let mut out = Vec::new();
        check(&index, &mut out);
        out
    }

    /// Run a per-VirtualService check on the VirtualService whose spec body is `body`.
    pub(super) fn run(check: Check, body: &str) -> Vec<(&'static str, u32)> {
        run_index(&format!("{VS}{body}"), |index, out| {
            for (m, vs) in &index.virtual_services {
                check(m, &vs.spec, out);
            }
        })
        .iter()
        .map(|d| (d.code, d.line))
        .collect()
    }

    pub(super) fn table(check: Check, cases: &[(&str, &[(&str, u32)])]) {
        for (body, expected) in cases {
            let got = run(check, body);
            assert_eq!(&got, expected, "for spec:\n{body}");
        }
    }
}
