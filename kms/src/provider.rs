//! The provider-neutral KMS interface.

use std::fmt;

use async_trait::async_trait;
use coffer_crypto::SecretKey;

use crate::context::EncryptionContext;
use crate::error::KmsError;

/// A fresh data key: the plaintext to use now, and the wrapped form to store.
#[derive(Clone)]
pub struct DataKey {
    /// The KMS key that wrapped it.
    pub key_id: String,
    /// Which version of that KMS key wrapped it (recorded so rotation keeps old data readable).
    pub key_version: u32,
    /// The data key itself; never stored, never logged.
    pub plaintext: SecretKey,
    /// The wrapped data key, opaque to everyone but the provider.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("key_id", &self.key_id)
            .field("key_version", &self.key_version)
            .field("plaintext", &self.plaintext)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// A key management service: wraps and unwraps data keys under named master keys.
///
/// Every provider binds the [`EncryptionContext`] as AAD, so a wrapped key only unwraps with the
/// exact context it was made with.
#[async_trait]
pub trait Kms: Send + Sync {
    /// Short provider name for logs and the admin API ("local", "vault", "aws").
    fn provider(&self) -> &'static str;
    /// Makes a new random data key wrapped under `key_id`.
    async fn generate_data_key(
        &self,
        key_id: &str,
        ctx: &EncryptionContext,
    ) -> Result<DataKey, KmsError>;
    /// Unwraps a data key made by `generate_data_key` with the same key id and context.
    async fn decrypt_data_key(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<SecretKey, KmsError>;
    /// Creates a new master key.
    async fn create_key(&self, key_id: &str) -> Result<(), KmsError>;
    /// Lists master key ids in sorted order.
    async fn list_keys(&self) -> Result<Vec<String>, KmsError>;
    /// Whether a master key exists.
    async fn key_exists(&self, key_id: &str) -> Result<bool, KmsError>;
    /// Checks that the provider can serve requests.
    async fn health(&self) -> Result<(), KmsError>;
}

/// Checks a key id: 1..=256 characters of `[A-Za-z0-9/_.:-]`.
pub fn validate_key_id(key_id: &str) -> Result<(), KmsError> {
    let ok = !key_id.is_empty()
        && key_id.len() <= 256
        && key_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_.:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(KmsError::InvalidKeyId(key_id.to_owned()))
    }
}
