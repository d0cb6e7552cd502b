//! What a validation kept for the next revision holds of its findings, in bytes, on the
//! benches' generated revision (`benches/support/manifests.rs`: at 10,000 objects, 2,500
//! VirtualServices whose two destinations name no Service: 5,000 warnings), with the
//! cluster's Services (as `veer run` validates) and without. The bytes are counted by walking
//! the structures: each list's room (capacity times the element's size) and each text.
//! `cargo test -p veer-core --lib kept -- --nocapture` prints them.

use super::*;
use crate::diagnostic::Severity;
use crate::manifest::{self, ReadOptions};
use crate::validate::finding::Finding;
use crate::validate::{KnownService, validate, validate_with};

/// Objects in the revision (as the memory bench's largest size).
const OBJECTS: usize = 10_000;

/// Object `i` of the benches' generator at generation `g` (a VirtualService's weights follow
/// it).
fn text(i: usize, g: usize) -> String {
    let ns = format!("team-{}", (i / 4) % 50);
    match i % 4 {
        0 => format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: svc-{i}\n  namespace: {ns}\nspec:\n  host: svc-{i}\n  subsets:\n  - name: v1\n    labels: {{version: v1}}\n  - name: v2\n    labels: {{version: v2}}\n"
        ),
        1 => {
            let (j, w) = (i - 1, 100 - g % 100);
            format!(
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: svc-{j}\n  namespace: {ns}\nspec:\n  hosts: [svc-{j}]\n  http:\n  - route:\n    - destination: {{host: svc-{j}, subset: v1}}\n      weight: {w}\n    - destination: {{host: svc-{j}, subset: v2}}\n      weight: {}\n    timeout: 5s\n",
                100 - w
            )
        }
        2 => format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: {ns}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: app-{i}}}\n  template:\n    metadata:\n      labels: {{app: app-{i}}}\n    spec:\n      containers:\n      - name: app\n        image: example/app:{g}\n"
        ),
        _ => format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: app-{i}\n  namespace: {ns}\nspec:\n  selector: {{app: app-{i}}}\n  ports:\n  - port: 80\n"
        ),
    }
}

fn parsed(i: usize, g: usize) -> ManifestSet {
    let mut set = ManifestSet::default();
    let file = manifest::parse_file(
        &format!("m{i:05}.yaml"),
        text(i, g).as_bytes(),
        &ReadOptions::default(),
    );
    set.extend(&file);
    set
}

fn revision(objects: usize) -> ManifestSet {
    let mut set = ManifestSet::default();
    for i in 0..objects {
        let one = parsed(i, 0);
        set.manifests.extend(one.manifests);
    }
    set
}

/// The cluster after the revision was synced: its Services.
fn cluster() -> ClusterServices {
    let services = (0..OBJECTS)
        .filter(|i| i % 4 == 3)
        .map(|i| {
            let ns = format!("team-{}", (i / 4) % 50);
            KnownService::service(&ns, &format!("app-{i}"), vec![80], vec![])
        })
        .collect();
    ClusterServices { services }
}

fn list_bytes(list: &Vec<Finding>) -> usize {
    list.capacity() * size_of::<Finding>() + list.iter().map(Finding::text_bytes).sum::<usize>()
}

/// The bytes the findings of `v` hold: the two lists and the shared fixes.
fn kept_bytes(v: &Validated) -> usize {
    list_bytes(&v.own) + list_bytes(&v.cross) + v.fixes.bytes()
}

/// The bytes of `diagnostics` as a report holds them.
fn report_bytes(diagnostics: &Vec<Diagnostic>) -> usize {
    let texts = |d: &Diagnostic| {
        d.file.capacity()
            + d.object.as_ref().map_or(0, String::capacity)
            + d.message.capacity()
            + d.fix.as_ref().map_or(0, String::capacity)
    };
    diagnostics.capacity() * size_of::<Diagnostic>() + diagnostics.iter().map(texts).sum::<usize>()
}

#[test]
fn the_findings_kept_between_revisions_take_little_room() {
    let set = revision(OBJECTS);
    let cluster = cluster();
    // (context, most bytes a warning may keep)
    let cases = [
        (
            ValidationContext {
                policies: &[],
                cluster: Some(&cluster),
            },
            400,
        ),
        (ValidationContext::default(), 900),
    ];
    for (ctx, most) in cases {
        let (last, report) = Validated::new(&set, &ctx);
        assert_eq!((report.errors, report.warnings), (0, OBJECTS / 2));
        let warnings = report.warnings;
        let kept = kept_bytes(&last);
        eprintln!(
            "cluster {}: {warnings} warnings; kept {kept} bytes ({} a warning); the report's diagnostics {} ({} a warning)",
            ctx.cluster.is_some(),
            kept / warnings,
            report_bytes(&report.diagnostics),
            report_bytes(&report.diagnostics) / warnings,
        );
        assert!(kept / warnings <= most, "{} > {most}", kept / warnings);
        // One VirtualService edited: its findings are made again over its neighbourhood and
        // put in; the lists keep no spare room.
        let mut edited = set.clone();
        edited.manifests[1] = parsed(1, 7).manifests[0].clone();
        let (next, again) = last.next(&edited, &ctx);
        assert_eq!(next.reuse(), Reuse::Neighbourhood);
        assert_eq!(again, validate_with(&edited, &ctx));
        assert!(kept_bytes(&next) <= kept, "{} > {kept}", kept_bytes(&next));
    }
}

#[test]
fn a_rejected_revision_keeps_its_errors_alone() {
    let mut set = revision(OBJECTS);
    set.manifests.extend(parsed(0, 0).manifests.iter().cloned());
    let report = validate(&set);
    assert_eq!((report.errors, report.warnings), (1, OBJECTS / 2));
    let whole = report_bytes(&report.diagnostics);
    let errors = report.clone().into_errors();
    eprintln!(
        "a rejected revision's report: {whole} bytes; its errors {}",
        report_bytes(&errors.diagnostics)
    );
    assert_eq!((errors.errors, errors.warnings), (1, 0));
    let kept: Vec<&Diagnostic> = (report.diagnostics.iter())
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert_eq!(errors.diagnostics.iter().collect::<Vec<_>>(), kept);
}

/// The bytes of `cluster`'s Services as a listing holds them.
fn cluster_bytes(cluster: &ClusterServices) -> usize {
    let strings = |list: &Vec<String>| {
        list.capacity() * size_of::<String>() + list.iter().map(String::capacity).sum::<usize>()
    };
    let service = |s: &KnownService| {
        s.namespace.capacity()
            + strings(&s.hosts)
            + s.ports.capacity() * size_of::<u32>()
            + strings(&s.export_to)
    };
    cluster.services.capacity() * size_of::<KnownService>()
        + cluster.services.iter().map(service).sum::<usize>()
}

#[test]
fn the_cluster_services_validated_with_are_held_once() {
    let set = revision(40);
    let cluster = Arc::new(cluster());
    eprintln!("the cluster's Services: {} bytes", cluster_bytes(&cluster));
    let ctx = ValidationContext {
        policies: &[],
        cluster: Some(&cluster),
    };
    let held = |v: &Validated| v.cluster.clone().expect("validated with a cluster");
    let (mut last, _) = Validated::new(&set, &ctx);
    assert!(!Arc::ptr_eq(&held(&last), &cluster), "a copy, first");
    last.share_cluster(&Arc::new(ClusterServices::default()));
    assert_eq!(*held(&last), *cluster, "other Services are not taken");
    last.share_cluster(&cluster);
    assert!(Arc::ptr_eq(&held(&last), &cluster));
    let (next, _) = last.next(&set, &ctx);
    assert!(Arc::ptr_eq(&held(&next), &cluster), "kept while the same");
}
