//! Readiness: what `/readyz` and the status page's badge say. The board keeps the flags (a
//! revision loaded, the cluster watches up); an API outage comes from the cluster's contact
//! record and grows with time, so it is worked out when asked ([`Readiness::with_outage`],
//! pure: it takes the time).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::cluster::Contact;

/// The Kubernetes API has not answered for longer than readiness allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiOutage {
    /// The first failure after the last answer.
    pub since: DateTime<Utc>,
    pub lasted: Duration,
}

/// Why veer is not ready (the body of `/readyz`'s 503 and the status page's badge): every
/// thing missing, the API outage first, said in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", join(.missing))]
pub struct NotReady {
    pub missing: Vec<Missing>,
}

/// One thing readiness waits for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Missing {
    /// The API has not answered for longer than `server.notReadyAfterApiOutage`.
    #[error(
        "the Kubernetes API has been unreachable for {} (since {})",
        human_lasted(.0.lasted),
        .0.since.format("%Y-%m-%d %H:%M:%S UTC")
    )]
    Api(ApiOutage),
    /// No valid revision has been loaded from the source yet.
    #[error("no revision loaded yet")]
    Revision,
    /// The cluster watches have not synced yet.
    #[error("cluster watches not up yet")]
    Watches,
}

fn join(missing: &[Missing]) -> String {
    missing
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn human_lasted(lasted: Duration) -> String {
    let lasted = chrono::Duration::from_std(lasted).unwrap_or(chrono::Duration::MAX);
    veer_model::duration::human_duration(lasted)
}

/// What readiness needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Readiness {
    pub revision_loaded: bool,
    pub watches_up: bool,
    /// Set while the API has been unreachable longer than `server.notReadyAfterApiOutage`.
    pub api_outage: Option<ApiOutage>,
}

impl Readiness {
    /// These flags, with the outage `contact` shows as of `now` when it has lasted longer
    /// than `allowed`; `None`: nothing known about the API (no cluster yet), no outage.
    pub fn with_outage(
        mut self,
        contact: Option<Contact>,
        allowed: Duration,
        now: DateTime<Utc>,
    ) -> Readiness {
        self.api_outage = contact.and_then(|c| {
            let lasted = c.unreachable_for(now)?;
            let since = c.failing_since()?;
            (lasted > allowed).then_some(ApiOutage { since, lasted })
        });
        self
    }

    /// `Ok` when ready, or why not (for the 503 body).
    pub fn check(self) -> Result<(), NotReady> {
        let mut missing = Vec::new();
        if let Some(outage) = self.api_outage {
            missing.push(Missing::Api(outage));
        }
        if !self.revision_loaded {
            missing.push(Missing::Revision);
        }
        if !self.watches_up {
            missing.push(Missing::Watches);
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(NotReady { missing })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veer_testkit::at_second;

    const READY: Readiness = Readiness {
        revision_loaded: true,
        watches_up: true,
        api_outage: None,
    };

    #[test]
    fn an_outage_counts_once_it_lasts_longer_than_allowed() {
        let allowed = Duration::from_secs(20);
        let mut contact = Contact::default();
        contact.succeeded(at_second(25, 0, 0));
        assert_eq!(
            READY.with_outage(Some(contact), allowed, at_second(25, 0, 59)),
            READY
        );
        contact.failed(at_second(25, 0, 5));
        assert_eq!(
            READY.with_outage(Some(contact), allowed, at_second(25, 0, 25)),
            READY
        );
        let late = READY.with_outage(Some(contact), allowed, at_second(25, 0, 26));
        assert_eq!(
            late.api_outage,
            Some(ApiOutage {
                since: at_second(25, 0, 5),
                lasted: Duration::from_secs(21)
            })
        );
        assert_eq!(
            late.check().map_err(|e| e.to_string()),
            Err(
                "the Kubernetes API has been unreachable for 21s (since 2026-11-25 10:00:05 UTC)"
                    .into()
            )
        );
        // No record (no cluster yet): never an outage.
        assert_eq!(
            READY.with_outage(None, allowed, at_second(25, 0, 59)),
            READY
        );
    }

    #[test]
    fn everything_missing_is_said_in_one_line_the_outage_first() {
        let mut contact = Contact::default();
        contact.failed(at_second(25, 0, 0));
        let now = at_second(25, 0, 0) + chrono::Duration::minutes(10);
        let r = Readiness {
            watches_up: false,
            ..READY
        }
        .with_outage(Some(contact), Duration::from_secs(60), now);
        assert_eq!(
            r.check().map_err(|e| e.to_string()),
            Err("the Kubernetes API has been unreachable for 10m (since 2026-11-25 10:00:00 UTC); cluster watches not up yet".into())
        );
        assert_eq!(
            Readiness::default().check(),
            Err(NotReady {
                missing: vec![Missing::Revision, Missing::Watches]
            })
        );
        assert_eq!(
            Readiness::default().check().map_err(|e| e.to_string()),
            Err("no revision loaded yet; cluster watches not up yet".into())
        );
    }
}
