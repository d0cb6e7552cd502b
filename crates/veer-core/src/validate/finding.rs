//! A finding as the validation kept for the next revision holds it ([`super::Validated`]): a
//! [`Diagnostic`] in less room, since `veer run` keeps every finding of the revision between
//! passes. Its texts are sized to fit (a `format!`ed message has spare capacity), and a fix
//! is held once for all the findings that suggest it (5,000 warnings of one check spell out
//! the same 170-byte fix). Each report makes its [`Diagnostic`]s again from them.

use std::collections::HashSet;
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Severity};

/// A [`Diagnostic`], kept: the same fields, compared the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Finding {
    severity: Severity,
    line: u32,
    column: u32,
    code: &'static str,
    istio: Option<&'static str>,
    file: Box<str>,
    object: Option<Box<str>>,
    message: Box<str>,
    fix: Option<Arc<str>>,
}

impl Finding {
    /// The sort key of a report ([`crate::diagnostic::sort`]).
    pub(super) fn order(&self) -> (&str, u32, u32, &str, &str) {
        (&self.file, self.line, self.column, self.code, &self.message)
    }

    /// The diagnostic this finding keeps.
    pub(super) fn diagnostic(&self) -> Diagnostic {
        Diagnostic {
            severity: self.severity,
            code: self.code,
            istio: self.istio,
            file: self.file.to_string(),
            line: self.line,
            column: self.column,
            object: self.object.as_deref().map(str::to_string),
            message: self.message.to_string(),
            fix: self.fix.as_deref().map(str::to_string),
        }
    }
}

#[cfg(test)]
impl Finding {
    /// The bytes of the texts this finding holds alone (its fix is shared: [`Fixes::bytes`]).
    pub(super) fn text_bytes(&self) -> usize {
        self.file.len() + self.object.as_deref().map_or(0, str::len) + self.message.len()
    }
}

/// The fixes the findings of a validation share, each held once.
#[derive(Debug, Clone, Default)]
pub(super) struct Fixes(HashSet<Arc<str>>);

impl Fixes {
    /// `d` as a finding, its fix shared with the findings that suggest the same.
    pub(super) fn keep(&mut self, d: Diagnostic) -> Finding {
        let fix = d.fix.map(|fix| match self.0.get(fix.as_str()) {
            Some(held) => held.clone(),
            None => {
                let held: Arc<str> = fix.into();
                self.0.insert(held.clone());
                held
            }
        });
        Finding {
            severity: d.severity,
            line: d.line,
            column: d.column,
            code: d.code,
            istio: d.istio,
            file: d.file.into_boxed_str(),
            object: d.object.map(String::into_boxed_str),
            message: d.message.into_boxed_str(),
            fix,
        }
    }

    /// [`Fixes::keep`] of each, in their order, in a list without spare room.
    pub(super) fn keep_all(&mut self, diagnostics: Vec<Diagnostic>) -> Vec<Finding> {
        let mut kept = Vec::with_capacity(diagnostics.len());
        kept.extend(diagnostics.into_iter().map(|d| self.keep(d)));
        kept
    }

    /// Forget the fixes no finding holds any more.
    pub(super) fn forget_unused(&mut self) {
        self.0.retain(|fix| Arc::strong_count(fix) > 1);
    }
}

#[cfg(test)]
impl Fixes {
    /// The bytes of the fixes held and of their table (a slot per entry, a control byte).
    pub(super) fn bytes(&self) -> usize {
        let slot = std::mem::size_of::<Arc<str>>() + 1;
        let counts = 2 * std::mem::size_of::<usize>();
        self.0.capacity() * slot + self.0.iter().map(|f| counts + f.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Location;

    #[test]
    fn a_finding_gives_back_its_diagnostic_and_shares_its_fix() {
        let d = |file: &str| {
            Diagnostic::warning("vs-weight-sum", file, Location::new(3, 5), "sum is 90")
                .object("VirtualService a/b")
                .istio("IST0101")
                .fix("make them add up to 100")
        };
        let mut fixes = Fixes::default();
        let kept = fixes.keep_all(vec![d("a.yaml"), d("b.yaml")]);
        assert_eq!(kept[0].diagnostic(), d("a.yaml"));
        assert_eq!(kept[1].diagnostic(), d("b.yaml"));
        let bare = Diagnostic::error("yaml-syntax", "c.yaml", Location::new(1, 1), "bad");
        assert_eq!(fixes.keep(bare.clone()).diagnostic(), bare);
        let (Some(first), Some(second)) = (&kept[0].fix, &kept[1].fix) else {
            panic!("{kept:?}");
        };
        assert!(Arc::ptr_eq(first, second));
        fixes.forget_unused();
        assert_eq!(fixes.0.len(), 1);
        drop(kept);
        fixes.forget_unused();
        assert!(fixes.0.is_empty());
    }
}
