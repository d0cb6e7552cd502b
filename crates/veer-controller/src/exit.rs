//! Exit codes shared by all commands: what `veer`'s exit status means.

/// Everything is fine.
pub const OK: i32 = 0;
/// Validation found errors, or the API server's dry run refused the revision.
pub const INVALID: i32 = 1;
/// `diff`/`sync --dry-run`: there are differences (like diff(1)).
pub const DIFFERENCES: i32 = 2;
/// veer could not do its job: bad config, unreachable repository or cluster, bad flags.
pub const FAILURE: i32 = 3;
/// `sync`: some objects failed after a clean dry run (the others were applied); the
/// revision is partially applied.
pub const PARTIAL: i32 = 4;
/// `rollout status NS/NAME`: the rollout failed (rolled back).
pub const ROLLOUT_FAILED: i32 = 5;
/// `demo`: stopped by Ctrl-C (or SIGTERM) before the story ended (128 + SIGINT).
pub const INTERRUPTED: i32 = 130;
