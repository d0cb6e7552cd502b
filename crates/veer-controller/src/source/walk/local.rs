//! The directory backend of the walk: a plain directory seen through [`TreeView`], and
//! [`read_local`], used by `veer validate PATH`.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::{Kind, SMALL_TEXT_LIMIT, SourceError, TreeView, collect, link_diagnostic};
use crate::manifest::{self, ManifestSet, ReadOptions};

/// A directory on disk.
struct DirView {
    root: PathBuf,
}

impl DirView {
    fn full(&self, path: &str) -> PathBuf {
        if path.is_empty() {
            self.root.clone()
        } else {
            self.root.join(path)
        }
    }
}

fn kind_of(meta: &fs::Metadata) -> Kind {
    let t = meta.file_type();
    if t.is_symlink() {
        Kind::Link
    } else if t.is_dir() {
        Kind::Dir
    } else if t.is_file() {
        Kind::File
    } else {
        Kind::Other
    }
}

impl TreeView for DirView {
    fn list(&self, dir: &str) -> Result<Vec<(String, Kind)>, SourceError> {
        let full = self.full(dir);
        let read_err = |e: std::io::Error| SourceError::Read {
            location: full.display().to_string(),
            message: e.to_string(),
        };
        let mut out = Vec::new();
        for entry in fs::read_dir(&full).map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            // Names that are not UTF-8 cannot be manifest paths we report; skip them.
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let meta = fs::symlink_metadata(entry.path()).map_err(read_err)?;
            out.push((name, kind_of(&meta)));
        }
        Ok(out)
    }

    /// Like git, a path whose directories include a symlink does not exist here.
    fn kind(&self, path: &str) -> Option<Kind> {
        let mut current = self.root.clone();
        let mut kind = Kind::Dir;
        for part in path.split('/') {
            if kind != Kind::Dir {
                return None;
            }
            current.push(part);
            kind = kind_of(&fs::symlink_metadata(&current).ok()?);
        }
        Some(kind)
    }

    fn link_target(&self, path: &str) -> Option<String> {
        let target = fs::read_link(self.full(path)).ok()?;
        target.to_str().map(str::to_string)
    }

    fn read_small_text(&self, path: &str) -> Option<String> {
        let file = fs::File::open(self.full(path)).ok()?;
        if file.metadata().ok()?.len() > SMALL_TEXT_LIMIT {
            return None;
        }
        let mut text = String::new();
        file.take(SMALL_TEXT_LIMIT).read_to_string(&mut text).ok()?;
        Some(text)
    }
}

/// Read the manifests of a plain directory (not necessarily a git repository), with the same
/// rules as a git source. Paths in the result are relative to `dir`.
pub fn read_local(dir: &Path, options: &ReadOptions) -> Result<ManifestSet, SourceError> {
    let read_err = |location: &Path, e: std::io::Error| SourceError::Read {
        location: location.display().to_string(),
        message: format!("{e}; give an existing directory"),
    };
    let root = fs::canonicalize(dir).map_err(|e| read_err(dir, e))?;
    if !root.is_dir() {
        return Err(SourceError::Read {
            location: dir.display().to_string(),
            message: "not a directory; give the directory holding the manifests".to_string(),
        });
    }
    let view = DirView { root };
    let (files, diagnostics) = collect(&view, "")?;
    let mut set = ManifestSet {
        manifests: Vec::new(),
        diagnostics,
        ..ManifestSet::default()
    };
    for file in files {
        let full = view.full(&file.real);
        // Belt and braces: whatever the walk decided, never read outside the root.
        let inside = fs::canonicalize(&full)
            .map(|p| p.starts_with(&view.root))
            .unwrap_or(false);
        if !inside {
            set.diagnostics.push(*link_diagnostic(
                &file.path,
                "symlink-outside-repo",
                "file resolves outside the directory; veer does not read files outside it"
                    .to_string(),
                "replace the link by the file itself",
            ));
            continue;
        }
        // The size of the opened file decides before anything is read, and the read stops
        // past the limit even if the file grows meanwhile (`parse_file` then refuses it).
        let opened = fs::File::open(&full).map_err(|e| read_err(&full, e))?;
        let size = opened.metadata().map_err(|e| read_err(&full, e))?.len();
        if let Some(d) = manifest::too_large(&file.path, size, options) {
            set.diagnostics.push(d);
            continue;
        }
        let mut bytes = Vec::new();
        opened
            .take(options.max_file_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| read_err(&full, e))?;
        set.extend(&manifest::parse_file(&file.path, &bytes, options));
    }
    Ok(set)
}
