//! `veer validate`: validate a directory, a file or the configured repository's revision, and
//! print the diagnostics and converted objects as text or JSON.

use anyhow::{Context, Result, bail};

use veer::cli::{OutputFormat, ValidateArgs, exit};
use veer::cluster::{ListedServices, SERVICES_PERMISSION};
use veer::config::Config;
use veer::manifest::{ManifestSet, ParseCache};
use veer::source::GitSource;
use veer::validate::{self, Report};

use super::{connect, local_policies, read_path, runtime};

/// `veer validate [PATH] [--repo URL --ref REF] [--cluster]`.
pub(crate) fn validate_command(config: &Config, args: &ValidateArgs) -> Result<i32> {
    let set = match (&args.dir, &config.source) {
        (Some(dir), _) => read_path(dir, config)?,
        (None, Some(source)) => {
            let mut git = GitSource::open(source.spec.clone(), &config.cache_dir)?;
            git.set_timeout(Some(source.timeout));
            let commit = git.fetch()?.commit().clone();
            let mut cache = ParseCache::default();
            let loaded = git.load(&commit, &config.read, &mut cache)?;
            if args.output == OutputFormat::Human {
                println!(
                    "revision {} ({})",
                    loaded.revision.commit.short(),
                    loaded.revision.summary
                );
            }
            loaded.set
        }
        (None, None) => {
            bail!(
                "nothing to validate: give a directory (`veer validate DIR`) or a repository (`--repo URL`)"
            )
        }
    };
    let listed = if args.cluster {
        Some(runtime()?.block_on(list_cluster_services(config))?)
    } else {
        None
    };
    if let (Some(listed), OutputFormat::Human) = (&listed, args.output) {
        println!("cluster: {listed} (destination hosts are looked up there too)");
    }
    // `--strict` reaches here through the configuration (`Overrides::strict`).
    let context = validate::ValidationContext {
        policies: &local_policies(config)?,
        cluster: listed.as_ref().map(|l| &l.known),
    };
    let report = config
        .validation
        .apply(validate::validate_with(&set, &context));
    match args.output {
        OutputFormat::Human => print!("{}", human_output(&set, &report)),
        OutputFormat::Json => print!("{}", json_output(&set, &report)),
    }
    Ok(if report.is_ok() {
        exit::OK
    } else {
        exit::INVALID
    })
}

/// `--cluster`: the Services and ServiceEntries of the configured cluster, or why not (the
/// user asked for the cluster: validating without it would say less than asked).
async fn list_cluster_services(config: &Config) -> Result<ListedServices> {
    let cluster = connect(config).await?;
    cluster.list_services().await.with_context(|| {
        format!("cannot consult the cluster (--cluster); veer needs {SERVICES_PERMISSION}, or drop --cluster to validate offline")
    })
}

/// Diagnostics, then converted legacy objects, then a one-line verdict.
fn human_output(set: &ManifestSet, report: &Report) -> String {
    let mut out = String::new();
    for d in &report.diagnostics {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    for m in set.manifests.iter().filter(|m| m.converted_from.is_some()) {
        if let Some(from) = &m.converted_from {
            out.push_str(&format!(
                "\n# {from} ({}:{}) converted to {}:\n---\n",
                m.file, m.line, m.key
            ));
            out.push_str(&serde_saphyr::to_string(&m.value).unwrap_or_default());
        }
    }
    // Every object and file read counts, those with problems too (`set.manifests` leaves out
    // objects too broken to use).
    out.push_str(&format!(
        "\n{} object{} in {} file{}: {} error{}, {} warning{} — {}\n",
        set.objects,
        if set.objects == 1 { "" } else { "s" },
        set.files,
        if set.files == 1 { "" } else { "s" },
        report.errors,
        if report.errors == 1 { "" } else { "s" },
        report.warnings,
        if report.warnings == 1 { "" } else { "s" },
        if report.is_ok() {
            "valid"
        } else {
            "INVALID: nothing from this revision may be applied"
        },
    ));
    out
}

fn json_output(set: &ManifestSet, report: &Report) -> String {
    let converted: Vec<_> = set
        .manifests
        .iter()
        .filter_map(|m| {
            m.converted_from.as_ref().map(|from| {
                serde_json::json!({"from": from, "file": m.file, "line": m.line, "object": m.value})
            })
        })
        .collect();
    let value = serde_json::json!({
        "valid": report.is_ok(),
        "objects": set.objects,
        "files": set.files,
        "errors": report.errors,
        "warnings": report.warnings,
        "diagnostics": report.diagnostics,
        "converted": converted,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}
