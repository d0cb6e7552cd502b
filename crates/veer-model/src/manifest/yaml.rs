//! YAML reading with positions.
//!
//! Every document becomes a `serde_json::Value` (the form the rest of veer works with) plus a
//! [`Positions`] index from JSON pointer to line and column, so any later check can point at
//! the exact line of any field even after the value has lost its spans.
//!
//! Choices pinned by tests: YAML 1.1 booleans (`yes`, `on`) are booleans in untyped values, as
//! kubectl reads them; duplicate keys are an error; alias bombs, merge-key (`<<`) bombs and deep
//! nesting are refused by serde-saphyr's budget rather than expanded.
//!
//! The expansion budget: every node a file expands to counts, written or replayed through an
//! alias or a merge key ([`MAX_NODES`]); merge keys count like aliases, including those replayed
//! inside an alias ([`MAX_MERGE_KEYS`]); what anchors record for replay is bounded
//! ([`MAX_ANCHORED_EVENTS`]), which stops nested merges (each level merging the previous one
//! twice) long before their cost grows. Measured in a release build on the worst files found, a
//! refused file costs at most a few hundred milliseconds of CPU, like an alias bomb.

mod flow_colons;
#[cfg(test)]
mod kubectl_tests;
mod positions;

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;
use serde_saphyr::budget::BudgetBreach;

use flow_colons::ColumnMap;

/// Deepest nesting accepted in a manifest; real Kubernetes objects stay well under 30.
pub const MAX_DEPTH: usize = 64;
/// Most YAML nodes in one file; a 1 MiB manifest file has far fewer.
pub const MAX_NODES: usize = 250_000;
/// Most aliases in one file; manifests rarely use any.
pub const MAX_ALIASES: usize = 1_000;
/// Most merge keys (`<<`) in one file, counting those replayed through aliases: the same
/// budget as aliases. (serde-saphyr's default, 10,000, let a 1 KB file of nested merges cost
/// about a second of CPU before it was refused.)
pub const MAX_MERGE_KEYS: usize = MAX_ALIASES;
/// Most parser events that anchors may record for replay in one file. A real manifest anchors
/// a few small blocks; nested merge and alias bombs record exponentially many.
pub const MAX_ANCHORED_EVENTS: usize = 50_000;
/// Past this many aliases in a file, each anchor may be used at most [`MAX_USES_PER_ANCHOR`]
/// times on average (serde-saphyr's alias/anchor ratio, kept at its defaults).
pub const ALIAS_RATIO_FROM: usize = 100;
pub const MAX_USES_PER_ANCHOR: usize = 10;
/// Most YAML documents in one file (serde-saphyr's default, kept): split bigger files.
pub const MAX_DOCUMENTS: usize = 1_024;

pub use crate::diagnostic::Location;
pub use positions::Positions;
pub(crate) use positions::PositionsBuilder;

/// Escape one path segment for a JSON pointer.
pub fn pointer_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Join a parent pointer and a segment (field name or index).
pub fn pointer_join(parent: &str, segment: impl fmt::Display) -> String {
    format!("{parent}/{}", pointer_segment(&segment.to_string()))
}

/// One YAML document of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub value: Value,
    pub positions: Positions,
    /// Where the document's root node starts.
    pub start: Location,
}

/// Why a file could not be read as YAML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    pub message: String,
    pub location: Location,
}

/// Parse every document of `text`. Empty and null documents are skipped.
///
/// Scalars are read the way kubectl reads them (go-yaml through sigs.k8s.io/yaml): YAML 1.1
/// booleans and octal numbers (`0755` is 493), a `:` ending a plain scalar in a flow collection
/// kept in the scalar (`[001:db8::]` is a list of one string), and numbers as kubectl sends them
/// to the API server (a float with no fraction, `1e3` or `5.0`, is an integer).
pub fn parse_documents(text: &str) -> Result<Vec<Document>, YamlError> {
    Ok(read_documents(text)?
        .into_iter()
        .map(|(value, positions, start)| Document {
            value,
            positions: positions.build(),
            start,
        })
        .collect())
}

/// Every document of `text` with its positions as collected (not yet compact).
fn read_documents(text: &str) -> Result<Vec<(Value, PositionsBuilder, Location)>, YamlError> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            max_nodes: MAX_NODES,
            max_aliases: MAX_ALIASES,
            max_merge_keys: MAX_MERGE_KEYS,
            max_recorded_anchor_events: MAX_ANCHORED_EVENTS,
            max_documents: MAX_DOCUMENTS,
            alias_anchor_min_aliases: ALIAS_RATIO_FROM,
            alias_anchor_ratio_multiplier: MAX_USES_PER_ANCHOR,
            flow_nesting_limit: MAX_DEPTH,
        },
        legacy_octal_numbers: true,
    };
    let (text, columns) = flow_colons::rewrite(text);
    let nodes: Vec<Spanned<Node>> = serde_saphyr::from_multiple_with_options(&text, options)
        .map_err(|e| YamlError {
            message: describe_error(&e),
            location: e
                .location()
                .map(|l| {
                    let line = l.line() as u32;
                    Location::new(line, columns.original(line, l.column() as u32))
                })
                .unwrap_or_default(),
        })?;
    Ok(nodes
        .into_iter()
        .filter(|n| !matches!(n.value, Node::Null))
        .map(|root| {
            let start = loc_of(&root, &columns);
            let mut positions = PositionsBuilder::default();
            positions.insert(String::new(), start);
            let value = flatten(root.value, "", &mut positions, &columns);
            (value, positions, start)
        })
        .collect())
}

fn describe_error(e: &serde_saphyr::Error) -> String {
    if let Some(breach) = budget_breach(e) {
        return describe_breach(breach);
    }
    // The rendered form carries a source snippet; the first line is the message proper.
    let rendered = e.without_snippet().to_string();
    rendered
        .lines()
        .next()
        .unwrap_or("invalid YAML")
        .trim()
        .to_string()
}

/// The budget limit that stopped the parse, if one did (under any alias or snippet wrapping).
fn budget_breach(mut e: &serde_saphyr::Error) -> Option<&BudgetBreach> {
    loop {
        match e {
            serde_saphyr::Error::Budget { breach, .. } => return Some(breach),
            serde_saphyr::Error::AliasError { error, .. }
            | serde_saphyr::Error::WithSnippet { error, .. } => e = error,
            _ => return None,
        }
    }
}

/// Say which limit a file crossed, in the file's terms.
fn describe_breach(breach: &BudgetBreach) -> String {
    const BOMB: &str = "veer refuses alias and merge-key bombs";
    match breach {
        BudgetBreach::Documents { .. } => {
            format!("more than {MAX_DOCUMENTS} documents in one file; split the file")
        }
        BudgetBreach::Depth { .. } => {
            format!("nesting deeper than {MAX_DEPTH} levels; veer refuses deeper documents")
        }
        BudgetBreach::Nodes { .. } => format!(
            "the file expands to more than {MAX_NODES} YAML nodes (counting what aliases and merge keys repeat); {BOMB}"
        ),
        BudgetBreach::Aliases { .. } => {
            format!("more than {MAX_ALIASES} aliases (`*name`) in one file; {BOMB}")
        }
        BudgetBreach::AliasAnchorRatio { aliases, anchors } => format!(
            "{aliases} aliases (`*name`) for {anchors} anchors: past {ALIAS_RATIO_FROM} aliases, veer allows at most {MAX_USES_PER_ANCHOR} per anchor; {BOMB}"
        ),
        BudgetBreach::MergeKeys { .. } => format!(
            "more than {MAX_MERGE_KEYS} merge keys (`<<`) in one file, counting those repeated through aliases; {BOMB}"
        ),
        BudgetBreach::RecordedAnchorEvents { .. } | BudgetBreach::RecordedAnchorBytes { .. } => {
            format!(
                "anchors (`&name`) record more than {MAX_ANCHORED_EVENTS} YAML events for repetition; {BOMB}"
            )
        }
        other => format!("the file is over a YAML parsing limit ({other:?}); {BOMB}"),
    }
}

/// Where a node starts in the file (the rewritten text's columns mapped back).
fn loc_of<T>(s: &Spanned<T>, columns: &ColumnMap) -> Location {
    let line = s.referenced.line() as u32;
    Location::new(line, columns.original(line, s.referenced.column() as u32))
}

/// A YAML node with the spans of its children kept.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

/// The node as a `Value`, its positions (and its children's) recorded under `pointer`.
///
/// Maps and strings are sized to what they hold: a revision keeps every object's value for
/// as long as it is in force, and a map grown entry by entry keeps room for more (up to
/// twice what it holds, at over 100 bytes an entry).
fn flatten(
    node: Node,
    pointer: &str,
    positions: &mut PositionsBuilder,
    columns: &ColumnMap,
) -> Value {
    match node {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(b),
        Node::Number(n) => Value::Number(n),
        Node::String(s) => Value::String(sized(s)),
        Node::Seq(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    let p = pointer_join(pointer, i);
                    positions.insert(p.clone(), loc_of(&item, columns));
                    flatten(item.value, &p, positions, columns)
                })
                .collect(),
        ),
        Node::Map(entries) => {
            let mut map = Map::with_capacity(entries.len());
            for (key, value) in entries {
                let p = pointer_join(pointer, &key.value);
                positions.insert(p.clone(), loc_of(&key, columns));
                let v = flatten(value.value, &p, positions, columns);
                map.insert(sized(key.value), v);
            }
            Value::Object(map)
        }
    }
}

/// `s` without spare capacity (the parser may hand over a string it grew).
fn sized(mut s: String) -> String {
    s.shrink_to_fit();
    s
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

/// Each nesting level costs tens of KiB of stack in a debug build; moving deep levels onto a
/// heap-allocated stack keeps the budget's depth limit, not the thread's stack, the one that
/// decides.
fn grow<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(256 * 1024, 4 * 1024 * 1024, f)
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        // Past i64, kubectl's JSON decoding (int64 or else float64) makes it a float.
        Ok(Node::Number(match i64::try_from(v) {
            Ok(i) => i.into(),
            Err(_) => Number::from_f64(v as f64).unwrap_or_else(|| v.into()),
        }))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        i64::try_from(v)
            .map(|n| Node::Number(n.into()))
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        u64::try_from(v)
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
            .and_then(|n| self.visit_u64(n))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        // kubectl writes a float64 with no fraction without a decimal point (`1e3` → `1000`)
        // and the API server's JSON decoding reads that back as an int64, so `weight: 50.0`
        // reaches Istio as 50. Read it the same way. (Past i64 it stays a float there too.)
        const I64_RANGE: f64 = -(i64::MIN as f64);
        if v.fract() == 0.0 && (-I64_RANGE..I64_RANGE).contains(&v) {
            return Ok(Node::Number((v as i64).into()));
        }
        Number::from_f64(v)
            .map(Node::Number)
            .ok_or_else(|| E::custom("NaN and infinity are not valid in a manifest"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::String(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
        String::from_utf8(v.to_vec())
            .map(Node::String)
            .map_err(|_| E::custom("binary values are not valid in a manifest"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = grow(|| seq.next_element::<Spanned<Node>>())? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = grow(|| map.next_key::<Spanned<Node>>())? {
            let name = match key.value {
                Node::String(s) => s,
                Node::Bool(b) => b.to_string(),
                Node::Number(n) => n.to_string(),
                Node::Null => "null".to_string(),
                Node::Seq(_) | Node::Map(_) => {
                    return Err(de::Error::custom(
                        "mapping keys must be scalars in a Kubernetes manifest",
                    ));
                }
            };
            let value = grow(|| map.next_value::<Spanned<Node>>())?;
            entries.push((
                Spanned {
                    value: name,
                    referenced: key.referenced,
                    defined: key.defined,
                },
                value,
            ));
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_point_at_keys_and_items() {
        let docs = parse_documents(
            "apiVersion: v1\nkind: X\nspec:\n  http:\n  - route:\n    - weight: 90\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 1);
        let p = &docs[0].positions;
        assert_eq!(p.get("/kind"), Some(Location::new(2, 1)));
        assert_eq!(p.get("/spec/http/0").map(|l| l.line), Some(5));
        assert_eq!(
            p.get("/spec/http/0/route/0/weight"),
            Some(Location::new(6, 7))
        );
        // Unknown pointer falls back to the nearest ancestor.
        assert_eq!(p.locate("/spec/http/0/route/0/weight/zzz").line, 6);
    }

    #[test]
    fn multi_document_skips_empty_and_keeps_start_lines() {
        let docs = parse_documents("---\na: 1\n---\n---\n# only a comment\n---\nb: 2\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].start.line, 2);
        assert_eq!(docs[1].start.line, 7);
    }

    #[test]
    fn yaml_1_1_booleans_read_like_kubectl() {
        let docs = parse_documents("a: yes\nb: on\nc: \"yes\"\n").unwrap();
        assert_eq!(docs[0].value["a"], Value::Bool(true));
        assert_eq!(docs[0].value["b"], Value::Bool(true));
        assert_eq!(docs[0].value["c"], Value::String("yes".into()));
    }

    #[test]
    fn duplicate_keys_are_an_error_with_a_line() {
        let err = parse_documents("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.location.line, 3, "{err:?}");
        assert!(err.message.to_lowercase().contains("duplicate"), "{err:?}");
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse_documents(&text).unwrap_err();
        assert!(err.message.contains("alias and merge-key bombs"), "{err:?}");
    }

    /// Each level merges the previous one twice: a few lines, 2^n merges if expanded.
    fn nested_merges(levels: usize) -> String {
        let mut text = String::from("a0: &a0 {k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, k5: 5}\n");
        for i in 1..levels {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} {{<<: [*a{p}, *a{p}], x{i}: 1}}\n"));
        }
        text
    }

    #[test]
    fn merge_key_bomb_is_refused_by_the_merge_budget() {
        let text = nested_merges(20);
        assert!(text.len() < 1024, "{} bytes", text.len());
        let err = parse_documents(&text).unwrap_err();
        assert!(
            err.message.contains("merge keys (`<<`)")
                || err.message.contains("anchors (`&name`) record"),
            "{err:?}"
        );
        assert!(err.message.contains("merge-key bombs"), "{err:?}");
        assert!(err.location.line > 1, "{err:?}");
    }

    #[test]
    fn wide_merge_bomb_is_refused_by_the_anchor_budget() {
        // Each level doubles what its anchor records: refused once the records grow, not
        // after expanding hundreds of thousands of nodes.
        let keys: Vec<String> = (0..200).map(|j| format!("k{j}: {j}")).collect();
        let mut text = format!("a0: &a0 {{{}}}\n", keys.join(", "));
        for i in 1..20 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} {{<<: [*a{p}, *a{p}]}}\n"));
        }
        let err = parse_documents(&text).unwrap_err();
        assert!(
            err.message.starts_with("anchors (`&name`) record"),
            "{err:?}"
        );
    }

    #[test]
    fn ordinary_merge_keys_are_expanded() {
        let docs = parse_documents(
            "base: &base {app: reviews, tier: backend}\nlabels:\n  <<: *base\n  tier: web\n",
        )
        .unwrap();
        assert_eq!(docs[0].value["labels"]["app"], "reviews");
        assert_eq!(docs[0].value["labels"]["tier"], "web");
        // Up to the budget, merges are fine.
        let mut text = String::new();
        for i in 0..MAX_MERGE_KEYS {
            text.push_str(&format!("b{i}: &b{i} {{a: 1}}\nm{i}: {{<<: *b{i}}}\n"));
        }
        if let Err(e) = parse_documents(&text) {
            panic!("{MAX_MERGE_KEYS} merges refused: {e:?}");
        }
        text.push_str("over: {<<: *b0}\n");
        let err = parse_documents(&text).unwrap_err();
        assert!(
            err.message
                .starts_with(&format!("more than {MAX_MERGE_KEYS} merge keys")),
            "{err:?}"
        );
    }

    #[test]
    fn too_many_documents_says_so() {
        let doc = "---\na: 1\n";
        assert!(parse_documents(&doc.repeat(MAX_DOCUMENTS)).is_ok());
        let err = parse_documents(&doc.repeat(MAX_DOCUMENTS + 1)).unwrap_err();
        assert_eq!(
            err.message,
            format!("more than {MAX_DOCUMENTS} documents in one file; split the file")
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse_documents(&text).is_err());
        let text = (0..200)
            .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
            .collect::<String>();
        assert!(parse_documents(&text).is_err());
    }

    #[test]
    fn syntax_error_has_a_line() {
        let err = parse_documents("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(err.location.line >= 2, "{err:?}");
    }
}
