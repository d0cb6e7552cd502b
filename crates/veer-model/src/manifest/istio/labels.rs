//! [`Labels`]: a small string map for the typed Istio objects' label maps and selectors.
//!
//! A `BTreeMap<String, String>` allocates a whole B-tree node (about 550 bytes) even for one
//! entry, and a revision keeps every typed object it holds: two one-label subsets in each of
//! thousands of DestinationRules add up to megabytes. These maps hold a few entries and are
//! read, never edited, so a sorted boxed slice is enough. Read and written exactly as the
//! `BTreeMap` was: a mapping, entries in key order, a repeated key keeping its last value.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Index;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A string-to-string map, sorted by key, each key once.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Box<[(String, String)]>);

impl Labels {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The value of `key`, found by binary search (the entries are sorted).
    pub fn get(&self, key: &str) -> Option<&String> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The entries in key order, as `BTreeMap::iter` gives them.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.0.iter())
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(_, v)| v)
    }
}

/// Entries of [`Labels`] in key order.
#[derive(Clone)]
pub struct Iter<'a>(std::slice::Iter<'a, (String, String)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a String, &'a String);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a String, &'a String);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Panics when `key` is absent, as `BTreeMap`'s `Index` does.
impl Index<&str> for Labels {
    type Output = String;

    fn index(&self, key: &str) -> &String {
        match self.get(key) {
            Some(value) => value,
            None => panic!("no label `{key}`"),
        }
    }
}

/// Sorted by key; of a repeated key the last value is kept, as `BTreeMap::insert` would.
impl FromIterator<(String, String)> for Labels {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut entries: Vec<(String, String)> = iter.into_iter().collect();
        // Stable: equal keys stay in arrival order, so the last of each run is the last given.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(String, String)> = Vec::with_capacity(entries.len());
        for entry in entries {
            match kept.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => kept.push(entry),
            }
        }
        Self(kept.into_boxed_slice())
    }
}

impl From<BTreeMap<String, String>> for Labels {
    fn from(map: BTreeMap<String, String>) -> Self {
        // Already sorted and unique.
        Self(map.into_iter().collect())
    }
}

impl<const N: usize> From<[(String, String); N]> for Labels {
    fn from(entries: [(String, String); N]) -> Self {
        entries.into_iter().collect()
    }
}

/// Printed as a map, like the `BTreeMap` was.
impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(LabelsVisitor)
    }
}

struct LabelsVisitor;

impl<'de> Visitor<'de> for LabelsVisitor {
    type Value = Labels;

    // The words serde's `BTreeMap` visitor uses, so type errors read the same.
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Labels, A::Error> {
        // Same calls in the same order as the `BTreeMap` visitor: key, then value, each entry.
        let mut entries = Vec::with_capacity(access.size_hint().unwrap_or(0).min(64));
        while let Some(key) = access.next_key::<String>()? {
            let value = access.next_value::<String>()?;
            entries.push((key, value));
        }
        Ok(entries.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(yaml_json: serde_json::Value) -> Result<Labels, String> {
        serde_json::from_value(yaml_json).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_and_writes_like_a_btreemap() {
        let value = serde_json::json!({"version": "v1", "app": "reviews", "tier": "web"});
        let ours = labels(value.clone()).unwrap();
        let theirs: BTreeMap<String, String> = serde_json::from_value(value).unwrap();
        assert_eq!(ours, Labels::from(theirs.clone()));
        assert!(ours.iter().eq(theirs.iter()));
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&theirs).unwrap()
        );
        assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
        assert_eq!((ours.len(), ours["version"].as_str()), (3, "v1"));
        assert!(ours.contains_key("app") && !ours.contains_key("zone"));
        assert_eq!(ours.get("nope"), None);
        assert!(Labels::default().is_empty());
    }

    #[test]
    fn type_errors_read_as_the_btreemap_s() {
        for bad in [
            serde_json::json!("reviews"),
            serde_json::json!(["a"]),
            serde_json::json!({"version": 1}),
            serde_json::json!({"version": null}),
        ] {
            let theirs = serde_json::from_value::<BTreeMap<String, String>>(bad.clone());
            assert_eq!(labels(bad).unwrap_err(), theirs.unwrap_err().to_string());
        }
    }

    #[test]
    fn a_bad_value_is_reported_at_the_same_path() {
        #[derive(Deserialize)]
        struct Ours {
            #[allow(dead_code)]
            labels: Labels,
        }
        #[derive(Deserialize)]
        struct Theirs {
            #[allow(dead_code)]
            labels: BTreeMap<String, String>,
        }
        let bad = serde_json::json!({"labels": {"app": "x", "version": 1}});
        let ours = serde_path_to_error::deserialize::<_, Ours>(&bad)
            .err()
            .unwrap();
        let theirs = serde_path_to_error::deserialize::<_, Theirs>(&bad)
            .err()
            .unwrap();
        assert_eq!(ours.path().to_string(), "labels.version");
        assert_eq!(ours.to_string(), theirs.to_string());
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_as_the_btreemap_does() {
        let yaml = "b: 1\na: x\nb: 2\n";
        let options = serde_saphyr::options! {
            duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
        };
        let ours: Labels = serde_saphyr::from_str_with_options(yaml, options.clone()).unwrap();
        let theirs: BTreeMap<String, String> =
            serde_saphyr::from_str_with_options(yaml, options).unwrap();
        assert_eq!(ours, Labels::from(theirs));
        assert_eq!(ours["b"], "2");
        // By default serde-saphyr refuses the repeat before either map sees it.
        let ours = serde_saphyr::from_str::<Labels>(yaml)
            .unwrap_err()
            .to_string();
        let theirs = serde_saphyr::from_str::<BTreeMap<String, String>>(yaml);
        assert_eq!(ours, theirs.unwrap_err().to_string());
    }

    #[test]
    fn built_from_entries_sorted_last_wins() {
        let built: Labels = [("b", "1"), ("a", "x"), ("b", "2")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let pairs: Vec<_> = built
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(pairs, [("a", "x"), ("b", "2")]);
    }
}
