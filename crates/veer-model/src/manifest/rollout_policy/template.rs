//! PromQL templates: the variables a metric's query may use, and splitting a template into
//! text and variables.

/// Variables a PromQL template may use, as `{{ name }}`: the same as `analysis::template`
/// renders, so a policy that validates also renders.
pub const TEMPLATE_VARIABLES: &[&str] = &[
    "namespace", // the VirtualService's namespace
    "service",   // the destination host's service name (first label)
    "subset",    // the new version's subset
    "version",   // alias of subset, as Istio's `destination_version` label names it
    "interval",  // the metric's interval as a PromQL range, e.g. `1m`
];

/// A piece of a template: literal text or a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart<'a> {
    Text(&'a str),
    Variable(&'a str),
}

/// Why a template cannot be split into text and variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TemplateSyntaxError {
    #[error("`{{{{` is not closed by `}}}}`")]
    Unclosed,
    #[error("`{{{{ }}}}` names no variable")]
    Unnamed,
}

/// Split a template into text and `{{ variable }}` parts. Errors name what is wrong.
pub fn parse_template(template: &str) -> Result<Vec<TemplatePart<'_>>, TemplateSyntaxError> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(TemplatePart::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(TemplateSyntaxError::Unclosed);
        };
        let name = after[..close].trim();
        if name.is_empty() {
            return Err(TemplateSyntaxError::Unnamed);
        }
        parts.push(TemplatePart::Variable(name));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_split_into_text_and_variables() {
        let t = "sum(rate(x{ns=\"{{ namespace }}\",v=\"{{subset}}\"}[{{ interval }}]))";
        let vars: Vec<&str> = parse_template(t)
            .unwrap()
            .into_iter()
            .filter_map(|p| match p {
                TemplatePart::Variable(v) => Some(v),
                TemplatePart::Text(_) => None,
            })
            .collect();
        assert_eq!(vars, ["namespace", "subset", "interval"]);
        assert_eq!(
            parse_template("a {{ b").unwrap_err().to_string(),
            "`{{` is not closed by `}}`"
        );
        assert_eq!(
            parse_template("a {{ }} b").unwrap_err().to_string(),
            "`{{ }}` names no variable"
        );
    }
}
