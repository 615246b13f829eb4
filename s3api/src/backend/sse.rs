//! Encryption as requested by a client and as reported back: SSE-C keys, SSE-KMS context,
//! bucket default encryption and data cipher.

use std::collections::BTreeMap;
use std::fmt;

use zeroize::Zeroizing;

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
