//! The pure plan (`veer::diff`): table tests of each action and cause, properties against
//! the server-side-apply engine, and golden renderings under `tests/fixtures/diff/`
//! (`UPDATE_GOLDEN=1` rewrites them).
//!
//! One module per concern: [`changes`] (create, update, drift, and what never shows),
//! [`prune`] (what is pruned or kept, Namespaces last), [`ordering`] (apply and prune order,
//! the desired hash), [`golden`] (the renderings) and [`props`]; the builders and plan
//! helpers they share are in [`helpers`].

mod helpers;

mod changes;
mod golden;
mod ordering;
mod props;
mod prune;
