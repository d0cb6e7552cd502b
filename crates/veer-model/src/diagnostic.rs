//! Diagnostics: what veer tells a user about their manifests and config, with file:line and
//! the fix. Produced by `manifest` (reading) and `validate` (checks), rendered for people and
//! for machines. A leaf: [`Location`] lives here so that nothing below `manifest` needs it.

use std::fmt;

use serde::Serialize;

/// A position in a source file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Location {
    pub line: u32,
    pub column: u32,
}

impl Location {
    pub fn new(line: u32, column: u32) -> Self {
        Self { line, column }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One finding about one place in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable identifier of the check, e.g. `vs-weight-sum`; documented in README.
    pub code: &'static str,
    /// The `istioctl analyze` message this finding corresponds to (e.g. `IST0101`), so users
    /// of istioctl recognise it; `None` for checks istioctl has no code for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istio: Option<&'static str>,
    /// Path of the file, relative to the repository (or validated directory) root.
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// The object concerned, as `Kind namespace/name`, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    pub message: String,
    /// What to change to make it right.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Diagnostic {
    pub fn error(
        code: &'static str,
        file: impl Into<String>,
        at: Location,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Error,
            code,
            istio: None,
            file: file.into(),
            line: at.line,
            column: at.column,
            object: None,
            message: message.into(),
            fix: None,
        }
    }

    pub fn warning(
        code: &'static str,
        file: impl Into<String>,
        at: Location,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, file, at, message)
        }
    }

    pub fn object(mut self, object: impl fmt::Display) -> Self {
        self.object = Some(object.to_string());
        self
    }

    /// Name the `istioctl analyze` code this finding mirrors.
    pub fn istio(mut self, code: &'static str) -> Self {
        self.istio = Some(code);
        self
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}", self.severity, self.code)?;
        if let Some(istio) = self.istio {
            write!(f, " {istio}")?;
        }
        write!(f, "] {}:{}:{}: ", self.file, self.line, self.column)?;
        if let Some(object) = &self.object {
            write!(f, "{object}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n  fix: {fix}")?;
        }
        Ok(())
    }
}

/// Sort into reading order: by file, then line, then column, then code.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.code, &a.message)
            .cmp(&(&b.file, b.line, b.column, b.code, &b.message))
    });
}

/// Human rendering: one block per diagnostic, then a summary line.
pub fn render_human(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    out.push_str(&format!(
        "{errors} error{}, {warnings} warning{}\n",
        if errors == 1 { "" } else { "s" },
        if warnings == 1 { "" } else { "s" }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_form_names_file_line_object_and_fix() {
        let d = Diagnostic::error(
            "vs-weight-sum",
            "a/vs.yaml",
            Location::new(12, 9),
            "sum is 90",
        )
        .object("VirtualService default/reviews")
        .fix("make them add up to 100");
        assert_eq!(
            d.to_string(),
            "error[vs-weight-sum] a/vs.yaml:12:9: VirtualService default/reviews: sum is 90\n  fix: make them add up to 100"
        );
        assert!(render_human(std::slice::from_ref(&d)).ends_with("1 error, 0 warnings\n"));
        assert!(
            d.istio("IST0101")
                .to_string()
                .starts_with("error[vs-weight-sum IST0101] a/vs.yaml:12:9: ")
        );
    }
}
