//! The file-descriptor budget of `veer run`. Every open connection is a descriptor, and so
//! is every git fetch, cluster watch and Prometheus or Slack request: clients of the HTTP
//! server must never be able to take the ones the reconcile loop needs ("Too many open
//! files" in the git poll). At start the soft `RLIMIT_NOFILE` is raised to the hard limit,
//! [`RESERVED`] descriptors are kept for everything but the server, and the server gets at
//! most half of the rest ([`connection_cap`]): the other half is headroom for the reserve's
//! own peaks (watches multiply with namespaces, a fetch opens pack files).

use tracing::{info, warn};

use super::listener::Limits;
use crate::config::ServerConfig;

/// Descriptors kept for git, the cluster watches, outgoing clients, logs and the runtime.
pub const RESERVED: u64 = 256;
/// The fewest connections the server is given, however low the limit (a liveness probe, a
/// scrape and a hook at once, with room to spare).
pub const MIN_CONNECTIONS: usize = 8;

/// `RLIMIT_NOFILE`; `u64::MAX` stands for unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FdLimitError {
    #[error("cannot read the open-files limit (RLIMIT_NOFILE): {0}")]
    Read(std::io::Error),
    #[error("cannot raise the open-files limit from {from} to {to}: {source}")]
    Raise {
        from: u64,
        to: u64,
        source: std::io::Error,
    },
}

fn from_rlim(value: libc::rlim_t) -> u64 {
    if value == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        value
    }
}

/// The process's open-files limit now.
pub fn read_limit() -> Result<FdLimit, FdLimitError> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(FdLimitError::Read(std::io::Error::last_os_error()));
    }
    Ok(FdLimit {
        soft: from_rlim(limit.rlim_cur),
        hard: from_rlim(limit.rlim_max),
    })
}

/// Raise the soft limit to the hard one; the limit after (unchanged when it already was).
pub fn raise_soft_limit() -> Result<FdLimit, FdLimitError> {
    let limit = read_limit()?;
    if limit.soft >= limit.hard {
        return Ok(limit);
    }
    let wanted = libc::rlimit {
        rlim_cur: if limit.hard == u64::MAX {
            libc::RLIM_INFINITY
        } else {
            limit.hard
        },
        rlim_max: if limit.hard == u64::MAX {
            libc::RLIM_INFINITY
        } else {
            limit.hard
        },
    };
    // SAFETY: setrlimit reads the struct it is given and nothing else.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } != 0 {
        return Err(FdLimitError::Raise {
            from: limit.soft,
            to: limit.hard,
            source: std::io::Error::last_os_error(),
        });
    }
    read_limit()
}

/// The connection cap under a soft limit of `soft` descriptors: the configured value, but no
/// more than half of what the [`RESERVED`] descriptors leave, and no fewer than
/// [`MIN_CONNECTIONS`] (unless fewer are configured). Pure.
pub fn connection_cap(configured: usize, soft: u64) -> usize {
    let share = soft.saturating_sub(RESERVED) / 2;
    let share = usize::try_from(share).unwrap_or(usize::MAX);
    configured
        .min(share)
        .max(MIN_CONNECTIONS.min(configured))
        .max(1)
}

/// At the start of `veer run`: raise the soft limit, size the connection cap within it and
/// log the budget. Never fails: without a readable limit the configured cap stands.
pub fn at_start(server: &ServerConfig) -> Limits {
    let mut limits = Limits::from_config(server);
    let before = read_limit();
    let after = match raise_soft_limit() {
        Ok(limit) => Ok(limit),
        Err(error) => {
            warn!(%error, "keeping the open-files limit as it is");
            read_limit()
        }
    };
    let limit = match after {
        Ok(limit) => limit,
        Err(error) => {
            warn!(%error, max_connections = limits.max_connections, "no descriptor budget: the HTTP server keeps server.maxConnections");
            return limits;
        }
    };
    limits.max_connections = connection_cap(server.max_connections, limit.soft);
    let raised_from = before.ok().map(|b| b.soft).filter(|&b| b != limit.soft);
    if limit.soft.saturating_sub(RESERVED) / 2 < MIN_CONNECTIONS as u64 {
        warn!(
            soft_limit = limit.soft,
            "the open-files limit is too low for veer: raise it (ulimit -n, or the container runtime's nofile)"
        );
    }
    info!(
        soft_limit = limit.soft,
        hard_limit = limit.hard,
        raised_from,
        reserved = RESERVED,
        max_connections = limits.max_connections,
        configured = server.max_connections,
        "descriptor budget: at most {} HTTP connections of {} open files; {} and more kept for git, cluster watches and outgoing clients",
        limits.max_connections,
        limit.soft,
        RESERVED,
    );
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_keeps_the_reserve_and_half_the_rest() {
        let cases = [
            // configured, soft limit, cap
            (512, 1_048_576, 512),
            (512, 1024, 384),
            (512, 1000, 372),
            (32, 1024, 32),
            (512, 256, MIN_CONNECTIONS),
            (512, 0, MIN_CONNECTIONS),
            (4, 100, 4),
            (512, u64::MAX, 512),
            (0, 1024, 1),
        ];
        for (configured, soft, cap) in cases {
            assert_eq!(
                connection_cap(configured, soft),
                cap,
                "{configured} under {soft}"
            );
        }
    }

    #[test]
    fn the_limit_is_readable_and_raising_it_never_lowers_it() {
        let before = read_limit().unwrap();
        assert!(before.soft <= before.hard);
        let after = raise_soft_limit().unwrap();
        assert!(after.soft >= before.soft);
        assert_eq!(after.soft, after.hard);
    }
}
