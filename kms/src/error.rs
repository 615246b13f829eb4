//! The one error type of every KMS provider.

use thiserror::Error;

/// What a KMS call can fail with; typed so the S3 layer maps it without string matching.
///
/// Messages never carry a token, a secret id or key material: they name the provider, the key
/// id and the cause only, so they are safe to log and to print at start-up.
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
    /// Transient: retried with backoff, and counted by the circuit breaker.
    #[error("KMS unavailable: {0}")]
    Unavailable(String),
    /// The provider refused our credentials (wrong or expired token, missing permission).
    /// Not retried: retrying the same credentials cannot help.
    #[error("KMS refused the credentials: {0}")]
    PermissionDenied(String),
    /// The key exists but may not be used now (disabled, pending deletion, or not usable for
    /// data keys, e.g. a Vault transit key without `derived=true`).
    #[error("KMS key {key_id} cannot be used: {reason}")]
    KeyUnusable {
        /// Key id.
        key_id: String,
        /// Why (state or missing property).
        reason: String,
    },
    /// The provider does not offer this operation (see [`crate::Capabilities`]).
    #[error("the {provider} KMS does not support {operation}")]
    Unsupported {
        /// Provider name.
        provider: &'static str,
        /// Operation name.
        operation: &'static str,
    },
    /// The provider's configuration is unusable (bad address, unreadable CA bundle, ...).
    #[error("KMS configuration: {0}")]
    Config(String),
}

impl KmsError {
    /// Whether retrying the same call later may succeed (the provider did not answer, or
    /// answered that it is overloaded or sealed). Only these are retried and trip the breaker.
    pub fn is_transient(&self) -> bool {
        matches!(self, KmsError::Unavailable(_))
    }
}
