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
    /// Which version of that KMS key wrapped it (recorded so rotation keeps old data readable;
    /// 0 when the provider does not expose versions, as AWS KMS does not).
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

    /// What this provider can do beyond data keys (for the admin API and start-up checks).
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// A key's state and versions.
    async fn describe_key(&self, key_id: &str) -> Result<KeyInfo, KmsError> {
        let _ = key_id;
        Err(self.unsupported("describe_key"))
    }

    /// Adds a new version to a key; new data keys use it, old ones stay readable.
    async fn rotate_key(&self, key_id: &str) -> Result<KeyInfo, KmsError> {
        let _ = key_id;
        Err(self.unsupported("rotate_key"))
    }

    /// Enables or disables a key (a disabled key neither wraps nor unwraps).
    async fn set_key_enabled(&self, key_id: &str, enabled: bool) -> Result<(), KmsError> {
        let _ = (key_id, enabled);
        Err(self.unsupported("set_key_enabled"))
    }

    /// Re-wraps a data key under the newest version of `to_key_id` (which may be the key that
    /// wrapped it) without the caller seeing the plaintext where the provider allows that.
    async fn rewrap_data_key(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        ctx: &EncryptionContext,
        to_key_id: &str,
    ) -> Result<Rewrapped, KmsError> {
        let _ = (key_id, ciphertext, ctx, to_key_id);
        Err(self.unsupported("rewrap_data_key"))
    }

    /// The key version recorded in a wrapped data key made by this provider, when the
    /// provider's blob carries one (local: its header; Vault: the `vault:vN:` prefix).
    fn wrapped_key_version(&self, ciphertext: &[u8]) -> Option<u32> {
        let _ = ciphertext;
        None
    }

    /// Drops cached data keys that new objects would get under `key_id`, so the next one is made
    /// under the key's newest version (after a rotation the cache did not see). Only caches act.
    fn forget_generated(&self, key_id: &str) {
        let _ = key_id;
    }

    /// The typed "not supported" error of this provider.
    fn unsupported(&self, operation: &'static str) -> KmsError {
        KmsError::Unsupported {
            provider: self.provider(),
            operation,
        }
    }
}

/// What a provider supports beyond generating and unwrapping data keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    /// `create_key`.
    pub create: bool,
    /// `rotate_key`.
    pub rotate: bool,
    /// `set_key_enabled`.
    pub enable_disable: bool,
    /// `describe_key` reports versions.
    pub versions: bool,
    /// `rewrap_data_key`.
    pub rewrap: bool,
}

/// The state of a KMS key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Usable for new data keys and for unwrapping.
    Enabled,
    /// Neither wraps nor unwraps until enabled again.
    Disabled,
    /// Scheduled for deletion (AWS); unusable.
    PendingDeletion,
    /// Some other provider state (e.g. AWS `PendingImport`); unusable.
    Other,
}

/// What [`Kms::describe_key`] reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    /// The key id as asked for.
    pub key_id: String,
    /// The provider's canonical name of the key (AWS: the key ARN), when it has one.
    pub provider_key_id: Option<String>,
    /// State.
    pub state: KeyState,
    /// Version new data keys are wrapped under, when the provider exposes versions.
    pub current_version: Option<u32>,
    /// Oldest version that still unwraps, when the provider exposes versions.
    pub min_decryption_version: Option<u32>,
    /// Every version the provider knows, ascending (empty when it does not expose versions).
    pub versions: Vec<u32>,
}

/// A data key wrapped anew by [`Kms::rewrap_data_key`].
#[derive(Clone, PartialEq, Eq)]
pub struct Rewrapped {
    /// The key that wraps it now (canonical provider name where there is one).
    pub key_id: String,
    /// Which version of that key wraps it (0 when the provider does not expose versions).
    pub key_version: u32,
    /// The new wrapped data key.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Rewrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rewrapped")
            .field("key_id", &self.key_id)
            .field("key_version", &self.key_version)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
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
