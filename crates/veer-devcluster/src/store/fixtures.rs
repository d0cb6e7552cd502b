//! Test fixtures shared by the store's unit tests: a fixed clock, a write at it, a kind's
//! resource type, a ConfigMap.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Ownership, State, Write};
use crate::catalog::ResourceType;

pub(super) const NOW: &str = "2026-01-01T00:00:00Z";

pub(super) fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

pub(super) fn w(dry_run: bool) -> Write<'static> {
    Write {
        now: now(),
        dry_run,
        ownership: Ownership::Update { manager: "test" },
    }
}

pub(super) fn rt(state: &State, group: &str, kind: &str) -> ResourceType {
    state.catalog.by_kind(group, kind).cloned().unwrap()
}

pub(super) fn cm(name: &str, data: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": data}})
}
