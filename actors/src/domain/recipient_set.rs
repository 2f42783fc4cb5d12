//! `RecipientSet`: who an incident has paged, as a sorted vector.
//!
//! It was a `BTreeSet<Recipient>`, whose first insert allocates a leaf for
//! eleven recipients (about 630 bytes) where an incident pages one or two;
//! with 100,000 open incidents (issue 8) that was some 60 MB. Recipients
//! are added a step at a time and read when the incident changes, so a
//! sorted vector, trimmed after each insert, does the job. Serde writes it
//! as a sequence in order, as the set did: snapshots read back unchanged.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::delivery::Recipient;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecipientSet(Vec<Recipient>);

impl RecipientSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, r: &Recipient) -> bool {
        self.0.binary_search(r).is_ok()
    }

    /// Adds `r`; false when it was there already.
    pub fn insert(&mut self, r: Recipient) -> bool {
        let added = self.insert_untrimmed(r);
        self.0.shrink_to_fit();
        added
    }

    fn insert_untrimmed(&mut self, r: Recipient) -> bool {
        match self.0.binary_search(&r) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, r);
                true
            }
        }
    }

    /// In order.
    pub fn iter(&self) -> std::slice::Iter<'_, Recipient> {
        self.0.iter()
    }
}

impl Extend<Recipient> for RecipientSet {
    fn extend<I: IntoIterator<Item = Recipient>>(&mut self, rs: I) {
        for r in rs {
            self.insert_untrimmed(r);
        }
        self.0.shrink_to_fit();
    }
}

impl FromIterator<Recipient> for RecipientSet {
    fn from_iter<I: IntoIterator<Item = Recipient>>(rs: I) -> Self {
        let mut set = RecipientSet::new();
        set.extend(rs);
        set
    }
}

impl<'a> IntoIterator for &'a RecipientSet {
    type Item = &'a Recipient;
    type IntoIter = std::slice::Iter<'a, Recipient>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Serialize for RecipientSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RecipientSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Sorted and unique whatever was stored.
        Vec::<Recipient>::deserialize(d).map(|rs| rs.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn sample() -> Vec<Recipient> {
        vec![
            Recipient::SlackChannel {
                channel: "#oncall".into(),
            },
            Recipient::Console,
            Recipient::Email {
                user: "alice".into(),
                address: "alice@example.com".into(),
            },
            Recipient::Console,
            Recipient::Webhook { name: "ops".into() },
        ]
    }

    #[test]
    fn holds_each_recipient_once_in_order_like_the_btreeset() {
        let set: RecipientSet = sample().into_iter().collect();
        let old: BTreeSet<Recipient> = sample().into_iter().collect();
        assert_eq!(set.len(), old.len());
        assert!(set.iter().eq(old.iter()));
        assert!(set.contains(&Recipient::Console));
        assert!(!set.contains(&Recipient::Webhook { name: "x".into() }));
        let mut set = set;
        assert!(!set.insert(Recipient::Console));
        assert!(set.insert(Recipient::Webhook { name: "a".into() }));
        assert_eq!(set.len(), old.len() + 1);
    }

    #[test]
    fn snapshots_of_the_btreeset_read_back() {
        let old: BTreeSet<Recipient> = sample().into_iter().collect();
        let set: RecipientSet = sample().into_iter().collect();
        let bytes = postcard::to_allocvec(&old).unwrap();
        assert_eq!(postcard::to_allocvec(&set).unwrap(), bytes);
        assert_eq!(postcard::from_bytes::<RecipientSet>(&bytes).unwrap(), set);
    }
}
