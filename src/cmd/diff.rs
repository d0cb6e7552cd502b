//! `veer diff`: one pass that prints the plan and writes nothing.

use anyhow::Result;

use veer::cli::{ColorChoice, DiffArgs, exit};
use veer::config::Config;
use veer::sync::WriteMode;

use super::plan::{plan_revision, print_plan};
use super::{runtime, sync_options};

/// `veer diff`: one pass, print the plan; exit 2 when there are differences.
pub(crate) fn diff_command(config: &Config, args: &DiffArgs, color: ColorChoice) -> Result<i32> {
    runtime()?.block_on(async {
        let planned =
            plan_revision(config, sync_options(config, WriteMode::Apply), args.output).await?;
        let (_, loaded, planned) = match planned {
            Ok(p) => p,
            Err(code) => return Ok(code),
        };
        let color = color.for_stream(&std::io::stdout());
        print_plan(&loaded, &planned.plan, args.output, color)?;
        Ok(if planned.plan.has_changes() {
            exit::DIFFERENCES
        } else {
            exit::OK
        })
    })
}
