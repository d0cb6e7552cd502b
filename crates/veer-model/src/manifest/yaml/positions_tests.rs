//! The compact [`Positions`] answer as the map they are built from does: every pointer of the
//! corpus's documents and of generated ones, the pointers' prefixes and extensions, and
//! pointers no document has.

use std::path::{Path, PathBuf};

use super::*;
use proptest::prelude::Rng as _;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// Every query a diagnostic could make of `reference`'s document.
fn queries(reference: &PositionsBuilder) -> Vec<String> {
    let mut out: Vec<String> = ["", "/", "//", "x", "x/y", "/nope", "/nope/0", "~1", "é/"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for p in reference.pointers() {
        // Every prefix, cut anywhere (a segment cut short is another segment).
        for (i, _) in p.char_indices() {
            out.push(p[..i].to_string());
        }
        out.push(p.to_string());
        for more in ["/zzz", "/0", "/zzz/yyy", "/", "a", "~0", "/é"] {
            out.push(format!("{p}{more}"));
        }
    }
    out
}

/// `compact` (built from `reference`) answers every query as `reference` does.
fn assert_same(reference: &PositionsBuilder, compact: &Positions, what: &str) {
    for q in queries(reference) {
        assert_eq!(
            compact.locate(&q),
            reference.locate(&q),
            "{what}: locate({q:?})"
        );
        assert_eq!(compact.get(&q), reference.get(&q), "{what}: get({q:?})");
    }
    for p in reference.pointers().chain(["", "/nope", "x"]) {
        let expected = reference.subtree(p);
        let got = compact.subtree(p);
        assert_eq!(got, expected.clone().build(), "{what}: subtree({p:?})");
        for q in queries(&expected) {
            assert_eq!(
                got.locate(&q),
                expected.locate(&q),
                "{what}: subtree({p:?}).locate({q:?})"
            );
        }
    }
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

#[test]
fn the_corpus_is_located_as_before() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    assert!(files.len() > 50, "the corpus at {}", root.display());
    let mut documents = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let Ok(docs) = super::super::read_documents(&text) else {
            continue;
        };
        for (_, reference, _) in docs {
            documents += 1;
            let compact = reference.clone().build();
            assert_same(&reference, &compact, &file.display().to_string());
        }
    }
    assert!(documents > 100, "{documents} documents");
}

/// proptest's generator from a fixed seed, so a failure reproduces.
struct Rng(TestRng);

impl Rng {
    fn seeded(seed: u64) -> Rng {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        Rng(TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
    }

    fn below(&mut self, n: usize) -> usize {
        (self.0.next_u64() % n as u64) as usize
    }
}

/// Pointers as the reader writes them, and odd ones the API allows: no leading `/`, empty
/// segments, escapes, non-ASCII, prefixes of one another, ancestors left out.
fn generated(rng: &mut Rng) -> PositionsBuilder {
    const SEGMENTS: &[&str] = &[
        "spec", "spe", "spec2", "0", "1", "10", "", "~1", "~0", "é", "a", "metadata", "labels",
    ];
    let mut builder = PositionsBuilder::default();
    let mut known: Vec<String> = vec![String::new()];
    for _ in 0..rng.below(40) {
        let base = known[rng.below(known.len())].clone();
        let segment = SEGMENTS[rng.below(SEGMENTS.len())];
        let pointer = match rng.below(10) {
            0 if base.is_empty() => segment.to_string(),
            1 => format!("{base}/{segment}/{}", SEGMENTS[rng.below(SEGMENTS.len())]),
            _ => format!("{base}/{segment}"),
        };
        let at = match rng.below(8) {
            0 => Location::default(),
            _ => Location::new(rng.below(50) as u32, rng.below(20) as u32),
        };
        // Ancestors are sometimes left out: the compact form keeps them as paths only.
        if rng.below(4) != 0 {
            builder.insert(pointer.clone(), at);
        }
        known.push(pointer);
    }
    builder
}

#[test]
fn generated_pointers_are_located_as_before() {
    let mut rng = Rng::seeded(0x5eed_1234_abcd_0001);
    for case in 0..2_000 {
        let reference = generated(&mut rng);
        let compact = reference.clone().build();
        assert_same(&reference, &compact, &format!("case {case}: {reference:?}"));
    }
}

#[test]
fn generated_manifests_are_located_as_before() {
    let mut rng = Rng::seeded(0x0bad_cafe_0000_0042);
    for i in 0..200 {
        let mut text = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m{i}\n");
        text.push_str("data:\n");
        for k in 0..rng.below(30) {
            text.push_str(&format!("  k{}: \"{k}\"\n", rng.below(1000)));
        }
        text.push_str("spec:\n  list:\n");
        for k in 0..rng.below(12) {
            text.push_str(&format!("  - {{name: n{k}, port: {}}}\n", rng.below(65535)));
        }
        let Ok(docs) = super::super::read_documents(&text) else {
            continue;
        };
        for (_, reference, _) in docs {
            let compact = reference.clone().build();
            assert_same(&reference, &compact, &text);
        }
    }
}

#[test]
fn empty_positions_locate_nothing() {
    let empty = PositionsBuilder::default().build();
    assert_eq!(empty, Positions::default());
    assert_eq!(empty.locate("/a"), Location::default());
    assert_eq!(empty.get(""), None);
    assert_eq!(empty.subtree(""), Positions::default());
}
