//! The seam between the S3/admin HTTP surface and the node: `s3api` calls storage only through
//! [`Backend`], which the `node` crate implements.

use std::collections::BTreeMap;
use std::fmt;
use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;
use zeroize::Zeroizing;

/// A streamed request or response body.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send + 'static>>;

/// Why a body stream ended abnormally; the backend must store nothing when it sees one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The client connection failed or the chunked encoding was broken.
    #[error("request body could not be read: {0}")]
    Io(String),
    /// The body did not match its Content-MD5 header.
    #[error("the Content-MD5 you specified did not match what we received")]
    BadDigest,
    /// The body did not match an `x-amz-checksum-*` header.
    #[error("the {0} checksum you specified did not match what we received")]
    ChecksumMismatch(ChecksumAlgorithm),
    /// The body was shorter or longer than its declared length.
    #[error("the request body length did not match Content-Length")]
    IncompleteBody,
    /// A stored object failed to decrypt or reconstruct while being sent.
    #[error("stored data could not be read")]
    Storage,
}

/// The `x-amz-checksum-*` algorithms we verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    /// CRC-32 (IEEE).
    Crc32,
    /// CRC-32C (Castagnoli).
    Crc32c,
    /// SHA-256.
    Sha256,
    /// SHA-1 (`x-amz-checksum-sha1`).
    Sha1,
    /// CRC-64/NVME (`x-amz-checksum-crc64nvme`).
    Crc64Nvme,
}

impl fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Sha256 => "SHA256",
            Self::Sha1 => "SHA1",
            Self::Crc64Nvme => "CRC64NVME",
        })
    }
}

/// Domain errors the backend returns; `s3api::error` maps each to one S3 error code.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The bucket does not exist.
    #[error("the specified bucket does not exist")]
    NoSuchBucket,
    /// The key does not exist.
    #[error("the specified key does not exist")]
    NoSuchKey,
    /// The multipart upload does not exist (or was completed or aborted).
    #[error("the specified multipart upload does not exist")]
    NoSuchUpload,
    /// Bucket exists and belongs to the caller.
    #[error("the bucket already exists and is owned by you")]
    BucketAlreadyOwnedByYou,
    /// Bucket is not empty.
    #[error("the bucket you tried to delete is not empty")]
    BucketNotEmpty,
    /// The requested range cannot be satisfied for an object of `size` bytes.
    #[error("the requested range is not satisfiable")]
    InvalidRange {
        /// Object size in bytes.
        size: u64,
    },
    /// A part named in CompleteMultipartUpload is missing or its ETag differs.
    #[error("one or more of the specified parts could not be found")]
    InvalidPart,
    /// Parts in CompleteMultipartUpload are not in ascending order.
    #[error("the list of parts was not in ascending order")]
    InvalidPartOrder,
    /// A non-final part is smaller than the 5 MiB minimum.
    #[error("your proposed upload is smaller than the minimum allowed size")]
    EntityTooSmall,
    /// An object or part is larger than allowed.
    #[error("your proposed upload exceeds the maximum allowed size")]
    EntityTooLarge,
    /// The request body ended abnormally.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// An SSE-C object was requested without its key.
    #[error("the object was stored using a form of server side encryption; the correct parameters must be provided to retrieve it")]
    SseCustomerKeyMissing,
    /// An SSE-C key was given that does not match the object's key.
    #[error("the provided SSE-C key does not match the object's key")]
    SseCustomerKeyMismatch,
    /// SSE-C parameters were given for an object that is not SSE-C.
    #[error("the encryption parameters are not applicable to this object")]
    SseNotApplicable,
    /// The named KMS key does not exist.
    #[error("the KMS key {0} was not found")]
    KmsKeyNotFound(String),
    /// The KMS could not be reached or refused; new writes fail fast. Carries the KMS's name
    /// (`vault`, `aws`, `local`) so the client's message says which service is down.
    #[error("the key management service ({0}) is unavailable; retry later")]
    KmsUnavailable(String),
    /// Not enough drives/nodes answered to meet the quorum.
    #[error("not enough storage is available to serve the request; retry later")]
    Unavailable,
    /// A request argument is invalid.
    #[error("{0}")]
    InvalidArgument(String),
    /// The operation exists in S3 or the admin API but not with this configuration (e.g. a
    /// KMS provider that cannot rotate keys).
    #[error("{0}")]
    NotImplemented(String),
    /// A partNumber read named a part the object does not have.
    #[error("the requested partnumber is not satisfiable")]
    InvalidPartNumber,
    /// A precondition failed (If-Match, If-Unmodified-Since, ...).
    #[error("at least one of the preconditions you specified did not hold")]
    PreconditionFailed,
    /// A concurrent write to the same object won; the client may retry.
    #[error("a conflicting operation is in progress against this object; please try again")]
    Conflict,
    /// Stored data is unreadable: too many shards lost or corrupt, or authentication failed.
    #[error("stored data for this object cannot be read")]
    DataCorrupt,
    /// Anything else; logged with detail, reported to the client as InternalError.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result of a backend call.
pub type StoreResult<T> = Result<T, StoreError>;

/// An SSE-C key from the request headers, already base64-decoded and checked against its MD5.
pub struct SseCustomerKey {
    /// The 256-bit client key; zeroized on drop.
    pub key: Zeroizing<[u8; 32]>,
    /// Base64 MD5 of the key, as the client sent it (echoed in responses).
    pub key_md5: String,
}

impl fmt::Debug for SseCustomerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseCustomerKey")
            .field("key_md5", &self.key_md5)
            .finish_non_exhaustive()
    }
}

/// How the client asked for a new object to be encrypted.
#[derive(Debug, Default)]
pub enum SseRequest {
    /// No header: the bucket default applies, else SSE-S3.
    #[default]
    Default,
    /// `x-amz-server-side-encryption: AES256`.
    S3,
    /// `x-amz-server-side-encryption: aws:kms` with an optional key id.
    Kms {
        /// `x-amz-server-side-encryption-aws-kms-key-id`, if given.
        key_id: Option<String>,
        /// `x-amz-server-side-encryption-context`, decoded; bound into the KMS context.
        context: Option<KmsContext>,
        /// `x-amz-server-side-encryption-bucket-key-enabled`, if given.
        bucket_key: Option<bool>,
    },
    /// SSE-C headers.
    Customer(SseCustomerKey),
}

/// A client's SSE-KMS encryption context: string pairs, bound into every KMS call for the object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KmsContext {
    /// The pairs, in key order.
    pub pairs: BTreeMap<String, String>,
    /// The header value as the client sent it (base64 JSON), echoed in responses.
    pub header: String,
}

/// The kind of server-side encryption an object is stored under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseKind {
    /// SSE-S3 (`AES256`).
    S3,
    /// SSE-KMS (`aws:kms`).
    Kms,
    /// SSE-C.
    Customer,
}

/// The encryption facts reported back to the client in response headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseInfo {
    /// Which SSE mode the object uses.
    pub kind: SseKind,
    /// KMS key id for SSE-KMS (and SSE-S3 if the backend wishes to report it).
    pub kms_key_id: Option<String>,
    /// Base64 MD5 of the SSE-C key.
    pub customer_key_md5: Option<String>,
    /// SSE-KMS encryption context as the client sent it (base64 JSON).
    pub kms_context: Option<String>,
    /// Whether an S3 Bucket Key protects the object (SSE-KMS).
    pub bucket_key_enabled: bool,
}

impl SseInfo {
    /// Facts of an SSE-S3 object.
    pub fn s3() -> Self {
        Self::of(SseKind::S3)
    }

    /// Facts of an object of `kind` with no key id, context or bucket key.
    pub fn of(kind: SseKind) -> Self {
        Self {
            kind,
            kms_key_id: None,
            customer_key_md5: None,
            kms_context: None,
            bucket_key_enabled: false,
        }
    }
}

/// Headers stored with an object and returned on GET/HEAD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Content-Type.
    pub content_type: Option<String>,
    /// Content-Encoding.
    pub content_encoding: Option<String>,
    /// Content-Disposition.
    pub content_disposition: Option<String>,
    /// Content-Language.
    pub content_language: Option<String>,
    /// Cache-Control.
    pub cache_control: Option<String>,
    /// Expires, as the client sent it (HTTP date).
    pub expires: Option<String>,
    /// `x-amz-meta-*` without the prefix, lower-case names.
    pub user_metadata: BTreeMap<String, String>,
}

/// What is known about a stored object.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    /// Object key.
    pub key: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// ETag without quotes (hex MD5, or `hex-N` for multipart).
    pub etag: String,
    /// Last modification, milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
    /// Stored headers.
    pub meta: ObjectMeta,
    /// Encryption facts.
    pub sse: SseInfo,
    /// Number of parts for a multipart object.
    pub parts_count: Option<u32>,
    /// Inclusive byte range of the part a partNumber read asked for (None otherwise, and
    /// for an empty part).
    pub part_range: Option<(u64, u64)>,
}

/// What the admin API asks of the KMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KmsAdminRequest {
    /// Provider, health, default key, capabilities.
    Status,
    /// Key ids the provider knows.
    ListKeys,
    /// Create a key (an existing id → 409).
    CreateKey(String),
    /// One key's state and versions.
    DescribeKey(String),
    /// Add a new key version; new data keys use it, old ones stay readable.
    RotateKey(String),
}

/// A condition on the object a write would replace (`If-None-Match: *`, `If-Match`), checked
/// atomically with the write so exactly one of two racing conditional writers wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteCondition {
    /// No object under the key (`If-None-Match: *`).
    Absent,
    /// Some object under the key (`If-Match: *`).
    Exists,
    /// The current object has this ETag, without quotes (`If-Match: "etag"`).
    EtagIs(String),
}

/// A PutObject or UploadPart body with its metadata.
pub struct PutObjectRequest {
    /// Bucket name.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// Body, already checked against Content-MD5 / checksums by `s3api` (errors arrive in-stream).
    pub body: ByteStream,
    /// Declared plaintext length, if known.
    pub content_length: Option<u64>,
    /// Headers to store.
    pub meta: ObjectMeta,
    /// Requested encryption.
    pub sse: SseRequest,
    /// Write only if the current object meets this (PutObject; ignored for parts).
    pub condition: Option<WriteCondition>,
}

/// The result of a write that created an object.
#[derive(Debug, Clone)]
pub struct PutObjectResult {
    /// ETag without quotes.
    pub etag: String,
    /// Encryption facts.
    pub sse: SseInfo,
    /// Last modification, ms since the epoch.
    pub last_modified_ms: i64,
}

/// A byte range as the client asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// `bytes=a-b` (inclusive).
    FromTo(u64, u64),
    /// `bytes=a-`.
    From(u64),
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

/// A GetObject request.
#[derive(Debug)]
pub struct GetObjectRequest {
    /// Bucket name.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// Requested range.
    pub range: Option<RangeSpec>,
    /// Read only this part (`?partNumber=`; exclusive with `range`); a single-part object has
    /// one part, the whole object.
    pub part_number: Option<u32>,
    /// SSE-C key, required for SSE-C objects.
    pub sse_customer: Option<SseCustomerKey>,
}

/// A GetObject response: the body stream is lazy, reading nothing until first polled, so the
/// caller may evaluate preconditions on `info` and drop it.
pub struct GetObjectResult {
    /// Object facts.
    pub info: ObjectInfo,
    /// The inclusive byte range served when a range was requested.
    pub range: Option<(u64, u64)>,
    /// Plaintext of the object or range.
    pub body: ByteStream,
}

/// Which metadata a copy keeps.
#[derive(Debug)]
pub enum MetadataDirective {
    /// Keep the source's headers.
    Copy,
    /// Use these instead.
    Replace(ObjectMeta),
}

/// A CopyObject request.
#[derive(Debug)]
pub struct CopyObjectRequest {
    /// Source bucket.
    pub src_bucket: String,
    /// Source key.
    pub src_key: String,
    /// SSE-C key of the source.
    pub src_sse_customer: Option<SseCustomerKey>,
    /// Destination bucket.
    pub dst_bucket: String,
    /// Destination key.
    pub dst_key: String,
    /// Metadata handling.
    pub metadata: MetadataDirective,
    /// Encryption of the destination.
    pub sse: SseRequest,
}

/// A ListObjects (v1 or v2) query, already decoded from markers/tokens.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only keys starting with this.
    pub prefix: String,
    /// Group keys by this delimiter after the prefix.
    pub delimiter: Option<String>,
    /// Return only keys (and prefixes) strictly greater than this.
    pub start_after: Option<String>,
    /// At most this many keys plus common prefixes (1..=1000).
    pub max_keys: usize,
}

/// One listed object.
#[derive(Debug, Clone)]
pub struct ObjectSummary {
    /// Key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag without quotes.
    pub etag: String,
    /// Last modification, ms since the epoch.
    pub last_modified_ms: i64,
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// Objects, in key order.
    pub objects: Vec<ObjectSummary>,
    /// Common prefixes, in order.
    pub common_prefixes: Vec<String>,
    /// More results follow.
    pub is_truncated: bool,
    /// The last key or common prefix returned: pass as `start_after` for the next page.
    pub next_marker: Option<String>,
}

/// A bucket in ListBuckets.
#[derive(Debug, Clone)]
pub struct BucketInfo {
    /// Name.
    pub name: String,
    /// Creation time, ms since the epoch.
    pub created_ms: i64,
}

/// The default-encryption algorithm of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseAlgorithm {
    /// SSE-S3.
    Aes256,
    /// SSE-KMS.
    AwsKms,
}

/// The AEAD cipher a bucket's objects are sealed with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DataCipher {
    /// AES-256-GCM (the default).
    #[default]
    Aes256Gcm,
    /// ChaCha20-Poly1305.
    ChaCha20Poly1305,
}

impl DataCipher {
    /// The admin API's name: `AES256` or `CHACHA20-POLY1305`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "AES256",
            Self::ChaCha20Poly1305 => "CHACHA20-POLY1305",
        }
    }

    /// Parses an admin API name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "AES256" => Some(Self::Aes256Gcm),
            "CHACHA20-POLY1305" => Some(Self::ChaCha20Poly1305),
            _ => None,
        }
    }
}

/// A bucket's default encryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketEncryption {
    /// Algorithm.
    pub algorithm: SseAlgorithm,
    /// KMS key for SSE-KMS (or for SSE-S3 if set).
    pub kms_key_id: Option<String>,
    /// Data cipher of new objects (any SSE mode).
    pub cipher: DataCipher,
    /// S3 Bucket Keys for SSE-KMS objects.
    pub bucket_key_enabled: bool,
}

impl BucketEncryption {
    /// A default of `algorithm` with the default cipher and no bucket key.
    pub fn new(algorithm: SseAlgorithm, kms_key_id: Option<String>) -> Self {
        Self {
            algorithm,
            kms_key_id,
            cipher: DataCipher::default(),
            bucket_key_enabled: false,
        }
    }
}

/// A multipart upload that was just created.
#[derive(Debug, Clone)]
pub struct UploadCreated {
    /// Upload id.
    pub upload_id: String,
    /// The encryption its parts and the final object get.
    pub sse: SseInfo,
}

/// An UploadPartCopy request: a byte range of an existing object becomes a part.
#[derive(Debug)]
pub struct UploadPartCopyRequest {
    /// Destination bucket.
    pub bucket: String,
    /// Destination key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// Part number.
    pub part_number: u32,
    /// Source bucket.
    pub src_bucket: String,
    /// Source key.
    pub src_key: String,
    /// Inclusive source range, or the whole object.
    pub src_range: Option<(u64, u64)>,
    /// SSE-C key of the source.
    pub src_sse_customer: Option<SseCustomerKey>,
    /// SSE-C key of the upload.
    pub sse_customer: Option<SseCustomerKey>,
}

/// A multipart upload in progress.
#[derive(Debug, Clone)]
pub struct UploadInfo {
    /// Key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// Initiation time, ms since the epoch.
    pub initiated_ms: i64,
}

/// One uploaded part.
#[derive(Debug, Clone)]
pub struct PartInfo {
    /// Part number (1..=10000).
    pub part_number: u32,
    /// ETag without quotes.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// Upload time, ms since the epoch.
    pub last_modified_ms: i64,
    /// Encryption of the part, for UploadPart's response headers (`None` in listings).
    pub sse: Option<SseInfo>,
}

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
}

/// One finished S3 or admin request, for metrics and the audit log. Never holds a secret.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// Time the request arrived, ms since the epoch.
    pub time_ms: i64,
    /// Unique request id (also sent as `x-amz-request-id`).
    pub request_id: String,
    /// Access key of the signer, if authenticated.
    pub access_key: Option<String>,
    /// Operation name (`PutObject`, `admin:PutBucketEncryption`, ...).
    pub operation: String,
    /// Bucket, if any.
    pub bucket: Option<String>,
    /// Key, if any.
    pub key: Option<String>,
    /// HTTP status sent.
    pub status: u16,
    /// Request body bytes received.
    pub bytes_in: u64,
    /// Response body bytes sent.
    pub bytes_out: u64,
    /// Time to response headers, seconds.
    pub duration_secs: f64,
}

/// Receives a record for every finished request.
pub trait RequestObserver: Send + Sync + 'static {
    /// Called once per request.
    fn record(&self, rec: RequestRecord);
}
