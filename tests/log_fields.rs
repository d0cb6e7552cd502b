//! JSON log lines carry each key once: the event's text is the `message` field, so no log
//! macro in veer may add a field of that name too (`warn!(%message, "…")` printed `message`
//! twice, and log pipelines keep only one of them). Checked over the sources, since any of
//! hundreds of log lines could reintroduce it.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The argument text of each `info!(…);`-style call in `text`, with its line.
fn log_calls(text: &str) -> Vec<(usize, String)> {
    let mut calls = Vec::new();
    for level in ["trace!(", "debug!(", "info!(", "warn!(", "error!("] {
        let mut from = 0;
        while let Some(at) = text[from..].find(level) {
            let start = from + at + level.len();
            let preceded_by_ident = text[..from + at]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            // The call ends at the parenthesis that closes it.
            let mut depth = 1;
            let mut end = start;
            for (i, c) in text[start..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = start + i;
                    break;
                }
            }
            if !preceded_by_ident {
                let line = text[..start].matches('\n').count() + 1;
                calls.push((line, text[start..end].to_string()));
            }
            from = start;
        }
    }
    calls
}

/// Does a call's argument list name a field `message` (`message = …`, `%message`, `?message`
/// or a bare `message,`)? String literals are left out first.
fn names_message_field(args: &str) -> bool {
    let mut code = String::new();
    let mut in_string = false;
    let mut escaped = false;
    for c in args.chars() {
        match (in_string, escaped, c) {
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_string = false,
            (true, _, _) => escaped = false,
            (false, _, '"') => in_string = true,
            (false, _, c) => code.push(c),
        }
    }
    code.split(',').any(|part| {
        let part = part.trim();
        let field = part.split('=').next().unwrap_or("").trim();
        field == "message"
            || part == "%message"
            || part == "?message"
            || part == "message"
            || part.starts_with("%message.")
            || part.starts_with("?message.")
    })
}

#[test]
fn no_log_line_adds_a_second_message_field() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    // The workspace's other crates log too (or may one day).
    rust_files(&root.join("crates"), &mut files);
    assert!(files.len() > 50, "src/ was found");
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for (line, args) in log_calls(&text) {
            if names_message_field(&args) {
                found.push(format!("{}:{line}: {args}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "log calls with a field named `message` (rename it, e.g. `error` or `reason`):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_each_form() {
    assert!(names_message_field(r#"%message, "reconcile failed""#));
    assert!(names_message_field(
        r#"rollout = %id, message = %r.message, "x""#
    ));
    assert!(!names_message_field(
        r#"error = %message, "the message, said""#
    ));
    assert!(!names_message_field(r#""{message}""#));
    let calls = log_calls("fn f() { warn!(a = 1, \"x (y)\"); my_warn!(message = 1); }");
    assert_eq!(calls.len(), 1);
}
