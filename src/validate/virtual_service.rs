//! Checks for this kind.

use super::Index;
use crate::diagnostic::Diagnostic;

pub fn check(_index: &Index<'_>, _out: &mut Vec<Diagnostic>) {}
