//! The column definitions of the built-in kinds' printers, as kube-apiserver's
//! `pkg/printers/internalversion` declares them.

use super::printer::{AGE_DESCRIPTION, Builtin, NAME_DESCRIPTION};

/// (name, type, format, priority, description) of a built-in printer's column.
pub(super) type ColumnSpec = (&'static str, &'static str, &'static str, i64, &'static str);

/// A string column shown by plain `kubectl get`.
const fn col(name: &'static str, description: &'static str) -> ColumnSpec {
    (name, "string", "", 0, description)
}

/// A string column shown by `kubectl get -o wide` only.
const fn wide(name: &'static str, description: &'static str) -> ColumnSpec {
    (name, "string", "", 1, description)
}

/// The columns of kube-apiserver's printers (`pkg/printers/internalversion`), descriptions
/// shortened from the API's field documentation.
pub(super) fn builtin_columns(b: Builtin) -> Vec<ColumnSpec> {
    const NAME: ColumnSpec = ("Name", "string", "name", 0, NAME_DESCRIPTION);
    const AGE: ColumnSpec = col("Age", AGE_DESCRIPTION);
    const CONTAINERS: ColumnSpec = wide("Containers", "Names of each container in the template.");
    const IMAGES: ColumnSpec = wide(
        "Images",
        "Images referenced by each container in the template.",
    );
    match b {
        Builtin::Namespace => vec![NAME, col("Status", "The status of the namespace"), AGE],
        Builtin::Service => vec![
            NAME,
            col("Type", "How the Service is exposed."),
            col("Cluster-IP", "The IP address of the service."),
            col(
                "External-IP",
                "IP addresses outside the cluster that reach the service.",
            ),
            col("Port(s)", "The ports exposed by this service."),
            AGE,
            wide(
                "Selector",
                "Pods with these labels receive the service's traffic.",
            ),
        ],
        Builtin::ConfigMap => vec![
            NAME,
            col("Data", "The number of configuration entries."),
            AGE,
        ],
        Builtin::Secret => vec![
            NAME,
            col(
                "Type",
                "Used to facilitate programmatic handling of secret data.",
            ),
            col("Data", "The number of secret entries."),
            AGE,
        ],
        Builtin::Event => vec![
            col(
                "Last Seen",
                "When the most recent occurrence of this event was recorded.",
            ),
            col("Type", "Type of this event (Normal, Warning)."),
            col(
                "Reason",
                "Why the object is in its current state, for machines.",
            ),
            col("Object", "The object that this event is about."),
            wide("Subobject", "The field of the object the event is about."),
            wide("Source", "The component reporting this event."),
            col("Message", "A human-readable description of the event."),
            wide("First Seen", "When the event was first recorded."),
            wide("Count", "The number of times this event has occurred."),
            ("Name", "string", "name", 1, NAME_DESCRIPTION),
        ],
        Builtin::ServiceAccount => vec![
            NAME,
            col(
                "Secrets",
                "The number of secrets pods of this account may use.",
            ),
            AGE,
        ],
        Builtin::Pod => vec![
            NAME,
            col(
                "Ready",
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "How often the containers of this pod restarted, and when last.",
            ),
            AGE,
            wide("IP", "The IP address allocated to the pod."),
            wide("Node", "The node this pod is scheduled to."),
            wide(
                "Nominated Node",
                "Set only when this pod preempts other pods on the node.",
            ),
            wide(
                "Readiness Gates",
                "Readiness gates met, of those the pod declares.",
            ),
        ],
        Builtin::Deployment => vec![
            NAME,
            col("Ready", "Number of the pod with ready state"),
            col(
                "Up-to-date",
                "Pods of this deployment that have the desired template.",
            ),
            col(
                "Available",
                "Pods of this deployment ready for at least minReadySeconds.",
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            wide(
                "Selector",
                "Label selector for the pods of this deployment.",
            ),
        ],
        Builtin::Lease => vec![
            NAME,
            col("Holder", "The identity of the lease's holder."),
            AGE,
        ],
        Builtin::RoleBinding | Builtin::ClusterRoleBinding => vec![
            NAME,
            col("Role", "The Role or ClusterRole the binding grants."),
            AGE,
            wide("Users", "Users in the binding"),
            wide("Groups", "Groups in the binding"),
            wide("ServiceAccounts", "ServiceAccounts in the binding"),
        ],
        Builtin::CreatedAt => vec![NAME, ("Created At", "date", "", 0, AGE_DESCRIPTION)],
    }
}

#[cfg(test)]
mod tests {
    use super::super::Printer;
    use super::super::fixtures::names;

    #[test]
    fn builtin_columns_are_kube_apiservers() {
        #[rustfmt::skip]
        let cases: [(&str, &str, &[&str]); 6] = [
            ("apps", "Deployment",
                &["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]),
            ("", "Service", &["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]),
            ("", "Secret", &["Name", "Type", "Data", "Age"]),
            ("coordination.k8s.io", "Lease", &["Name", "Holder", "Age"]),
            ("apiextensions.k8s.io", "CustomResourceDefinition", &["Name", "Created At"]),
            ("", "Pod", &["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node",
                "Readiness Gates"]),
        ];
        for (group, kind, want) in cases {
            assert_eq!(names(&Printer::for_kind(group, kind)), want, "{kind}");
        }
        // Wide-only columns have priority 1.
        let deploy = Printer::for_kind("apps", "Deployment").column_definitions();
        let wide: Vec<&str> = deploy
            .iter()
            .filter(|c| c["priority"] == 1)
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(wide, ["Containers", "Images", "Selector"]);
    }
}
