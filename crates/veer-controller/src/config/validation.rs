//! `validation:` in `veer.yaml` and `--strict`: resolved into the [`Severities`] every
//! command applies to its validation reports. A code that is not a check is an error naming
//! the key, with a way to find the codes.

use crate::validate::{Level, Severities};

use super::ConfigError;
use super::file::FileValidation;

/// `--strict` wins over `validation.strict`; each `validation.severity` entry must name a
/// check and a level.
pub(super) fn resolve_validation(
    file_name: &str,
    file: Option<&FileValidation>,
    overrides: &super::Overrides,
) -> Result<Severities, ConfigError> {
    let mut severities = Severities::default();
    severities.set_strict(
        overrides
            .strict
            .or(file.and_then(|f| f.strict))
            .unwrap_or(false),
    );
    for (code, level) in file.map(|f| &f.severity).into_iter().flatten() {
        let error = |message: String| ConfigError {
            key: format!("validation.severity.{code}"),
            origin: format!("{file_name}:{}", level.referenced.line()),
            message,
        };
        let parsed: Level = level.value.parse().map_err(|e| error(format!("{e}")))?;
        severities
            .set(code, parsed)
            .map_err(|e| error(e.to_string()))?;
    }
    Ok(severities)
}

#[cfg(test)]
mod tests {
    use crate::config::{Overrides, resolve};
    use crate::validate::Level;

    fn file(text: &str) -> Result<crate::config::Config, crate::config::ConfigError> {
        resolve(Some(("veer.yaml", text)), &Overrides::default())
    }

    #[test]
    fn strict_and_severities_from_the_file_and_the_flag() {
        let c = file("validation:\n  strict: true\n  severity:\n    se-external-no-ports: off\n    dr-subset-labels: error\n").unwrap();
        assert!(c.validation.is_strict());
        assert_eq!(c.validation.get("se-external-no-ports"), Some(Level::Off));
        assert_eq!(c.validation.get("dr-subset-labels"), Some(Level::Error));
        assert_eq!(c.validation.get("se-protocol"), None);
        // Nothing configured: nothing changes.
        let c = file("").unwrap();
        assert_eq!(c.validation, crate::validate::Severities::default());
        // `--strict=false` wins over the file.
        let c = resolve(
            Some(("veer.yaml", "validation: {strict: true}\n")),
            &Overrides {
                strict: Some(false),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert!(!c.validation.is_strict());
        let c = resolve(
            None,
            &Overrides {
                strict: Some(true),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert!(c.validation.is_strict());
    }

    #[test]
    fn bad_severities_name_the_key_and_line() {
        let table: &[(&str, &str, &str, &[&str])] = &[
            (
                "validation:\n  severity:\n    se-protocl: off\n",
                "validation.severity.se-protocl",
                "veer.yaml:3",
                &["not a check code", "did you mean `se-protocol`?", "README"],
            ),
            (
                "validation:\n  severity:\n    se-protocol: fatal\n",
                "validation.severity.se-protocol",
                "veer.yaml:3",
                &["`fatal` is not a severity; write error, warning or off"],
            ),
            (
                "validation:\n  severity:\n    yaml-syntax: warning\n",
                "validation.severity.yaml-syntax",
                "veer.yaml:3",
                &["pruned"],
            ),
        ];
        for (text, key, origin, says) in table {
            let e = file(text).unwrap_err();
            assert_eq!((e.key.as_str(), e.origin.as_str()), (*key, *origin), "{e}");
            for s in *says {
                assert!(e.message.contains(s), "{e}");
            }
        }
        let e = file("validation:\n  stric: true\n").unwrap_err();
        assert!(e.message.contains("stric"), "{e}");
    }
}
