//! Reading one commit: its tree seen through the walk's [`TreeView`] (so a commit gets the
//! same reading rules as a directory), its author and summary, and which manifest files changed
//! since the commit loaded before it.

use std::cmp::Ordering;
use std::path::Path;

use git2::{Repository, Tree};

use crate::source::walk::{self, Kind, TreeView};
use crate::source::{CommitId, Revision, SourceError};

/// Paths added, removed or whose content id differs, in path order. Pure. Each side is in
/// path order, each path once (as a load lists its files).
pub(super) fn changed<P: AsRef<str>, I: PartialEq>(
    before: Option<&[(P, I)]>,
    after: &[(P, I)],
) -> Vec<String> {
    let path = |(p, _): &(P, I)| p.as_ref().to_string();
    let Some(before) = before else {
        return after.iter().map(path).collect();
    };
    // One merge over both lists, no set of every path.
    let mut out = Vec::new();
    let (mut old, mut new) = (before.iter().peekable(), after.iter().peekable());
    loop {
        match (old.peek(), new.peek()) {
            (None, None) => return out,
            (Some(a), None) => {
                out.push(path(a));
                old.next();
            }
            (None, Some(b)) => {
                out.push(path(b));
                new.next();
            }
            (Some(a), Some(b)) => match same_or_cmp(a.0.as_ref(), b.0.as_ref()) {
                Ordering::Less => {
                    out.push(path(a));
                    old.next();
                }
                Ordering::Greater => {
                    out.push(path(b));
                    new.next();
                }
                Ordering::Equal => {
                    if a.1 != b.1 {
                        out.push(path(a));
                    }
                    old.next();
                    new.next();
                }
            },
        }
    }
}

/// `a.cmp(b)`, without reading the bytes when both are the same string: an unchanged file's
/// path is one `Arc<str>` shared by both loads.
fn same_or_cmp(a: &str, b: &str) -> Ordering {
    if std::ptr::eq(a, b) {
        Ordering::Equal
    } else {
        a.cmp(b)
    }
}

pub(super) fn revision_of(commit: &CommitId, c: &git2::Commit<'_>) -> Revision {
    let summary = match c.summary() {
        Ok(Some(s)) => s.to_string(),
        Ok(None) => String::new(),
        Err(_) => String::from_utf8_lossy(c.summary_bytes().unwrap_or_default()).into_owned(),
    };
    let author = c.author();
    let author = format!(
        "{} <{}>",
        String::from_utf8_lossy(author.name_bytes()),
        String::from_utf8_lossy(author.email_bytes())
    );
    let time = chrono::DateTime::from_timestamp(c.time().seconds(), 0).unwrap_or_default();
    Revision {
        commit: commit.clone(),
        summary,
        author,
        time,
    }
}

/// A commit's tree, seen through [`TreeView`].
pub(super) struct GitView<'r> {
    pub(super) repo: &'r Repository,
    pub(super) root: Tree<'r>,
}

pub(super) fn kind_of_mode(mode: i32) -> Kind {
    match mode & 0o170000 {
        0o040000 => Kind::Dir,
        0o120000 => Kind::Link,
        0o100000 => Kind::File,
        _ => Kind::Other,
    }
}

impl GitView<'_> {
    pub(super) fn entry(&self, path: &str) -> Option<git2::TreeEntry<'static>> {
        self.root.get_path(Path::new(path)).ok()
    }

    /// The blob at `path`, if it is at most [`walk::SMALL_TEXT_LIMIT`] bytes: its size comes
    /// from the object database's header first, so a larger one is never inflated.
    fn small_blob(&self, path: &str) -> Option<Vec<u8>> {
        let id = self.entry(path)?.id();
        let (size, _) = self.repo.odb().ok()?.read_header(id).ok()?;
        if size as u64 > walk::SMALL_TEXT_LIMIT {
            return None;
        }
        let blob = self.repo.find_blob(id).ok()?;
        Some(blob.content().to_vec())
    }
}

impl TreeView for GitView<'_> {
    fn list(&self, dir: &str) -> Result<Vec<(String, Kind)>, SourceError> {
        let sub;
        let tree = if dir.is_empty() {
            &self.root
        } else {
            sub = self
                .entry(dir)
                .and_then(|e| e.to_object(self.repo).ok())
                .and_then(|o| o.into_tree().ok())
                .ok_or_else(|| SourceError::Read {
                    location: dir.to_string(),
                    message: "directory listed but not readable".to_string(),
                })?;
            &sub
        };
        Ok(tree
            .iter()
            // Names that are not UTF-8 cannot be manifest paths we report; skip them.
            .filter_map(|e| Some((e.name().ok()?.to_string(), kind_of_mode(e.filemode()))))
            .collect())
    }

    fn kind(&self, path: &str) -> Option<Kind> {
        self.entry(path).map(|e| kind_of_mode(e.filemode()))
    }

    fn link_target(&self, path: &str) -> Option<String> {
        String::from_utf8(self.small_blob(path)?).ok()
    }

    fn read_small_text(&self, path: &str) -> Option<String> {
        String::from_utf8(self.small_blob(path)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use git2::Oid;

    use super::*;

    #[test]
    fn changed_lists_added_removed_and_modified() {
        let before = [("a.yaml", 1), ("b.yaml", 2), ("c.yaml", 3)];
        let after = [("a.yaml", 1), ("b.yaml", 9), ("d.yaml", 4)];
        assert_eq!(
            changed(Some(&before[..]), &after),
            vec!["b.yaml", "c.yaml", "d.yaml"]
        );
        assert_eq!(changed(None, &after), vec!["a.yaml", "b.yaml", "d.yaml"]);
    }

    proptest::proptest! {
        /// The merge over both lists gives exactly the paths whose id differs or that only one
        /// side has, in path order.
        #[test]
        fn changed_is_every_path_whose_id_differs(
            before in proptest::collection::btree_map("[a-e]{1,2}", "[xyz]", 0..12),
            after in proptest::collection::btree_map("[a-e]{1,2}", "[xyz]", 0..12),
        ) {
            let expected: Vec<String> = before
                .keys()
                .chain(after.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter(|p| before.get(*p) != after.get(*p))
                .cloned()
                .collect();
            // As loads list them: in path order, a path both have is one shared string.
            let mut shared: BTreeMap<String, Arc<str>> = BTreeMap::new();
            let mut listed = |m: &BTreeMap<String, String>| -> Vec<(Arc<str>, String)> {
                m.iter()
                    .map(|(p, id)| {
                        let p = shared.entry(p.clone()).or_insert_with(|| Arc::from(p.as_str()));
                        (Arc::clone(p), id.clone())
                    })
                    .collect()
            };
            let (before_listed, after_listed) = (listed(&before), listed(&after));
            proptest::prop_assert_eq!(
                changed(Some(&before_listed[..]), &after_listed),
                expected.clone()
            );
            // Every path its own string: the same answer from the bytes alone.
            let copied = |m: &BTreeMap<String, String>| -> Vec<(String, String)> {
                m.iter().map(|(p, id)| (p.clone(), id.clone())).collect()
            };
            let (before, after) = (copied(&before), copied(&after));
            proptest::prop_assert_eq!(changed(Some(&before[..]), &after), expected);
        }
    }

    /// A commit's tree gets the walk's symlink rules, as a directory does: links to
    /// directories are refused (never descended into, so they cannot loop), links out of the
    /// repository too, links to files that are not manifests are ignored.
    #[test]
    fn directory_symlinks_in_a_tree_are_refused_not_followed() {
        const LINK: i32 = 0o120000;
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(tmp.path()).unwrap();
        let blob = |bytes: &[u8]| repo.blob(bytes).unwrap();
        let tree = |entries: &[(&str, Oid, i32)]| {
            let mut builder = repo.treebuilder(None).unwrap();
            for (name, id, mode) in entries {
                builder.insert(name, *id, *mode).unwrap();
            }
            builder.write().unwrap()
        };
        let svc = blob(b"apiVersion: v1\nkind: Service\nmetadata:\n  name: svc\n");
        let v2 = tree(&[("svc.yaml", svc, 0o100644), ("self", blob(b"."), LINK)]);
        let apps = tree(&[("v2", v2, 0o040000), ("parent", blob(b".."), LINK)]);
        let root = tree(&[
            ("apps", apps, 0o040000),
            ("current", blob(b"apps/v2"), LINK),
            ("outside", blob(b"../elsewhere"), LINK),
            ("README", blob(b"apps/v2/svc.yaml"), LINK),
        ]);
        let view = GitView {
            repo: &repo,
            root: repo.find_tree(root).unwrap(),
        };
        let (found, diagnostics) = walk::collect(&view, "").unwrap();
        let paths: Vec<&str> = found.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, vec!["apps/v2/svc.yaml"]);
        let mut codes: Vec<(&str, &str)> = diagnostics
            .iter()
            .map(|d| (d.file.as_str(), d.code))
            .collect();
        codes.sort_unstable();
        assert_eq!(
            codes,
            vec![
                ("apps/parent", "symlink-to-directory"),
                ("apps/v2/self", "symlink-to-directory"),
                ("current", "symlink-to-directory"),
                ("outside", "symlink-outside-repo"),
            ]
        );
    }
}
