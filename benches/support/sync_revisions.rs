//! The sync bench's revisions (generated manifests, loaded as the git source would, and one
//! object bumped for the next commit) and the helpers that put a pass's figures into words.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use veer::controller::Controller;
use veer::diff::{ObjectAction, Plan};
use veer::manifest::{self, ManifestSet, ReadOptions};
use veer::source::{CommitId, LoadedRevision, Revision};

use crate::manifests::manifest_text;

/// Where generated manifest `i` lives.
fn path_of(i: usize) -> String {
    format!("d{:03}/m{i}.yaml", i / 100)
}

fn loaded(number: u64, set: ManifestSet, changed_files: Vec<String>) -> Arc<LoadedRevision> {
    let parsed_files = changed_files.len();
    Arc::new(LoadedRevision {
        revision: Revision {
            commit: CommitId(format!("{number:040x}")),
            summary: format!("bench revision {number}"),
            author: "Bench <bench@example.com>".into(),
            time: Utc::now(),
        },
        set,
        changed_files,
        parsed_files,
    })
}

/// A loaded revision of `n` generated manifests, all at generation 0.
pub fn revision(n: usize, number: u64) -> Arc<LoadedRevision> {
    let options = ReadOptions::default();
    let mut set = ManifestSet::default();
    for i in 0..n {
        let text = manifest_text(i, 0);
        set.extend(&manifest::parse_file(
            &path_of(i),
            text.as_bytes(),
            &options,
        ));
    }
    assert_eq!(set.manifests.len(), n, "every generated manifest parses");
    loaded(number, set, (0..n).map(path_of).collect())
}

/// `base` with manifest `changed` bumped to generation 1, as the git source loads the next
/// commit: that file parsed again, every other manifest the parse cache's same one.
pub fn revise(base: &LoadedRevision, number: u64, changed: usize) -> Arc<LoadedRevision> {
    let text = manifest_text(changed, 1);
    let parsed = manifest::parse_file(&path_of(changed), text.as_bytes(), &ReadOptions::default());
    let mut set = ManifestSet::default();
    set.manifests = base.set.manifests.clone();
    set.manifests[changed] = parsed.manifests[0].clone();
    loaded(number, set, vec![path_of(changed)])
}

/// A short duration to the microsecond (an idle pass is well under a millisecond).
pub fn micros(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// How much the controller's last pass planned, for people: `planned 1 object(s)`,
/// `planned 10000 object(s) (full: first)`.
pub fn planning(c: &Controller) -> (usize, String) {
    match c.last_planning() {
        Some(p) => {
            let full = p.full.map(|r| format!(" (full: {})", r.as_str()));
            (
                p.objects,
                format!(
                    "planned {} object(s){}",
                    p.objects,
                    full.unwrap_or_default()
                ),
            )
        }
        None => (usize::MAX, "planned nothing yet".into()),
    }
}

/// Objects in `plan` by action, e.g. `unchanged 999, update 1`.
pub fn actions(plan: &Plan) -> (usize, String) {
    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &plan.objects {
        *by.entry(o.action.name()).or_default() += 1;
    }
    let changes = plan
        .objects
        .iter()
        .filter(|o| !matches!(o.action, ObjectAction::Unchanged))
        .count();
    let text = by
        .iter()
        .map(|(a, n)| format!("{a} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    (changes, text)
}

pub fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

pub fn flag(ok: bool) -> &'static str {
    if ok { "" } else { "   <-- UNEXPECTED" }
}
