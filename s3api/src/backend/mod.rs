//! The seam between the S3/admin HTTP surface and the node: `s3api` calls storage only through
//! [`Backend`], which the `node` crate implements. Its types
//! live in submodules by concept and are re-exported here.

mod admin;
mod audit;
mod errors;
mod multipart;
mod objects;
mod sse;

pub use admin::*;
pub use audit::*;
pub use errors::*;
pub use multipart::*;
pub use objects::*;
pub use sse::*;

/// The storage operations the S3 and admin surfaces need.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Creates a bucket (name already validated).
    async fn create_bucket(&self, bucket: &str) -> StoreResult<()>;
    /// Succeeds if the bucket exists.
    async fn head_bucket(&self, bucket: &str) -> StoreResult<()>;
    /// Deletes an empty bucket.
    async fn delete_bucket(&self, bucket: &str) -> StoreResult<()>;
    /// All buckets, by name.
    async fn list_buckets(&self) -> StoreResult<Vec<BucketInfo>>;
    /// The bucket's default encryption, if set.
    async fn get_bucket_encryption(&self, bucket: &str) -> StoreResult<Option<BucketEncryption>>;
    /// Sets (Some) or removes (None) the bucket's default encryption.
    async fn put_bucket_encryption(
        &self,
        bucket: &str,
        config: Option<BucketEncryption>,
    ) -> StoreResult<()>;

    /// Stores an object; nothing is visible unless the whole body arrived intact.
    async fn put_object(&self, req: PutObjectRequest) -> StoreResult<PutObjectResult>;
    /// Opens an object for reading.
    async fn get_object(&self, req: GetObjectRequest) -> StoreResult<GetObjectResult>;
    /// Object facts without the body.
    /// With `part_number`, `ObjectInfo::part_range` holds that part's byte range.
    async fn head_object(
        &self,
        bucket: &str,
        key: &str,
        sse_customer: Option<SseCustomerKey>,
        part_number: Option<u32>,
    ) -> StoreResult<ObjectInfo>;
    /// Deletes an object; deleting a missing key succeeds.
    async fn delete_object(&self, bucket: &str, key: &str) -> StoreResult<()>;
    /// Copies an object (re-encrypting it under the destination's settings).
    async fn copy_object(&self, req: CopyObjectRequest) -> StoreResult<PutObjectResult>;
    /// One page of keys.
    async fn list_objects(&self, bucket: &str, query: ListQuery) -> StoreResult<ListPage>;

    /// Starts a multipart upload; returns its id.
    async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
        sse: SseRequest,
    ) -> StoreResult<UploadCreated>;
    /// Stores one part (`req.sse` carries the SSE-C key if the upload uses SSE-C); returns its ETag.
    async fn upload_part(
        &self,
        upload_id: &str,
        part_number: u32,
        req: PutObjectRequest,
    ) -> StoreResult<PartInfo>;
    /// Stores a byte range of an existing object as one part (re-encrypted under the upload's key).
    async fn upload_part_copy(&self, req: UploadPartCopyRequest) -> StoreResult<PartInfo>;
    /// Assembles the named parts into the object, if the object it replaces meets `condition`.
    async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<(u32, String)>,
        condition: Option<WriteCondition>,
    ) -> StoreResult<PutObjectResult>;
    /// Discards an upload and its parts.
    async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> StoreResult<()>;
    /// Parts uploaded so far, in part-number order, after `marker`, at most `max`.
    async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        marker: u32,
        max: usize,
    ) -> StoreResult<(Vec<PartInfo>, bool)>;
    /// Uploads in progress in a bucket whose key starts with `prefix`, by key then upload id,
    /// at most `max`, after `marker` (ListMultipartUploads' key-marker and upload-id-marker:
    /// `(key, None)` skips every upload of keys up to `key`).
    async fn list_multipart_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        marker: Option<(&str, Option<&str>)>,
        max: usize,
    ) -> StoreResult<(Vec<UploadInfo>, bool)>;

    /// Health for `/api/v1/health`: Ok when the node can serve requests.
    async fn health(&self) -> StoreResult<serde_json::Value>;

    /// Admin KMS operations (`/api/v1/kms/...`): JSON facts about keys, never key material.
    async fn admin_kms(&self, req: KmsAdminRequest) -> StoreResult<serde_json::Value>;

    /// Admin view of how an object is stored (encryption facts, segments); never a secret.
    async fn admin_object(&self, bucket: &str, key: &str) -> StoreResult<serde_json::Value>;

    /// Admin view of an upload in progress and its parts; never a secret.
    async fn admin_upload(&self, bucket: &str, upload_id: &str) -> StoreResult<serde_json::Value>;

    /// The re-wrap job (start, resume, status) as JSON; backends without one answer 501.
    async fn admin_rewrap(&self, req: RewrapAdminRequest) -> StoreResult<serde_json::Value> {
        let _ = req;
        Err(StoreError::NotImplemented(
            "this backend has no re-wrap job".into(),
        ))
    }

    /// Cluster status and membership changes as JSON; backends without a cluster answer 501.
    async fn admin_cluster(&self, req: ClusterAdminRequest) -> StoreResult<serde_json::Value> {
        let _ = req;
        Err(StoreError::NotImplemented(
            "this backend is not a cluster".into(),
        ))
    }
}
