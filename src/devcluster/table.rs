//! Server-side printing: the `meta.k8s.io` `Table` that `kubectl get` asks for (`Accept:
//! application/json;as=Table;v=v1;g=meta.k8s.io`). Owns the Accept negotiation, the printers of
//! the built-in kinds (columns and cells as kube-apiserver's `pkg/printers/internalversion`
//! computes them), the printer columns of custom kinds (a CRD's `additionalPrinterColumns`;
//! Istio's kinds carry the ones of Istio's own CRDs) and kubectl's age format. Pure: objects
//! and the clock in, JSON out.
//!
//! As on a real server, every column is sent (kubectl hides `priority > 0` ones unless `-o
//! wide`), ages are strings computed here, and kubectl adds NAMESPACE (`-A`) and label columns
//! itself from each row's object.

use chrono::{DateTime, SecondsFormat, Utc};
use jsonpath_rust::parser::model::JpQuery;
use serde_json::{Map, Value, json};

/// The `meta.k8s.io` version of the Table a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableVersion {
    V1,
    V1beta1,
}

impl TableVersion {
    pub fn api_version(self) -> &'static str {
        match self {
            TableVersion::V1 => "meta.k8s.io/v1",
            TableVersion::V1beta1 => "meta.k8s.io/v1beta1",
        }
    }
}

/// What a GET answers with, from the request's Accept header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// The objects themselves (a `…List` for a list).
    Objects,
    Table(TableVersion),
}

/// The first media type of `accept` this server can produce, in the client's order. Anything
/// else it lists (protobuf, `as=PartialObjectMetadata…`) is skipped; when nothing matches, the
/// objects are sent, as before tables existed here.
pub fn negotiate(accept: &str) -> Representation {
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let (mut as_kind, mut version, mut group, mut refused) = (None, None, None, false);
        for param in parts {
            let (k, v) = param.split_once('=').unwrap_or((param, ""));
            match k.trim() {
                "as" => as_kind = Some(v.trim()),
                "v" => version = Some(v.trim()),
                "g" => group = Some(v.trim()),
                "q" => refused = v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0),
                _ => {}
            }
        }
        if refused || !matches!(media.as_str(), "application/json" | "application/*" | "*/*") {
            continue;
        }
        match (as_kind, group, version) {
            (None, _, _) => return Representation::Objects,
            (Some("Table"), Some("meta.k8s.io"), Some("v1")) => {
                return Representation::Table(TableVersion::V1);
            }
            (Some("Table"), Some("meta.k8s.io"), Some("v1beta1")) => {
                return Representation::Table(TableVersion::V1beta1);
            }
            _ => {}
        }
    }
    Representation::Objects
}

/// What each row carries besides its cells (the `includeObject` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    None,
    /// A `PartialObjectMetadata`: what kubectl needs for NAMESPACE and label columns.
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    /// The parameter's value (absent or empty: `Metadata`), or the message of a 400.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.unwrap_or("") {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "None" => Ok(IncludeObject::None),
            "Object" => Ok(IncludeObject::Object),
            other => Err(format!(
                "Unable to convert to Table as requested: includeObject: Unsupported value: \
                 {other:?}: supported values: \"Metadata\", \"None\", \"Object\""
            )),
        }
    }
}

/// How a table is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOptions {
    pub version: TableVersion,
    pub include: IncludeObject,
    /// Send `columnDefinitions` (a watch sends them once; later events reuse them).
    pub headers: bool,
}

/// A kind with a printer in kube-apiserver (or its registry's default table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Namespace,
    Service,
    ConfigMap,
    Secret,
    Event,
    ServiceAccount,
    Pod,
    Deployment,
    Lease,
    RoleBinding,
    ClusterRoleBinding,
    /// The registry default (Role, ClusterRole, CustomResourceDefinition): NAME, CREATED AT.
    CreatedAt,
}

/// One `additionalPrinterColumns` entry of a CRD.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomColumn {
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_name: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
    /// The parsed path; `None` when it does not parse (the cells are then empty).
    query: Option<JpQuery>,
}

impl CustomColumn {
    pub fn new(
        name: &str,
        type_name: &str,
        json_path: &str,
        description: &str,
        priority: i64,
    ) -> Self {
        Self {
            name: name.to_string(),
            type_name: type_name.to_string(),
            format: String::new(),
            description: description.to_string(),
            priority,
            json_path: json_path.to_string(),
            query: parse_path(json_path),
        }
    }
}

/// Kubernetes printer paths (`.spec.hosts`, `.status.conditions[?(@.type=="Ready")].status`)
/// are JSONPath without the leading `$`. They are evaluated with jsonpath-rust (RFC 9535),
/// which kube-rs already depends on, rather than a dotted-path walker: CRDs commonly use
/// filters like the one above.
fn parse_path(path: &str) -> Option<JpQuery> {
    let path = path.trim();
    let rooted = if path.starts_with('$') {
        path.to_string()
    } else {
        format!("${path}")
    };
    jsonpath_rust::parser::parse_json_path(&rooted).ok()
}

/// How the rows of a kind are printed.
#[derive(Debug, Clone, PartialEq)]
pub enum Printer {
    Builtin(Builtin),
    /// NAME, then these columns (a CRD's `additionalPrinterColumns`).
    Custom(Vec<CustomColumn>),
}

const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when \
     this object was created. It is not guaranteed to be set in happens-before order across \
     separate operations. Clients may not set this value. It is represented in RFC3339 form and \
     is in UTC.";
const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. It is required when \
     creating resources, although some resources may allow a client to request the generation \
     of an appropriate name automatically.";

/// The column a CRD gets when it declares none.
fn age_column() -> CustomColumn {
    CustomColumn::new(
        "Age",
        "date",
        ".metadata.creationTimestamp",
        AGE_DESCRIPTION,
        0,
    )
}

/// Istio's printer columns, as its CRDs declare them (identical at v1, v1beta1 and v1alpha3;
/// see `additionalPrinterColumns` in Istio's `crd-all.gen.yaml`). Gateway and Sidecar declare
/// none, so they get the default AGE.
fn istio_columns(kind: &str) -> Vec<CustomColumn> {
    let hosts = |d: &str| CustomColumn::new("Hosts", "string", ".spec.hosts", d, 0);
    match kind {
        "VirtualService" => vec![
            CustomColumn::new(
                "Gateways",
                "string",
                ".spec.gateways",
                "The names of gateways and sidecars that should apply these routes",
                0,
            ),
            hosts("The destination hosts to which traffic is being sent"),
            age_column(),
        ],
        "DestinationRule" => vec![
            CustomColumn::new(
                "Host",
                "string",
                ".spec.host",
                "The name of a service from the service registry",
                0,
            ),
            age_column(),
        ],
        "ServiceEntry" => vec![
            hosts("The hosts associated with the ServiceEntry"),
            CustomColumn::new(
                "Location",
                "string",
                ".spec.location",
                "Whether the service is external to the mesh or part of the mesh \
                 (MESH_EXTERNAL or MESH_INTERNAL)",
                0,
            ),
            CustomColumn::new(
                "Resolution",
                "string",
                ".spec.resolution",
                "Service resolution mode for the hosts (NONE, STATIC, or DNS)",
                0,
            ),
            age_column(),
        ],
        _ => vec![age_column()],
    }
}

impl Printer {
    /// The printer of a built-in kind (Istio's included). A custom kind registered by a CRD
    /// takes [`Printer::from_crd`] instead.
    pub fn for_kind(group: &str, kind: &str) -> Printer {
        let builtin = match (group, kind) {
            ("", "Namespace") => Builtin::Namespace,
            ("", "Service") => Builtin::Service,
            ("", "ConfigMap") => Builtin::ConfigMap,
            ("", "Secret") => Builtin::Secret,
            ("", "Event") => Builtin::Event,
            ("", "ServiceAccount") => Builtin::ServiceAccount,
            ("", "Pod") => Builtin::Pod,
            ("apps", "Deployment") => Builtin::Deployment,
            ("coordination.k8s.io", "Lease") => Builtin::Lease,
            ("rbac.authorization.k8s.io", "RoleBinding") => Builtin::RoleBinding,
            ("rbac.authorization.k8s.io", "ClusterRoleBinding") => Builtin::ClusterRoleBinding,
            ("rbac.authorization.k8s.io", "Role" | "ClusterRole")
            | ("apiextensions.k8s.io", "CustomResourceDefinition") => Builtin::CreatedAt,
            ("networking.istio.io", kind) => return Printer::Custom(istio_columns(kind)),
            // Any other kind here is a custom one: the CRD default.
            _ => return Printer::Custom(vec![age_column()]),
        };
        Printer::Builtin(builtin)
    }

    /// The printer of a CRD's kind at `version`: its `additionalPrinterColumns`, or AGE when it
    /// declares none (as apiextensions-apiserver defaults them).
    pub fn from_crd(crd: &Value, version: &str) -> Printer {
        let declared = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .and_then(|vs| {
                vs.iter()
                    .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
            })
            .and_then(|v| v.get("additionalPrinterColumns"))
            .and_then(Value::as_array)
            .map(|cols| cols.iter().filter_map(crd_column).collect::<Vec<_>>())
            .unwrap_or_default();
        if declared.is_empty() {
            Printer::Custom(vec![age_column()])
        } else {
            Printer::Custom(declared)
        }
    }

    /// The `columnDefinitions` of this printer's tables.
    pub fn column_definitions(&self) -> Vec<Value> {
        match self {
            Printer::Builtin(b) => builtin_columns(*b)
                .into_iter()
                .map(|(name, type_name, format, priority, description)| {
                    column_json(name, type_name, format, priority, description)
                })
                .collect(),
            Printer::Custom(columns) => {
                std::iter::once(column_json("Name", "string", "name", 0, NAME_DESCRIPTION))
                    .chain(columns.iter().map(|c| {
                        column_json(&c.name, &c.type_name, &c.format, c.priority, &c.description)
                    }))
                    .collect()
            }
        }
    }

    /// The cells of `object`'s row, one per column definition.
    pub fn cells(&self, object: &Value, now: DateTime<Utc>) -> Vec<Value> {
        match self {
            Printer::Builtin(b) => builtin_cells(*b, object, now),
            Printer::Custom(columns) => std::iter::once(json!(text(object, "/metadata/name")))
                .chain(columns.iter().map(|c| custom_cell(c, object, now)))
                .collect(),
        }
    }

    /// Row conditions (`Completed` for finished pods), as kube-apiserver sets them.
    fn conditions(&self, object: &Value) -> Vec<Value> {
        let phase = match self {
            Printer::Builtin(Builtin::Pod) => text(object, "/status/phase"),
            Printer::Builtin(_) | Printer::Custom(_) => return Vec::new(),
        };
        let message = match phase {
            "Succeeded" => "The pod has completed successfully.",
            "Failed" => "The pod failed.",
            _ => return Vec::new(),
        };
        vec![json!({"type": "Completed", "status": "True", "reason": phase, "message": message})]
    }
}

fn crd_column(c: &Value) -> Option<CustomColumn> {
    let field = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
    let (name, path) = (field("name"), field("jsonPath"));
    if name.is_empty() || path.is_empty() {
        return None;
    }
    let description = match field("description") {
        "" => format!("Custom resource definition column (in JSONPath format): {path}"),
        d => d.to_string(),
    };
    let mut column = CustomColumn::new(
        name,
        field("type"),
        path,
        &description,
        c.get("priority").and_then(Value::as_i64).unwrap_or(0),
    );
    column.format = field("format").to_string();
    Some(column)
}

fn column_json(
    name: &str,
    type_name: &str,
    format: &str,
    priority: i64,
    description: &str,
) -> Value {
    json!({
        "name": name,
        "type": type_name,
        "format": format,
        "description": description,
        "priority": priority,
    })
}

/// A Table of `objects` (already at the version asked for). `resource_version` is the list's,
/// or the object's for a single GET.
pub fn table(
    printer: &Printer,
    objects: &[Value],
    resource_version: &str,
    options: &TableOptions,
    now: DateTime<Utc>,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| row(printer, o, options, now))
        .collect();
    let columns = if options.headers {
        printer.column_definitions()
    } else {
        Vec::new()
    };
    json!({
        "kind": "Table",
        "apiVersion": options.version.api_version(),
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn row(printer: &Printer, object: &Value, options: &TableOptions, now: DateTime<Utc>) -> Value {
    let mut row = Map::new();
    row.insert("cells".into(), Value::Array(printer.cells(object, now)));
    let conditions = printer.conditions(object);
    if !conditions.is_empty() {
        row.insert("conditions".into(), Value::Array(conditions));
    }
    match options.include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            row.insert(
                "object".into(),
                json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": options.version.api_version(),
                    "metadata": object.get("metadata").cloned().unwrap_or(json!({})),
                }),
            );
        }
        IncludeObject::Object => {
            row.insert("object".into(), object.clone());
        }
    }
    Value::Object(row)
}

/// kubectl's age format (apimachinery's `duration.HumanDuration`): about two significant
/// figures, e.g. `45s`, `3m12s`, `25m`, `5h3m`, `2d4h`, `400d`, `3y20d`.
pub fn human_duration(d: chrono::Duration) -> String {
    // Go truncates toward zero, as Rust's integer division does.
    let seconds = d.num_milliseconds() / 1000;
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return match (hours / 24) % 365 {
            0 => format!("{}y", hours / 24 / 365),
            dy => format!("{}y{dy}d", hours / 24 / 365),
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn parse_time(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The age of the timestamp at `pointer`, or `<unknown>` when there is none.
fn since(object: &Value, pointer: &str, now: DateTime<Utc>) -> String {
    match object.pointer(pointer).and_then(parse_time) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".into(),
    }
}

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn int(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn items<'a>(object: &'a Value, pointer: &str) -> &'a [Value] {
    object
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn entries(object: &Value, pointer: &str) -> usize {
    object
        .pointer(pointer)
        .and_then(Value::as_object)
        .map_or(0, Map::len)
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

/// `k=v,k2=v2` sorted by key (`labels.FormatLabels`), `<none>` when empty.
fn format_labels(labels: Option<&Value>) -> String {
    let mut pairs: Vec<String> = labels
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    or_none(pairs.join(","))
}

/// A `LabelSelector` as a selector string (`app=web,tier in (a,b),!canary`), requirements
/// sorted by key; `<invalid>` for an unknown operator or a malformed expression.
fn format_label_selector(selector: Option<&Value>) -> String {
    let Some(selector) = selector else {
        return String::new();
    };
    let mut reqs: Vec<(String, String)> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))))
                .collect()
        })
        .unwrap_or_default();
    for e in items(selector, "/matchExpressions") {
        let key = text(e, "/key");
        let mut values: Vec<&str> = items(e, "/values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        let req = match (text(e, "/operator"), values.is_empty()) {
            ("In", false) => format!("{key} in ({})", values.join(",")),
            ("NotIn", false) => format!("{key} notin ({})", values.join(",")),
            ("Exists", true) => key.to_string(),
            ("DoesNotExist", true) => format!("!{key}"),
            _ => return "<invalid>".into(),
        };
        reqs.push((key.to_string(), req));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    reqs.into_iter()
        .map(|(_, r)| r)
        .collect::<Vec<_>>()
        .join(",")
}

/// Names and images of a pod template's containers, comma-separated.
fn container_cells(object: &Value, pointer: &str) -> (String, String) {
    let containers = items(object, pointer);
    let join = |field: &str| {
        containers
            .iter()
            .map(|c| text(c, field))
            .collect::<Vec<_>>()
            .join(",")
    };
    (join("/name"), join("/image"))
}

/// (name, type, format, priority, description) of a built-in printer's column.
type ColumnSpec = (&'static str, &'static str, &'static str, i64, &'static str);

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
fn builtin_columns(b: Builtin) -> Vec<ColumnSpec> {
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

fn builtin_cells(b: Builtin, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let name = json!(text(o, "/metadata/name"));
    let age = json!(since(o, "/metadata/creationTimestamp", now));
    match b {
        Builtin::Namespace => vec![name, json!(text(o, "/status/phase")), age],
        Builtin::Service => {
            let cluster_ip = items(o, "/spec/clusterIPs")
                .first()
                .and_then(Value::as_str)
                .unwrap_or("<none>");
            let ports: Vec<String> = items(o, "/spec/ports")
                .iter()
                .map(|p| {
                    let (port, protocol) = (int(p, "/port"), text(p, "/protocol"));
                    match int(p, "/nodePort") {
                        n if n > 0 => format!("{port}:{n}/{protocol}"),
                        _ => format!("{port}/{protocol}"),
                    }
                })
                .collect();
            vec![
                name,
                json!(text(o, "/spec/type")),
                json!(cluster_ip),
                json!(service_external_ip(o)),
                json!(or_none(ports.join(","))),
                age,
                json!(format_labels(o.pointer("/spec/selector"))),
            ]
        }
        Builtin::ConfigMap => {
            let data = entries(o, "/data") + entries(o, "/binaryData");
            vec![name, json!(data), age]
        }
        Builtin::Secret => {
            // A real server folds stringData into data when it stores a Secret; this one keeps
            // what was written, so count the keys of both.
            let mut keys: Vec<&String> = ["/data", "/stringData"]
                .iter()
                .filter_map(|p| o.pointer(p).and_then(Value::as_object))
                .flat_map(Map::keys)
                .collect();
            keys.sort_unstable();
            keys.dedup();
            vec![name, json!(text(o, "/type")), json!(keys.len()), age]
        }
        Builtin::Event => event_cells(o, now),
        Builtin::ServiceAccount => vec![name, json!(items(o, "/secrets").len()), age],
        Builtin::Pod => pod_cells(o, now),
        Builtin::Deployment => {
            let desired = o
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let (containers, images) = container_cells(o, "/spec/template/spec/containers");
            vec![
                name,
                json!(format!("{}/{desired}", int(o, "/status/readyReplicas"))),
                json!(int(o, "/status/updatedReplicas")),
                json!(int(o, "/status/availableReplicas")),
                age,
                json!(containers),
                json!(images),
                json!(format_label_selector(o.pointer("/spec/selector"))),
            ]
        }
        Builtin::Lease => vec![name, json!(text(o, "/spec/holderIdentity")), age],
        Builtin::RoleBinding | Builtin::ClusterRoleBinding => {
            let role = format!("{}/{}", text(o, "/roleRef/kind"), text(o, "/roleRef/name"));
            let (mut users, mut groups, mut accounts) = (Vec::new(), Vec::new(), Vec::new());
            for s in items(o, "/subjects") {
                match text(s, "/kind") {
                    "User" => users.push(text(s, "/name").to_string()),
                    "Group" => groups.push(text(s, "/name").to_string()),
                    "ServiceAccount" => {
                        accounts.push(format!("{}/{}", text(s, "/namespace"), text(s, "/name")))
                    }
                    _ => {}
                }
            }
            vec![
                name,
                json!(role),
                age,
                json!(users.join(", ")),
                json!(groups.join(", ")),
                json!(accounts.join(", ")),
            ]
        }
        Builtin::CreatedAt => {
            // The registry default prints the timestamp itself, not an age.
            let created = o
                .pointer("/metadata/creationTimestamp")
                .and_then(parse_time)
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                .unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
            vec![name, json!(created)]
        }
    }
}

fn service_external_ip(o: &Value) -> String {
    let external: Vec<&str> = items(o, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match text(o, "/spec/type") {
        "ClusterIP" | "NodePort" => or_none(external.join(",")),
        "LoadBalancer" => {
            let mut balancers: Vec<&str> = items(o, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| match text(i, "/ip") {
                    "" => text(i, "/hostname"),
                    ip => ip,
                })
                .filter(|s| !s.is_empty())
                .collect();
            balancers.sort_unstable();
            balancers.dedup();
            balancers.extend(external);
            match balancers.join(",") {
                s if s.is_empty() => "<pending>".into(),
                s => s,
            }
        }
        "ExternalName" => text(o, "/spec/externalName").to_string(),
        _ => "<unknown>".into(),
    }
}

/// kube-apiserver's pod printer, without the init-container states (no kubelet here runs
/// any): READY counts ready running containers, STATUS is the reason or phase, overridden by
/// a waiting or terminated container's reason.
fn pod_cells(o: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let total = items(o, "/spec/containers").len()
        + items(o, "/spec/initContainers")
            .iter()
            .filter(|c| text(c, "/restartPolicy") == "Always")
            .count();
    let phase = text(o, "/status/phase");
    let mut reason = match text(o, "/status/reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    let (mut ready, mut restarts) = (0, 0);
    let mut last_restart: Option<DateTime<Utc>> = None;
    for c in items(o, "/status/containerStatuses").iter().rev() {
        restarts += int(c, "/restartCount");
        if let Some(t) = c
            .pointer("/lastState/terminated/finishedAt")
            .and_then(parse_time)
        {
            last_restart = last_restart.max(Some(t));
        }
        let terminated = c.pointer("/state/terminated");
        if !text(c, "/state/waiting/reason").is_empty() {
            reason = text(c, "/state/waiting/reason").to_string();
        } else if let Some(t) = terminated {
            reason = match (text(t, "/reason"), int(t, "/signal")) {
                ("", 0) => format!("ExitCode:{}", int(t, "/exitCode")),
                ("", signal) => format!("Signal:{signal}"),
                (r, _) => r.to_string(),
            };
        } else if c.get("ready").and_then(Value::as_bool) == Some(true)
            && c.pointer("/state/running").is_some()
        {
            ready += 1;
        }
    }
    if o.pointer("/metadata/deletionTimestamp").is_some() {
        if text(o, "/status/reason") == "NodeLost" {
            reason = "Unknown".into();
        } else if !matches!(phase, "Succeeded" | "Failed") {
            reason = "Terminating".into();
        }
    }
    let restarts = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_duration(now - t)),
        _ => restarts.to_string(),
    };
    let ip = items(o, "/status/podIPs")
        .first()
        .map(|p| text(p, "/ip"))
        .unwrap_or("");
    let gates = items(o, "/spec/readinessGates");
    let gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = items(o, "/status/conditions");
        let met = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .find(|c| text(c, "/type") == text(g, "/conditionType"))
                    .is_some_and(|c| text(c, "/status") == "True")
            })
            .count();
        format!("{met}/{}", gates.len())
    };
    vec![
        json!(text(o, "/metadata/name")),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        json!(since(o, "/metadata/creationTimestamp", now)),
        json!(or_none(ip.to_string())),
        json!(or_none(text(o, "/spec/nodeName").to_string())),
        json!(or_none(text(o, "/status/nominatedNodeName").to_string())),
        json!(gates),
    ]
}

fn event_cells(o: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let first = match o.pointer("/firstTimestamp").and_then(parse_time) {
        Some(t) => human_duration(now - t),
        None => since(o, "/eventTime", now),
    };
    let mut last = match o.pointer("/lastTimestamp").and_then(parse_time) {
        Some(t) => human_duration(now - t),
        None => first.clone(),
    };
    let mut count = int(o, "/count");
    if o.get("series").is_some_and(|s| !s.is_null()) {
        last = since(o, "/series/lastObservedTime", now);
        count = int(o, "/series/count");
    } else if count == 0 {
        // Singleton events of the events.k8s.io API carry no count.
        count = 1;
    }
    let kind = text(o, "/involvedObject/kind").to_lowercase();
    let target = match text(o, "/involvedObject/name") {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let first_non_empty = |a: &str, b: &str| {
        let a = text(o, a);
        if a.is_empty() { text(o, b) } else { a }
    };
    let component = first_non_empty("/source/component", "/reportingComponent");
    let instance = first_non_empty("/source/host", "/reportingInstance");
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        json!(text(o, "/type")),
        json!(text(o, "/reason")),
        json!(target),
        json!(text(o, "/involvedObject/fieldPath")),
        json!(source),
        json!(text(o, "/message").trim()),
        json!(first),
        json!(count),
        json!(text(o, "/metadata/name")),
    ]
}

/// A CRD column's cell (apiextensions-apiserver's table convertor): the first value the path
/// finds, printed as kubectl's JSONPath prints it for `string` columns (lists and maps as
/// JSON), typed for the others; `null` (an empty cell) when nothing matches or the value does
/// not fit the type.
fn custom_cell(column: &CustomColumn, object: &Value, now: DateTime<Utc>) -> Value {
    let found = column
        .query
        .as_ref()
        .and_then(|q| jsonpath_rust::query::js_path_process(q, object).ok())
        .and_then(|hits| hits.into_iter().next().map(|h| h.val));
    let Some(value) = found.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match column.type_name.as_str() {
        "string" => json!(jsonpath_text(value)),
        "integer" => match value.as_i64() {
            Some(i) => json!(i),
            // Go converts a float to int64 by truncation.
            None => value.as_f64().map_or(Value::Null, |f| json!(f as i64)),
        },
        "number" => value.as_f64().map_or(Value::Null, |f| json!(f)),
        "boolean" => value.as_bool().map_or(Value::Null, |b| json!(b)),
        "date" => match value.as_str() {
            Some(s) => match parse_time(&json!(s)) {
                Some(t) => json!(human_duration(now - t)),
                None => json!("<invalid>"),
            },
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

/// A value as Kubernetes' JSONPath printer writes it: scalars as text, lists and maps as
/// compact JSON with Go's encoding (sorted keys, `<`, `>` and `&` escaped).
fn jsonpath_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::Object(_) => sorted(value)
            .to_string()
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026"),
        Value::Null => "null".into(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
    }
}

/// `value` with every map's keys sorted, as Go's encoding/json writes maps.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn created(ago_secs: i64) -> String {
        (now() - chrono::Duration::seconds(ago_secs)).to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    fn cells(printer: &Printer, object: &Value) -> Value {
        Value::Array(printer.cells(object, now()))
    }

    fn names(printer: &Printer) -> Vec<String> {
        printer
            .column_definitions()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn ages_read_like_kubectl() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (192, "3m12s"),
            (599, "9m59s"),
            (600, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600, "3h"),
            (5 * 3600 + 3 * 60, "5h3m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (2 * 86400, "2d"),
            (2 * 86400 + 4 * 3600, "2d4h"),
            (8 * 86400, "8d"),
            (400 * 86400, "400d"),
            (730 * 86400, "2y"),
            (3 * 365 * 86400 + 20 * 86400, "3y20d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (secs, want) in cases {
            assert_eq!(
                human_duration(chrono::Duration::seconds(secs)),
                want,
                "{secs}s"
            );
        }
        // Sub-second parts are dropped, as Go's int(d.Seconds()) does.
        assert_eq!(human_duration(chrono::Duration::milliseconds(1999)), "1s");
    }

    #[test]
    fn accept_picks_the_first_form_served() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        let cases = [
            (kubectl, Representation::Table(TableVersion::V1)),
            (
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json",
                Representation::Table(TableVersion::V1beta1),
            ),
            ("application/json", Representation::Objects),
            ("application/json, */*", Representation::Objects),
            ("", Representation::Objects),
            // kube-rs' metadata lists: not served as such, so the objects.
            (
                "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json",
                Representation::Objects,
            ),
            (
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io",
                Representation::Table(TableVersion::V1),
            ),
            (
                "application/json;as=Table;v=v2;g=meta.k8s.io,application/json",
                Representation::Objects,
            ),
            (
                "application/json;as=Table;v=v1;g=meta.k8s.io;q=0,application/json",
                Representation::Objects,
            ),
        ];
        for (accept, want) in cases {
            assert_eq!(negotiate(accept), want, "{accept}");
        }
    }

    #[test]
    fn include_object_values() {
        assert_eq!(IncludeObject::parse(None), Ok(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse(Some("")), Ok(IncludeObject::Metadata));
        assert_eq!(
            IncludeObject::parse(Some("Object")),
            Ok(IncludeObject::Object)
        );
        assert_eq!(IncludeObject::parse(Some("None")), Ok(IncludeObject::None));
        let err = IncludeObject::parse(Some("All")).unwrap_err();
        assert!(err.contains("Unsupported value: \"All\""), "{err}");
    }

    fn deployment(ready: i64, replicas: i64) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "reviews", "namespace": "shop", "creationTimestamp": created(312),
                         "labels": {"app": "reviews"}},
            "spec": {
                "replicas": replicas,
                "selector": {
                    "matchLabels": {"version": "v1", "app": "reviews"},
                    "matchExpressions": [
                        {"key": "tier", "operator": "In", "values": ["web", "api"]},
                        {"key": "canary", "operator": "DoesNotExist"}
                    ]
                },
                "template": {"spec": {"containers": [
                    {"name": "app", "image": "reviews:1"},
                    {"name": "proxy", "image": "envoy:1.30"}
                ]}}
            },
            "status": {"readyReplicas": ready, "updatedReplicas": ready, "availableReplicas": ready}
        })
    }

    #[test]
    fn builtin_printers_fill_every_column() {
        let svc = json!({
            "metadata": {"name": "reviews", "creationTimestamp": created(45)},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.12", "clusterIPs": ["10.96.0.12"],
                     "ports": [{"port": 9080, "protocol": "TCP"}, {"port": 443, "protocol": "TCP", "nodePort": 30443}],
                     "selector": {"app": "reviews", "tier": "web"}}
        });
        let lb = json!({
            "metadata": {"name": "edge", "creationTimestamp": created(45)},
            "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.13"], "ports": []},
            "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example"}, {"ip": "1.2.3.4"}]}}
        });
        let pending = json!({"metadata": {"name": "new"}, "spec": {"type": "LoadBalancer"}});
        let cm = json!({"metadata": {"name": "settings", "creationTimestamp": created(3600 * 50)},
                        "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        let secret = json!({"metadata": {"name": "token", "creationTimestamp": created(10)},
                            "type": "Opaque", "data": {"a": "MQ=="}, "stringData": {"a": "1", "b": "2"}});
        let ns = json!({"metadata": {"name": "shop", "creationTimestamp": created(130)},
                        "status": {"phase": "Active"}});
        let lease = json!({"metadata": {"name": "veer-leader", "creationTimestamp": created(5)},
                           "spec": {"holderIdentity": "veer-0"}});
        let sa = json!({"metadata": {"name": "veer", "creationTimestamp": created(5)},
                        "secrets": [{"name": "a"}]});
        let rb = json!({"metadata": {"name": "veer", "creationTimestamp": created(5)},
                        "roleRef": {"kind": "ClusterRole", "name": "edit"},
                        "subjects": [{"kind": "ServiceAccount", "namespace": "veer", "name": "veer"},
                                     {"kind": "User", "name": "ann"}, {"kind": "User", "name": "bob"},
                                     {"kind": "Group", "name": "ops"}]});
        let role =
            json!({"metadata": {"name": "reader", "creationTimestamp": "2026-02-28T10:00:00Z"}});
        // kind, object, cells
        #[rustfmt::skip]
        let cases: Vec<(&str, &str, Value, Value)> = vec![
            ("apps", "Deployment", deployment(1, 1), json!(["reviews", "1/1", 1, 1, "5m12s",
                "app,proxy", "reviews:1,envoy:1.30", "app=reviews,!canary,tier in (api,web),version=v1"])),
            ("apps", "Deployment", deployment(0, 3), json!(["reviews", "0/3", 0, 0, "5m12s",
                "app,proxy", "reviews:1,envoy:1.30", "app=reviews,!canary,tier in (api,web),version=v1"])),
            ("", "Service", svc, json!(["reviews", "ClusterIP", "10.96.0.12", "<none>",
                "9080/TCP,443:30443/TCP", "45s", "app=reviews,tier=web"])),
            ("", "Service", lb, json!(["edge", "LoadBalancer", "10.96.0.13", "1.2.3.4,lb.example",
                "<none>", "45s", "<none>"])),
            ("", "Service", pending, json!(["new", "LoadBalancer", "<none>", "<pending>", "<none>",
                "<unknown>", "<none>"])),
            ("", "ConfigMap", cm, json!(["settings", 3, "2d2h"])),
            ("", "Secret", secret, json!(["token", "Opaque", 2, "10s"])),
            ("", "Namespace", ns, json!(["shop", "Active", "2m10s"])),
            ("coordination.k8s.io", "Lease", lease, json!(["veer-leader", "veer-0", "5s"])),
            ("", "ServiceAccount", sa, json!(["veer", 1, "5s"])),
            ("rbac.authorization.k8s.io", "RoleBinding", rb, json!(["veer", "ClusterRole/edit", "5s",
                "ann, bob", "ops", "veer/veer"])),
            ("rbac.authorization.k8s.io", "Role", role.clone(), json!(["reader", "2026-02-28T10:00:00Z"])),
            ("apiextensions.k8s.io", "CustomResourceDefinition", role,
                json!(["reader", "2026-02-28T10:00:00Z"])),
        ];
        for (group, kind, object, want) in cases {
            let p = Printer::for_kind(group, kind);
            let cells = p.cells(&object, now());
            assert_eq!(cells.len(), p.column_definitions().len(), "{kind}");
            assert_eq!(Value::Array(cells), want, "{kind}");
        }
    }

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

    #[test]
    fn pods_show_readiness_status_and_restarts() {
        let running = json!({
            "metadata": {"name": "reviews-1", "creationTimestamp": created(60)},
            "spec": {"containers": [{"name": "app"}, {"name": "proxy"}], "nodeName": "node-1"},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.7"}], "containerStatuses": [
                {"name": "app", "ready": true, "restartCount": 2, "state": {"running": {}},
                 "lastState": {"terminated": {"finishedAt": created(30)}}},
                {"name": "proxy", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}
        });
        let p = Printer::for_kind("", "Pod");
        assert_eq!(
            cells(&p, &running),
            json!([
                "reviews-1",
                "1/2",
                "CrashLoopBackOff",
                "2 (30s ago)",
                "60s",
                "10.0.0.7",
                "node-1",
                "<none>",
                "<none>"
            ])
        );
        let done = json!({"metadata": {"name": "job"}, "spec": {"containers": [{"name": "a"}]},
                          "status": {"phase": "Succeeded", "containerStatuses": [
                              {"name": "a", "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]}});
        let cells = p.cells(&done, now());
        assert_eq!((&cells[1], &cells[2]), (&json!("0/1"), &json!("Completed")));
        let opts = TableOptions {
            version: TableVersion::V1,
            include: IncludeObject::None,
            headers: true,
        };
        let t = table(&p, &[done], "7", &opts, now());
        assert_eq!(t["rows"][0]["conditions"][0]["type"], "Completed");
        assert!(t["rows"][0].get("object").is_none());
        let deleting = json!({"metadata": {"name": "x", "deletionTimestamp": created(1)},
                              "spec": {"containers": []}, "status": {"phase": "Running"}});
        assert_eq!(p.cells(&deleting, now())[2], json!("Terminating"));
    }

    #[test]
    fn events_name_their_object_and_source() {
        let ev = json!({
            "metadata": {"name": "reviews.17f", "creationTimestamp": created(100)},
            "involvedObject": {"kind": "Deployment", "name": "reviews", "fieldPath": ""},
            "reason": "RolloutStep", "type": "Normal", "message": " weight 20 \n",
            "source": {"component": "veer"}, "firstTimestamp": created(100), "lastTimestamp": created(4),
            "count": 3
        });
        assert_eq!(
            cells(&Printer::for_kind("", "Event"), &ev),
            json!([
                "4s",
                "Normal",
                "RolloutStep",
                "deployment/reviews",
                "",
                "veer",
                "weight 20",
                "100s",
                3,
                "reviews.17f"
            ])
        );
    }

    fn vs() -> Value {
        json!({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "reviews", "namespace": "shop", "creationTimestamp": created(7200)},
            "spec": {"hosts": ["reviews", "reviews.shop.svc"], "gateways": ["mesh"]}
        })
    }

    #[test]
    fn istio_kinds_print_their_crd_columns() {
        let p = Printer::for_kind("networking.istio.io", "VirtualService");
        assert_eq!(names(&p), ["Name", "Gateways", "Hosts", "Age"]);
        assert_eq!(
            cells(&p, &vs()),
            json!([
                "reviews",
                "[\"mesh\"]",
                "[\"reviews\",\"reviews.shop.svc\"]",
                "120m"
            ])
        );
        // No gateways: an empty cell.
        let mut bare = vs();
        bare["spec"].as_object_mut().unwrap().remove("gateways");
        assert_eq!(p.cells(&bare, now())[1], Value::Null);

        let dr = json!({"metadata": {"name": "reviews", "creationTimestamp": created(3)},
                        "spec": {"host": "reviews.shop.svc.cluster.local"}});
        let p = Printer::for_kind("networking.istio.io", "DestinationRule");
        assert_eq!(names(&p), ["Name", "Host", "Age"]);
        assert_eq!(
            cells(&p, &dr),
            json!(["reviews", "reviews.shop.svc.cluster.local", "3s"])
        );
        let se = json!({"metadata": {"name": "ext"}, "spec": {"hosts": ["api.example.com"],
                        "location": "MESH_EXTERNAL", "resolution": "DNS"}});
        let p = Printer::for_kind("networking.istio.io", "ServiceEntry");
        assert_eq!(
            names(&p),
            ["Name", "Hosts", "Location", "Resolution", "Age"]
        );
        assert_eq!(
            cells(&p, &se),
            // No creationTimestamp: the path finds nothing (unlike built-in AGE's <unknown>).
            json!(["ext", "[\"api.example.com\"]", "MESH_EXTERNAL", "DNS", null])
        );
        for kind in ["Gateway", "Sidecar"] {
            assert_eq!(
                names(&Printer::for_kind("networking.istio.io", kind)),
                ["Name", "Age"]
            );
        }
    }

    fn widget_crd() -> Value {
        json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"},
                     "scope": "Namespaced", "versions": [
                {"name": "v1", "served": true, "storage": true, "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio", "priority": 1},
                    {"name": "On", "type": "boolean", "jsonPath": ".spec.on"},
                    {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                    {"name": "Labels", "type": "string", "jsonPath": ".metadata.labels"},
                    {"name": "Seen", "type": "date", "jsonPath": ".status.seen"},
                    {"name": "Bad", "type": "date", "jsonPath": ".spec.size"}
                ]},
                {"name": "v1beta1", "served": true, "storage": false}
            ]}
        })
    }

    #[test]
    fn crd_columns_are_evaluated_by_json_path_and_typed() {
        let p = Printer::from_crd(&widget_crd(), "v1");
        assert_eq!(
            names(&p),
            [
                "Name", "Size", "Ratio", "On", "Ready", "Labels", "Seen", "Bad"
            ]
        );
        let defs = p.column_definitions();
        assert_eq!(defs[2]["priority"], 1);
        assert_eq!(
            defs[1]["description"],
            "Custom resource definition column (in JSONPath format): .spec.size"
        );
        let w = json!({
            "metadata": {"name": "w1", "labels": {"z": "1", "a": "<2>"}},
            "spec": {"size": 3.7, "ratio": 2, "on": true},
            "status": {"seen": created(90), "conditions": [
                {"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}
        });
        assert_eq!(
            cells(&p, &w),
            json!([
                "w1",
                3,
                2.0,
                true,
                "True",
                "{\"a\":\"\\u003c2\\u003e\",\"z\":\"1\"}",
                "90s",
                null
            ])
        );
        let bad_date = json!({"metadata": {"name": "w2"}, "spec": {"on": "yes"},
                              "status": {"seen": "yesterday"}});
        let cells = p.cells(&bad_date, now());
        assert_eq!(cells[3], Value::Null, "a string is no boolean");
        assert_eq!(cells[6], json!("<invalid>"));
        // A version without columns gets AGE.
        assert_eq!(
            names(&Printer::from_crd(&widget_crd(), "v1beta1")),
            ["Name", "Age"]
        );
    }

    #[test]
    fn tables_carry_partial_metadata_or_the_object() {
        let p = Printer::for_kind("networking.istio.io", "VirtualService");
        let mut opts = TableOptions {
            version: TableVersion::V1,
            include: IncludeObject::Metadata,
            headers: true,
        };
        let t = table(&p, &[vs()], "42", &opts, now());
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"]["resourceVersion"], "42");
        assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 4);
        let object = &t["rows"][0]["object"];
        assert_eq!(object["kind"], "PartialObjectMetadata");
        assert_eq!(object["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(object["metadata"]["namespace"], "shop");
        assert!(object.get("spec").is_none());

        opts.version = TableVersion::V1beta1;
        opts.include = IncludeObject::Object;
        opts.headers = false;
        let t = table(&p, &[vs()], "42", &opts, now());
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1beta1");
        assert_eq!(t["columnDefinitions"], json!([]));
        assert_eq!(t["rows"][0]["object"], vs());
        let empty = table(&p, &[], "43", &opts, now());
        assert_eq!(empty["rows"], json!([]));
    }
}
