//! `veer sync`: one pass that writes (or dry-runs) the plan, and the printer of its per-object
//! results and summary.

use std::io::IsTerminal;

use anyhow::Result;

use veer::cli::{DryRunMode, OutputFormat, SyncArgs, exit};
use veer::config::Config;
use veer::controller::{self, Pass, RejectedBy};
use veer::source::LoadedRevision;
use veer::sync::WriteMode;
use veer::validate::Report;

use super::plan::{plan_revision, print_plan};
use super::{runtime, sync_options};

/// `veer sync`: one pass; per-object results and a summary.
pub(crate) fn sync_command(config: &Config, args: &SyncArgs) -> Result<i32> {
    let mode = match args.dry_run {
        Some(DryRunMode::Server) => WriteMode::ServerDryRun,
        Some(DryRunMode::Client) | None => WriteMode::Apply,
    };
    runtime()?.block_on(async {
        let planned = plan_revision(config, sync_options(config, mode), args.output).await?;
        let (mut controller, loaded, planned) = match planned {
            Ok(p) => p,
            Err(code) => return Ok(code),
        };
        if args.dry_run == Some(DryRunMode::Client) {
            let color = args.color.enabled(std::io::stdout().is_terminal());
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
            Pass::InSync { .. } => println!("revision {commit}: in sync, nothing to do"),
            Pass::DriftReported { objects, .. } => {
                for o in objects {
                    println!("{o}: drift reported, not healed (selfHeal is off)");
                }
                println!("revision {commit}: {} drifted, left alone", objects.len());
            }
            Pass::Rejected { errors, by, .. } => {
                if let Some(report) = rejection {
                    print!("{}", report.render_human());
                }
                match by {
                    RejectedBy::Validation => {
                        println!("revision {commit} is INVALID ({errors} errors): nothing applied");
                    }
                    RejectedBy::Server => println!(
                        "revision {commit} was REFUSED by the API server's dry run ({errors} object{}): nothing from it was written",
                        if *errors == 1 { "" } else { "s" }
                    ),
                }
            }
            Pass::NoRevision => println!("no valid revision loaded"),
            Pass::Failed { message } => println!("sync failed: {message}"),
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
