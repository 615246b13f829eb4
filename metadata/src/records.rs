//! Admin records: small JSON documents in named namespaces (the re-wrap job's checkpoints, the
//! built-in KMS's key registry), replicated like everything else and written compare-and-set so
//! two nodes updating one record cannot both win.

use crate::codec::decode;
use crate::command::{Command, RecordExpect};
use crate::error::{MetaError, StoreError};
use crate::keys;
use crate::store::{expect_done, sled_err, MetaStore};

impl MetaStore {
    /// Writes (or with `None` deletes) the record `namespace/id` if its current value meets
    /// `expect`; otherwise `PreconditionFailed` and nothing changes.
    pub async fn put_record(
        &self,
        namespace: &str,
        id: &str,
        value: Option<String>,
        expect: RecordExpect,
    ) -> Result<(), MetaError> {
        let cmd = Command::PutRecord {
            namespace: namespace.to_owned(),
            id: id.to_owned(),
            value,
            expect,
        };
        expect_done(self.propose(cmd).await?, "put_record")
    }

    /// One record's value, or `None`.
    pub async fn get_record(&self, namespace: &str, id: &str) -> Result<Option<String>, MetaError> {
        self.read_barrier().await?;
        let v = self
            .inner
            .state
            .get(keys::record(namespace, id))
            .map_err(sled_err)?;
        v.map(|v| utf8(&v)).transpose()
    }

    /// Every record of `namespace` as (id, value), in byte order of the id.
    pub async fn list_records(&self, namespace: &str) -> Result<Vec<(String, String)>, MetaError> {
        self.read_barrier().await?;
        let mut out = Vec::new();
        for kv in self.inner.state.scan_prefix(keys::record_prefix(namespace)) {
            let (k, v) = kv.map_err(sled_err)?;
            let (_, id) = keys::split_record(&k).ok_or_else(|| StoreError::CorruptKey {
                tree: "state",
                key: k.to_vec(),
            })?;
            out.push((id, utf8(&v)?));
        }
        Ok(out)
    }

    /// A record decoded from JSON, or `None`.
    pub async fn get_record_json<T: serde::de::DeserializeOwned>(
        &self,
        namespace: &str,
        id: &str,
    ) -> Result<Option<T>, MetaError> {
        match self.get_record(namespace, id).await? {
            Some(v) => Ok(Some(decode(v.as_bytes())?)),
            None => Ok(None),
        }
    }
}

fn utf8(v: &[u8]) -> Result<String, MetaError> {
    String::from_utf8(v.to_vec())
        .map_err(|_| MetaError::Storage("admin record is not UTF-8".into()))
}
