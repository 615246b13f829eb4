//! The built-in KMS's key registry in Raft (namespace `kms-local`, one JSON record per key id):
//! every node sees the same keys, versions and states, and they survive restarts.

use std::sync::Arc;

use async_trait::async_trait;
use coffer_kms::{KmsError, LocalKeyRecord, LocalKeyRegistry};
use coffer_metadata::{MetaError, MetaStore, RecordExpect};

/// Raft namespace of the registry.
pub const NAMESPACE: &str = "kms-local";

/// [`LocalKeyRegistry`] over the metadata store.
pub struct RaftKeyRegistry {
    meta: Arc<MetaStore>,
}

impl RaftKeyRegistry {
    /// The registry of the cluster whose metadata is `meta`.
    pub fn new(meta: Arc<MetaStore>) -> Self {
        Self { meta }
    }
}

fn unavailable(e: MetaError) -> KmsError {
    KmsError::Unavailable(format!("local key registry: {e}"))
}

fn encode(r: &LocalKeyRecord) -> Result<String, KmsError> {
    serde_json::to_string(r).map_err(|e| KmsError::Config(e.to_string()))
}

#[async_trait]
impl LocalKeyRegistry for RaftKeyRegistry {
    async fn load(&self) -> Result<Vec<LocalKeyRecord>, KmsError> {
        let raw = self
            .meta
            .list_records(NAMESPACE)
            .await
            .map_err(unavailable)?;
        Ok(raw
            .into_iter()
            .filter_map(|(id, v)| match serde_json::from_str::<LocalKeyRecord>(&v) {
                Ok(r) if r.key_id == id => Some(r),
                _ => {
                    tracing::error!(key_id = %id, "local key registry record unreadable; skipped");
                    None
                }
            })
            .collect())
    }

    async fn store(
        &self,
        new: &LocalKeyRecord,
        expected: Option<&LocalKeyRecord>,
    ) -> Result<bool, KmsError> {
        // Records are written only from this type, so the stored text of `expected` is its
        // serialization (serde_json keeps field order).
        let expect = match expected {
            Some(r) => RecordExpect::Is(encode(r)?),
            None => RecordExpect::Absent,
        };
        match self
            .meta
            .put_record(NAMESPACE, &new.key_id, Some(encode(new)?), expect)
            .await
        {
            Ok(()) => Ok(true),
            Err(MetaError::PreconditionFailed) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}
