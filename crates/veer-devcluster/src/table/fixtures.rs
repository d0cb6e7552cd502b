//! Test fixtures shared by the printing modules' unit tests: a fixed clock, timestamps some
//! seconds before it, a VirtualService `shop/reviews`, and a printer's cells and column names.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{Value, json};

use super::Printer;

pub(super) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

pub(super) fn created(ago_secs: i64) -> String {
    (now() - chrono::Duration::seconds(ago_secs)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(super) fn cells(printer: &Printer, object: &Value) -> Value {
    Value::Array(printer.cells(object, now()))
}

pub(super) fn names(printer: &Printer) -> Vec<String> {
    printer
        .column_definitions()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

pub(super) fn vs() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "shop", "creationTimestamp": created(7200)},
        "spec": {"hosts": ["reviews", "reviews.shop.svc"], "gateways": ["mesh"]}
    })
}
