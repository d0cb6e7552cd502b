//! The manifest model: files of a revision become objects identified by
//! (group, version, kind, namespace, name), each remembering its file and line.
//!
//! Files are read as kubectl reads them: YAML as go-yaml reads it ([`yaml`]), `kind: List`
//! documents expanded into their items ([`list`]). Istio traffic kinds are parsed into typed
//! structs (unknown fields are errors, all of them reported); every other kind passes through
//! as a generic object. Reading problems become [`Diagnostic`]s, never panics: every document
//! of a file is read whatever the others hold. No git, no kube, no network here: files come in
//! as bytes.

pub mod istio;
pub mod kinds;
mod list;
pub mod policy;
pub mod rollout_policy;
pub mod yaml;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::diagnostic::Diagnostic;
use yaml::{Document, Location, Positions};

pub use istio::TypedObject;

/// Default largest manifest file veer reads.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Identity of a Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ObjectKey {
    /// API group; empty for the core group (`v1`).
    pub group: String,
    pub version: String,
    pub kind: String,
    /// `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectKey {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The object's identity regardless of API version, for hash lookups that must agree
    /// with [`ObjectKey::same_object`].
    pub fn identity(&self) -> ObjectIdentity<'_> {
        ObjectIdentity {
            group: &self.group,
            kind: &self.kind,
            namespace: self.namespace.as_deref(),
            name: &self.name,
        }
    }

    /// Same object regardless of API version (v1alpha3 and v1 of a VirtualService are one).
    pub fn same_object(&self, other: &ObjectKey) -> bool {
        self.group == other.group
            && self.kind == other.kind
            && self.namespace == other.namespace
            && self.name == other.name
    }
}

/// An object's identity without its API version (see [`ObjectKey::identity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectIdentity<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Kinds that have no namespace. Anything else is namespaced.
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("storage.k8s.io", "StorageClass"),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("scheduling.k8s.io", "PriorityClass"),
    ("networking.k8s.io", "IngressClass"),
    // veer's policies are veer configuration, named across the whole repository.
    ("veer.io", "RolloutPolicy"),
];

pub fn is_cluster_scoped(group: &str, kind: &str) -> bool {
    CLUSTER_SCOPED
        .iter()
        .any(|(g, k)| *g == group && *k == kind)
}

/// One object read from git.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub key: ObjectKey,
    /// File path relative to the repository root.
    pub file: String,
    /// Line where the document starts.
    pub line: u32,
    /// The object as written (for converted kinds, as converted).
    pub value: Value,
    pub positions: Positions,
    pub typed: TypedObject,
    /// Set when veer converted the object from a legacy kind (e.g. a DestinationPolicy): the
    /// original's identity, so `veer validate` can show what it became. Boxed: almost no
    /// object has one, and inline it would cost every object of a revision 120 bytes.
    pub converted_from: Option<Box<ObjectKey>>,
}

impl Manifest {
    /// Location of a field, by JSON pointer (nearest ancestor when absent).
    pub fn locate(&self, pointer: &str) -> Location {
        self.positions.locate(pointer)
    }

    /// An error about the field at `pointer` of this object.
    pub fn error(
        &self,
        code: &'static str,
        pointer: &str,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::error(code, &self.file, self.locate(pointer), message).object(&self.key)
    }

    /// A warning about the field at `pointer` of this object.
    pub fn warning(
        &self,
        code: &'static str,
        pointer: &str,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::warning(code, &self.file, self.locate(pointer), message).object(&self.key)
    }

    pub fn namespace(&self) -> &str {
        self.key.namespace.as_deref().unwrap_or("")
    }

    pub fn labels(&self) -> Option<&serde_json::Map<String, Value>> {
        self.value.pointer("/metadata/labels")?.as_object()
    }

    pub fn annotation(&self, name: &str) -> Option<&str> {
        self.value
            .pointer("/metadata/annotations")?
            .get(name)?
            .as_str()
    }
}

/// What one file yields: its objects and what was wrong with it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedFile {
    /// Shared, so a revision built from cached files copies pointers, not objects.
    pub manifests: Vec<Arc<Manifest>>,
    pub diagnostics: Vec<Diagnostic>,
    /// Documents (and `kind: List` items) that are objects, usable or not: `manifests` leaves
    /// out those too broken to use, this counts them.
    pub objects: usize,
}

/// Options for reading files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Namespace for namespaced objects that do not name one.
    pub default_namespace: String,
    pub max_file_bytes: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            default_namespace: "default".to_string(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// Is this path one veer reads as manifests?
pub fn is_manifest_path(path: &str) -> bool {
    path.ends_with(".yaml") || path.ends_with(".yml")
}

/// The `file-too-large` diagnostic when `size` is over the limit; sources call it with the
/// size alone so an oversized file is refused before it is read.
pub fn too_large(path: &str, size: u64, options: &ReadOptions) -> Option<Diagnostic> {
    (size > options.max_file_bytes).then(|| {
        Diagnostic::error(
            "file-too-large",
            path,
            Location::new(1, 1),
            format!(
                "file is {size} bytes, more than the limit of {} bytes",
                options.max_file_bytes
            ),
        )
        .fix("split it into smaller files, or raise `maxFileBytes` in veer.yaml")
    })
}

/// Read one file. Never panics on any input.
pub fn parse_file(path: &str, content: &[u8], options: &ReadOptions) -> ParsedFile {
    let mut out = ParsedFile::default();
    if let Some(d) = too_large(path, content.len() as u64, options) {
        out.diagnostics.push(d);
        return out;
    }
    let text = match std::str::from_utf8(content) {
        Ok(t) => t,
        Err(e) => {
            let line = content[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u32
                + 1;
            out.diagnostics.push(
                Diagnostic::error(
                    "not-utf8",
                    path,
                    Location::new(line, 1),
                    format!(
                        "file is not UTF-8 (invalid byte at offset {})",
                        e.valid_up_to()
                    ),
                )
                .fix("save the file as UTF-8"),
            );
            return out;
        }
    };
    let documents = match yaml::parse_documents(text) {
        Ok(d) => d,
        Err(e) => {
            out.diagnostics.push(
                Diagnostic::error("yaml-syntax", path, e.location, e.message)
                    .fix("correct the YAML at this line"),
            );
            return out;
        }
    };
    for doc in documents.into_iter().flat_map(list::expand) {
        if doc.value.is_object() {
            out.objects += 1;
        }
        match read_object(path, doc, options) {
            Ok((manifest, warnings)) => {
                out.diagnostics.extend(warnings);
                out.manifests.push(Arc::new(manifest));
            }
            Err(diagnostics) => out.diagnostics.extend(diagnostics),
        }
    }
    out
}

/// Turn one document into a manifest: identity first, then the typed Istio form.
fn read_object(
    path: &str,
    doc: Document,
    options: &ReadOptions,
) -> Result<(Manifest, Vec<Diagnostic>), Vec<Diagnostic>> {
    let missing = |field: &str, pointer: &str, fix: &str| {
        Diagnostic::error(
            "missing-field",
            path,
            doc.positions.locate(pointer),
            format!("document has no `{field}`"),
        )
        .fix(fix.to_string())
    };
    if !doc.value.is_object() {
        return Err(vec![
            Diagnostic::error(
                "not-an-object",
                path,
                doc.start,
                "document is not a mapping; a Kubernetes object is a mapping with apiVersion, kind and metadata",
            )
            .fix("make the document a Kubernetes object, or remove it"),
        ]);
    }
    let mut errors = Vec::new();
    let api_version = doc.value.get("apiVersion").and_then(Value::as_str);
    let kind = doc.value.get("kind").and_then(Value::as_str);
    let name = doc.value.pointer("/metadata/name").and_then(Value::as_str);
    if api_version.is_none_or(str::is_empty) {
        errors.push(missing(
            "apiVersion",
            "/apiVersion",
            "add `apiVersion`, e.g. `networking.istio.io/v1`",
        ));
    }
    if kind.is_none_or(str::is_empty) {
        errors.push(missing(
            "kind",
            "/kind",
            "add `kind`, e.g. `VirtualService`",
        ));
    }
    if name.is_none_or(str::is_empty) {
        errors.push(match generate_name(&doc.value) {
            // kubectl create can generate a name; apply (veer applies server-side) cannot.
            Some(prefix) => Diagnostic::error(
                "generate-name",
                path,
                doc.positions.locate("/metadata/generateName"),
                "metadata.generateName is not supported: veer applies objects server-side, and apply needs the object's name",
            )
            .fix(format!(
                "replace `generateName: {prefix}` by a fixed `name:`, e.g. `name: {prefix}1`"
            )),
            None => missing(
                "metadata.name",
                "/metadata",
                "add `metadata.name` to name the object",
            ),
        });
    }
    let (Some(api_version), Some(kind), Some(name)) = (api_version, kind, name) else {
        return Err(errors);
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.to_string()),
    };
    if let Some(right) = kinds::right_case(&group, kind) {
        return Err(vec![
            Diagnostic::error(
                "kind-case",
                path,
                doc.positions.locate("/kind"),
                format!(
                    "kind `{kind}` is spelt with the wrong case; the API server matches kinds exactly and knows {api_version} `{right}`"
                ),
            )
            .fix(format!("write `kind: {right}`")),
        ]);
    }
    let namespace = if is_cluster_scoped(&group, kind) {
        None
    } else {
        Some(
            doc.value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|ns| !ns.is_empty())
                .unwrap_or(&options.default_namespace)
                .to_string(),
        )
    };
    let key = ObjectKey {
        group,
        version,
        kind: kind.to_string(),
        namespace,
        name: name.to_string(),
    };
    let manifest = Manifest {
        key,
        file: path.to_string(),
        line: doc.start.line,
        value: doc.value,
        positions: doc.positions,
        typed: TypedObject::Generic,
        converted_from: None,
    };
    istio::type_manifest(manifest)
}

/// `metadata.generateName`, when the document has a non-empty one.
fn generate_name(value: &Value) -> Option<&str> {
    value
        .pointer("/metadata/generateName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The id of a file's content: 20 bytes (a git blob id, raw), so that a cache lookup neither
/// formats nor allocates. Whoever makes one must change it whenever the bytes change.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ContentId(pub [u8; 20]);

impl ContentId {
    /// From a 20-byte slice (a git object id's bytes); `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentId({self})")
    }
}

/// Parsed files cached by content id, so an unchanged file is never parsed twice. The path is
/// part of the key because diagnostics name the file. One entry per path (a revision has one
/// content per path), keyed by the caller's shared path: a lookup borrows it, and a hit on an
/// entry keyed by another copy of the path takes the caller's instead, so the cache and its
/// caller hold each path once. A load of 10,000 unchanged files allocates nothing.
#[derive(Debug, Default)]
pub struct ParseCache {
    /// By path: the content id parsed and what it gave.
    entries: HashMap<Arc<str>, (ContentId, Arc<ParsedFile>)>,
}

impl ParseCache {
    /// What `path` at `content_id` gave, if it was parsed already.
    pub fn get(&mut self, path: &Arc<str>, content_id: ContentId) -> Option<Arc<ParsedFile>> {
        let (key, (id, parsed)) = self.entries.get_key_value(&**path)?;
        if *id != content_id {
            return None;
        }
        let parsed = Arc::clone(parsed);
        if !Arc::ptr_eq(key, path) {
            // Another copy of the path (the caller read the directory again): keep the
            // caller's, so the older copy is freed.
            self.entries.remove(&**path);
            self.entries
                .insert(Arc::clone(path), (content_id, Arc::clone(&parsed)));
        }
        Some(parsed)
    }

    /// Parse `content` as `path` at `content_id` and remember it (replacing what `path` held).
    pub fn parse(
        &mut self,
        path: &Arc<str>,
        content_id: ContentId,
        content: &[u8],
        options: &ReadOptions,
    ) -> Arc<ParsedFile> {
        let parsed = Arc::new(parse_file(path, content, options));
        // Keyed by the caller's copy, as `get` does.
        self.entries.remove(&**path);
        self.entries
            .insert(Arc::clone(path), (content_id, Arc::clone(&parsed)));
        parsed
    }

    /// The cached parse, or `content()` parsed and remembered; whether it was cached.
    pub fn get_or_parse(
        &mut self,
        path: &Arc<str>,
        content_id: ContentId,
        content: impl FnOnce() -> Vec<u8>,
        options: &ReadOptions,
    ) -> (Arc<ParsedFile>, bool) {
        match self.get(path, content_id) {
            Some(hit) => (hit, true),
            None => (self.parse(path, content_id, &content(), options), false),
        }
    }

    /// Has this (path, content id) been parsed already?
    pub fn contains(&self, path: &str, content_id: ContentId) -> bool {
        self.entries
            .get(path)
            .is_some_and(|(id, _)| *id == content_id)
    }

    /// Keep only the entries `keep(path, content id)` wants (those of the revision just
    /// loaded), so the cache does not grow without bound across revisions.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, ContentId) -> bool) {
        self.entries.retain(|path, (id, _)| keep(path, *id));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// All objects of one revision and every problem found while reading them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManifestSet {
    pub manifests: Vec<Arc<Manifest>>,
    pub diagnostics: Vec<Diagnostic>,
    /// Files read (each [`ManifestSet::extend`]), whatever they held.
    pub files: usize,
    /// Objects read, usable or not (the sum of [`ParsedFile::objects`]).
    pub objects: usize,
}

impl ManifestSet {
    pub fn extend(&mut self, file: &ParsedFile) {
        self.manifests.extend(file.manifests.iter().cloned());
        self.diagnostics.extend(file.diagnostics.iter().cloned());
        self.files += 1;
        self.objects += file.objects;
    }
}

#[cfg(test)]
mod tests;
