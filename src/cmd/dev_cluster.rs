//! `veer dev-cluster`: the embedded API server for development and tests, until stopped.

use anyhow::Result;

use veer::cli::{DevClusterArgs, exit};

use super::runtime;

/// `veer dev-cluster`: serve the embedded API server.
pub(crate) fn dev_cluster_command(args: &DevClusterArgs) -> Result<i32> {
    let runtime = runtime()?;
    runtime.block_on(veer::devcluster::run(args))?;
    Ok(exit::OK)
}
