//! A small Helm renderer for the rendering check (`tests/chart.rs`): no `helm` binary can be
//! installed here, so the chart is rendered with the `gtmpl` crate (Go's text/template in
//! Rust) plus the few Helm/Sprig functions the chart is allowed to use. Values are coalesced
//! as Helm does (maps merged key by key, anything else replaced), and `.Release`, `.Chart`,
//! `.Template` are filled in.
//!
//! The function set is deliberately small and listed in `charts/veer/README.md`; a template
//! calling anything else fails to render here, which is the point: the chart stays within what
//! this check can prove.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use gtmpl::{Context, Func, FuncError, Template, Value};
use sha2::{Digest, Sha256};

/// The Helm/Sprig functions implemented here (Go's built-ins come with gtmpl).
pub const FUNCTIONS: &[&str] = &[
    "include",
    "toYaml",
    "nindent",
    "indent",
    "quote",
    "default",
    "required",
    "fail",
    "int",
    "kindIs",
    "list",
    "sha256sum",
];

fn functions() -> Vec<(&'static str, Func)> {
    vec![
        ("include", include as Func),
        ("toYaml", to_yaml as Func),
        ("nindent", nindent as Func),
        ("indent", indent as Func),
        ("quote", quote as Func),
        ("default", default as Func),
        ("required", required as Func),
        ("fail", fail as Func),
        ("int", int as Func),
        ("kindIs", kind_is as Func),
        ("list", list as Func),
        ("sha256sum", sha256sum as Func),
    ]
}

/// A chart read from disk.
pub struct Chart {
    pub dir: PathBuf,
    pub name: String,
    pub metadata: serde_json::Value,
    pub values: serde_json::Value,
    /// `templates/*` other than `_*.tpl` and NOTES.txt, by file name, sorted.
    pub templates: Vec<(String, String)>,
    pub notes: Option<String>,
    /// `templates/_*.tpl`: only `define`s.
    pub helpers: Vec<String>,
}

/// Release facts for `.Release`.
pub struct Release<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
}

/// One rendered template file.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// `veer/templates/deployment.yaml`.
    pub template: String,
    pub text: String,
}

impl Chart {
    pub fn load(dir: &Path) -> Chart {
        let read = |p: &Path| {
            std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        };
        let metadata = yaml(&read(&dir.join("Chart.yaml")));
        let values = yaml(&read(&dir.join("values.yaml")));
        let name = metadata["name"]
            .as_str()
            .expect("Chart.yaml has a name")
            .to_string();
        let mut templates = Vec::new();
        let mut helpers = Vec::new();
        let mut notes = None;
        let mut entries: Vec<_> = std::fs::read_dir(dir.join("templates"))
            .expect("templates/ exists")
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let file = path
                .file_name()
                .and_then(|f| f.to_str())
                .expect("UTF-8 file names")
                .to_string();
            let text = read(&path);
            if file.starts_with('_') {
                helpers.push(text);
            } else if file == "NOTES.txt" {
                notes = Some(text);
            } else {
                templates.push((file, text));
            }
        }
        Chart {
            dir: dir.to_path_buf(),
            name,
            metadata,
            values,
            templates,
            notes,
            helpers,
        }
    }

    /// The values Helm would use: values.yaml coalesced with each override in order.
    pub fn values_with(&self, overrides: &[serde_json::Value]) -> serde_json::Value {
        let mut values = self.values.clone();
        for o in overrides {
            coalesce(&mut values, o);
        }
        values
    }

    fn root(&self, values: &serde_json::Value, release: &Release) -> serde_json::Value {
        let m = &self.metadata;
        serde_json::json!({
            "Values": values,
            "Release": {"Name": release.name, "Namespace": release.namespace,
                        "Service": "Helm", "IsInstall": true, "IsUpgrade": false, "Revision": 1},
            "Chart": {"Name": m["name"], "Version": m["version"], "AppVersion": m["appVersion"]},
            "Template": {"BasePath": format!("{}/templates", self.name), "Name": ""},
        })
    }

    /// Every file of templates/ by its Helm name (`veer/templates/x.yaml`): helpers bring
    /// their `define`s, and a file's name is what `include (print $.Template.BasePath ..)`
    /// refers to.
    fn sources(&self) -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = self
            .helpers
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    format!("{}/templates/_helpers{i}.tpl", self.name),
                    t.clone(),
                )
            })
            .collect();
        for (file, text) in &self.templates {
            all.push((format!("{}/templates/{file}", self.name), text.clone()));
        }
        all
    }

    /// Render every template file (and NOTES.txt) with `values`; the first error stops.
    pub fn render(
        &self,
        values: &serde_json::Value,
        release: &Release,
    ) -> Result<(Vec<Rendered>, String), String> {
        let root = to_gtmpl(&self.root(values, release));
        let defs = self.sources();
        DEFINITIONS.with(|d| *d.borrow_mut() = defs.clone());
        let mut out = Vec::new();
        for (file, _) in &self.templates {
            let name = format!("{}/templates/{file}", self.name);
            let text = execute(&defs, &name, &root).map_err(|e| format!("{name}: {e}"))?;
            out.push(Rendered {
                template: name,
                text,
            });
        }
        let notes = match &self.notes {
            Some(n) => {
                let name = format!("{}/templates/NOTES.txt", self.name);
                let mut defs = defs.clone();
                defs.push((name.clone(), n.clone()));
                execute(&defs, &name, &root).map_err(|e| format!("NOTES.txt: {e}"))?
            }
            None => String::new(),
        };
        Ok((out, notes))
    }
}

thread_local! {
    /// The chart's defines, for `include` (gtmpl functions are plain `fn`s without access to
    /// the template they run in).
    static DEFINITIONS: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

fn template() -> Template {
    let mut t = Template::default();
    for (name, f) in functions() {
        t.add_func(name, f);
    }
    t
}

fn execute(sources: &[(String, String)], name: &str, data: &Value) -> Result<String, String> {
    let mut t = template();
    for (file, text) in sources {
        t.add_template(file.as_str(), text.as_str())
            .map_err(|e| format!("{file}: {e}"))?;
    }
    t.parse(format!("{{{{- template \"{name}\" . -}}}}"))
        .map_err(|e| e.to_string())?;
    t.render(&Context::from(data.clone()))
        .map_err(|e| e.to_string())
}

/// Helm's value coalescing: maps merge key by key; anything else in `over` replaces.
pub fn coalesce(base: &mut serde_json::Value, over: &serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        coalesce(existing, v)
                    }
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Parse one YAML document into JSON.
pub fn yaml(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("invalid YAML: {e}\n{text}"))
}

/// Split rendered output into YAML documents as Helm does (`---` lines), dropping documents
/// that hold only comments or whitespace.
pub fn documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else if let Some(last) = docs.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    docs.into_iter()
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

pub fn to_gtmpl(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (None, Some(u), _) => Value::from(u),
            (None, None, Some(f)) => Value::from(f),
            (None, None, None) => Value::Nil,
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(to_gtmpl).collect()),
        serde_json::Value::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| (k.clone(), to_gtmpl(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// Back to JSON, keys sorted (as Helm's toYaml sorts them), for deterministic output.
fn to_json(v: &Value) -> Result<serde_json::Value, FuncError> {
    Ok(match v {
        Value::NoValue | Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.into(),
            (None, Some(u), _) => u.into(),
            (None, None, Some(f)) => serde_json::Number::from_f64(f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            (None, None, None) => serde_json::Value::Null,
        },
        Value::Array(a) => {
            serde_json::Value::Array(a.iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Value::Map(m) | Value::Object(m) => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            let mut out = serde_json::Map::new();
            for (k, v) in sorted {
                out.insert(k.clone(), to_json(v)?);
            }
            serde_json::Value::Object(out)
        }
        Value::Function(_) => {
            return Err(FuncError::Generic(
                "toYaml: cannot render a function".into(),
            ));
        }
    })
}

/// Go's `fmt` of a value, as Sprig's `strval` gives it.
fn strval(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::NoValue | Value::Nil => String::new(),
        other => other.to_string(),
    }
}

/// Sprig's notion of empty (what `default` replaces).
fn is_empty(v: &Value) -> bool {
    match v {
        Value::NoValue | Value::Nil => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Map(m) | Value::Object(m) => m.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Function(_) => false,
    }
}

fn arg<'a>(args: &'a [Value], i: usize, f: &str) -> Result<&'a Value, FuncError> {
    args.get(i)
        .ok_or_else(|| FuncError::ExactlyXArgs(f.to_string(), i + 1))
}

fn number(v: &Value, f: &str) -> Result<usize, FuncError> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(|u| u as usize)
            .ok_or_else(|| FuncError::Generic(format!("{f}: not a count: {n}"))),
        other => Err(FuncError::Generic(format!("{f}: not a number: {other}"))),
    }
}

fn include(args: &[Value]) -> Result<Value, FuncError> {
    let Value::String(name) = arg(args, 0, "include")? else {
        return Err(FuncError::Generic(
            "include: the name must be a string".into(),
        ));
    };
    let data = args.get(1).cloned().unwrap_or(Value::Nil);
    let defs = DEFINITIONS.with(|d| d.borrow().clone());
    let text = execute(&defs, name, &data)
        .map_err(|e| FuncError::Generic(format!("include {name}: {e}")))?;
    Ok(Value::String(text))
}

fn to_yaml(args: &[Value]) -> Result<Value, FuncError> {
    let json = to_json(arg(args, 0, "toYaml")?)?;
    let text =
        serde_saphyr::to_string(&json).map_err(|e| FuncError::Generic(format!("toYaml: {e}")))?;
    Ok(Value::String(text.trim_end_matches('\n').to_string()))
}

fn indent_by(n: usize, s: &str) -> String {
    let pad = " ".repeat(n);
    format!("{pad}{}", s.replace('\n', &format!("\n{pad}")))
}

fn indent(args: &[Value]) -> Result<Value, FuncError> {
    let n = number(arg(args, 0, "indent")?, "indent")?;
    Ok(Value::String(indent_by(
        n,
        &strval(arg(args, 1, "indent")?),
    )))
}

fn nindent(args: &[Value]) -> Result<Value, FuncError> {
    let n = number(arg(args, 0, "nindent")?, "nindent")?;
    Ok(Value::String(format!(
        "\n{}",
        indent_by(n, &strval(arg(args, 1, "nindent")?))
    )))
}

fn quote(args: &[Value]) -> Result<Value, FuncError> {
    // Go's %q of each non-nil argument, space-separated; JSON escaping agrees for the text
    // a chart quotes.
    let quoted: Vec<String> = args
        .iter()
        .filter(|v| !matches!(v, Value::Nil | Value::NoValue))
        .map(|v| serde_json::Value::String(strval(v)).to_string())
        .collect();
    Ok(Value::String(quoted.join(" ")))
}

fn default(args: &[Value]) -> Result<Value, FuncError> {
    let fallback = arg(args, 0, "default")?;
    match args.get(1) {
        Some(given) if !is_empty(given) => Ok(given.clone()),
        _ => Ok(fallback.clone()),
    }
}

fn required(args: &[Value]) -> Result<Value, FuncError> {
    let message = strval(arg(args, 0, "required")?);
    match args.get(1) {
        None | Some(Value::Nil) | Some(Value::NoValue) => Err(FuncError::Generic(message)),
        Some(Value::String(s)) if s.is_empty() => Err(FuncError::Generic(message)),
        Some(v) => Ok(v.clone()),
    }
}

fn fail(args: &[Value]) -> Result<Value, FuncError> {
    Err(FuncError::Generic(strval(arg(args, 0, "fail")?)))
}

fn int(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(match arg(args, 0, "int")? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or(0),
        Value::String(s) => s.trim().parse().unwrap_or(0),
        Value::Bool(b) => i64::from(*b),
        _ => 0,
    }))
}

fn kind_is(args: &[Value]) -> Result<Value, FuncError> {
    let kind = strval(arg(args, 0, "kindIs")?);
    let actual = match arg(args, 1, "kindIs")? {
        Value::NoValue | Value::Nil => "invalid",
        Value::Bool(_) => "bool",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Map(_) | Value::Object(_) => "map",
        Value::Number(n) if n.as_i64().is_some() || n.as_u64().is_some() => "int64",
        Value::Number(_) => "float64",
        Value::Function(_) => "func",
    };
    Ok(Value::Bool(kind == actual))
}

fn list(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::Array(args.to_vec()))
}

fn sha256sum(args: &[Value]) -> Result<Value, FuncError> {
    let digest = Sha256::digest(strval(arg(args, 0, "sha256sum")?).as_bytes());
    Ok(Value::String(
        digest.iter().map(|b| format!("{b:02x}")).collect(),
    ))
}
