//! [`Positions`]: where every node of a document starts, by JSON pointer, held compactly.
//!
//! A revision keeps the positions of every object for as long as it is in force, yet reads
//! them only to place a diagnostic. A map from each pointer (as a `String`) to its location
//! cost about 100 bytes a node (1.7 KB an object of the benches' 10,000): each pointer
//! repeats all its ancestors' and is an allocation of its own. Here the pointers are a tree:
//! each node keeps only its last segment, all of them in one string, and 16 bytes of parent,
//! segment end and location, in one slice ordered so that a node's children are contiguous
//! and sorted (a lookup is a binary search per segment).
//!
//! A document's positions are collected in a [`PositionsBuilder`] (the plain map, which is
//! also the reference the tests hold the compact form to) and frozen by
//! [`PositionsBuilder::build`].

use std::collections::{BTreeMap, HashMap};

use super::Location;

/// JSON pointer (RFC 6901, `/spec/http/0/route`) → where that node starts in the file.
///
/// Map entries point at their key, sequence items at the item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions {
    /// Every node's last segment, in node order: node `i`'s is `names[end(i - 1)..end(i)]`.
    /// A segment is cut before a `/` and keeps it (`/spec`, `/0`); the root's is empty.
    names: Box<str>,
    /// `nodes[0]` is the root (the pointer `""`); the others are in order of depth, then of
    /// (parent, segment): a node's children are contiguous and sorted by segment, and
    /// `nodes[1..]` is sorted by parent.
    nodes: Box<[Node]>,
    /// Nodes that are only on the way to others (no pointer of the document ends there), in
    /// order. Empty for what the YAML reader builds (it records every ancestor).
    paths_only: Box<[u32]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Node {
    parent: u32,
    /// Where this node's segment ends in `names`.
    end: u32,
    at: Location,
}

impl Positions {
    /// The location of `pointer`, or of its nearest ancestor that has one.
    pub fn locate(&self, pointer: &str) -> Location {
        let mut best = self.at(0).unwrap_or_default();
        self.walk(pointer, |node| {
            if let Some(at) = self.at(node) {
                best = at;
            }
        });
        best
    }

    /// The exact location of `pointer`, if the file had that node.
    pub fn get(&self, pointer: &str) -> Option<Location> {
        self.find(pointer).and_then(|node| self.at(node))
    }

    /// The positions under `prefix`, with `prefix` taken off their pointers: the positions of
    /// a node as a document of its own (an item of a `kind: List`).
    pub(crate) fn subtree(&self, prefix: &str) -> Positions {
        let mut out = PositionsBuilder::default();
        if let Some(top) = self.find(prefix) {
            // Under `""`, only pointers that start with `/` (as `""` + `/` + …), like the rest.
            let from_root = top == 0;
            let mut pending = vec![(top, String::new())];
            while let Some((node, pointer)) = pending.pop() {
                for child in self.children(node) {
                    let segment = self.segment(child);
                    if from_root && node == 0 && !segment.starts_with('/') {
                        continue;
                    }
                    pending.push((child, format!("{pointer}{segment}")));
                }
                if let Some(at) = self.at(node) {
                    out.insert(pointer, at);
                }
            }
        }
        out.build()
    }

    /// The node `pointer` names, if the document has it (as a pointer or on the way to one).
    fn find(&self, pointer: &str) -> Option<u32> {
        let mut found = None;
        let whole = self.walk(pointer, |node| found = Some(node));
        if whole { found } else { None }
    }

    /// Visit the root and then each node along `pointer`, as far as the document has them;
    /// true when the whole pointer was found.
    fn walk(&self, pointer: &str, mut visit: impl FnMut(u32)) -> bool {
        if self.nodes.is_empty() {
            return false;
        }
        visit(0);
        let mut node = 0;
        let mut rest = pointer;
        while !rest.is_empty() {
            // The next segment runs to the next `/` (a leading one is part of it).
            let skip = usize::from(rest.starts_with('/'));
            let cut = rest[skip..].find('/').map_or(rest.len(), |i| i + skip);
            let (segment, after) = rest.split_at(cut);
            match self.child(node, segment) {
                Some(next) => {
                    visit(next);
                    node = next;
                    rest = after;
                }
                None => return false,
            }
        }
        true
    }

    /// The child of `node` whose segment is `segment`.
    fn child(&self, node: u32, segment: &str) -> Option<u32> {
        let std::ops::Range {
            start: mut lo,
            end: mut hi,
        } = self.children(node);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.segment(mid).cmp(segment) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// The indices of `node`'s children.
    fn children(&self, node: u32) -> std::ops::Range<u32> {
        let rest = self.nodes.get(1..).unwrap_or_default();
        let from = rest.partition_point(|n| n.parent < node);
        let to = rest.partition_point(|n| n.parent <= node);
        (from as u32 + 1)..(to as u32 + 1)
    }

    fn segment(&self, node: u32) -> &str {
        let i = node as usize;
        let start = match i {
            0 => 0,
            _ => self.nodes[i - 1].end as usize,
        };
        &self.names[start..self.nodes[i].end as usize]
    }

    /// Where `node` starts, unless it is only on the way to other nodes.
    fn at(&self, node: u32) -> Option<Location> {
        let n = self.nodes.get(node as usize)?;
        match self.paths_only.binary_search(&node) {
            Ok(_) => None,
            Err(_) => Some(n.at),
        }
    }
}

/// The pointer one level up from `pointer` (not `""`): cut at its last `/`.
fn parent(pointer: &str) -> &str {
    pointer.rfind('/').map_or("", |i| &pointer[..i])
}

/// Positions as they are collected: a plain map, frozen into [`Positions`] by
/// [`PositionsBuilder::build`]. The first location given for a pointer is the one kept.
#[derive(Debug, Clone, Default)]
pub(crate) struct PositionsBuilder {
    by_pointer: BTreeMap<String, Location>,
}

impl PositionsBuilder {
    pub(crate) fn insert(&mut self, pointer: String, loc: Location) {
        self.by_pointer.entry(pointer).or_insert(loc);
    }

    /// The compact form, with the same answers.
    pub(crate) fn build(self) -> Positions {
        if self.by_pointer.is_empty() {
            return Positions::default();
        }
        // Every pointer and everything on the way to it, each with its depth.
        let mut all: HashMap<&str, Option<Location>> = HashMap::new();
        all.insert("", None);
        for (pointer, at) in &self.by_pointer {
            all.insert(pointer, Some(*at));
        }
        for pointer in self.by_pointer.keys() {
            let mut p = pointer.as_str();
            while !p.is_empty() {
                p = parent(p);
                if all.contains_key(p) {
                    break;
                }
                all.insert(p, None);
            }
        }
        let depth = |p: &str| match p {
            "" => 0,
            _ => p.matches('/').count() + usize::from(!p.starts_with('/')),
        };
        let mut levels: Vec<Vec<&str>> = Vec::new();
        for p in all.keys() {
            let d = depth(p);
            if levels.len() <= d {
                levels.resize_with(d + 1, Vec::new);
            }
            levels[d].push(p);
        }
        let mut index: HashMap<&str, u32> = HashMap::with_capacity(all.len());
        let mut names = String::new();
        let mut nodes = Vec::with_capacity(all.len());
        let mut paths_only = Vec::new();
        for level in levels {
            let mut level: Vec<(u32, &str, &str)> = level
                .into_iter()
                .map(|p| {
                    let up = parent(p);
                    let parent_index = if p.is_empty() { 0 } else { index[up] };
                    (parent_index, &p[up.len()..], p)
                })
                .collect();
            level.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            for (parent_index, segment, p) in level {
                let (Ok(i), Ok(end)) = (
                    u32::try_from(nodes.len()),
                    u32::try_from(names.len() + segment.len()),
                ) else {
                    // Past 4 GiB of names (no file veer reads comes near): the nodes kept
                    // so far answer, deeper ones fall back to them.
                    break;
                };
                names.push_str(segment);
                index.insert(p, i);
                let at = all[p];
                if at.is_none() {
                    paths_only.push(i);
                }
                nodes.push(Node {
                    parent: parent_index,
                    end,
                    at: at.unwrap_or_default(),
                });
            }
        }
        Positions {
            names: names.into_boxed_str(),
            nodes: nodes.into_boxed_slice(),
            paths_only: paths_only.into_boxed_slice(),
        }
    }

    /// The reference answers: what [`Positions::locate`] must say.
    #[cfg(test)]
    pub(crate) fn locate(&self, pointer: &str) -> Location {
        let mut p = pointer;
        loop {
            if let Some(loc) = self.by_pointer.get(p) {
                return *loc;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return self.by_pointer.get("").copied().unwrap_or_default(),
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn get(&self, pointer: &str) -> Option<Location> {
        self.by_pointer.get(pointer).copied()
    }

    /// The reference answers of [`Positions::subtree`].
    #[cfg(test)]
    pub(crate) fn subtree(&self, prefix: &str) -> PositionsBuilder {
        let below = format!("{prefix}/");
        let by_pointer = self
            .by_pointer
            .range(prefix.to_string()..)
            .take_while(|(p, _)| p.starts_with(prefix))
            .filter(|(p, _)| p.as_str() == prefix || p.starts_with(&below))
            .map(|(p, loc)| (p[prefix.len()..].to_string(), *loc))
            .collect();
        PositionsBuilder { by_pointer }
    }

    #[cfg(test)]
    pub(crate) fn pointers(&self) -> impl Iterator<Item = &str> {
        self.by_pointer.keys().map(String::as_str)
    }
}

#[cfg(test)]
#[path = "positions_tests.rs"]
mod tests;
