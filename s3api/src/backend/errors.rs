//! What a backend call can fail with, and why a request body can break.

use std::fmt;

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
    /// Too many of a stored object's shards were on unreachable nodes while it was being sent.
    #[error("stored data is temporarily unreachable")]
    Unavailable,
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
    /// The bucket has no re-wrap job (admin API).
    #[error("no re-wrap job has run on this bucket")]
    NoSuchJob,
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
