//! Recording notifications: per-notifier counters of sent, failed and dropped notifications,
//! the duplicates suppressed, and reading them back for tests and `veer status`.

use super::{Metrics, NotifierLabels};

impl Metrics {
    /// Start a notifier's counters at zero (called when notifications start).
    pub fn register_notifier(&self, notifier: &str) {
        let labels = NotifierLabels {
            notifier: notifier.to_string(),
        };
        let _ = self.notifications_sent.get_or_create(&labels);
        let _ = self.notifications_failed.get_or_create(&labels);
        let _ = self.notifications_dropped.get_or_create(&labels);
    }

    pub fn record_notification_sent(&self, notifier: &str) {
        self.notifications_sent
            .get_or_create(&NotifierLabels {
                notifier: notifier.to_string(),
            })
            .inc();
    }

    pub fn record_notification_failed(&self, notifier: &str) {
        self.notifications_failed
            .get_or_create(&NotifierLabels {
                notifier: notifier.to_string(),
            })
            .inc();
    }

    pub fn record_notification_dropped(&self, notifier: &str) {
        self.notifications_dropped
            .get_or_create(&NotifierLabels {
                notifier: notifier.to_string(),
            })
            .inc();
    }

    pub fn record_notification_duplicate(&self) {
        self.notifications_duplicate.inc();
    }

    /// Counter values for tests and `veer status`: (sent, failed, dropped) for a notifier.
    pub fn notification_counts(&self, notifier: &str) -> (u64, u64, u64) {
        let labels = NotifierLabels {
            notifier: notifier.to_string(),
        };
        (
            self.notifications_sent.get_or_create(&labels).get(),
            self.notifications_failed.get_or_create(&labels).get(),
            self.notifications_dropped.get_or_create(&labels).get(),
        )
    }

    /// How many notifications were suppressed as duplicates.
    pub fn notification_duplicates(&self) -> u64 {
        self.notifications_duplicate.get()
    }
}
