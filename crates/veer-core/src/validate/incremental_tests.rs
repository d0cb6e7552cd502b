//! Incremental validation gives the whole validation's report, diagnostic for diagnostic: on
//! chains of random edits of a generated revision (objects of every kind the checks look
//! across, plain objects with valid and invalid metadata, duplicates, Sidecars) and of the
//! validation corpus (`tests/fixtures/valid` and `invalid`, one file edited at a time).

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;
use crate::manifest::{self, ReadOptions};
use crate::validate::{KnownService, validate_with};

/// Label values, valid and not (the metadata checks' findings change with them).
const LABELS: [&str; 5] = ["v1", "bad value!", "-lead", "ok-2", ""];

/// The text of generated object `i` in `variant`: the kind follows `i` (so the same `i`
/// keeps its identity across variants, except for variant 7, which renames it, and 8, which
/// takes object 0's identity: a duplicate).
fn object(i: usize, variant: usize) -> String {
    let ns = format!("team-{}", i % 3);
    let label = LABELS[variant % LABELS.len()];
    let name = match variant {
        7 => format!("renamed-{i}"),
        8 => "obj-0".to_string(),
        _ => format!("obj-{i}"),
    };
    match i % 7 {
        0 | 1 => format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels: {{app: \"{label}\"}}\n  annotations: {{\"{}\": x}}\ndata: {{k: \"{variant}\"}}\n",
            if variant == 3 { "bad key/x/y" } else { "note" }
        ),
        2 => format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}, version: \"{label}\"}}\n    spec:\n      containers:\n      - name: app\n        image: example/app:{variant}\n"
        ),
        3 => format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  selector: {{app: {name}}}\n  ports:\n  - port: {}\n{}",
            80 + variant,
            // Two ports: a destination must name one.
            if variant % 3 == 2 {
                "  - port: 90\n"
            } else {
                ""
            }
        ),
        4 => {
            // Hosts shared with other VirtualServices (a conflict), written in full, or a
            // wildcard; destinations to the Service before it, to the DestinationRule after
            // it (the same host, in its namespace), or to a fixed Service.
            let host = match variant % 5 {
                1 => "shared".to_string(),
                // Two hosts, the first one claimed in every namespace.
                2 => "obj-3.team-0.svc.cluster.local\", \"shared".to_string(),
                3 if i.is_multiple_of(2) => "*.example.com".to_string(),
                0 if i.is_multiple_of(2) => "shared".to_string(),
                4 => "api.example.com".to_string(),
                _ => format!("obj-{}", i - 1),
            };
            let destination = match (variant + i) % 4 {
                1 => format!("obj-{}.team-{}.svc.cluster.local", i - 1, (i + 1) % 3),
                2 => "obj-3.team-0.svc.cluster.local".to_string(),
                // Found through a ServiceEntry's wildcard, when there is one.
                3 => "api.example.com".to_string(),
                _ => format!("obj-{}", i - 1),
            };
            // Bound to a Gateway (object 6, when it is one) besides the mesh.
            let gateways = if i % 3 == 1 {
                "  gateways: [mesh, team-0/obj-6]\n"
            } else {
                ""
            };
            // Seen in its own namespace only: its hosts meet the overlapping wildcards of
            // VirtualServices seen everywhere.
            let gateways = if i.is_multiple_of(4) {
                format!("{gateways}  exportTo: [\".\"]\n")
            } else {
                gateways.to_string()
            };
            format!(
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  hosts: [\"{host}\"]\n{gateways}  http:\n  - route:\n    - destination: {{host: \"{destination}\", subset: v{}}}\n      weight: {}\n",
                variant % 3,
                100 - variant
            )
        }
        5 => format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  host: {}\n  subsets:\n  - name: v{}\n    labels: {{version: \"{label}\"}}\n",
            if variant == 4 {
                "obj-3.team-0.svc.cluster.local".to_string()
            } else {
                format!("obj-{}", i - 2)
            },
            variant % 3
        ),
        _ if variant == 4 => format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  hosts: [\"*.example.com\"]\n  ports:\n  - {{number: 80, name: http, protocol: HTTP}}\n  resolution: NONE\n"
        ),
        _ if variant == 6 => format!(
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  servers:\n  - port: {{number: 80, name: http, protocol: HTTP}}\n    hosts: [\"*/shared\"]\n"
        ),
        _ if variant == 5 => format!(
            "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  workloadSelector:\n    labels: {{app: obj-2}}\n"
        ),
        _ => format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels: {{team: \"{label}\"}}\n"
        ),
    }
}

/// A file: its name, its text, and what it parsed to.
type File = (String, String, Arc<ManifestSet>);

/// A revision of `files`, each parsed on its own as the parse cache does.
fn revision(files: &[File]) -> ManifestSet {
    let mut set = ManifestSet::default();
    for (_, _, parsed) in files {
        set.manifests.extend(parsed.manifests.iter().cloned());
        set.diagnostics.extend(parsed.diagnostics.iter().cloned());
    }
    set
}

fn parse(name: &str, text: &str) -> Arc<ManifestSet> {
    let mut set = ManifestSet::default();
    set.extend(&manifest::parse_file(
        name,
        text.as_bytes(),
        &ReadOptions::default(),
    ));
    Arc::new(set)
}

/// Follow `edits` ((file, text) replacements) from `files`, validating each revision against
/// the last and whole; the two reports must be the same. Returns what each validation
/// reused of the one before.
fn follow(
    mut files: Vec<File>,
    edits: Vec<(usize, Option<String>)>,
    ctx: &ValidationContext<'_>,
) -> Vec<Reuse> {
    let (mut last, first) = Validated::new(&revision(&files), ctx);
    assert_eq!(first, validate_with(&revision(&files), ctx));
    let mut reused = Vec::new();
    for (at, text) in edits {
        let at = at % files.len();
        let name = files[at].0.clone();
        // `None`: the same text parsed again (equal objects, not the same pointers).
        let text = text.unwrap_or_else(|| files[at].1.clone());
        files[at].2 = parse(&name, &text);
        files[at].1.clone_from(&text);
        let set = revision(&files);
        let (next, report) = last.next(&set, ctx);
        assert_eq!(
            report,
            validate_with(&set, ctx),
            "after editing {name} to:\n{text}"
        );
        reused.push(next.reuse());
        last = next;
    }
    reused
}

fn generated(n: usize) -> Vec<File> {
    (0..n)
        .map(|i| {
            let name = format!("d/m{i:03}.yaml");
            let text = object(i, 0);
            let parsed = parse(&name, &text);
            (name, text, parsed)
        })
        .collect()
}

fn cluster() -> ClusterServices {
    ClusterServices {
        services: vec![KnownService::service("team-1", "obj-3", vec![80], vec![])],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn generated_revisions_validate_the_same_either_way(
        edits in prop::collection::vec((0usize..60, 0usize..9, any::<bool>()), 1..8),
        with_cluster in any::<bool>(),
    ) {
        let cluster = cluster();
        let ctx = ValidationContext {
            policies: &[],
            cluster: with_cluster.then_some(&cluster),
        };
        let edits = edits
            .into_iter()
            .map(|(i, variant, reparse)| {
                // Variant 5 of object 6 is a Sidecar; keep them rare.
                let text = (!reparse).then(|| object(i, variant));
                (i, text)
            })
            .collect();
        follow(generated(60), edits, &ctx);
    }
}

/// Only plain objects edited, no Sidecar: every validation after the first reuses the last.
#[test]
fn plain_edits_reuse_the_last_validation() {
    let edits: Vec<(usize, Option<String>)> = [0usize, 1, 2, 7, 8, 9]
        .into_iter()
        .flat_map(|i| (0..5).map(move |v| (i, Some(object(i, v)))))
        .collect();
    let count = edits.len();
    let ctx = ValidationContext::default();
    assert_eq!(follow(generated(60), edits, &ctx), vec![Reuse::All; count]);
}

/// VirtualServices, DestinationRules and Services edited (no wildcard, no rename), no
/// Sidecar: the cross-object checks run again over the change's neighbourhood only, with a
/// cluster's Services or without.
#[test]
fn istio_edits_are_validated_in_their_neighbourhood() {
    let mut edits: Vec<(usize, Option<String>)> = [3usize, 4, 5, 10, 11, 12, 24, 25, 26]
        .into_iter()
        .flat_map(|i| {
            [1, 2, 4, 5, 6, 1, 0]
                .into_iter()
                .map(move |v| (i, Some(object(i, v))))
        })
        .collect();
    // A VirtualService conflicting at its first host with one, and then at its second with
    // another that the edit brings in.
    edits.extend(
        [(18, 2), (11, 2), (32, 4), (46, 1), (32, 0)].map(|(i, v)| (i, Some(object(i, v)))),
    );
    let count = edits.len();
    let cluster = cluster();
    for ctx in [
        ValidationContext::default(),
        ValidationContext {
            policies: &[],
            cluster: Some(&cluster),
        },
    ] {
        // Object 6 a Gateway, 13 a ServiceEntry (for `*.example.com`).
        let mut files = generated(60);
        for (i, variant) in [(6, 6), (13, 4)] {
            let text = object(i, variant);
            files[i].2 = parse(&files[i].0, &text);
            files[i].1 = text;
        }
        let reused = follow(files, edits.clone(), &ctx);
        assert_eq!(reused, vec![Reuse::Neighbourhood; count], "{reused:?}");
    }
}

/// The context is part of what the cross-object checks read: other cluster Services, and
/// they run again over the whole revision (the own checks' findings stand).
#[test]
fn another_context_runs_the_cross_object_checks_again() {
    let files = generated(30);
    let set = revision(&files);
    let (last, _) = Validated::new(&set, &ValidationContext::default());
    let cluster = cluster();
    let ctx = ValidationContext {
        policies: &[],
        cluster: Some(&cluster),
    };
    let (next, report) = last.next(&set, &ctx);
    assert_eq!(next.reuse(), Reuse::OwnChecks);
    assert_eq!(report, validate_with(&set, &ctx));
}

/// A wildcard host overlaps others rather than equalling them: with one in the revision, a
/// VirtualService edit runs the cross-object checks over the whole revision.
#[test]
fn with_a_wildcard_host_virtual_service_edits_validate_the_cross_checks_whole() {
    let mut files = generated(60);
    let text = object(18, 3);
    files[18].2 = parse(&files[18].0, &text);
    files[18].1 = text;
    let edits = [(4, 4), (4, 0), (4, 4)].map(|(i, v)| (i, Some(object(i, v))));
    let reused = follow(files, edits.to_vec(), &ValidationContext::default());
    assert_eq!(reused, vec![Reuse::OwnChecks; 3]);
}

fn corpus() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let mut files: Vec<PathBuf> = ["valid", "invalid"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(root.join(dir)).into_iter().flatten())
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| manifest::is_manifest_path(&p.to_string_lossy()))
        .collect();
    files.sort();
    files
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The corpus as one revision, one file at a time replaced by another's text or by a
    /// generated object.
    #[test]
    fn the_corpus_validates_the_same_either_way(
        edits in prop::collection::vec((0usize..1000, 0usize..1000, 0usize..9, any::<bool>()), 1..6),
    ) {
        let paths = corpus();
        prop_assume!(!paths.is_empty());
        let texts: Vec<String> = paths
            .iter()
            .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned())
            .collect();
        let files: Vec<File> = paths
            .iter()
            .zip(&texts)
            .map(|(p, t)| {
                let name = p.to_string_lossy().into_owned();
                let parsed = parse(&name, t);
                (name, t.clone(), parsed)
            })
            .collect();
        let edits = edits
            .into_iter()
            .map(|(at, from, variant, generated)| {
                let text = if generated {
                    object(from, variant)
                } else {
                    texts[from % texts.len()].clone()
                };
                (at, Some(text))
            })
            .collect();
        follow(files, edits, &ValidationContext::default());
    }
}

/// The corpus is there (the property above skips an empty one).
#[test]
fn the_corpus_is_found() {
    assert!(corpus().len() > 100, "{}", corpus().len());
}
