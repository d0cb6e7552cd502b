//! Table tests: YAML as kubectl reads it. Each expected value is what `kubectl apply` sends
//! (go-yaml v2 through sigs.k8s.io/yaml, then the API machinery's JSON decoding), written as
//! JSON; the comment says where veer's parser, left to YAML 1.2, read it otherwise.

use serde_json::{Value, json};

use super::parse_documents;

fn read(yaml: &str) -> Value {
    match parse_documents(yaml) {
        Ok(docs) => docs[0].value.clone(),
        Err(e) => panic!("{yaml:?}: {e:?}"),
    }
}

#[test]
fn colons_in_plain_scalars_of_flow_collections() {
    let table: &[(&str, Value)] = &[
        // YAML 1.2 read these as {"001:db8:": null}: go-yaml keeps a `:` not followed by a blank.
        ("a: [001:db8::]", json!({"a": ["001:db8::"]})),
        (
            "a: [2001:db8::, fe80::]",
            json!({"a": ["2001:db8::", "fe80::"]}),
        ),
        ("a: [a:]", json!({"a": ["a:"]})),
        ("a: [a:, b]", json!({"a": ["a:", "b"]})),
        ("a: [x: 1, a:]", json!({"a": [{"x": 1}, "a:"]})),
        ("a: [a :]", json!({"a": ["a :"]})),
        ("a: [a:b:]", json!({"a": ["a:b:"]})),
        ("a: [it's:]", json!({"a": ["it's:"]})),
        ("a: {a:}", json!({"a": {"a:": null}})),
        ("a: {a:, b: 1}", json!({"a": {"a:": null, "b": 1}})),
        ("a: [{a:}]", json!({"a": [{"a:": null}]})),
        // YAML 1.2 refused these (a value may not end in `:` there).
        ("a: {k: a:}", json!({"a": {"k": "a:"}})),
        (
            "a: {k: 001:db8::, j: x}",
            json!({"a": {"k": "001:db8::", "j": "x"}}),
        ),
        ("a: [k: a:]", json!({"a": [{"k": "a:"}]})),
        // Both read these alike.
        ("a: [a:b]", json!({"a": ["a:b"]})),
        ("a: {k: a:b}", json!({"a": {"k": "a:b"}})),
        ("a: [a: b]", json!({"a": [{"a": "b"}]})),
        ("a: [a:b: c]", json!({"a": [{"a:b": "c"}]})),
        (
            "a: [fe80::1, 10.0.0.0/8]",
            json!({"a": ["fe80::1", "10.0.0.0/8"]}),
        ),
        ("a: [http://x:80/]", json!({"a": ["http://x:80/"]})),
        ("a: [\"a\":]", json!({"a": [{"a": null}]})),
        ("a: ['a:']", json!({"a": ["a:"]})),
        ("a: |\n  [a:]\n", json!({"a": "[a:]\n"})),
        ("a: b:] # [c:]\n", json!({"a": "b:]"})),
        ("a: x [a:]", json!({"a": "x [a:]"})),
    ];
    for (yaml, want) in table {
        assert_eq!(&read(yaml), want, "{yaml}");
    }
}

#[test]
fn quoting_keeps_the_file_columns() {
    let docs = parse_documents("a: [001:db8::, b:, c]\nd: {k: e:, l: f}\n").unwrap();
    let p = &docs[0].positions;
    assert_eq!(p.get("/a/0").map(|l| (l.line, l.column)), Some((1, 5)));
    assert_eq!(p.get("/a/1").map(|l| (l.line, l.column)), Some((1, 16)));
    assert_eq!(p.get("/a/2").map(|l| (l.line, l.column)), Some((1, 20)));
    assert_eq!(p.get("/d/k").map(|l| (l.line, l.column)), Some((2, 5)));
    assert_eq!(p.get("/d/l").map(|l| (l.line, l.column)), Some((2, 12)));
    // A syntax error after a quoted scalar is reported at the file's column.
    let err = parse_documents("a: [b:, {c: d]\n").unwrap_err();
    assert_eq!(err.location.line, 1, "{err:?}");
    assert!(err.location.column <= 15, "{err:?}");
}

#[test]
fn scalars_resolve_like_go_yaml_v2() {
    let table: &[(&str, Value)] = &[
        // YAML 1.1 booleans and nulls.
        ("a: yes", json!({"a": true})),
        ("a: On", json!({"a": true})),
        ("a: y", json!({"a": true})),
        ("a: NO", json!({"a": false})),
        ("a: off", json!({"a": false})),
        ("a: ~", json!({"a": null})),
        ("a: Null", json!({"a": null})),
        ("a: \"yes\"", json!({"a": "yes"})),
        // YAML 1.1 octal: a file mode of 0755 is 493 (YAML 1.2 read 755).
        ("a: 0755", json!({"a": 493})),
        ("a: -010", json!({"a": -8})),
        ("a: 0o17", json!({"a": 15})),
        ("a: 0x1F", json!({"a": 31})),
        ("a: 0b101", json!({"a": 5})),
        ("a: 1_000", json!({"a": 1000})),
        ("a: +12", json!({"a": 12})),
        ("a: 0", json!({"a": 0})),
        ("a: 08", json!({"a": 8})),
        ("a: 00", json!({"a": 0})),
        ("a: 0.1e1", json!({"a": 1})),
        // Floats without a fraction reach the API server as integers.
        ("a: 1e3", json!({"a": 1000})),
        ("a: 50.0", json!({"a": 50})),
        ("a: -0.0", json!({"a": 0})),
        ("a: 0.5", json!({"a": 0.5})),
        ("a: 1.5e3", json!({"a": 1500})),
        ("a: 1e20", json!({"a": 100000000000000000000.0})),
        // Timestamps and sexagesimal numbers stay strings.
        ("a: 2001-12-14", json!({"a": "2001-12-14"})),
        ("a: 1:20", json!({"a": "1:20"})),
        ("a: '0755'", json!({"a": "0755"})),
        // Keys that resolve to other types become their text.
        ("y: 1", json!({"true": 1})),
        ("1: a", json!({"1": "a"})),
    ];
    for (yaml, want) in table {
        assert_eq!(&read(yaml), want, "{yaml}");
    }
}

#[test]
fn a_line_of_many_such_scalars_costs_no_more_than_its_length() {
    // 1 MiB on one line, about 170,000 scalars to quote: each column lookup is a binary search.
    let n = 1024 * 1024 / 6;
    let text = format!("a: [{}x]\n", "ab:c:, ".repeat(n));
    let started = std::time::Instant::now();
    let result = parse_documents(&text);
    // Refused by the node budget or read: either way, promptly.
    if let Ok(docs) = &result {
        assert_eq!(docs[0].value["a"][1], "ab:c:");
        assert_eq!(docs[0].positions.get("/a/1").map(|l| l.column), Some(12));
    }
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
}
