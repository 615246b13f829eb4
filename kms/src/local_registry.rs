//! The built-in KMS's key registry: which key ids exist, their current version and state. No
//! key material: every version's master key is derived from the root key. The node keeps the
//! registry in Raft so every node agrees on it and it survives restarts.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::KmsError;

/// One key of the built-in KMS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalKeyRecord {
    /// Key id.
    pub key_id: String,
    /// Version new data keys are wrapped under (1 at creation, +1 per rotation).
    pub current_version: u32,
    /// Oldest version that still unwraps.
    pub min_decryption_version: u32,
    /// A disabled key neither wraps nor unwraps.
    pub enabled: bool,
}

impl LocalKeyRecord {
    /// A key as created: version 1, enabled.
    pub fn new(key_id: &str) -> Self {
        Self {
            key_id: key_id.to_owned(),
            current_version: 1,
            min_decryption_version: 1,
            enabled: true,
        }
    }
}

/// Where the registry is stored; writes are compare-and-set so two nodes changing one key
/// cannot both win.
#[async_trait]
pub trait LocalKeyRegistry: Send + Sync {
    /// Every record.
    async fn load(&self) -> Result<Vec<LocalKeyRecord>, KmsError>;
    /// Stores `new` if the stored record of its id is `expected` (`None`: no record). `Ok(false)`
    /// when it is not (someone else changed it first).
    async fn store(
        &self,
        new: &LocalKeyRecord,
        expected: Option<&LocalKeyRecord>,
    ) -> Result<bool, KmsError>;
}

/// A registry in memory (tests; a process that must not persist keys).
#[derive(Debug, Default)]
pub struct MemoryKeyRegistry {
    records: Mutex<BTreeMap<String, LocalKeyRecord>>,
}

#[async_trait]
impl LocalKeyRegistry for MemoryKeyRegistry {
    async fn load(&self) -> Result<Vec<LocalKeyRecord>, KmsError> {
        let r = self.records.lock().unwrap_or_else(|e| e.into_inner());
        Ok(r.values().cloned().collect())
    }

    async fn store(
        &self,
        new: &LocalKeyRecord,
        expected: Option<&LocalKeyRecord>,
    ) -> Result<bool, KmsError> {
        let mut r = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if r.get(&new.key_id) != expected {
            return Ok(false);
        }
        r.insert(new.key_id.clone(), new.clone());
        Ok(true)
    }
}
