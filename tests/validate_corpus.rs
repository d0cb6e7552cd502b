//! The validation corpus: every file under `tests/fixtures/valid/` must validate with no
//! error; every file under `tests/fixtures/invalid/` must produce at least one diagnostic,
//! exactly those in its `.golden` twin. `UPDATE_GOLDEN=1 cargo test --test validate_corpus`
//! rewrites goldens.

use std::fs;
use std::path::{Path, PathBuf};

use veer::manifest::{self, ManifestSet, ReadOptions};
use veer::validate;

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut files: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("read {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| manifest::is_manifest_path(&p.to_string_lossy()))
        .collect();
    files.sort();
    files
}

fn validate_file(path: &Path) -> validate::Report {
    let name = format!(
        "{}/{}",
        path.parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy(),
        path.file_name().unwrap().to_string_lossy()
    );
    let bytes = fs::read(path).unwrap();
    let mut set = ManifestSet::default();
    set.extend(&manifest::parse_file(
        &name,
        &bytes,
        &ReadOptions::default(),
    ));
    validate::validate(&set)
}

#[test]
fn valid_corpus_has_no_errors() {
    let files = fixtures("valid");
    assert!(!files.is_empty(), "no valid fixtures found");
    let mut failures = String::new();
    for f in &files {
        let report = validate_file(f);
        if !report.is_ok() {
            failures.push_str(&format!("{}:\n{}", f.display(), report.render_human()));
        }
    }
    assert!(failures.is_empty(), "valid fixtures rejected:\n{failures}");
}

#[test]
fn invalid_corpus_matches_goldens() {
    let files = fixtures("invalid");
    assert!(!files.is_empty(), "no invalid fixtures found");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = String::new();
    for f in &files {
        let report = validate_file(f);
        let actual = report.render_human();
        let golden = f.with_extension("golden");
        if update {
            fs::write(&golden, &actual).unwrap();
            continue;
        }
        // Warning checks have fixtures too, so any diagnostic counts; the golden pins its
        // severity.
        if report.diagnostics.is_empty() {
            failures.push_str(&format!(
                "{}: expected at least one diagnostic, got none\n",
                f.display()
            ));
        }
        match fs::read_to_string(&golden) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push_str(&format!(
                "{}: output differs from {}\n--- expected\n{expected}--- actual\n{actual}",
                f.display(),
                golden.display()
            )),
            Err(_) => failures.push_str(&format!(
                "{}: no golden file; run with UPDATE_GOLDEN=1 and review it\n",
                f.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

/// Every code the corpus produces is in the catalog with the severity it was reported at
/// (unless `validation.severity` changed it, which the corpus never does), and the README's
/// validation table lists every catalog code beside its istioctl code.
#[test]
fn catalog_covers_the_corpus_and_the_readme() {
    let mut failures = String::new();
    for f in fixtures("invalid").iter().chain(fixtures("valid").iter()) {
        for d in validate_file(f).diagnostics {
            match validate::catalog::find(d.code) {
                None => failures.push_str(&format!(
                    "{}: code {} is not in validate::catalog\n",
                    f.display(),
                    d.code
                )),
                Some(check) if check.istio != d.istio => failures.push_str(&format!(
                    "{}: {} reported with istioctl code {:?}, catalog says {:?}\n",
                    f.display(),
                    d.code,
                    d.istio,
                    check.istio
                )),
                Some(_) => {}
            }
        }
    }
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for check in validate::catalog::all() {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", check.code)));
        match row {
            None => failures.push_str(&format!(
                "README's validation table has no row `| `{}` | …`\n",
                check.code
            )),
            Some(row) => {
                if let Some(ist) = check.istio
                    && !row.contains(ist)
                {
                    failures.push_str(&format!(
                        "README's row for {} does not name {ist}\n",
                        check.code
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

/// Prints how many checks exist per kind and per istioctl analyzer code (`cargo test --test
/// validate_corpus -- --nocapture check_counts`).
#[test]
fn check_counts() {
    let mut by_kind = std::collections::BTreeMap::<&str, usize>::new();
    let mut by_istio = std::collections::BTreeMap::<&str, Vec<&str>>::new();
    let all = validate::catalog::all();
    for c in &all {
        *by_kind.entry(c.kind).or_default() += 1;
        if let Some(ist) = c.istio {
            by_istio.entry(ist).or_default().push(c.code);
        }
    }
    println!("{} checks", all.len());
    for (kind, n) in &by_kind {
        println!("  {kind:<16} {n}");
    }
    println!(
        "istioctl analyze codes with a counterpart: {}",
        by_istio.len()
    );
    for (ist, codes) in &by_istio {
        println!("  {ist}  {}", codes.join(", "));
    }
    assert!(!all.is_empty());
}
