//! Each bench's figures from its previous run, so a figure can be printed with its ratio to
//! the last one: `12.3 ms (x0.85 vs last run)`.
//!
//! A bench records every figure by name (`1000 rollouts/tick CPU`); [`Figures::save`] merges
//! them into `target/bench-figures/<bench>.json` (release builds) or `<bench>-debug.json`
//! (debug builds, e.g. `cargo test --bench`, so a smoke run never stands in for a release
//! figure). Merging, not overwriting: a bench that runs each size in a child process saves
//! once per child, and the sizes not run this time keep their last figures. Missing or
//! unreadable files mean no previous figures, never a failure: the figures are for people.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct Figures {
    path: PathBuf,
    previous: BTreeMap<String, f64>,
    current: BTreeMap<String, f64>,
}

impl Figures {
    /// The figures `bench` stored after its last run.
    pub fn load(bench: &str) -> Figures {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
        let profile = if cfg!(debug_assertions) { "-debug" } else { "" };
        let path = target
            .join("bench-figures")
            .join(format!("{bench}{profile}.json"));
        Figures {
            previous: read(&path),
            path,
            current: BTreeMap::new(),
        }
    }

    /// Record figure `name` at `value` and say how it compares with the last run's:
    /// ` (x0.85 vs last run)`, or nothing when there is no last value to compare with.
    pub fn ratio(&mut self, name: &str, value: f64) -> String {
        self.current.insert(name.to_string(), value);
        match self.previous.get(name) {
            Some(&last) if last > 0.0 && value.is_finite() => {
                format!(" (x{:.2} vs last run)", value / last)
            }
            Some(&last) if last == 0.0 && value == 0.0 => " (x1.00 vs last run)".to_string(),
            Some(&last) => format!(" (last run: {last})"),
            None => String::new(),
        }
    }

    /// A duration figure, in milliseconds.
    pub fn ms(&mut self, name: &str, d: std::time::Duration) -> String {
        self.ratio(name, d.as_secs_f64() * 1000.0)
    }

    /// Merge this run's figures into the file (written whole, then renamed into place).
    pub fn save(&self) {
        if self.current.is_empty() {
            return;
        }
        let mut all = read(&self.path);
        all.extend(self.current.iter().map(|(k, v)| (k.clone(), *v)));
        let written = (|| -> std::io::Result<()> {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = self
                .path
                .with_extension(format!("json.{}", std::process::id()));
            let text = serde_json::to_string_pretty(&all).map_err(std::io::Error::other)?;
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, &self.path)
        })();
        if let Err(e) = written {
            eprintln!(
                "cannot store the figures in {}: {e} (the next run prints no ratios)",
                self.path.display()
            );
        }
    }
}

fn read(path: &std::path::Path) -> BTreeMap<String, f64> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}
