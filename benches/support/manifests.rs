//! The manifest generator the benches share: valid, small objects in groups of four
//! (DestinationRule, VirtualService routing to its subsets, Deployment, Service) spread over
//! [`NAMESPACES`] namespaces, so every kind has cross-object work for validation and every
//! (kind, namespace) pair is watched.
#![allow(dead_code)]

/// How many namespaces the generated objects are spread over (`team-0` … `team-49`).
pub const NAMESPACES: usize = 50;

/// The namespace of object `i`: the four objects of a group share one.
pub fn namespace(i: usize) -> String {
    format!("team-{}", (i / 4) % NAMESPACES)
}

/// Manifest `i` at `generation`: the VirtualService's weights and the Deployment's image
/// follow the generation, so bumping it for one `i` changes exactly that object.
pub fn manifest_text(i: usize, generation: usize) -> String {
    let ns = namespace(i);
    match i % 4 {
        0 => format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: svc-{i}\n  namespace: {ns}\nspec:\n  host: svc-{i}\n  subsets:\n  - name: v1\n    labels: {{version: v1}}\n  - name: v2\n    labels: {{version: v2}}\n"
        ),
        1 => {
            let j = i - 1;
            let w = 100 - (generation % 100);
            format!(
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: svc-{j}\n  namespace: {ns}\nspec:\n  hosts: [svc-{j}]\n  http:\n  - route:\n    - destination: {{host: svc-{j}, subset: v1}}\n      weight: {w}\n    - destination: {{host: svc-{j}, subset: v2}}\n      weight: {}\n    timeout: 5s\n",
                100 - w
            )
        }
        2 => format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: {ns}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: app-{i}}}\n  template:\n    metadata:\n      labels: {{app: app-{i}}}\n    spec:\n      containers:\n      - name: app\n        image: example/app:{generation}\n"
        ),
        _ => format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: app-{i}\n  namespace: {ns}\nspec:\n  selector: {{app: app-{i}}}\n  ports:\n  - port: 80\n"
        ),
    }
}

/// Peak resident set size of this process so far (`VmHWM`), in KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

pub fn ms(d: std::time::Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
