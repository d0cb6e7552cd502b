//! The walk of a commit's tree, reusing the last load's: a directory whose git tree id is the
//! one it had then holds the same entries, so what the walk made of it (its manifest files and
//! their blob ids, its diagnostics, its subdirectories) is taken over without reading it. A
//! commit that changes one file re-reads only the directories on that file's path: the cost of
//! a load follows the change, not the repository's size.
//!
//! What a directory's walk depends on besides its own entries decides when that is sound:
//! - the ignore rules (the root's and the base's `.veerignore`): when either file differs from
//!   the last load's, nothing is reused;
//! - symlinks, resolved against the whole tree: a directory holding one is walked again every
//!   time (its links may point into a directory that changed), and only it.

use std::collections::HashMap;
use std::path::Path;

use git2::{Oid, Tree};

use super::tree::{GitView, kind_of_mode};
use crate::diagnostic::Diagnostic;
use crate::source::SourceError;
use crate::source::walk::{self, Found, IgnoreRules, Kind};

/// A manifest file the walk found, and the blob its bytes are in.
#[derive(Debug, Clone)]
pub(super) struct FoundBlob {
    pub found: Found,
    pub blob: Oid,
}

/// What the walk made of one directory (not below it).
#[derive(Debug, Clone)]
struct DirMemo {
    tree: Oid,
    found: Vec<FoundBlob>,
    diagnostics: Vec<Diagnostic>,
    /// In the order the walk pushes them, with their tree ids.
    subdirs: Vec<(String, Oid)>,
    /// Holds a symlink: walked again on every load.
    links: bool,
}

/// The walk of the last load: per directory (by path), keyed by tree id.
#[derive(Debug, Default)]
pub(super) struct WalkMemo {
    base: String,
    /// The ignore files' (blob id, mode) at the root and at the base.
    ignore: [Option<(Oid, i32)>; 2],
    dirs: HashMap<String, DirMemo>,
    /// Directories in the order the walk took them.
    order: Vec<String>,
}

/// One load's walk: the manifest files in path order and the walk's diagnostics in the order
/// a full walk gives them.
pub(super) struct Walked<'m> {
    pub files: Vec<&'m FoundBlob>,
    pub diagnostics: Vec<Diagnostic>,
}

impl WalkMemo {
    /// Walk `view` from `base` (a directory of it), reusing `previous` where sound.
    pub(super) fn walk(
        view: &GitView<'_>,
        base: &str,
        previous: Option<WalkMemo>,
    ) -> Result<(WalkMemo, Vec<Diagnostic>), SourceError> {
        let mut diagnostics = Vec::new();
        let rules = IgnoreRules::load(view, base, &mut diagnostics);
        let ignore_file = |path: &str| view.entry(path).map(|e| (e.id(), e.filemode()));
        let ignore = [
            ignore_file(walk::IGNORE_FILE),
            if base.is_empty() {
                None
            } else {
                ignore_file(&walk::join(base, walk::IGNORE_FILE))
            },
        ];
        let mut previous = previous
            .filter(|p| p.base == base && p.ignore == ignore)
            .map(|p| p.dirs)
            .unwrap_or_default();
        let base_tree = if base.is_empty() {
            view.root.id()
        } else {
            view.entry(base)
                .map(|e| e.id())
                .ok_or_else(|| unreadable(base))?
        };
        let mut memo = WalkMemo {
            base: base.to_string(),
            ignore,
            dirs: HashMap::new(),
            order: Vec::new(),
        };
        let mut pending = vec![(base.to_string(), base_tree)];
        while let Some((dir, tree)) = pending.pop() {
            let reused = previous.remove(&dir).filter(|m| m.tree == tree && !m.links);
            let dir_memo = match reused {
                Some(m) => m,
                None => walk_dir(view, &rules, &dir, tree)?,
            };
            pending.extend(dir_memo.subdirs.iter().cloned());
            memo.order.push(dir.clone());
            memo.dirs.insert(dir, dir_memo);
        }
        Ok((memo, diagnostics))
    }

    /// The files in path order and the diagnostics of the walk, after `rules_diagnostics`
    /// (those of the ignore files), as [`walk::collect`] gives them.
    pub(super) fn walked(&self, rules_diagnostics: Vec<Diagnostic>) -> Walked<'_> {
        let mut diagnostics = rules_diagnostics;
        let mut files = Vec::new();
        for dir in &self.order {
            if let Some(m) = self.dirs.get(dir) {
                diagnostics.extend(m.diagnostics.iter().cloned());
                files.extend(m.found.iter());
            }
        }
        files.sort_by(|a, b| a.found.path.cmp(&b.found.path));
        Walked { files, diagnostics }
    }
}

fn unreadable(dir: &str) -> SourceError {
    SourceError::Read {
        location: dir.to_string(),
        message: "directory listed but not readable".to_string(),
    }
}

/// Read one directory's tree and walk its entries with the shared rules.
fn walk_dir(
    view: &GitView<'_>,
    rules: &IgnoreRules,
    dir: &str,
    tree: Oid,
) -> Result<DirMemo, SourceError> {
    let listed: Tree<'_> = view.repo.find_tree(tree).map_err(|_| unreadable(dir))?;
    // Names that are not UTF-8 cannot be manifest paths we report; skip them.
    let entries: Vec<(String, Kind, Oid)> = listed
        .iter()
        .filter_map(|e| {
            Some((
                e.name().ok()?.to_string(),
                kind_of_mode(e.filemode()),
                e.id(),
            ))
        })
        .collect();
    let ids: HashMap<String, Oid> = entries
        .iter()
        .map(|(name, _, id)| (walk::join(dir, name), *id))
        .collect();
    let walked = walk::walk_dir(
        view,
        rules,
        dir,
        entries
            .into_iter()
            .map(|(name, kind, _)| (name, kind))
            .collect(),
    );
    let mut found = Vec::with_capacity(walked.found.len());
    for f in walked.found {
        // A link's bytes are elsewhere in the tree.
        let blob = match ids.get(&f.real) {
            Some(id) if f.real == f.path => *id,
            _ => view
                .root
                .get_path(Path::new(&f.real))
                .map(|e| e.id())
                .map_err(|e| SourceError::Read {
                    location: f.real.clone(),
                    message: format!("listed but not found: {}", e.message()),
                })?,
        };
        found.push(FoundBlob { found: f, blob });
    }
    let subdirs = walked
        .subdirs
        .into_iter()
        .map(|path| {
            let id = ids.get(&path).copied().ok_or_else(|| unreadable(&path))?;
            Ok((path, id))
        })
        .collect::<Result<_, SourceError>>()?;
    Ok(DirMemo {
        tree,
        found,
        diagnostics: walked.diagnostics,
        subdirs,
        links: walked.links,
    })
}
