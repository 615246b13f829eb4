//! Objects and buckets: bodies, metadata, the requests and results of PUT, GET, copy and
//! listings.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;

use super::*;

/// A streamed request or response body.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send + 'static>>;

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
    /// The x-amz-copy-source-if-* conditions, checked on the version actually copied.
    pub src_check: Option<SourceCheck>,
}

/// Decides from a source version's ETag and last-modified time (ms) whether a copy may use it;
/// the backend applies it to the manifest it copies, so a concurrent overwrite of the source
/// cannot slip between the check and the read.
#[derive(Clone)]
pub struct SourceCheck(Arc<SourcePredicate>);

/// A predicate over a source version's (ETag, last-modified ms).
type SourcePredicate = dyn Fn(&str, i64) -> bool + Send + Sync;

impl SourceCheck {
    /// Wraps a predicate over (ETag, last-modified ms).
    pub fn new(f: impl Fn(&str, i64) -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Whether the version with this ETag and modification time may be copied.
    pub fn permits(&self, etag: &str, last_modified_ms: i64) -> bool {
        (self.0)(etag, last_modified_ms)
    }
}

impl std::fmt::Debug for SourceCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SourceCheck")
    }
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
