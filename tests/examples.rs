//! Every config repository under `examples/` is complete and valid, as `veer validate` sees it
//! (the same reading rules as a git source: `.veerignore`, YAML only).

use std::path::Path;

use veer::manifest::ReadOptions;
use veer::source::read_local;
use veer::validate;

#[test]
fn every_example_repo_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 7,
        "expected the example repos, found {dirs:?}"
    );
    let mut failures = String::new();
    for dir in &dirs {
        assert!(
            dir.join("README.md").is_file(),
            "{} has no README.md",
            dir.display()
        );
        let set = read_local(dir, &ReadOptions::default()).unwrap();
        assert!(
            !set.manifests.is_empty(),
            "{} has no manifests",
            dir.display()
        );
        let report = validate::validate(&set);
        if !report.is_ok() {
            failures.push_str(&format!("{}:\n{}", dir.display(), report.render_human()));
        }
    }
    assert!(failures.is_empty(), "{failures}");
}
