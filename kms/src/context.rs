//! The encryption context: opaque key/value pairs bound as AAD to every wrapped data key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Key/value pairs that must match exactly when a data key is unwrapped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EncryptionContext(BTreeMap<String, String>);

impl EncryptionContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces one pair; returns the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.0.insert(key.into(), value.into())
    }

    /// Looks up one value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The canonical encoding used as AAD: `u32 count ‖ (u32 len ‖ key ‖ u32 len ‖ value)*`,
    /// big-endian, pairs in byte order of their keys.
    ///
    /// Length prefixes make it injective: `{"a":"bc"}` and `{"ab":"c"}` encode differently.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let size = 4 + self
            .0
            .iter()
            .map(|(k, v)| 8 + k.len() + v.len())
            .sum::<usize>();
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&len_u32(self.0.len()).to_be_bytes());
        for (k, v) in &self.0 {
            out.extend_from_slice(&len_u32(k.len()).to_be_bytes());
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&len_u32(v.len()).to_be_bytes());
            out.extend_from_slice(v.as_bytes());
        }
        out
    }
}

// Contexts are a handful of short names; a 4 GiB string is a bug, not an input to encode.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).expect("encryption context entry shorter than 4 GiB")
}

impl From<BTreeMap<String, String>> for EncryptionContext {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(map)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EncryptionContext {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}
