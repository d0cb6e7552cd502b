//! Which Sidecar applies to a workload: at most one default (selector-less) Sidecar per
//! namespace (istioctl IST0111), and no two Sidecars selecting the same pods (IST0110).
//!
//! istioctl matches selectors against the cluster's Pods; offline, veer matches them against
//! the pod templates of the workloads in the revision (Deployments, StatefulSets, ...), whose
//! pods get exactly those labels.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::istio::sidecar::Sidecar;
use crate::manifest::istio::{IstioObject, Labels};
use crate::validate::Index;

/// A namespace has at most one default Sidecar (one without workloadSelector); with two,
/// which one applies is undefined.
pub(super) fn check_namespace_defaults(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    let mut defaults: BTreeMap<&str, &Manifest> = BTreeMap::new();
    for (m, sidecar) in &index.sidecars {
        if sidecar.spec.workload_selector.is_some() {
            continue;
        }
        match defaults.get(m.namespace()) {
            Some(first) => out.push(
                m.error(
                    "sidecar-multiple-default",
                    "/metadata/name",
                    format!(
                        "namespace `{}` already has a default Sidecar (one without workloadSelector), `{}` at {}:{}; with two, which one applies is undefined",
                        m.namespace(),
                        first.key.name,
                        first.file,
                        first.line
                    ),
                )
                .istio("IST0111")
                .fix("merge the two Sidecars, or add spec.workloadSelector to this one so it applies to specific workloads"),
            ),
            None => {
                defaults.insert(m.namespace(), m);
            }
        }
    }
}

/// Where the pod labels of a workload kind are.
fn pod_labels_pointer(group: &str, kind: &str) -> Option<&'static str> {
    match (group, kind) {
        ("", "Pod") => Some("/metadata/labels"),
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet")
        | ("batch", "Job")
        | ("", "ReplicationController") => Some("/spec/template/metadata/labels"),
        ("batch", "CronJob") => Some("/spec/jobTemplate/spec/template/metadata/labels"),
        _ => None,
    }
}

/// Does every label of the selector appear, with its value, among the pod's labels?
fn selects(selector: &Labels, pod: &serde_json::Map<String, Value>) -> bool {
    selector
        .iter()
        .all(|(k, v)| pod.get(k).and_then(Value::as_str) == Some(v.as_str()))
}

/// Two Sidecars whose selectors both match a workload's pods: which one applies is
/// undefined. Each Sidecar is reported once, with the first workload it shares.
pub(super) fn check_conflicts(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    let selective: Vec<(&Manifest, &IstioObject<Sidecar>)> = index
        .sidecars
        .iter()
        .filter(|(_, s)| {
            s.spec
                .workload_selector
                .as_ref()
                .is_some_and(|sel| !sel.labels.is_empty())
        })
        .copied()
        .collect();
    if selective.len() < 2 {
        return;
    }
    let mut reported: HashSet<usize> = HashSet::new();
    for workload in index.all {
        let Some(pointer) = pod_labels_pointer(&workload.key.group, &workload.key.kind) else {
            continue;
        };
        let Some(labels) = workload.value.pointer(pointer).and_then(Value::as_object) else {
            continue;
        };
        let matching: Vec<usize> = selective
            .iter()
            .enumerate()
            .filter(|(_, (m, s))| {
                m.namespace() == workload.namespace()
                    && s.spec
                        .workload_selector
                        .as_ref()
                        .is_some_and(|sel| selects(&sel.labels, labels))
            })
            .map(|(i, _)| i)
            .collect();
        if matching.len() < 2 {
            continue;
        }
        for &i in &matching {
            if !reported.insert(i) {
                continue;
            }
            let (m, _) = selective[i];
            let others: Vec<String> = matching
                .iter()
                .filter(|j| **j != i)
                .map(|j| {
                    let (o, _) = selective[*j];
                    format!("`{}` ({}:{})", o.key.name, o.file, o.line)
                })
                .collect();
            out.push(
                m.error(
                    "sidecar-selector-conflict",
                    "/spec/workloadSelector",
                    format!(
                        "selects the pods of {} {}/{} ({}:{}), as Sidecar {} does; which one applies to them is undefined",
                        workload.key.kind,
                        workload.namespace(),
                        workload.key.name,
                        workload.file,
                        workload.line,
                        others.join(", ")
                    ),
                )
                .istio("IST0110")
                .fix("merge the Sidecars, or make their selectors pick different workloads"),
            );
        }
    }
}
