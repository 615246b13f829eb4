//! `MetaStore`'s linearizable reads.
//!
//! Each read first passes the read barrier (`forward.rs`: read-index on the leader, or from the
//! leader on a follower, then waits until this node applied that index), then reads the local
//! sled state tree.
//! A read is not a snapshot of the tree: one that runs while later entries apply may see some of
//! them, including part of one multi-key entry (say, a completed upload's object while its upload
//! record still exists). Every single key is always a whole record.

use std::ops::Bound;

use openraft::error::{CheckIsLeaderError, RaftError};

use crate::codec::decode;
use crate::command::get;
use crate::error::{MetaError, StoreError};
use crate::keys;
use crate::store::{fatal, sled_err, MetaStore};
use crate::types::{BucketRecord, ObjectRecord, PartRecord, UploadRecord};
use crate::{Node, NodeId};

impl MetaStore {
    fn bucket_exists(&self, name: &str) -> Result<bool, MetaError> {
        self.inner
            .state
            .contains_key(keys::bucket(name))
            .map_err(sled_err)
    }

    /// One bucket, or `None`.
    pub async fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>, MetaError> {
        self.read_barrier().await?;
        Ok(get(&self.inner.state, &keys::bucket(name))?)
    }

    /// All buckets, by name.
    pub async fn list_buckets(&self) -> Result<Vec<BucketRecord>, MetaError> {
        self.read_barrier().await?;
        let mut out = Vec::new();
        for v in self.inner.state.scan_prefix(keys::bucket_prefix()).values() {
            out.push(decode(&v.map_err(sled_err)?)?);
        }
        Ok(out)
    }

    /// One object record, or `None` (also when the bucket does not exist).
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectRecord>, MetaError> {
        self.read_barrier().await?;
        Ok(get(&self.inner.state, &keys::object(bucket, key))?)
    }

    /// Up to `limit` objects of `bucket` whose key starts with `prefix` and is greater than
    /// `start_after`, in byte order of the key; `NoSuchBucket`.
    pub async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, ObjectRecord)>, MetaError> {
        self.read_barrier().await?;
        if !self.bucket_exists(bucket)? {
            return Err(MetaError::NoSuchBucket);
        }
        let scan_prefix = keys::object_prefix(bucket, prefix);
        let start = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(keys::object(bucket, after)),
            _ => Bound::Included(scan_prefix.clone()),
        };
        let mut out = Vec::new();
        for kv in self.inner.state.range((start, Bound::Unbounded)) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = kv.map_err(sled_err)?;
            if !k.starts_with(&scan_prefix) {
                break;
            }
            let (_, key) = keys::split_object(&k).ok_or_else(|| StoreError::CorruptKey {
                tree: "state",
                key: k.to_vec(),
            })?;
            out.push((key, decode(&v)?));
        }
        Ok(out)
    }

    /// One upload, or `None`.
    pub async fn get_upload(&self, upload_id: &str) -> Result<Option<UploadRecord>, MetaError> {
        self.read_barrier().await?;
        Ok(get(&self.inner.state, &keys::upload(upload_id))?)
    }

    /// Up to `limit` parts of an upload with part number greater than `after`, by part number;
    /// `NoSuchUpload`.
    pub async fn list_parts(
        &self,
        upload_id: &str,
        after: u32,
        limit: usize,
    ) -> Result<Vec<PartRecord>, MetaError> {
        self.read_barrier().await?;
        let state = &self.inner.state;
        if !state
            .contains_key(keys::upload(upload_id))
            .map_err(sled_err)?
        {
            return Err(MetaError::NoSuchUpload);
        }
        let prefix = keys::part_prefix(upload_id);
        let start = Bound::Excluded(keys::part(upload_id, after));
        let mut out = Vec::new();
        for kv in state.range((start, Bound::Unbounded)) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = kv.map_err(sled_err)?;
            if !k.starts_with(&prefix) {
                break;
            }
            out.push(decode(&v)?);
        }
        Ok(out)
    }

    /// Up to `limit` uploads in `bucket` whose key starts with `prefix`, by key then upload id;
    /// `NoSuchBucket`.
    pub async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<UploadRecord>, MetaError> {
        self.list_uploads_after(bucket, prefix, None, limit).await
    }

    /// Like [`Self::list_uploads`], starting after a marker as ListMultipartUploads does:
    /// `(key, None)` skips every upload of keys up to and including `key`; `(key, Some(id))`
    /// skips those of smaller keys and the uploads of `key` with ids up to `id`.
    pub async fn list_uploads_after(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(&str, Option<&str>)>,
        limit: usize,
    ) -> Result<Vec<UploadRecord>, MetaError> {
        self.read_barrier().await?;
        if !self.bucket_exists(bucket)? {
            return Err(MetaError::NoSuchBucket);
        }
        let within = keys::upload_index_prefix(bucket, prefix);
        // The index is ordered by key, then id: start at the marker's key, not at the front.
        let start = match after {
            Some((key, _)) if key > prefix => {
                keys::upload_index_prefix(bucket, key).max(within.clone())
            }
            _ => within.clone(),
        };
        let mut out = Vec::new();
        for k in self.inner.state.range(start..).keys() {
            if out.len() >= limit {
                break;
            }
            let k = k.map_err(sled_err)?;
            if !k.starts_with(&within) {
                break;
            }
            let id = keys::upload_id_from_index(&k).ok_or_else(|| StoreError::CorruptKey {
                tree: "state",
                key: k.to_vec(),
            })?;
            // Written in the same batch as the index entry, so it is there unless the tree was
            // damaged; skip rather than fail the whole listing.
            let Some(rec) = get::<UploadRecord>(&self.inner.state, &keys::upload(&id))? else {
                continue;
            };
            let skipped = match after {
                Some((key, None)) => rec.key.as_str() <= key,
                Some((key, Some(id))) => (rec.key.as_str(), rec.upload_id.as_str()) <= (key, id),
                None => false,
            };
            if !skipped {
                out.push(rec);
            }
        }
        Ok(out)
    }
}

pub(crate) fn read_err(e: RaftError<NodeId, CheckIsLeaderError<NodeId, Node>>) -> MetaError {
    match e {
        RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)) => MetaError::NotLeader {
            leader: f.leader_id,
        },
        RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(q)) => {
            MetaError::Unavailable(q.to_string())
        }
        RaftError::Fatal(f) => fatal(f),
    }
}
