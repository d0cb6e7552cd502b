//! Server-side apply without a server: field sets, managed fields, list semantics and the
//! apply itself ([`fields`]), and the schemas list semantics come from ([`schema`]). Used by
//! the diff (what an apply would change) and by the embedded API server. Pure.
#![forbid(unsafe_code)]

pub mod fields;
pub mod schema;
