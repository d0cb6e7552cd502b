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
//!
//! The bookkeeping holds each path once: a file's path is an `Arc<str>` that the load's ids and
//! the parse cache share, and a directory walked again takes over the paths its last walk made.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use git2::{Oid, Tree};

use super::tree::{GitView, kind_of_mode};
use crate::diagnostic::Diagnostic;
use crate::source::SourceError;
use crate::source::walk::{self, IgnoreRules, Kind};

/// A manifest file the walk found, and the blob its bytes are in.
#[derive(Debug, Clone)]
pub(super) struct FoundBlob {
    /// The path that names it (shared with the load's ids and the parse cache).
    pub path: Arc<str>,
    /// Where its bytes are when `path` is a symlink; `None` when they are at `path`.
    link_target: Option<Box<str>>,
    pub blob: Oid,
}

impl FoundBlob {
    /// Where the file's bytes are.
    pub(super) fn real(&self) -> &str {
        self.link_target.as_deref().unwrap_or(&self.path)
    }
}

/// What the walk made of one directory (not below it).
#[derive(Debug, Clone)]
struct DirMemo {
    tree: Oid,
    found: Vec<FoundBlob>,
    diagnostics: Vec<Diagnostic>,
    /// In the order the walk pushes them, with their tree ids.
    subdirs: Vec<(Arc<str>, Oid)>,
    /// Holds a symlink: walked again on every load.
    links: bool,
}

/// The walk of the last load: per directory (by path), keyed by tree id.
#[derive(Debug, Default)]
pub(super) struct WalkMemo {
    base: String,
    /// The ignore files' (blob id, mode) at the root and at the base.
    ignore: [Option<(Oid, i32)>; 2],
    dirs: HashMap<Arc<str>, DirMemo>,
    /// Directories in the order the walk took them.
    order: Vec<Arc<str>>,
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
        let mut pending: Vec<(Arc<str>, Oid)> = vec![(Arc::from(base), base_tree)];
        while let Some((dir, tree)) = pending.pop() {
            let dir_memo = match previous.remove(&*dir) {
                Some(m) if m.tree == tree && !m.links => m,
                last => walk_dir(view, &rules, &dir, tree, last.as_ref())?,
            };
            pending.extend(dir_memo.subdirs.iter().cloned());
            memo.order.push(Arc::clone(&dir));
            memo.dirs.insert(dir, dir_memo);
        }
        Ok((memo, diagnostics))
    }

    /// The files in path order and the diagnostics of the walk, after `rules_diagnostics`
    /// (those of the ignore files), as [`walk::collect`] gives them.
    pub(super) fn walked(&self, rules_diagnostics: Vec<Diagnostic>) -> Walked<'_> {
        let mut diagnostics = rules_diagnostics;
        for dir in &self.order {
            if let Some(m) = self.dirs.get(&**dir) {
                diagnostics.extend(m.diagnostics.iter().cloned());
            }
        }
        // A tree lists its entries by name, so each directory's files are in path order; taken
        // by directory path, they are mostly in order already, which the (stable, run-finding)
        // sort then only checks and merges.
        let mut dirs: Vec<(&Arc<str>, &DirMemo)> = self.dirs.iter().collect();
        dirs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut files = Vec::with_capacity(dirs.iter().map(|(_, m)| m.found.len()).sum());
        for (_, m) in dirs {
            files.extend(m.found.iter());
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Walked { files, diagnostics }
    }
}

fn unreadable(dir: &str) -> SourceError {
    SourceError::Read {
        location: dir.to_string(),
        message: "directory listed but not readable".to_string(),
    }
}

/// Read one directory's tree and walk its entries with the shared rules. The paths `last` (its
/// previous walk) made are taken over for the entries it still has.
fn walk_dir(
    view: &GitView<'_>,
    rules: &IgnoreRules,
    dir: &str,
    tree: Oid,
    last: Option<&DirMemo>,
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
    let known: HashMap<&str, &Arc<str>> = last
        .into_iter()
        .flat_map(|m| {
            let files = m.found.iter().map(|f| &f.path);
            files.chain(m.subdirs.iter().map(|(p, _)| p))
        })
        .map(|p| (&**p, p))
        .collect();
    let shared = |path: String| match known.get(path.as_str()) {
        Some(p) => Arc::clone(p),
        None => Arc::from(path),
    };
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
        let link_target = (f.real != f.path).then(|| f.real.into_boxed_str());
        found.push(FoundBlob {
            path: shared(f.path),
            link_target,
            blob,
        });
    }
    let subdirs = walked
        .subdirs
        .into_iter()
        .map(|path| {
            let id = ids.get(&path).copied().ok_or_else(|| unreadable(&path))?;
            Ok((shared(path), id))
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

#[cfg(test)]
mod tests {
    use git2::Repository;

    use super::*;

    /// A directory walked again (one of its files changed) keeps the paths its last walk made
    /// for the files it still has, so the parse cache and the load's ids keep sharing them.
    #[test]
    fn a_directory_walked_again_keeps_its_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(tmp.path()).unwrap();
        let commit = |b: &[u8]| {
            let mut dir = repo.treebuilder(None).unwrap();
            dir.insert("a.yaml", repo.blob(b"a: 1\n").unwrap(), 0o100644)
                .unwrap();
            dir.insert("b.yaml", repo.blob(b).unwrap(), 0o100644)
                .unwrap();
            let dir = dir.write().unwrap();
            let mut root = repo.treebuilder(None).unwrap();
            root.insert("d", dir, 0o040000).unwrap();
            repo.find_tree(root.write().unwrap()).unwrap()
        };
        let (first, second) = (commit(b"b: 1\n"), commit(b"b: 2\n"));
        let view = |root| GitView { repo: &repo, root };
        let (memo, _) = WalkMemo::walk(&view(first), "", None).unwrap();
        let before: Vec<(Arc<str>, Oid)> = memo
            .walked(Vec::new())
            .files
            .iter()
            .map(|f| (Arc::clone(&f.path), f.blob))
            .collect();
        let (memo, _) = WalkMemo::walk(&view(second), "", Some(memo)).unwrap();
        let after = memo.walked(Vec::new()).files;
        let paths: Vec<&str> = after.iter().map(|f| &*f.path).collect();
        assert_eq!(paths, vec!["d/a.yaml", "d/b.yaml"]);
        for ((path, blob), now) in before.iter().zip(&after) {
            assert!(Arc::ptr_eq(path, &now.path), "{path} was copied");
            assert_eq!(*blob == now.blob, &**path == "d/a.yaml");
        }
    }
}
