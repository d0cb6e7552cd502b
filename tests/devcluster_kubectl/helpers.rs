//! What the kubectl tests share: the manifests most of them apply, and kubectl's table output
//! split into cells.

pub(crate) const MANIFESTS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {app: reviews}
data:
  a: "1"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews
spec:
  replicas: 2
  selector: {matchLabels: {app: reviews}}
  template:
    metadata: {labels: {app: reviews}}
    spec:
      containers:
      - name: app
        image: reviews:1
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 100
"#;

/// kubectl's table output as rows of cells (kubectl pads columns with at least 3 spaces).
pub(crate) fn table_rows(out: &str) -> Vec<Vec<String>> {
    let gap = regex::Regex::new(r" {3,}").unwrap();
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| gap.split(l.trim_end()).map(str::to_string).collect())
        .collect()
}
