//! `veer completions`: the shell completion script, written to stdout; needs no configuration.

use veer::cli::{CompletionsArgs, exit};

/// `veer completions SHELL`: works before veer.yaml exists.
pub(crate) fn completions_command(args: &CompletionsArgs) -> i32 {
    veer::cli::write_completions(args.shell, &mut std::io::stdout().lock());
    exit::OK
}
