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
    pub fn check(self) -> Result<(), String> {
        let mut missing = Vec::new();
        if let Some(outage) = self.api_outage {
            let lasted = chrono::Duration::from_std(outage.lasted).unwrap_or(chrono::Duration::MAX);
            missing.push(format!(
                "the Kubernetes API has been unreachable for {} (since {})",
                veer_model::duration::human_duration(lasted),
                outage.since.format("%Y-%m-%d %H:%M:%S UTC")
            ));
        }
        if !self.revision_loaded {
            missing.push("no revision loaded yet".to_string());
        }
        if !self.watches_up {
            missing.push("cluster watches not up yet".to_string());
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join("; "))
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
            late.check(),
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
            r.check(),
            Err("the Kubernetes API has been unreachable for 10m (since 2026-11-25 10:00:00 UTC); cluster watches not up yet".into())
        );
        assert_eq!(
            Readiness::default().check(),
            Err("no revision loaded yet; cluster watches not up yet".into())
        );
    }
}
