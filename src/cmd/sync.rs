//! `veer sync`: one pass that writes (or dry-runs) the plan, and the printer of its per-object
//! results and summary; the one-line result of a pass that `veer run --once` prints too.

use anyhow::Result;

use veer::cli::{ColorChoice, DryRunMode, OutputFormat, SyncArgs, exit};
use veer::config::Config;
use veer::controller::{self, Pass, RejectedBy};
use veer::ids::short;
use veer::source::LoadedRevision;
use veer::sync::{SyncOptions, WriteMode, summary_line};
use veer::validate::Report;

use super::plan::{plan_revision, print_plan};
use super::{runtime, sync_options};

/// `veer sync`: one pass; per-object results and a summary.
pub(crate) fn sync_command(config: &Config, args: &SyncArgs, color: ColorChoice) -> Result<i32> {
    let mode = match args.dry_run {
        Some(DryRunMode::Server) => WriteMode::ServerDryRun,
        Some(DryRunMode::Client) | None => WriteMode::Apply,
    };
    // Each object's result is printed below: the log keeps them at debug, so that a terminal
    // shows one line per object, not a log line and a result line.
    let options = SyncOptions {
        log_objects: false,
        ..sync_options(config, mode)
    };
    runtime()?.block_on(async {
        let planned = plan_revision(config, options, args.output).await?;
        let (mut controller, loaded, planned) = match planned {
            Ok(p) => p,
            Err(code) => return Ok(code),
        };
        if args.dry_run == Some(DryRunMode::Client) {
            let color = color.for_stream(&std::io::stdout());
            print_plan(&loaded, &planned.plan, args.output, color)?;
            return Ok(if planned.plan.has_changes() {
                exit::DIFFERENCES
            } else {
                exit::OK
            });
        }
        let pass = controller.reconcile(&loaded, chrono::Utc::now()).await?;
        print_pass(
            &loaded,
            &pass,
            controller.rejected_revision().map(|(_, report)| report),
            args.output,
        );
        let code = controller::exit_code(&pass);
        Ok(match (&pass, mode) {
            (Pass::Synced { .. }, WriteMode::ServerDryRun) if code == exit::OK => exit::DIFFERENCES,
            _ => code,
        })
    })
}

/// How a pass ended, in one line: the revision and its summary (created, updated, pruned,
/// failed), or that it was in sync, rejected or failed. Pure.
pub(super) fn result_line(pass: &Pass) -> String {
    match pass {
        Pass::Synced { commit, report } => {
            let dry = match report.mode {
                WriteMode::Apply => "",
                WriteMode::ServerDryRun => " (server dry run)",
            };
            format!(
                "revision {}: {}{dry}",
                short(commit),
                summary_line(&report.summary())
            )
        }
        Pass::InSync { commit } => format!("revision {}: in sync, nothing to do", short(commit)),
        Pass::DriftReported { commit, objects } => format!(
            "revision {}: {} drifted, left alone",
            short(commit),
            objects.len()
        ),
        Pass::Rejected {
            commit,
            errors,
            by: RejectedBy::Validation,
        } => format!(
            "revision {} is INVALID ({errors} errors): nothing applied",
            short(commit)
        ),
        Pass::Rejected {
            commit,
            errors,
            by: RejectedBy::Server,
        } => format!(
            "revision {} was REFUSED by the API server's dry run ({errors} object{}): nothing from it was written",
            short(commit),
            if *errors == 1 { "" } else { "s" }
        ),
        Pass::NoRevision => "no valid revision loaded".to_string(),
        Pass::Failed { message } => format!("sync failed: {message}"),
    }
}

fn print_pass(
    loaded: &LoadedRevision,
    pass: &Pass,
    rejection: Option<&Report>,
    output: OutputFormat,
) {
    let commit = loaded.revision.commit.short();
    match output {
        OutputFormat::Human => match pass {
            Pass::Synced { report, .. } => {
                println!("revision {commit} ({})", loaded.revision.summary);
                print!("{}", report.human());
            }
            Pass::DriftReported { objects, .. } => {
                for o in objects {
                    println!("{o}: drift reported, not healed (selfHeal is off)");
                }
                println!("{}", result_line(pass));
            }
            Pass::Rejected { .. } => {
                if let Some(report) = rejection {
                    print!("{}", report.render_human());
                }
                println!("{}", result_line(pass));
            }
            Pass::InSync { .. } | Pass::NoRevision | Pass::Failed { .. } => {
                println!("{}", result_line(pass));
            }
        },
        OutputFormat::Json => {
            let value = match pass {
                Pass::Synced { report, .. } => serde_json::json!({
                    "revision": loaded.revision.commit.0, "result": "synced",
                    "mode": report.mode, "objects": report.objects, "summary": report.summary(),
                }),
                Pass::InSync { .. } => {
                    serde_json::json!({"revision": loaded.revision.commit.0, "result": "inSync"})
                }
                Pass::DriftReported { objects, .. } => serde_json::json!({
                    "revision": loaded.revision.commit.0, "result": "driftReported",
                    "drift": objects.iter().map(ToString::to_string).collect::<Vec<_>>(),
                }),
                Pass::Rejected { errors, by, .. } => serde_json::json!({
                    "revision": loaded.revision.commit.0, "result": "rejected",
                    "by": match by {
                        RejectedBy::Validation => "validation",
                        RejectedBy::Server => "server",
                    },
                    "errors": errors,
                    "diagnostics": rejection.map(|r| r.diagnostics.clone()).unwrap_or_default(),
                }),
                Pass::NoRevision => serde_json::json!({"result": "noRevision"}),
                Pass::Failed { message } => {
                    serde_json::json!({"result": "failed", "message": message})
                }
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
    }
}
