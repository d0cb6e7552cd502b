//! `--log-level` / `VEER_LOG_LEVEL` / `log.level` as users write it, for the workspace's
//! crates: log targets are module paths, and veer's code lives in several crates
//! (`veer_controller::sync`, `veer_core::rollout`, `veer_devcluster::…`), so a directive
//! naming `veer` or a `veer::<module>` path is expanded to the crate that holds it. Pure.

/// Which crate holds each top-level module of `veer::…`, and its path there.
const MODULES: &[(&str, &str)] = &[
    ("devcluster", "veer_devcluster"),
    ("exporter", "veer_devcluster::exporter"),
    ("demo", "veer_demo"),
    ("diff", "veer_core::diff"),
    ("rollout", "veer_core::rollout"),
    ("validate", "veer_core::validate"),
    ("analysis", "veer_core::analysis"),
    ("fields", "veer_fields::fields"),
    ("schema", "veer_fields::schema"),
    ("manifest", "veer_model::manifest"),
];

/// The crates a bare `veer` directive stands for.
const CRATES: &[&str] = &[
    "veer",
    "veer_controller",
    "veer_core",
    "veer_model",
    "veer_fields",
    "veer_devcluster",
    "veer_demo",
];

/// `filter` with every `veer[::module…][=level]` directive expanded (other directives, such
/// as `info` or `kube=debug`, are kept as written).
pub fn expand(filter: &str) -> String {
    filter
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .flat_map(expand_directive)
        .collect::<Vec<_>>()
        .join(",")
}

fn expand_directive(directive: &str) -> Vec<String> {
    let (target, level) = match directive.split_once('=') {
        Some((t, l)) => (t, Some(l)),
        None => (directive, None),
    };
    let with_level = |t: &str| match level {
        Some(l) => format!("{t}={l}"),
        None => t.to_string(),
    };
    if target == "veer" {
        return CRATES.iter().map(|c| with_level(c)).collect();
    }
    let Some(path) = target.strip_prefix("veer::") else {
        return vec![directive.to_string()];
    };
    let (module, rest) = match path.split_once("::") {
        Some((m, r)) => (m, Some(r)),
        None => (path, None),
    };
    let home = MODULES
        .iter()
        .find(|(m, _)| *m == module)
        .map(|(_, krate)| krate.to_string())
        .unwrap_or_else(|| format!("veer_controller::{module}"));
    let moved = match rest {
        Some(r) => format!("{home}::{r}"),
        None => home,
    };
    vec![with_level(&moved)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veer_directives_reach_every_crate() {
        let cases = [
            ("info", "info"),
            (
                "veer=debug,info",
                "veer=debug,veer_controller=debug,veer_core=debug,veer_model=debug,veer_fields=debug,veer_devcluster=debug,veer_demo=debug,info",
            ),
            ("veer::sync=trace", "veer_controller::sync=trace"),
            (
                "veer::server::budget=debug",
                "veer_controller::server::budget=debug",
            ),
            ("veer::rollout=debug", "veer_core::rollout=debug"),
            ("veer::devcluster::api=warn", "veer_devcluster::api=warn"),
            ("kube=debug, veer::demo", "kube=debug,veer_demo"),
            ("veer_controller=info", "veer_controller=info"),
        ];
        for (given, want) in cases {
            assert_eq!(expand(given), want, "{given}");
        }
        // What comes out is a filter tracing accepts.
        for (given, _) in cases {
            assert!(
                tracing_subscriber::EnvFilter::try_new(expand(given)).is_ok(),
                "{given}"
            );
        }
    }
}
