//! `Labels`: a label or annotation set, sorted by name, stored compactly.
//!
//! Every open incident holds at least three of these (its own labels, its
//! first alert's labels and annotations), and issue 8 asks for 100,000 open
//! incidents in under 1 GB. A `BTreeMap<String, String>` of five labels is
//! a 540-byte leaf node plus ten string allocations, about 860 bytes with
//! malloc's rounding; this is two allocations, the names and values back
//! to back in one string and their end offsets in one slice, about 150
//! bytes for the same set. Building one from parsed JSON is also two
//! allocations instead of eleven.
//!
//! The set is immutable in shape: lookups are a binary search over the
//! names, and the rare edit (`insert`, `extend`) rebuilds it. Iteration is
//! in name order (byte order, as `BTreeMap` had it), which the fingerprint
//! relies on; serde writes and reads it as a map, so its JSON and its
//! postcard encoding (the snapshots) are byte for byte what the
//! `BTreeMap` wrote, and snapshots stored before this type read back.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A sorted set of (name, value) pairs, names unique.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels {
    /// Every name then its value, pair after pair, in name order.
    text: Box<str>,
    /// `ends[2i]` is where pair i's name ends, `ends[2i + 1]` where its
    /// value ends (byte offsets into `text`); pair i starts where pair
    /// i - 1's value ends.
    ends: Box<[u32]>,
}

impl Labels {
    pub fn new() -> Self {
        Labels::default()
    }

    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn start_of(&self, pair: usize) -> usize {
        if pair == 0 {
            0
        } else {
            self.ends[2 * pair - 1] as usize
        }
    }

    fn name_at(&self, pair: usize) -> &str {
        &self.text[self.start_of(pair)..self.ends[2 * pair] as usize]
    }

    fn pair_at(&self, pair: usize) -> (&str, &str) {
        let name_end = self.ends[2 * pair] as usize;
        (
            &self.text[self.start_of(pair)..name_end],
            &self.text[name_end..self.ends[2 * pair + 1] as usize],
        )
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.name_at(mid).cmp(name) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_key_value(name).map(|(_, v)| v)
    }

    pub fn get_key_value(&self, name: &str) -> Option<(&str, &str)> {
        self.position(name).ok().map(|i| self.pair_at(i))
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// The pairs in name order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            labels: self,
            front: 0,
            back: self.len(),
        }
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// Sets `name` to `value`; returns the value it replaces. Rebuilds the
    /// set: for the odd edit, not for building one pair by pair from input
    /// (collect an iterator, or deserialize, for that).
    pub fn insert(&mut self, name: String, value: String) -> Option<String> {
        let old = self.get(&name).map(str::to_owned);
        let pairs = self
            .iter()
            .filter(|(k, _)| *k != name)
            .chain(std::iter::once((name.as_str(), value.as_str())));
        *self = Builder::from_pairs(pairs).finish();
        old
    }

    pub fn clear(&mut self) {
        *self = Labels::new();
    }
}

/// Bytes reserved a label pair ahead: a name and a value such as
/// `alertname` and `HighLatency`, with room.
const PAIR_BYTES: usize = 24;

/// Pairs reserved ahead when the input does not say how many (a JSON
/// object): Prometheus' alerts carry five to ten labels.
const USUAL_PAIRS: usize = 8;

/// Collects pairs into their sorted, unique form: pairs are appended as
/// they come, then ordered by name once (a no-op check when they came
/// sorted, as they do from lim's own JSON); of a name given twice the last
/// value wins, as with `BTreeMap::insert`.
struct Builder {
    text: String,
    /// (start, name end, value end) of each pair in `text`, input order.
    spans: Vec<(usize, usize, usize)>,
}

impl Builder {
    /// Room for `pairs` pairs of about [`PAIR_BYTES`] each, so a usual set
    /// is built without growing (a set grown from empty reallocated its
    /// text five times: 1 % of lim's samples under the mixed ingest load);
    /// `finish` shrinks it to size.
    fn with_capacity(pairs: usize) -> Self {
        Builder {
            text: String::with_capacity(pairs * PAIR_BYTES),
            spans: Vec::with_capacity(pairs),
        }
    }

    fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let pairs = pairs.into_iter();
        let mut b = Builder::with_capacity(pairs.size_hint().0);
        for (k, v) in pairs {
            b.push(k.as_ref(), v.as_ref());
        }
        b
    }

    fn push(&mut self, name: &str, value: &str) {
        let start = self.text.len();
        self.text.push_str(name);
        let name_end = self.text.len();
        self.text.push_str(value);
        self.spans.push((start, name_end, self.text.len()));
    }

    fn name(&self, span: (usize, usize, usize)) -> &str {
        &self.text[span.0..span.1]
    }

    fn finish(mut self) -> Labels {
        let sorted_unique = self
            .spans
            .windows(2)
            .all(|w| self.name(w[0]) < self.name(w[1]));
        if !sorted_unique {
            // Stable, so of equal names the later stays later; keep it.
            let text = &self.text;
            self.spans
                .sort_by(|a, b| text[a.0..a.1].cmp(&text[b.0..b.1]));
            let mut unique: Vec<(usize, usize, usize)> = Vec::with_capacity(self.spans.len());
            for span in self.spans.drain(..) {
                match unique.last_mut() {
                    Some(last) if text[last.0..last.1] == text[span.0..span.1] => *last = span,
                    _ => unique.push(span),
                }
            }
            let mut text = String::with_capacity(self.text.len());
            let mut ends = Vec::with_capacity(unique.len() * 2);
            for (start, name_end, value_end) in unique {
                text.push_str(&self.text[start..value_end]);
                ends.push(offset(text.len() - (value_end - name_end)));
                ends.push(offset(text.len()));
            }
            return Labels {
                text: text.into_boxed_str(),
                ends: ends.into_boxed_slice(),
            };
        }
        let ends: Vec<u32> = self
            .spans
            .iter()
            .flat_map(|&(_, name_end, value_end)| [offset(name_end), offset(value_end)])
            .collect();
        Labels {
            text: self.text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }
}

/// Label text is bounded by the request body limit (1 MiB by default) long
/// before 4 GiB; a set that large is a bug, not input.
fn offset(at: usize) -> u32 {
    u32::try_from(at).expect("a label set under 4 GiB")
}

pub struct Iter<'a> {
    labels: &'a Labels,
    front: usize,
    back: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        (self.front < self.back).then(|| {
            self.front += 1;
            self.labels.pair_at(self.front - 1)
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        (self.front < self.back).then(|| {
            self.back -= 1;
            self.labels.pair_at(self.back)
        })
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for Labels {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<Vec<_>>()
            .into_iter()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Labels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        Builder::from_pairs(pairs).finish()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Extend<(K, V)> for Labels {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, pairs: I) {
        let mut b = Builder::from_pairs(self.iter());
        for (k, v) in pairs {
            b.push(k.as_ref(), v.as_ref());
        }
        *self = b.finish();
    }
}

impl<const N: usize> From<[(String, String); N]> for Labels {
    fn from(pairs: [(String, String); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl From<BTreeMap<String, String>> for Labels {
    fn from(map: BTreeMap<String, String>) -> Self {
        map.iter().collect()
    }
}

/// `labels["name"]`, panicking when it is absent, as `BTreeMap`'s does.
impl std::ops::Index<&str> for Labels {
    type Output = str;

    fn index(&self, name: &str) -> &str {
        self.get(name)
            .unwrap_or_else(|| panic!("no label {name:?} in {self:?}"))
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LabelsVisitor;

        impl<'de> Visitor<'de> for LabelsVisitor {
            type Value = Labels;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings to strings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
                // At most 64 pairs reserved ahead: the hint is the sender's.
                let mut b = Builder::with_capacity(map.size_hint().unwrap_or(USUAL_PAIRS).min(64));
                // `Cow` borrows from the input where it can (JSON strings
                // without escapes), so most pairs are copied once, into
                // the set's own text.
                while let Some((k, v)) =
                    map.next_entry::<std::borrow::Cow<'de, str>, std::borrow::Cow<'de, str>>()?
                {
                    b.push(&k, &v);
                }
                Ok(b.finish())
            }
        }

        d.deserialize_map(LabelsVisitor)
    }
}

/// The OpenAPI schema of what serde writes: an object of string values.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Labels {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <BTreeMap<String, String> as utoipa::PartialSchema>::schema()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Labels {}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().copied().collect()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const SAMPLE: &[(&str, &str)] = &[
        ("severity", "critical"),
        ("alertname", "HighLatency"),
        ("service", "chat"),
        ("model", "gpt-4o"),
        ("", "empty name"),
        ("n", ""),
    ];

    #[test]
    fn iterates_sorted_by_name_like_a_btreemap() {
        let l = labels(SAMPLE);
        let m = map(SAMPLE);
        assert_eq!(l.len(), m.len());
        assert!(l.iter().eq(m.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
        assert!(l
            .iter()
            .rev()
            .eq(m.iter().rev().map(|(k, v)| (k.as_str(), v.as_str()))));
        for (k, v) in &m {
            assert_eq!(l.get(k), Some(v.as_str()), "{k}");
            assert!(l.contains_key(k));
        }
        assert_eq!(l.get("missing"), None);
        assert_eq!(l.get("alertnam"), None);
        assert_eq!(l.get("alertnamee"), None);
    }

    #[test]
    fn a_name_given_twice_keeps_the_last_value() {
        let l = labels(&[("a", "1"), ("b", "2"), ("a", "3"), ("a", "4")]);
        assert_eq!(l, labels(&[("a", "4"), ("b", "2")]));
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), "1".to_string());
        m.insert("a".to_string(), "4".to_string());
        assert_eq!(Labels::from(m).get("a"), Some("4"));
    }

    #[test]
    fn equal_sets_are_equal_whatever_order_they_were_built_in() {
        let mut reversed = SAMPLE.to_vec();
        reversed.reverse();
        assert_eq!(labels(SAMPLE), labels(&reversed));
        use std::hash::{BuildHasher, RandomState};
        let s = RandomState::new();
        assert_eq!(s.hash_one(labels(SAMPLE)), s.hash_one(labels(&reversed)));
        // Boundaries are part of the value: ("ab","c") is not ("a","bc").
        assert_ne!(labels(&[("ab", "c")]), labels(&[("a", "bc")]));
    }

    #[test]
    fn insert_answers_like_a_btreemap() {
        let mut l = Labels::new();
        assert!(l.is_empty());
        assert_eq!(l.insert("b".into(), "1".into()), None);
        assert_eq!(l.insert("a".into(), "2".into()), None);
        assert_eq!(l.insert("b".into(), "3".into()), Some("1".into()));
        assert_eq!(l, labels(&[("a", "2"), ("b", "3")]));
        l.extend([("c", "4")]);
        assert_eq!(l.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        l.clear();
        assert!(l.is_empty());
    }

    #[test]
    fn json_and_postcard_are_what_the_btreemap_wrote() {
        let l = labels(SAMPLE);
        let m = map(SAMPLE);
        assert_eq!(
            serde_json::to_string(&l).unwrap(),
            serde_json::to_string(&m).unwrap()
        );
        assert_eq!(
            postcard::to_allocvec(&l).unwrap(),
            postcard::to_allocvec(&m).unwrap()
        );
        let from_old: Labels = postcard::from_bytes(&postcard::to_allocvec(&m).unwrap()).unwrap();
        assert_eq!(from_old, l);
        let json = r#"{"z":"1","a":"2\n\u00e9","a":"3"}"#;
        let back: Labels = serde_json::from_str(json).unwrap();
        let old: BTreeMap<String, String> = serde_json::from_str(json).unwrap();
        assert_eq!(back, Labels::from(old));
        assert!(serde_json::from_str::<Labels>(r#"{"a":1}"#).is_err());
        assert!(serde_json::from_str::<Labels>(r#"["a"]"#).is_err());
    }

    #[test]
    fn five_labels_take_two_small_allocations() {
        let l = labels(SAMPLE);
        // One string of every name and value, one slice of offsets.
        let text: usize = SAMPLE.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert_eq!(l.text.len(), text);
        assert_eq!(l.ends.len(), 2 * SAMPLE.len());
    }
}
