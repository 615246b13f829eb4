//! The one error type of every KMS provider.

use thiserror::Error;

/// What a KMS call can fail with; typed so the S3 layer maps it without string matching.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KmsError {
    /// The named key does not exist in the provider.
    #[error("KMS key not found: {0}")]
    KeyNotFound(String),
    /// `create_key` was asked for a key id that already exists.
    #[error("KMS key already exists: {0}")]
    KeyAlreadyExists(String),
    /// The key id is not 1..=256 characters of `[A-Za-z0-9/_.:-]`.
    #[error("invalid KMS key id: {0:?}")]
    InvalidKeyId(String),
    /// The wrapped key did not authenticate: tampered, wrong key id, or wrong context.
    #[error("KMS ciphertext is invalid or does not match the key and context")]
    InvalidCiphertext,
    /// The provider could not be reached or refused to work; new writes should fail fast.
    #[error("KMS unavailable: {0}")]
    Unavailable(String),
}
