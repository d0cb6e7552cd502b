//! The design rules the compiler does not check, checked over the sources and `Cargo.lock`:
//! within each crate the top-level modules form no dependency cycle; the pure crates
//! (veer-model, veer-fields, veer-core) reach no I/O crate, directly or through any
//! dependency, and name none in their code; the product library (veer-controller) reaches
//! neither the embedded API server nor the demo; no source file, test or bench grows past the
//! size limit (the files still over it are listed here, with their size, and may only
//! shrink); no function signature has a `Result<_, String>` (errors are typed). `make lint`
//! runs it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lines a source file may have.
const MAX_LINES: usize = 600;

/// Files allowed over [`MAX_LINES`], with the most lines each may have: they may shrink, never
/// grow; a file that fits drops off this list. None today; split a file by concern rather than
/// adding it here.
const OVERSIZED: &[(&str, usize)] = &[];

/// The crates that decide and must stay free of I/O.
const PURE_CRATES: &[&str] = &["veer-model", "veer-fields", "veer-core"];
/// Crates that do I/O (as named in `Cargo.lock`; their `use` names swap `-` for `_`).
const IO_CRATES: &[&str] = &[
    "kube",
    "kube-client",
    "kube-runtime",
    "reqwest",
    "git2",
    "axum",
    "tokio",
    "hyper",
    "hyper-util",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a source directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every crate's source directory: the app's `src/` and each `crates/*/src`.
fn crate_sources() -> Vec<PathBuf> {
    let mut out = vec![root().join("src")];
    for entry in std::fs::read_dir(root().join("crates")).expect("read crates/") {
        out.push(entry.expect("entry").path().join("src"));
    }
    out.sort();
    out
}

/// A library's files by top-level module (`src/sync/state.rs` → `sync`), without the
/// binary's (`main.rs`, `cmd/`).
fn library_modules(src: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut out: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("under src/").to_path_buf();
        let first = relative
            .components()
            .next()
            .expect("a path")
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if matches!(first.as_str(), "main" | "cmd" | "lib") {
            continue;
        }
        out.entry(first).or_default().push(file);
    }
    out
}

/// Source without comments and without its test modules (what tests use is not a
/// dependency of the module).
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read a source file");
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a piece of code names through `crate::`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The names at the group's own level: commas inside nested `{…}` belong to them.
            let mut depth = 0;
            let mut part = String::new();
            let mut parts = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => parts.push(std::mem::take(&mut part)),
                    _ if depth == 0 => part.push(c),
                    _ => {}
                }
            }
            parts.push(part);
            for part in parts {
                let name = part.trim().split("::").next().unwrap_or("").trim();
                if !name.is_empty() && name != "self" {
                    out.insert(name.to_string());
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    out
}

fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let modules = library_modules(src);
    let mut graph = BTreeMap::new();
    for (module, files) in &modules {
        let mut uses = BTreeSet::new();
        for f in files {
            uses.extend(named_modules(&code_of(f)));
        }
        uses.remove(module);
        uses.retain(|m| modules.contains_key(m));
        graph.insert(module.clone(), uses);
    }
    graph
}

/// A cycle through `start`, if there is one.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(at).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, start, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(graph, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn the_modules_of_each_crate_form_no_cycle() {
    let mut cycles = Vec::new();
    let mut modules = 0;
    for src in crate_sources() {
        let graph = module_graph(&src);
        modules += graph.len();
        cycles.extend(
            graph
                .keys()
                .filter_map(|m| cycle_from(&graph, m))
                .map(|c| format!("{}: {}", src.display(), c.join(" -> "))),
        );
    }
    assert!(modules > 25, "the modules were found");
    assert!(
        cycles.is_empty(),
        "module cycles (move what both need to a leaf module):\n{}",
        cycles.join("\n")
    );
}

/// `Cargo.lock`'s packages: name → the names of its dependencies (normal, build and dev
/// alike: the lock does not tell them apart, so a pure crate may not even test with an I/O
/// crate).
fn locked_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).expect("read Cargo.lock");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for package in lock.split("[[package]]").skip(1) {
        let mut name = String::new();
        let mut deps = BTreeSet::new();
        let mut in_deps = false;
        for line in package.lines() {
            let line = line.trim();
            if let Some(n) = line.strip_prefix("name = ") {
                name = n.trim_matches('"').to_string();
            } else if line.starts_with("dependencies = [") {
                in_deps = true;
            } else if in_deps && line == "]" {
                in_deps = false;
            } else if in_deps {
                // `"serde 1.0.1"` or `"serde"`: the name is the first word.
                let dep = line.trim_matches(|c| c == '"' || c == ',');
                if let Some(d) = dep.split_whitespace().next() {
                    deps.insert(d.to_string());
                }
            }
        }
        out.entry(name).or_default().extend(deps);
    }
    out
}

/// Every package `krate` reaches through `lock`, and for each the package that first named it
/// (to print the chain).
fn reachable(
    lock: &BTreeMap<String, BTreeSet<String>>,
    krate: &str,
) -> (BTreeSet<String>, BTreeMap<String, String>) {
    let mut seen = BTreeSet::new();
    let mut path: BTreeMap<String, String> = BTreeMap::new();
    let mut todo = vec![krate.to_string()];
    while let Some(at) = todo.pop() {
        for dep in lock.get(&at).into_iter().flatten() {
            if seen.insert(dep.clone()) {
                path.insert(dep.clone(), at.clone());
                todo.push(dep.clone());
            }
        }
    }
    (seen, path)
}

#[test]
fn the_product_library_reaches_no_dev_tooling() {
    let lock = locked_dependencies();
    assert!(
        lock.contains_key("veer-controller"),
        "veer-controller is in Cargo.lock"
    );
    let (seen, _) = reachable(&lock, "veer-controller");
    assert!(
        seen.contains("veer-core"),
        "the walk finds veer-controller's dependencies"
    );
    for tooling in ["veer-devcluster", "veer-demo"] {
        assert!(
            !seen.contains(tooling),
            "veer-controller (the product library) reaches {tooling}, which is tooling for \
             tests and the demo: move what both need into veer-model or veer-controller"
        );
    }
}

#[test]
fn the_pure_crates_reach_no_io_crate() {
    let lock = locked_dependencies();
    let mut found = Vec::new();
    for krate in PURE_CRATES {
        assert!(lock.contains_key(*krate), "{krate} is in Cargo.lock");
        let (seen, path) = reachable(&lock, krate);
        assert!(
            seen.contains("serde_json"),
            "the walk through Cargo.lock finds {krate}'s dependencies: {seen:?}"
        );
        for io in IO_CRATES {
            if seen.contains(*io) {
                let mut chain = vec![io.to_string()];
                while let Some(up) = path.get(chain.last().map(String::as_str).unwrap_or("")) {
                    chain.push(up.clone());
                    if up == krate {
                        break;
                    }
                }
                chain.reverse();
                found.push(format!("{krate} reaches {io}: {}", chain.join(" -> ")));
            }
        }
        // And the code names none (a path dependency would show above; this catches a
        // module moved in that still says `tokio::`).
        let mut files = Vec::new();
        rust_files(&root().join("crates").join(krate).join("src"), &mut files);
        for file in files {
            let code = code_of(&file);
            for io in IO_CRATES {
                let name = io.replace('-', "_");
                if code.contains(&format!("{name}::")) {
                    found.push(format!("{} names {name}", file.display()));
                }
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn no_source_file_grows_past_the_limit() {
    let mut files = Vec::new();
    for src in crate_sources() {
        rust_files(&src, &mut files);
    }
    // Tests and benches too: the root package's and each crate's.
    let mut extra = vec![root().join("tests"), root().join("benches")];
    for entry in std::fs::read_dir(root().join("crates")).expect("read crates/") {
        let dir = entry.expect("entry").path();
        extra.extend([dir.join("tests"), dir.join("benches")]);
    }
    for dir in extra.into_iter().filter(|d| d.is_dir()) {
        rust_files(&dir, &mut files);
    }
    let allowed: BTreeMap<&str, usize> = OVERSIZED.iter().copied().collect();
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(root())
            .expect("under the root")
            .to_string_lossy()
            .to_string();
        let lines = std::fs::read_to_string(&file)
            .expect("read a source file")
            .lines()
            .count();
        seen.push(relative.clone());
        match allowed.get(relative.as_str()) {
            Some(max) if lines > *max => problems.push(format!(
                "{relative}: {lines} lines, more than the {max} it had"
            )),
            Some(_) if lines <= MAX_LINES => problems.push(format!(
                "{relative}: {lines} lines, within the limit: take it off OVERSIZED"
            )),
            Some(_) => {}
            None if lines > MAX_LINES => problems.push(format!(
                "{relative}: {lines} lines, more than {MAX_LINES}: split it by concern"
            )),
            None => {}
        }
    }
    for (file, _) in OVERSIZED {
        if !seen.iter().any(|s| s == file) {
            problems.push(format!("{file}: listed in OVERSIZED but gone: take it off"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The `fn` signatures in a piece of code, each from `fn` to its body or `;`, on one line.
fn signatures(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut at = 0;
    while let Some(i) = code[at..].find("fn ") {
        let start = at + i;
        at = start + 3;
        let keyword =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let named = code[at..]
            .trim_start()
            .starts_with(|c: char| c.is_alphabetic() || c == '_');
        if !(keyword && named) {
            continue;
        }
        // The body or `;` outside the parameter list ends it (`where` clauses included).
        let mut depth = 0i32;
        let mut end = code.len();
        for (j, c) in code[start..].char_indices() {
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                '{' | ';' if depth <= 0 => {
                    end = start + j;
                    break;
                }
                _ => {}
            }
        }
        out.push(
            code[start..end]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    out
}

/// Does a signature name a `Result<…, String>` (the error type, its last argument, is a bare
/// `String`)?
fn has_string_error(signature: &str) -> bool {
    let mut rest = signature;
    while let Some(i) = rest.find("Result<") {
        let preceded = rest[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        rest = &rest[i + "Result<".len()..];
        if preceded {
            continue;
        }
        // The arguments up to the matching `>`, split at their own level (`->` inside an
        // `Fn(…) -> T` argument is not a bracket).
        let mut depth = 0;
        let mut last = String::new();
        let mut arguments = 1;
        let mut prev = ' ';
        for c in rest.chars() {
            match c {
                '<' | '(' | '[' => depth += 1,
                '>' if prev == '-' => {}
                '>' | ')' | ']' if depth > 0 => depth -= 1,
                '>' => break,
                ',' if depth == 0 => {
                    arguments += 1;
                    last.clear();
                    prev = c;
                    continue;
                }
                _ => {}
            }
            last.push(c);
            prev = c;
        }
        if arguments == 2 && last.trim() == "String" {
            return true;
        }
    }
    false
}

#[test]
fn no_string_errors_in_signatures() {
    let mut files = Vec::new();
    for src in crate_sources() {
        rust_files(&src, &mut files);
    }
    assert!(files.len() > 100, "the sources were found");
    let mut found = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(root())
            .expect("under the root")
            .display()
            .to_string();
        for signature in signatures(&code_of(&file)) {
            if has_string_error(&signature) {
                found.push(format!("{relative}: {signature}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "functions with a `String` error: give each a typed error (a `thiserror` enum per \
         module or concern, its variants naming the object and what to do):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_string_error_check_reads_signatures_as_written() {
    let code = "pub fn a(x: u8) -> Result<(), String> {}\n\
                fn b(\n    q: &HashMap<String, String>,\n) -> Result<Vec<String>, ApiError> {}\n\
                fn c<'a>(\n    v: &'a str,\n) -> BoxFuture<'a, Result<Option<(u8, String)>, String>>;\n\
                fn d(f: impl Fn(u8) -> Result<u8, String>) {}\n\
                let g = |x| x; fn e() -> io::Result<String> {}\n\
                fn f() -> MyResult<u8, String> {}";
    let flagged: Vec<String> = signatures(code)
        .into_iter()
        .filter(|s| has_string_error(s))
        .collect();
    assert_eq!(
        flagged,
        [
            "fn a(x: u8) -> Result<(), String>",
            "fn c<'a>( v: &'a str, ) -> BoxFuture<'a, Result<Option<(u8, String)>, String>>",
            "fn d(f: impl Fn(u8) -> Result<u8, String>)",
        ]
    );
}

#[test]
fn the_checks_read_imports_as_rust_does() {
    let names = named_modules(
        "use crate::{diff::{self, Plan}, manifest::ObjectKey};\nlet x = crate::sync::writes(a);",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["diff", "manifest", "sync"]
    );
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["a".to_string()])),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        cycle_from(&graph, "a"),
        Some(vec!["a".into(), "b".into(), "a".into()])
    );
}
