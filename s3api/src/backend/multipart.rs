//! Multipart uploads: what creating, copying into and listing uploads and parts return.

use super::*;

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
