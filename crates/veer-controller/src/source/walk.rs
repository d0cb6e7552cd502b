//! Which files of a tree are manifests, shared by git commits and plain directories: walk
//! top-down from the base directory, skip what `.veerignore` excludes, keep `*.yaml`/`*.yml`,
//! follow symlinks to files only while they stay inside the root, and refuse links to
//! directories (never descended into, so a walk cannot loop). Also [`read_local`], the directory
//! backend used by `veer validate PATH`.

mod local;

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::SourceError;
use crate::diagnostic::Diagnostic;
use crate::manifest;
use crate::manifest::yaml::Location;

pub use local::read_local;

/// Name of the ignore file, read at the root and at the sub-path root.
pub const IGNORE_FILE: &str = ".veerignore";

/// Largest `.veerignore` or symlink blob read, in bytes; a larger one is not read at all.
pub(crate) const SMALL_TEXT_LIMIT: u64 = 64 * 1024;

/// A link chain longer than this is reported as a loop.
const MAX_LINK_HOPS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Link,
    /// Submodules, sockets, devices: never read.
    Other,
}

/// A read-only view of a tree of files, addressed by `/`-separated paths relative to its
/// root (`""` is the root). Lookups never follow symlinks.
pub(crate) trait TreeView {
    fn list(&self, dir: &str) -> Result<Vec<(String, Kind)>, SourceError>;
    fn kind(&self, path: &str) -> Option<Kind>;
    fn link_target(&self, path: &str) -> Option<String>;
    fn read_small_text(&self, path: &str) -> Option<String>;
}

/// A manifest file to read: `path` names it in diagnostics, `real` is where its bytes are
/// (different when `path` is a symlink).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub path: String,
    pub real: String,
}

pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The `.veerignore` rules in force: the root's (matched against root-relative paths) and the
/// base directory's (matched against base-relative paths).
pub(crate) struct IgnoreRules {
    base: String,
    root: Option<Gitignore>,
    at_base: Option<Gitignore>,
}

impl IgnoreRules {
    pub(crate) fn load(
        view: &impl TreeView,
        base: &str,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Self {
        let root = build_ignore(view, IGNORE_FILE, diagnostics);
        let at_base = if base.is_empty() {
            None
        } else {
            build_ignore(view, &join(base, IGNORE_FILE), diagnostics)
        };
        IgnoreRules {
            base: base.to_string(),
            root,
            at_base,
        }
    }

    /// The more specific file (at the base) decides first; `!pattern` there can re-include.
    fn ignored(&self, path: &str, is_dir: bool) -> bool {
        if let Some(at_base) = &self.at_base {
            let relative = path
                .strip_prefix(&self.base)
                .map(|p| p.trim_start_matches('/'))
                .unwrap_or(path);
            match at_base.matched(relative, is_dir) {
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
                Match::None => {}
            }
        }
        match &self.root {
            Some(root) => matches!(root.matched(path, is_dir), Match::Ignore(_)),
            None => false,
        }
    }
}

fn build_ignore(
    view: &impl TreeView,
    path: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Gitignore> {
    if view.kind(path) != Some(Kind::File) {
        return None;
    }
    let text = view.read_small_text(path)?;
    // Root `.` makes the matcher take our relative paths as they are.
    let mut builder = GitignoreBuilder::new(".");
    for (n, line) in text.lines().enumerate() {
        if let Err(e) = builder.add_line(None, line) {
            diagnostics.push(
                Diagnostic::error(
                    "veerignore-invalid",
                    path,
                    Location::new(n as u32 + 1, 1),
                    format!("this pattern is not valid gitignore syntax: {e}"),
                )
                .fix("correct the pattern, or remove the line"),
            );
        }
    }
    match builder.build() {
        Ok(g) => Some(g),
        Err(e) => {
            diagnostics.push(
                Diagnostic::error(
                    "veerignore-invalid",
                    path,
                    Location::new(1, 1),
                    format!("the ignore file cannot be used: {e}"),
                )
                .fix("correct the patterns in this file"),
            );
            None
        }
    }
}

/// Resolve a symlink's target relative to the link's directory: `""` is the root itself,
/// `None` a target that is absolute or climbs above the root. Pure.
pub(crate) fn resolve_link(link_path: &str, target: &str) -> Option<String> {
    if target.starts_with('/') || target.starts_with('\\') || target.is_empty() {
        return None;
    }
    let mut parts: Vec<&str> = link_path.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

fn link_diagnostic(path: &str, code: &'static str, message: String, fix: &str) -> Box<Diagnostic> {
    Box::new(Diagnostic::error(code, path, Location::new(1, 1), message).fix(fix.to_string()))
}

/// Where a chain of links ends.
enum LinkEnd {
    /// At `path` inside the root, which is of `kind` (`None`: nothing is there).
    Inside(String, Option<Kind>),
    /// At `target`, absolute or above the root.
    Outside(String),
    /// More than [`MAX_LINK_HOPS`] links: probably a loop.
    TooLong,
}

/// Follow a link chain until it leaves the links. Lookups never go through a linked
/// directory, so this cannot loop.
fn resolve_chain(view: &impl TreeView, link: &str) -> LinkEnd {
    let mut current = link.to_string();
    for _ in 0..MAX_LINK_HOPS {
        let target = view.link_target(&current).unwrap_or_default();
        let Some(next) = resolve_link(&current, &target) else {
            return LinkEnd::Outside(target);
        };
        if next.is_empty() {
            return LinkEnd::Inside(next, Some(Kind::Dir));
        }
        match view.kind(&next) {
            Some(Kind::Link) => current = next,
            kind => return LinkEnd::Inside(next, kind),
        }
    }
    LinkEnd::TooLong
}

/// A path inside the root as messages show it (`.` for the root).
fn shown(path: &str) -> &str {
    if path.is_empty() { "." } else { path }
}

fn outside_diagnostic(link: &str, target: &str, fix: &str) -> Box<Diagnostic> {
    link_diagnostic(
        link,
        "symlink-outside-repo",
        format!(
            "symlink points to `{target}`, outside the repository; veer does not read files outside it"
        ),
        fix,
    )
}

/// Follow a link chain to a file inside the root.
fn follow(view: &impl TreeView, link: &str) -> Result<String, Box<Diagnostic>> {
    match resolve_chain(view, link) {
        LinkEnd::Inside(next, Some(Kind::File)) => Ok(next),
        LinkEnd::Inside(next, Some(_)) => Err(link_diagnostic(
            link,
            "symlink-not-file",
            format!(
                "symlink points to `{}`, which is not a regular file",
                shown(&next)
            ),
            "point the link at a manifest file, or rename it so it does not end in .yaml/.yml",
        )),
        LinkEnd::Inside(next, None) => Err(link_diagnostic(
            link,
            "symlink-broken",
            format!(
                "symlink points to `{next}`, which does not exist (links through linked directories are not followed)"
            ),
            "fix the link target, or remove the link",
        )),
        LinkEnd::Outside(target) => Err(outside_diagnostic(
            link,
            &target,
            "replace the link by the file itself, or point it at a file inside the repository",
        )),
        LinkEnd::TooLong => Err(link_diagnostic(
            link,
            "symlink-loop",
            format!("symlink chain is longer than {MAX_LINK_HOPS} links, probably a loop"),
            "point the link directly at the file",
        )),
    }
}

/// A link not named like a manifest is not read, but one that stands for a directory would
/// hide the manifests under it: veer never descends into a linked directory (git checks out
/// links as links, and following them could loop), so such a link is an error, as is one that
/// leaves the repository (what it points to cannot be known from a git tree). Links to files,
/// broken links and loops are ignored like any other file that is not a manifest.
fn check_other_link(view: &impl TreeView, link: &str) -> Option<Box<Diagnostic>> {
    const FIX_IGNORE: &str = "or list the link in .veerignore if it holds no manifests";
    match resolve_chain(view, link) {
        LinkEnd::Inside(dir, Some(Kind::Dir)) => Some(link_diagnostic(
            link,
            "symlink-to-directory",
            format!(
                "symlink points to the directory `{}`; veer does not follow links to directories, so manifests under it would not be read",
                shown(&dir)
            ),
            &format!("replace the link by the directory itself (or a copy of it), {FIX_IGNORE}"),
        )),
        LinkEnd::Outside(target) => Some(outside_diagnostic(
            link,
            &target,
            &format!("replace the link by what it points to, {FIX_IGNORE}"),
        )),
        LinkEnd::Inside(..) | LinkEnd::TooLong => None,
    }
}

/// What the walk found in one directory (not below it): its manifest files, the problems of
/// its entries, and the subdirectories to walk next, in the order the walk takes them.
#[derive(Debug, Clone, Default)]
pub(crate) struct DirWalk {
    pub found: Vec<Found>,
    pub diagnostics: Vec<Diagnostic>,
    pub subdirs: Vec<String>,
    /// It holds a symlink: what the walk made of it depends on other directories.
    pub links: bool,
}

/// Walk the entries of one directory: which are manifests, which subdirectories to descend
/// into (pushed in listing order, taken from the end), what is wrong with its links.
pub(crate) fn walk_dir(
    view: &impl TreeView,
    rules: &IgnoreRules,
    dir: &str,
    entries: Vec<(String, Kind)>,
) -> DirWalk {
    let mut out = DirWalk::default();
    for (name, kind) in entries {
        let path = join(dir, &name);
        match kind {
            Kind::Dir => {
                if !rules.ignored(&path, true) {
                    out.subdirs.push(path);
                }
            }
            Kind::Link if !manifest::is_manifest_path(&path) => {
                out.links = true;
                // Ignore rules see a link as a file, and as a directory for `dir/`.
                if rules.ignored(&path, false) || rules.ignored(&path, true) {
                    continue;
                }
                if let Some(d) = check_other_link(view, &path) {
                    out.diagnostics.push(*d);
                }
            }
            Kind::File | Kind::Link => {
                out.links |= kind == Kind::Link;
                if !manifest::is_manifest_path(&path) || rules.ignored(&path, false) {
                    continue;
                }
                if kind == Kind::File {
                    out.found.push(Found {
                        real: path.clone(),
                        path,
                    });
                } else {
                    match follow(view, &path) {
                        Ok(real) => out.found.push(Found { path, real }),
                        Err(d) => out.diagnostics.push(*d),
                    }
                }
            }
            Kind::Other => {}
        }
    }
    out
}

/// The manifest files under `base`, in path order, and the problems met on the way.
pub(crate) fn collect(
    view: &impl TreeView,
    base: &str,
) -> Result<(Vec<Found>, Vec<Diagnostic>), SourceError> {
    let mut diagnostics = Vec::new();
    let rules = IgnoreRules::load(view, base, &mut diagnostics);
    let mut found = Vec::new();
    let mut pending = vec![base.to_string()];
    while let Some(dir) = pending.pop() {
        let walked = walk_dir(view, &rules, &dir, view.list(&dir)?);
        found.extend(walked.found);
        diagnostics.extend(walked.diagnostics);
        pending.extend(walked.subdirs);
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((found, diagnostics))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A tree in memory: path → (kind, link target or file text).
    struct FakeTree(BTreeMap<&'static str, (Kind, &'static str)>);

    impl TreeView for FakeTree {
        fn list(&self, dir: &str) -> Result<Vec<(String, Kind)>, SourceError> {
            Ok(self
                .0
                .iter()
                .filter_map(|(path, (kind, _))| {
                    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
                    (parent == dir).then(|| (name.to_string(), *kind))
                })
                .collect())
        }
        fn kind(&self, path: &str) -> Option<Kind> {
            self.0.get(path).map(|(kind, _)| *kind)
        }
        fn link_target(&self, path: &str) -> Option<String> {
            self.0.get(path).map(|(_, target)| target.to_string())
        }
        fn read_small_text(&self, path: &str) -> Option<String> {
            self.0.get(path).map(|(_, text)| text.to_string())
        }
    }

    #[test]
    fn links_to_directories_are_refused_never_followed() {
        let tree = FakeTree(BTreeMap::from([
            (".veerignore", (Kind::File, "skipped\n")),
            ("apps", (Kind::Dir, "")),
            ("apps/svc.yaml", (Kind::File, "")),
            // A link to a directory, directly or through another link.
            ("current", (Kind::Link, "apps")),
            ("via", (Kind::Link, "current")),
            // Links to a directory above them: followed, they would loop.
            ("apps/self", (Kind::Link, "..")),
            ("apps/up", (Kind::Link, "../apps")),
            ("outside", (Kind::Link, "../../elsewhere")),
            ("absolute", (Kind::Link, "/etc")),
            // Not manifests, ignored as before.
            ("README", (Kind::Link, "apps/svc.yaml")),
            ("broken", (Kind::Link, "nothere")),
            ("loop", (Kind::Link, "loop")),
            ("skipped", (Kind::Link, "apps")),
            // A manifest-named link to a directory keeps its code.
            ("dir.yaml", (Kind::Link, "apps")),
        ]));
        let (found, diagnostics) = collect(&tree, "").unwrap();
        let paths: Vec<&str> = found.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, vec!["apps/svc.yaml"]);
        let mut codes: Vec<(&str, &str)> = diagnostics
            .iter()
            .map(|d| (d.file.as_str(), d.code))
            .collect();
        codes.sort_unstable();
        assert_eq!(
            codes,
            vec![
                ("absolute", "symlink-outside-repo"),
                ("apps/self", "symlink-to-directory"),
                ("apps/up", "symlink-to-directory"),
                ("current", "symlink-to-directory"),
                ("dir.yaml", "symlink-not-file"),
                ("outside", "symlink-outside-repo"),
                ("via", "symlink-to-directory"),
            ]
        );
        let via = diagnostics.iter().find(|d| d.file == "via").unwrap();
        assert!(via.message.contains("directory `apps`"), "{}", via.message);
        assert!(via.fix.as_deref().unwrap_or("").contains(".veerignore"));
    }

    #[test]
    fn link_targets_resolve_inside_or_not_at_all() {
        let table: &[(&str, &str, Option<&str>)] = &[
            ("a/b.yaml", "c.yaml", Some("a/c.yaml")),
            ("a/b.yaml", "../c.yaml", Some("c.yaml")),
            ("a/b.yaml", "./x/../d.yaml", Some("a/d.yaml")),
            ("b.yaml", "../c.yaml", None),
            ("a/b.yaml", "../../c.yaml", None),
            ("a/b.yaml", "/etc/passwd", None),
            ("a/b.yaml", "", None),
            ("a/b.yaml", "..", Some("")),
            ("a/b.yaml", "../..", None),
        ];
        for (link, target, want) in table {
            assert_eq!(
                resolve_link(link, target).as_deref(),
                *want,
                "{link} -> {target}"
            );
        }
    }
}
