//! Severity configuration: `--strict` (every warning is an error) and `validation.severity`
//! in `veer.yaml` (a check made an error, a warning, or turned off), applied to a [`Report`]
//! after the checks ran. [`Severities::apply`] is the one function every command that
//! validates a revision calls (`veer validate`, `diff`, `sync`, `run`), so a revision gets the
//! same verdict everywhere.
//!
//! A reading check ([`READING_CHECKS`](super::READING_CHECKS)) cannot be lowered: it means a
//! file or object was not read, and an object veer did not read would look deleted from git,
//! and be pruned.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::{READING_CHECKS, Report, catalog};
use crate::diagnostic::Severity;

/// What a check is set to in `validation.severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    /// Not reported at all.
    Off,
}

impl Level {
    pub const ALL: &[&str] = &["error", "warning", "off"];
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Off => "off",
        })
    }
}

impl FromStr for Level {
    type Err = SeverityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "error" => Ok(Level::Error),
            "warning" => Ok(Level::Warning),
            "off" => Ok(Level::Off),
            _ => Err(SeverityError::UnknownLevel {
                text: text.to_string(),
            }),
        }
    }
}

/// Why a severity setting is refused; the message names what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeverityError {
    #[error(
        "`{code}` is not a check code{}; every diagnostic shows its code in brackets (`error[se-protocol]`), and README's \"What validation checks\" table lists them all",
        suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
    )]
    UnknownCode {
        code: String,
        suggestion: Option<&'static str>,
    },
    #[error(
        "`{code}` cannot be made `{level}`: it means a file or object was not read, and an object veer did not read would look deleted from git (and be pruned); fix the file instead"
    )]
    Locked { code: String, level: Level },
    #[error("`{text}` is not a severity; write error, warning or off")]
    UnknownLevel { text: String },
}

/// How the severities of a report are changed; the default changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Severities {
    strict: bool,
    overrides: BTreeMap<&'static str, Level>,
}

impl Severities {
    /// `--strict`: every warning is an error, except checks set explicitly to `warning` or
    /// `off` (an explicit setting is the more specific choice).
    pub fn set_strict(&mut self, strict: bool) {
        self.strict = strict;
    }

    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// Set one check's severity. `code` must be a check of the catalog, and a reading check
    /// can only be set to `error`.
    pub fn set(&mut self, code: &str, level: Level) -> Result<(), SeverityError> {
        let Some(check) = catalog::find(code) else {
            return Err(SeverityError::UnknownCode {
                code: code.to_string(),
                suggestion: closest_code(code),
            });
        };
        if level != Level::Error && READING_CHECKS.iter().any(|c| c.code == check.code) {
            return Err(SeverityError::Locked {
                code: code.to_string(),
                level,
            });
        }
        self.overrides.insert(check.code, level);
        Ok(())
    }

    /// The explicit setting for `code`, if any.
    pub fn get(&self, code: &str) -> Option<Level> {
        self.overrides.get(code).copied()
    }

    /// The report with each diagnostic at its configured severity (`off` ones dropped), and
    /// the counts of errors and warnings recomputed.
    pub fn apply(&self, report: Report) -> Report {
        if !self.strict && self.overrides.is_empty() {
            return report;
        }
        let diagnostics = report
            .diagnostics
            .into_iter()
            .filter_map(|mut d| {
                d.severity = match (self.overrides.get(d.code), self.strict) {
                    (Some(Level::Off), _) => return None,
                    (Some(Level::Error), _) | (None, true) => Severity::Error,
                    (Some(Level::Warning), _) => Severity::Warning,
                    (None, false) => d.severity,
                };
                Some(d)
            })
            .collect();
        Report::new(diagnostics)
    }
}

/// The catalog code nearest to a mistyped one, when one is near enough to be meant.
fn closest_code(code: &str) -> Option<&'static str> {
    catalog::all()
        .into_iter()
        .map(|c| (edit_distance(code, c.code), c.code))
        .filter(|(d, known)| *d <= 3 && *d < known.len() / 2)
        .min()
        .map(|(_, known)| known)
}

/// Levenshtein distance, over bytes (codes are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::{Diagnostic, Location};

    fn d(code: &'static str, severity: Severity) -> Diagnostic {
        let at = Location::new(1, 1);
        match severity {
            Severity::Error => Diagnostic::error(code, "f.yaml", at, "m"),
            Severity::Warning => Diagnostic::warning(code, "f.yaml", at, "m"),
        }
    }

    fn report() -> Report {
        Report::new(vec![
            d("se-port-number", Severity::Error),
            d("se-external-no-ports", Severity::Warning),
            d("dr-subset-labels", Severity::Warning),
        ])
    }

    /// (code, severity) left in the report, and its counts.
    fn outcome(s: &Severities) -> (Vec<(&'static str, Severity)>, usize, usize) {
        let r = s.apply(report());
        (
            r.diagnostics.iter().map(|d| (d.code, d.severity)).collect(),
            r.errors,
            r.warnings,
        )
    }

    #[test]
    fn severities_table() {
        use Severity::{Error as E, Warning as W};
        /// (strict, settings, what is left, errors, warnings)
        type Case<'a> = (
            bool,
            &'a [(&'a str, Level)],
            &'a [(&'a str, Severity)],
            usize,
            usize,
        );
        let cases: &[Case<'_>] = &[
            // Nothing configured: nothing changes.
            (
                false,
                &[],
                &[
                    ("dr-subset-labels", W),
                    ("se-external-no-ports", W),
                    ("se-port-number", E),
                ],
                1,
                2,
            ),
            // Strict: every warning is an error.
            (
                true,
                &[],
                &[
                    ("dr-subset-labels", E),
                    ("se-external-no-ports", E),
                    ("se-port-number", E),
                ],
                3,
                0,
            ),
            // One warning made an error, one error made a warning, one warning off.
            (
                false,
                &[
                    ("dr-subset-labels", Level::Error),
                    ("se-port-number", Level::Warning),
                    ("se-external-no-ports", Level::Off),
                ],
                &[("dr-subset-labels", E), ("se-port-number", W)],
                1,
                1,
            ),
            // Strict, but an explicit `warning` or `off` wins.
            (
                true,
                &[
                    ("dr-subset-labels", Level::Warning),
                    ("se-port-number", Level::Off),
                ],
                &[("dr-subset-labels", W), ("se-external-no-ports", E)],
                1,
                1,
            ),
        ];
        for (strict, overrides, want, errors, warnings) in cases {
            let mut s = Severities::default();
            s.set_strict(*strict);
            for (code, level) in *overrides {
                s.set(code, *level).unwrap();
            }
            assert_eq!(
                outcome(&s),
                (want.to_vec(), *errors, *warnings),
                "strict {strict}, {overrides:?}"
            );
        }
    }

    #[test]
    fn unknown_codes_and_levels_are_refused_with_a_way_to_find_codes() {
        let mut s = Severities::default();
        let e = s.set("sidecar-egres-host", Level::Off).unwrap_err();
        assert_eq!(
            e,
            SeverityError::UnknownCode {
                code: "sidecar-egres-host".into(),
                suggestion: Some("sidecar-egress-host")
            }
        );
        let text = e.to_string();
        assert!(
            text.contains("did you mean `sidecar-egress-host`?"),
            "{text}"
        );
        assert!(text.contains("README"), "{text}");
        let far = s.set("no-such-thing-at-all", Level::Off).unwrap_err();
        assert!(!far.to_string().contains("did you mean"), "{far}");
        assert_eq!(
            "fatal".parse::<Level>(),
            Err(SeverityError::UnknownLevel {
                text: "fatal".into()
            })
        );
        assert_eq!(
            s,
            Severities::default(),
            "a refused setting changes nothing"
        );
    }

    #[test]
    fn reading_checks_cannot_be_lowered() {
        let mut s = Severities::default();
        for level in [Level::Warning, Level::Off] {
            let e = s.set("yaml-syntax", level).unwrap_err();
            assert!(e.to_string().contains("pruned"), "{e}");
        }
        s.set("yaml-syntax", Level::Error).unwrap();
        s.set("legacy-destination-policy", Level::Error).unwrap();
        assert!(s.set("legacy-destination-policy", Level::Off).is_err());
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("se-protocol", "se-protocol"), 0);
    }
}
