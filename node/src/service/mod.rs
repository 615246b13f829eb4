//! The node's implementation of the S3 backend seam: buckets here, objects and multipart in
//! their own modules.

mod cluster;
mod conditions;
mod copy;
mod discard;
mod errors;
mod inspect;
mod multipart;
mod objects;
mod read;

use std::sync::Arc;

use coffer_crypto::Entropy;
use coffer_metadata::{BucketEncryptionRecord, MetaStore};
use coffer_s3api::backend::{
    Backend, BucketEncryption, BucketInfo, ByteStream, ClusterAdminRequest, CopyObjectRequest,
    DataCipher, GetObjectRequest, GetObjectResult, KmsAdminRequest, ListPage, ListQuery,
    ObjectInfo, ObjectMeta, PartInfo, PutObjectRequest, PutObjectResult, RewrapAdminRequest,
    SseAlgorithm, SseCustomerKey, SseRequest, StoreError, StoreResult, UploadCreated, UploadInfo,
    UploadPartCopyRequest, WriteCondition,
};

use crate::actors::{DriveActors, KeyHandle};
use crate::drive::Drive;
use crate::metrics::Metrics;
use crate::seams::Clock;

pub use errors::meta_error;

/// Everything a request needs, shared by all requests.
pub struct NodeService {
    pub(crate) meta: Arc<MetaStore>,
    pub(crate) keys: KeyHandle,
    pub(crate) drives: Vec<Arc<Drive>>,
    pub(crate) drive_actors: DriveActors,
    /// Where shards go and are found: this node's drives, and its peers' in a cluster.
    pub(crate) shards: Arc<crate::shards::ShardMap>,
    /// Cluster membership (admin API); `None` on a single node.
    pub(crate) cluster: Option<Arc<crate::cluster::ClusterNode>>,
    /// The healer (every node runs one; it acts while the node leads).
    pub(crate) healer: Arc<crate::heal::Healer>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) entropy: Arc<dyn Entropy>,
    pub(crate) metrics: Arc<Metrics>,
    /// Makes the sealers and openers of segment streams.
    pub(crate) cipher: Arc<dyn crate::pipeline::CipherFactory>,
    /// Delay before unreferenced shard files are removed (see `discard_segments`).
    pub(crate) discard_grace: std::time::Duration,
    /// Re-wrap jobs (admin API).
    pub(crate) rewrap: Arc<crate::rewrap::RewrapJobs>,
}

impl NodeService {
    /// The erasure layout new objects get now (in a cluster: over the drives of the layout
    /// this node has read from Raft so far).
    pub fn shard_layout(&self) -> coffer_erasure::ErasureConfig {
        self.shards.erasure()
    }

    /// Random bytes from the entropy seam.
    pub(crate) fn random<const N: usize>(&self) -> [u8; N] {
        let mut b = [0u8; N];
        self.entropy.fill(&mut b);
        b
    }

    async fn require_bucket(&self, bucket: &str) -> StoreResult<coffer_metadata::BucketRecord> {
        self.meta
            .get_bucket(bucket)
            .await
            .map_err(meta_error)?
            .ok_or(StoreError::NoSuchBucket)
    }
}

fn algorithm_name(a: SseAlgorithm) -> &'static str {
    match a {
        SseAlgorithm::Aes256 => "AES256",
        SseAlgorithm::AwsKms => "aws:kms",
    }
}

#[async_trait::async_trait]
impl Backend for NodeService {
    async fn create_bucket(&self, bucket: &str) -> StoreResult<()> {
        self.meta
            .create_bucket(bucket, self.clock.now_ms())
            .await
            .map_err(meta_error)
    }

    async fn head_bucket(&self, bucket: &str) -> StoreResult<()> {
        self.require_bucket(bucket).await.map(|_| ())
    }

    async fn delete_bucket(&self, bucket: &str) -> StoreResult<()> {
        self.meta.delete_bucket(bucket).await.map_err(meta_error)
    }

    async fn list_buckets(&self) -> StoreResult<Vec<BucketInfo>> {
        let buckets = self.meta.list_buckets().await.map_err(meta_error)?;
        Ok(buckets
            .into_iter()
            .map(|b| BucketInfo {
                name: b.name,
                created_ms: b.created_ms,
            })
            .collect())
    }

    async fn get_bucket_encryption(&self, bucket: &str) -> StoreResult<Option<BucketEncryption>> {
        let rec = self.require_bucket(bucket).await?;
        Ok(rec.encryption.and_then(|e| {
            let algorithm = match e.algorithm.as_str() {
                "AES256" => SseAlgorithm::Aes256,
                "aws:kms" => SseAlgorithm::AwsKms,
                _ => return None,
            };
            let cipher = match e.cipher.as_deref() {
                Some(name) => DataCipher::from_name(name)?,
                None => DataCipher::Aes256Gcm,
            };
            Some(BucketEncryption {
                algorithm,
                kms_key_id: e.kms_key_id,
                cipher,
                bucket_key_enabled: e.bucket_key_enabled,
            })
        }))
    }

    async fn put_bucket_encryption(
        &self,
        bucket: &str,
        config: Option<BucketEncryption>,
    ) -> StoreResult<()> {
        if let Some(BucketEncryption {
            kms_key_id: Some(id),
            ..
        }) = &config
        {
            let exists = self.keys.key_exists(id).await?;
            if !exists {
                return Err(StoreError::KmsKeyNotFound(id.clone()));
            }
        }
        let rec = config.map(|c| BucketEncryptionRecord {
            algorithm: algorithm_name(c.algorithm).to_string(),
            kms_key_id: c.kms_key_id,
            cipher: match c.cipher {
                DataCipher::Aes256Gcm => None,
                other => Some(other.name().to_string()),
            },
            bucket_key_enabled: c.bucket_key_enabled,
        });
        self.meta
            .set_bucket_encryption(bucket, rec)
            .await
            .map_err(meta_error)
    }

    async fn put_object(&self, req: PutObjectRequest) -> StoreResult<PutObjectResult> {
        self.put_object_impl(req).await
    }

    async fn get_object(&self, req: GetObjectRequest) -> StoreResult<GetObjectResult> {
        self.get_object_impl(req).await
    }

    async fn head_object(
        &self,
        bucket: &str,
        key: &str,
        sse_customer: Option<SseCustomerKey>,
        part_number: Option<u32>,
    ) -> StoreResult<ObjectInfo> {
        self.head_object_impl(bucket, key, sse_customer, part_number)
            .await
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> StoreResult<()> {
        let prev = self
            .meta
            .delete_object(bucket, key)
            .await
            .map_err(meta_error)?;
        if let Some(prev) = prev {
            self.discard_object(&prev);
        }
        Ok(())
    }

    async fn copy_object(&self, req: CopyObjectRequest) -> StoreResult<PutObjectResult> {
        self.copy_object_impl(req).await
    }

    async fn list_objects(&self, bucket: &str, query: ListQuery) -> StoreResult<ListPage> {
        self.list_objects_impl(bucket, query).await
    }

    async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
        sse: SseRequest,
    ) -> StoreResult<UploadCreated> {
        self.create_upload_impl(bucket, key, meta, sse).await
    }

    async fn upload_part_copy(&self, req: UploadPartCopyRequest) -> StoreResult<PartInfo> {
        self.upload_part_copy_impl(req).await
    }

    async fn upload_part(
        &self,
        upload_id: &str,
        part_number: u32,
        req: PutObjectRequest,
    ) -> StoreResult<PartInfo> {
        self.upload_part_impl(upload_id, part_number, req).await
    }

    async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<(u32, String)>,
        condition: Option<WriteCondition>,
    ) -> StoreResult<PutObjectResult> {
        self.complete_upload_impl(bucket, key, upload_id, parts, condition)
            .await
    }

    async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> StoreResult<()> {
        self.abort_upload_impl(bucket, key, upload_id).await
    }

    async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        marker: u32,
        max: usize,
    ) -> StoreResult<(Vec<PartInfo>, bool)> {
        self.list_parts_impl(bucket, key, upload_id, marker, max)
            .await
    }

    async fn list_multipart_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        marker: Option<(&str, Option<&str>)>,
        max: usize,
    ) -> StoreResult<(Vec<UploadInfo>, bool)> {
        self.require_bucket(bucket).await?;
        let mut ups = self
            .meta
            .list_uploads_after(bucket, prefix, marker, max.saturating_add(1))
            .await
            .map_err(meta_error)?;
        let truncated = ups.len() > max;
        ups.truncate(max);
        Ok((
            ups.into_iter()
                .map(|u| UploadInfo {
                    key: u.key,
                    upload_id: u.upload_id,
                    initiated_ms: u.initiated_ms,
                })
                .collect(),
            truncated,
        ))
    }

    async fn health(&self) -> StoreResult<serde_json::Value> {
        let st = self.meta.status();
        // Alone: healthy once it leads. In a cluster: once it is a member that knows a leader
        // (a follower serves reads and forwards writes).
        let member = st.members.iter().any(|m| m.id == st.node_id);
        let healthy = match self.shards.cluster_side() {
            None => st.is_leader,
            Some(c) => member && st.current_leader.is_some() && c.is_loaded(),
        };
        if !healthy {
            return Err(StoreError::Unavailable);
        }
        let erasure = self.shards.erasure();
        Ok(serde_json::json!({
            "status": "ok",
            "node_id": st.node_id,
            "raft": {
                "leader": st.is_leader,
                "current_leader": st.current_leader,
                "term": st.current_term,
                "last_applied": st.last_applied,
            },
            "drives": self.drives.len(),
            "erasure": format!("{}+{}", erasure.data, erasure.parity),
        }))
    }

    async fn admin_object(&self, bucket: &str, key: &str) -> StoreResult<serde_json::Value> {
        self.inspect_object(bucket, key).await
    }

    async fn admin_upload(&self, bucket: &str, upload_id: &str) -> StoreResult<serde_json::Value> {
        self.inspect_upload(bucket, upload_id).await
    }

    async fn admin_kms(&self, req: KmsAdminRequest) -> StoreResult<serde_json::Value> {
        self.keys.admin(req).await
    }

    async fn admin_rewrap(&self, req: RewrapAdminRequest) -> StoreResult<serde_json::Value> {
        self.rewrap.admin(req).await
    }

    async fn admin_cluster(&self, req: ClusterAdminRequest) -> StoreResult<serde_json::Value> {
        self.cluster_admin(req).await
    }
}

/// A body that yields nothing.
pub(crate) fn empty_body() -> ByteStream {
    Box::pin(futures::stream::empty())
}
