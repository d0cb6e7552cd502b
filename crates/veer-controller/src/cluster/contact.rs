//! Whether the Kubernetes API answers: the last time something veer sent got an answer and,
//! when every attempt since has failed, when the failing began. [`Contact`] is the record
//! (pure: every method takes the time, so tests give it explicit times); [`SharedContact`] is
//! the handle the watch cache writes and the status board reads.
//!
//! An answer of any kind counts as contact (a 403 or a 404 is the server speaking); only no
//! answer at all (connection refused, reset, timed out) and 5xx count as failures. A failure
//! older than the last success is stale news and is ignored: watches report concurrently, so
//! a failure observed before a success can arrive after it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// The record: last success, and the first failure since then.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Contact {
    last_success: Option<DateTime<Utc>>,
    failing_since: Option<DateTime<Utc>>,
}

impl Contact {
    /// The API answered at `now`.
    pub fn succeeded(&mut self, now: DateTime<Utc>) {
        if self.last_success.is_none_or(|s| s < now) {
            self.last_success = Some(now);
        }
        if self.failing_since.is_some_and(|f| f <= now) {
            self.failing_since = None;
        }
    }

    /// An attempt at `now` got no answer. Only the first failure after a success starts the
    /// clock; one older than the last success changes nothing.
    pub fn failed(&mut self, now: DateTime<Utc>) {
        if self.last_success.is_some_and(|s| s >= now) {
            return;
        }
        match self.failing_since {
            Some(since) if since <= now => {}
            _ => self.failing_since = Some(now),
        }
    }

    /// How long every attempt has failed, as of `now`; `None` while the API answers.
    pub fn unreachable_for(&self, now: DateTime<Utc>) -> Option<Duration> {
        let since = self.failing_since?;
        Some((now - since).to_std().unwrap_or(Duration::ZERO))
    }

    /// When the failing began (the first failure after the last success).
    pub fn failing_since(&self) -> Option<DateTime<Utc>> {
        self.failing_since
    }

    pub fn last_success(&self) -> Option<DateTime<Utc>> {
        self.last_success
    }
}

/// A [`Contact`] shared between the watches that report and the readers (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct SharedContact {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    contact: Mutex<Contact>,
    /// A task is checking whether the API answers again (see the cache's prober).
    probing: AtomicBool,
}

impl SharedContact {
    fn lock(&self) -> MutexGuard<'_, Contact> {
        // The record is two timestamps, written whole: still consistent after a panic.
        self.inner.contact.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn succeeded(&self, now: DateTime<Utc>) {
        self.lock().succeeded(now);
    }

    pub fn failed(&self, now: DateTime<Utc>) {
        self.lock().failed(now);
    }

    /// A copy of the record.
    pub fn get(&self) -> Contact {
        *self.lock()
    }

    /// Claim the single prober slot: `true` for the caller that should start one.
    pub(crate) fn start_probing(&self) -> bool {
        !self.inner.probing.swap(true, Ordering::AcqRel)
    }

    /// The prober ended.
    pub(crate) fn stop_probing(&self) {
        self.inner.probing.store(false, Ordering::Release);
    }

    /// A handle that does not keep the record alive (for the prober, which ends with it).
    pub(crate) fn downgrade(&self) -> WeakContact {
        WeakContact(Arc::downgrade(&self.inner))
    }
}

/// See [`SharedContact::downgrade`].
#[derive(Debug, Clone)]
pub(crate) struct WeakContact(Weak<Inner>);

impl WeakContact {
    pub(crate) fn upgrade(&self) -> Option<SharedContact> {
        self.0.upgrade().map(|inner| SharedContact { inner })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veer_testkit::at_second;

    #[test]
    fn a_fresh_record_is_not_unreachable() {
        let c = Contact::default();
        assert_eq!(c.unreachable_for(at_second(25, 0, 30)), None);
        assert_eq!(c.last_success(), None);
    }

    #[test]
    fn the_clock_starts_at_the_first_failure_and_a_success_stops_it() {
        let mut c = Contact::default();
        c.succeeded(at_second(25, 0, 1));
        c.failed(at_second(25, 0, 5));
        c.failed(at_second(25, 0, 9));
        assert_eq!(c.failing_since(), Some(at_second(25, 0, 5)));
        assert_eq!(
            c.unreachable_for(at_second(25, 0, 35)),
            Some(Duration::from_secs(30))
        );
        c.succeeded(at_second(25, 0, 40));
        assert_eq!(c.unreachable_for(at_second(25, 0, 41)), None);
        assert_eq!(c.last_success(), Some(at_second(25, 0, 40)));
        c.failed(at_second(25, 0, 50));
        assert_eq!(
            c.unreachable_for(at_second(25, 0, 52)),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn failures_before_any_success_count_too() {
        let mut c = Contact::default();
        c.failed(at_second(25, 0, 3));
        assert_eq!(
            c.unreachable_for(at_second(25, 0, 13)),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn news_arriving_out_of_order_does_not_rewrite_history() {
        let mut c = Contact::default();
        c.succeeded(at_second(25, 0, 10));
        // A failure seen at 8 reported after the success at 10: stale.
        c.failed(at_second(25, 0, 8));
        assert_eq!(c.unreachable_for(at_second(25, 0, 20)), None);
        // A success older than the failure does not end it; one older than the last success
        // does not move that back.
        c.failed(at_second(25, 0, 14));
        c.succeeded(at_second(25, 0, 12));
        c.succeeded(at_second(25, 0, 11));
        assert_eq!(c.last_success(), Some(at_second(25, 0, 12)));
        assert_eq!(c.failing_since(), Some(at_second(25, 0, 14)));
        // An earlier failure reported late moves the start back (it was failing then too).
        c.failed(at_second(25, 0, 13));
        assert_eq!(c.failing_since(), Some(at_second(25, 0, 13)));
    }

    #[test]
    fn a_clock_behind_the_failure_reads_zero_not_negative() {
        let mut c = Contact::default();
        c.failed(at_second(25, 0, 10));
        assert_eq!(c.unreachable_for(at_second(25, 0, 9)), Some(Duration::ZERO));
    }

    #[test]
    fn the_shared_handle_sees_every_report_and_one_prober_at_a_time() {
        let shared = SharedContact::default();
        let reader = shared.clone();
        shared.failed(at_second(25, 0, 1));
        assert_eq!(reader.get().failing_since(), Some(at_second(25, 0, 1)));
        assert!(shared.start_probing());
        assert!(!reader.start_probing());
        shared.stop_probing();
        assert!(reader.start_probing());
        let weak = shared.downgrade();
        drop(shared);
        assert!(weak.upgrade().is_some());
        drop(reader);
        assert!(weak.upgrade().is_none());
    }
}
