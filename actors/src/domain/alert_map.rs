//! `AlertMap`: an incident's alerts by fingerprint, as a sorted vector.
//!
//! It was a `BTreeMap<Fingerprint, Box<AlertEntry>>`, whose first insert
//! allocates a leaf for eleven entries (192 bytes) where most incidents
//! hold one alert; with 100,000 open incidents (issue 8) that was 19 MB of
//! empty slots. Sorted (fingerprint, boxed entry) pairs cost 16 bytes per
//! alert; the entries stay boxed so an insert into an incident of
//! thousands of alerts shifts pointers, not entries. Serde writes it as a
//! map in fingerprint order, as the B-tree did, so snapshots read back.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::fingerprint::Fingerprint;
use super::incident::AlertEntry;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertMap(Vec<(Fingerprint, Box<AlertEntry>)>);

impl AlertMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, fp: &Fingerprint) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.cmp(fp))
    }

    pub fn get(&self, fp: &Fingerprint) -> Option<&AlertEntry> {
        self.position(fp).ok().map(|i| &*self.0[i].1)
    }

    pub fn get_mut(&mut self, fp: &Fingerprint) -> Option<&mut AlertEntry> {
        self.position(fp).ok().map(|i| &mut *self.0[i].1)
    }

    /// Sets the entry of `fp`; returns the one it replaces.
    pub fn insert(&mut self, fp: Fingerprint, entry: Box<AlertEntry>) -> Option<Box<AlertEntry>> {
        match self.position(&fp) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, entry)),
            Err(i) => {
                self.0.insert(i, (fp, entry));
                // Held for the incident's life: no spare capacity.
                self.0.shrink_to_fit();
                None
            }
        }
    }

    /// In fingerprint order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Fingerprint, &AlertEntry)> + '_ {
        self.0.iter().map(|(k, v)| (k, &**v))
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &AlertEntry> + '_ {
        self.0.iter().map(|(_, v)| &**v)
    }

    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut AlertEntry> + '_ {
        self.0.iter_mut().map(|(_, v)| &mut **v)
    }
}

impl Serialize for AlertMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for AlertMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AlertMapVisitor;

        impl<'de> Visitor<'de> for AlertMapVisitor {
            type Value = AlertMap;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of fingerprints to alert entries")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AlertMap, A::Error> {
                let mut out = AlertMap::new();
                // Written sorted; a map out of order (or a key twice) still
                // reads back as the B-tree would have had it.
                while let Some((k, v)) = map.next_entry::<Fingerprint, Box<AlertEntry>>()? {
                    match out.0.last() {
                        Some((last, _)) if *last < k => out.0.push((k, v)),
                        None => out.0.push((k, v)),
                        Some(_) => {
                            out.insert(k, v);
                        }
                    }
                }
                out.0.shrink_to_fit();
                Ok(out)
            }
        }

        d.deserialize_map(AlertMapVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Alert, AlertStatus, Labels};
    use crate::time::Timestamp;
    use std::collections::BTreeMap;

    fn entry(name: &str) -> Box<AlertEntry> {
        Box::new(AlertEntry {
            alert: Alert {
                labels: [("alertname", name)].into_iter().collect(),
                annotations: Labels::new(),
                status: AlertStatus::Firing,
                starts_at: Timestamp(1),
                ends_at: None,
                source: "native".into(),
                dedup_key: None,
                extra: None,
            },
            first_seen: Timestamp(1),
            last_seen: Timestamp(2),
            count: 1,
        })
    }

    #[test]
    fn answers_like_the_btreemap_and_serializes_the_same() {
        let mut map = AlertMap::new();
        let mut old = BTreeMap::new();
        for (fp, name) in [(30, "c"), (10, "a"), (20, "b"), (10, "a2")] {
            assert_eq!(
                map.insert(Fingerprint(fp), entry(name)).is_some(),
                old.insert(Fingerprint(fp), entry(name)).is_some()
            );
        }
        assert_eq!(map.len(), 3);
        assert!(map.values().eq(old.values().map(|v| &**v)));
        assert_eq!(
            map.get(&Fingerprint(10))
                .unwrap()
                .alert
                .labels
                .get("alertname"),
            Some("a2")
        );
        assert!(map.get(&Fingerprint(11)).is_none());
        map.get_mut(&Fingerprint(20)).unwrap().count = 9;
        old.get_mut(&Fingerprint(20)).unwrap().count = 9;
        let bytes = postcard::to_allocvec(&old).unwrap();
        assert_eq!(postcard::to_allocvec(&map).unwrap(), bytes);
        assert_eq!(postcard::from_bytes::<AlertMap>(&bytes).unwrap(), map);
        assert_eq!(
            serde_json::to_string(&map).unwrap(),
            serde_json::to_string(&old).unwrap()
        );
    }

    #[test]
    fn an_out_of_order_map_reads_back_sorted() {
        let json = r#"{"0000000000000002":E,"0000000000000001":E}"#;
        let e = serde_json::to_string(&entry("x")).unwrap();
        let json = json.replace('E', &e);
        let map: AlertMap = serde_json::from_str(&json).unwrap();
        let keys: Vec<u64> = map.iter().map(|(k, _)| k.0).collect();
        assert_eq!(keys, [1, 2]);
    }
}
