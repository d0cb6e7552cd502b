//! kubectl's reading of a `:` that ends a plain scalar inside a flow collection.
//!
//! kubectl reads YAML with go-yaml (through sigs.k8s.io/yaml), whose scanner keeps a `:` in a
//! plain scalar unless a blank follows it, in flow collections too: `[001:db8::]` is the list
//! `["001:db8::"]` and `{k: a:}` maps `k` to `"a:"`. YAML 1.2, which serde-saphyr follows, ends
//! the scalar at a `:` followed by `,`, `]` or `}` and reads that `:` as a value indicator:
//! `[001:db8::]` becomes `[{"001:db8:": null}]` and `{k: a:}` is a syntax error.
//!
//! So before parsing, each such plain scalar is rewritten single-quoted with its `:` (a scalar
//! ending in `:` is a string for go-yaml, never a number, boolean or null, so quoting keeps its
//! meaning), and [`ColumnMap`] maps the rewritten text's columns back to the file's. The places
//! are found with the scanner serde-saphyr itself uses, so quoted scalars, comments and block
//! scalars are never mistaken for flow content.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_saphyr::granit_parser::{self, ScalarStyle, Scanner, StrInput, TokenType};

/// Where quoting moved columns of the rewritten text: per line, the rewritten scalars in
/// order, so a column after them maps back to where the file has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ColumnMap {
    by_line: BTreeMap<u32, Vec<Edit>>,
}

/// One quoted scalar, in 1-based columns: where it starts and ends (exclusive) in the rewritten
/// text, where it starts in the file, and how many characters quoting added on its line up to
/// its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Edit {
    new_start: u32,
    new_end: u32,
    start: u32,
    shift: u32,
}

impl ColumnMap {
    /// The file's column for `column` (1-based) of the rewritten text on `line`. A binary
    /// search: a line may hold thousands of quoted scalars.
    pub(crate) fn original(&self, line: u32, column: u32) -> u32 {
        let Some(edits) = self.by_line.get(&line) else {
            return column;
        };
        let before = edits.partition_point(|e| e.new_start <= column);
        match before.checked_sub(1).map(|i| edits[i]) {
            None => column,
            Some(e) if column < e.new_end => e.start,
            Some(e) => column - e.shift,
        }
    }

    /// Record a scalar quoted at file column `start`, `len` characters long, grown by `added`.
    fn push(&mut self, line: u32, start: u32, len: u32, added: u32) {
        let edits = self.by_line.entry(line).or_default();
        let shift_before = edits.last().map_or(0, |e| e.shift);
        let new_start = start + shift_before;
        edits.push(Edit {
            new_start,
            new_end: new_start + len + added,
            start,
            shift: shift_before + added,
        });
    }
}

/// A plain scalar go-yaml would read with a trailing `:`: byte range in the file (the `:`
/// included), and its line and first column (1-based).
struct Site {
    start: usize,
    end: usize,
    line: u32,
    column: u32,
}

/// `text` with every plain scalar that go-yaml reads with a trailing `:` single-quoted, and the
/// map back to the file's columns. Borrowed unchanged when there is none (nearly always).
pub(crate) fn rewrite(text: &str) -> (Cow<'_, str>, ColumnMap) {
    let mut columns = ColumnMap::default();
    // Cheap test first: every site has a `:` directly followed by `,`, `]` or `}`.
    let candidate = text
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b':' && matches!(w[1], b',' | b']' | b'}'));
    if !candidate {
        return (Cow::Borrowed(text), columns);
    }
    let sites = sites(text);
    if sites.is_empty() {
        return (Cow::Borrowed(text), columns);
    }
    let mut out = String::with_capacity(text.len() + 4 * sites.len());
    let mut copied = 0;
    for site in sites {
        let scalar = &text[site.start..site.end];
        out.push_str(&text[copied..site.start]);
        out.push('\'');
        out.push_str(&scalar.replace('\'', "''"));
        out.push('\'');
        copied = site.end;
        let quotes = scalar.matches('\'').count() as u32;
        columns.push(
            site.line,
            site.column,
            scalar.chars().count() as u32,
            2 + quotes,
        );
    }
    out.push_str(&text[copied..]);
    (Cow::Owned(out), columns)
}

/// Plain scalars directly followed (blanks aside, on the same line) by a `:` that YAML 1.2
/// reads as a value indicator only because `,`, `]` or `}` follows it.
fn sites(text: &str) -> Vec<Site> {
    let options = granit_parser::options! { emit_comments: false };
    let scanner = Scanner::with_options(StrInput::new(text), options);
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    // The last token, when it was a plain scalar: its byte range, line and column.
    let mut plain: Option<(usize, usize, usize, usize)> = None;
    for token in scanner {
        // On a scanning error the parse proper reports it; what was found so far stands.
        let Ok(token) = token else { break };
        let span = token.span();
        match token.token_type() {
            TokenType::Scalar(ScalarStyle::Plain, _) => {
                plain = match (span.start.byte_offset(), span.end.byte_offset()) {
                    (Some(s), Some(e)) => Some((s, e, span.start.line(), span.start.col())),
                    _ => None,
                };
                continue;
            }
            TokenType::Value => {
                if let (Some((start, end, line, col)), Some(colon)) =
                    (plain, span.start.byte_offset())
                    && span.start.line() == line
                    && bytes.get(colon) == Some(&b':')
                    && matches!(bytes.get(colon + 1), Some(b',' | b']' | b'}'))
                    && bytes
                        .get(end..colon)
                        .is_some_and(|gap| gap.iter().all(|b| matches!(b, b' ' | b'\t')))
                {
                    found.push(Site {
                        start,
                        end: colon + 1,
                        line: line as u32,
                        column: col as u32 + 1,
                    });
                }
            }
            // Zero-width tokens (an implicit `Key`, or the `FlowMappingStart` of a pair inside a
            // flow sequence, `[k: a:]`) stand for no text: the scalar still precedes the `:`.
            _ if span.start.byte_offset() == span.end.byte_offset() => continue,
            _ => {}
        }
        plain = None;
    }
    found
}
