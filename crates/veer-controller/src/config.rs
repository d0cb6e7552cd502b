//! Configuration: `veer.yaml` plus command-line flags (with `VEER_*` environment fallbacks),
//! resolved once at start-up by a pure function into one validated, immutable [`Config`].
//!
//! Flags win over the file; the file wins over defaults. A bad value is an error naming the
//! key (and the file line when it came from the file) and what is allowed.

mod check;
mod file;
#[cfg(test)]
mod first_try_tests;
mod model;
mod notifiers;
mod resolve;
#[cfg(test)]
mod tests;
mod validation;

pub use check::ConfigError;
pub use model::{
    AnalysisConfig, ClusterConfig, Config, DEFAULT_CACHE_DIR, DEFAULT_FETCH_TIMEOUT,
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_INTERVAL, DEFAULT_LISTEN, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_NOT_READY_AFTER_API_OUTAGE, DEFAULT_REQUEST_TIMEOUT, DEFAULT_STATE_NAME,
    DEFAULT_STATE_NAMESPACE, LogFormat, Overrides, RolloutsConfig, ServerConfig, SourceConfig,
    SyncConfig, default_cache_root,
};
pub use resolve::resolve;
