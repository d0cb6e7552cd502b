//! PromQL query templates: `{{ namespace }}`, `{{ service }}`, `{{ subset }}`, `{{ version }}`
//! and `{{ interval }}`, rendered by a pure function that rejects unknown variables and values
//! that could change the query's meaning.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A PromQL query with `{{ variable }}` placeholders, as written in a rollout policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QueryTemplate(String);

/// The names a template may use; anything else is an error, so a typo fails at load time.
pub const VARIABLES: [&str; 5] = ["namespace", "service", "subset", "version", "interval"];

/// The values a template is rendered with: which workload is analysed, over which window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vars {
    pub namespace: String,
    pub service: String,
    /// The DestinationRule subset the traffic is shifted to.
    pub subset: String,
    /// The pods' `version` label, which Istio reports as `destination_version`; usually the
    /// subset's name, which is the default.
    pub version: String,
    /// The window of range selectors (`rate(x[{{ interval }}])`).
    pub interval: Duration,
}

impl Vars {
    pub fn new(namespace: &str, service: &str, subset: &str, interval: Duration) -> Self {
        Self {
            namespace: namespace.to_string(),
            service: service.to_string(),
            subset: subset.to_string(),
            version: subset.to_string(),
            interval,
        }
    }

    pub fn with_version(mut self, version: &str) -> Self {
        self.version = version.to_string();
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "query template uses unknown variable `{{{{ {name} }}}}`; the variables are namespace, service, subset, version and interval"
    )]
    UnknownVariable { name: String },
    #[error("query template has a `{{{{` at byte {at} that is never closed with `}}}}`")]
    Unclosed { at: usize },
    #[error(
        "cannot put {variable} `{value}` into a query: only letters, digits, `.`, `_` and `-` are allowed (Kubernetes names and label values)"
    )]
    UnsafeValue {
        variable: &'static str,
        value: String,
    },
    #[error("the analysis interval must be at least one millisecond")]
    ZeroInterval,
}

impl TemplateError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            TemplateError::UnknownVariable { .. } => "unknown-variable",
            TemplateError::Unclosed { .. } => "unclosed-placeholder",
            TemplateError::UnsafeValue { .. } => "unsafe-value",
            TemplateError::ZeroInterval => "zero-interval",
        }
    }
}

impl fmt::Display for QueryTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl QueryTemplate {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks the placeholders without values, so a policy can be validated before any rollout.
    pub fn check(&self) -> Result<(), TemplateError> {
        let probe = Vars::new("ns", "svc", "subset", Duration::from_secs(60));
        self.render(&probe).map(|_| ())
    }

    /// Replaces every placeholder. Pure: the same template and values give the same query.
    pub fn render(&self, vars: &Vars) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(self.0.len() + 64);
        let mut rest = self.0.as_str();
        let mut offset = 0;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                return Err(TemplateError::Unclosed { at: offset + start });
            };
            let name = after[..end].trim();
            out.push_str(&value_of(name, vars)?);
            let consumed = start + 2 + end + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn value_of(name: &str, vars: &Vars) -> Result<String, TemplateError> {
    match name {
        "namespace" => safe("namespace", &vars.namespace),
        "service" => safe("service", &vars.service),
        "subset" => safe("subset", &vars.subset),
        "version" => safe("version", &vars.version),
        "interval" => promql_duration(vars.interval),
        other => Err(TemplateError::UnknownVariable {
            name: other.to_string(),
        }),
    }
}

/// Values land inside `"…"` label matchers; a quote, brace or backslash would change the query,
/// so only the characters of Kubernetes names and label values pass.
fn safe(variable: &'static str, value: &str) -> Result<String, TemplateError> {
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(value.to_string())
    } else {
        Err(TemplateError::UnsafeValue {
            variable,
            value: value.to_string(),
        })
    }
}

/// A Prometheus duration: whole seconds as `30s`, otherwise milliseconds as `1500ms`.
pub fn promql_duration(d: Duration) -> Result<String, TemplateError> {
    let millis = d.as_millis();
    if millis == 0 {
        return Err(TemplateError::ZeroInterval);
    }
    Ok(if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars::new("shop", "reviews", "v2", Duration::from_secs(30))
    }

    #[test]
    fn renders_every_variable() {
        let t = QueryTemplate::new(
            r#"x{ns="{{ namespace }}",svc="{{service}}",s="{{  subset }}",v="{{ version }}"}[{{ interval }}]"#,
        );
        assert_eq!(
            t.render(&vars().with_version("2.0")).unwrap(),
            r#"x{ns="shop",svc="reviews",s="v2",v="2.0"}[30s]"#
        );
    }

    #[test]
    fn version_defaults_to_subset() {
        let t = QueryTemplate::new("{{ version }}");
        assert_eq!(t.render(&vars()).unwrap(), "v2");
    }

    #[test]
    fn text_without_placeholders_is_unchanged() {
        let t = QueryTemplate::new("sum(up)");
        assert_eq!(t.render(&vars()).unwrap(), "sum(up)");
    }

    #[test]
    fn rejects_unknown_variable() {
        let t = QueryTemplate::new("x{a=\"{{ namespce }}\"}");
        assert_eq!(
            t.render(&vars()),
            Err(TemplateError::UnknownVariable {
                name: "namespce".into()
            })
        );
        assert!(t.check().is_err());
    }

    #[test]
    fn rejects_unclosed_placeholder() {
        let t = QueryTemplate::new("ab{{ service }} {{ namespace");
        assert_eq!(t.render(&vars()), Err(TemplateError::Unclosed { at: 16 }));
    }

    #[test]
    fn rejects_values_that_would_break_out_of_a_matcher() {
        let t = QueryTemplate::new("{{ service }}");
        let mut v = vars();
        v.service = "a\"} or vector(1) #".into();
        assert!(matches!(
            t.render(&v),
            Err(TemplateError::UnsafeValue {
                variable: "service",
                ..
            })
        ));
        v.service = String::new();
        assert!(t.render(&v).is_err());
    }

    #[test]
    fn durations_render_in_prometheus_units() {
        assert_eq!(promql_duration(Duration::from_secs(60)).unwrap(), "60s");
        assert_eq!(
            promql_duration(Duration::from_millis(1500)).unwrap(),
            "1500ms"
        );
        assert_eq!(
            promql_duration(Duration::from_micros(10)),
            Err(TemplateError::ZeroInterval)
        );
    }
}
