//! The built-in KMS: master keys derived from one root key, so nothing but the root and the
//! list of key ids has to survive a restart. Blob layout: docs/format/object-encryption.md.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use coffer_crypto::{
    derive_key, seal_key, unseal_key, Entropy, SecretKey, SEALED_KEY_LEN, SEALED_KEY_LEN_V1,
};

use crate::context::EncryptionContext;
use crate::error::KmsError;
use crate::provider::{validate_key_id, Capabilities, DataKey, KeyInfo, KeyState, Kms, Rewrapped};

/// The key id that always exists in the local KMS.
pub const DEFAULT_KEY_ID: &str = "coffer-default";
/// HKDF label of the local KMS's master keys.
pub const LOCAL_KEY_LABEL: &str = "coffer/kms-local/v1";
/// Version byte of the local KMS's wrapped-key blob.
///
/// The blob is `version ‖ key version (u32 BE) ‖ sealed key`; the sealed key carries its own
/// version byte, so moving it from sealed-key version 1 to 2 did not change this layout.
pub const LOCAL_BLOB_VERSION: u8 = 1;
/// Length of the blob written now: version ‖ key version (u32) ‖ sealed key (version 2).
pub const LOCAL_BLOB_LEN: usize = 1 + 4 + SEALED_KEY_LEN;
/// Length of the blobs written before sealed keys had version 2 (66 bytes); still readable.
const LOCAL_BLOB_LEN_SEALED_V1: usize = 1 + 4 + SEALED_KEY_LEN_V1;

// Every key starts at version 1; rotation (later) will add versions and keep old ones readable.
const FIRST_VERSION: u32 = 1;

/// The local KMS provider.
pub struct LocalKms {
    root: SecretKey,
    entropy: Arc<dyn Entropy>,
    // key id -> current version
    keys: RwLock<BTreeMap<String, u32>>,
}

impl LocalKms {
    /// A local KMS holding only [`DEFAULT_KEY_ID`].
    pub fn new(root_key: SecretKey, entropy: Arc<dyn Entropy>) -> Self {
        Self::with_keys(root_key, entropy, std::iter::empty())
    }

    /// A local KMS that also knows the given key ids (restored from the cluster's registry).
    ///
    /// Invalid ids are skipped: they could never have been created.
    pub fn with_keys(
        root_key: SecretKey,
        entropy: Arc<dyn Entropy>,
        ids: impl IntoIterator<Item = String>,
    ) -> Self {
        let mut keys: BTreeMap<String, u32> = ids
            .into_iter()
            .filter(|id| validate_key_id(id).is_ok())
            .map(|id| (id, FIRST_VERSION))
            .collect();
        keys.insert(DEFAULT_KEY_ID.to_owned(), FIRST_VERSION);
        Self {
            root: root_key,
            entropy,
            keys: RwLock::new(keys),
        }
    }

    fn current_version(&self, key_id: &str) -> Result<u32, KmsError> {
        validate_key_id(key_id)?;
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key_id)
            .copied()
            .ok_or_else(|| KmsError::KeyNotFound(key_id.to_owned()))
    }

    fn master_key(&self, key_id: &str, version: u32) -> SecretKey {
        // The version is fixed-width at the end, so (id, version) pairs cannot collide.
        let mut info = Vec::with_capacity(key_id.len() + 4);
        info.extend_from_slice(key_id.as_bytes());
        info.extend_from_slice(&version.to_be_bytes());
        derive_key(&self.root, LOCAL_KEY_LABEL, &info)
    }

    /// The blob: version ‖ key version ‖ data key sealed under that version's master key.
    fn wrap(&self, key_id: &str, version: u32, dk: &SecretKey, ctx: &EncryptionContext) -> Vec<u8> {
        let master = self.master_key(key_id, version);
        let sealed = seal_key(
            &master,
            dk,
            &wrap_aad(key_id, version, ctx),
            self.entropy.as_ref(),
        );
        let mut ciphertext = Vec::with_capacity(LOCAL_BLOB_LEN);
        ciphertext.push(LOCAL_BLOB_VERSION);
        ciphertext.extend_from_slice(&version.to_be_bytes());
        ciphertext.extend_from_slice(&sealed);
        ciphertext
    }
}

fn wrap_aad(key_id: &str, version: u32, ctx: &EncryptionContext) -> Vec<u8> {
    let ctx = ctx.canonical_bytes();
    let mut aad = Vec::with_capacity(4 + key_id.len() + 4 + ctx.len());
    aad.extend_from_slice(&(key_id.len() as u32).to_be_bytes());
    aad.extend_from_slice(key_id.as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad.extend_from_slice(&ctx);
    aad
}

#[async_trait]
impl Kms for LocalKms {
    fn provider(&self) -> &'static str {
        "local"
    }

    async fn generate_data_key(
        &self,
        key_id: &str,
        ctx: &EncryptionContext,
    ) -> Result<DataKey, KmsError> {
        let version = self.current_version(key_id)?;
        let plaintext = SecretKey::random(self.entropy.as_ref());
        let ciphertext = self.wrap(key_id, version, &plaintext, ctx);
        Ok(DataKey {
            key_id: key_id.to_owned(),
            key_version: version,
            plaintext,
            ciphertext,
        })
    }

    async fn decrypt_data_key(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<SecretKey, KmsError> {
        let current = self.current_version(key_id)?;
        let known_len = matches!(ciphertext.len(), LOCAL_BLOB_LEN | LOCAL_BLOB_LEN_SEALED_V1);
        if !known_len || ciphertext[0] != LOCAL_BLOB_VERSION {
            return Err(KmsError::InvalidCiphertext);
        }
        // unseal_key checks that the sealed key's own version byte matches its length.
        let version = u32::from_be_bytes(ciphertext[1..5].try_into().expect("4 bytes"));
        if version == 0 || version > current {
            return Err(KmsError::InvalidCiphertext);
        }
        let master = self.master_key(key_id, version);
        unseal_key(&master, &ciphertext[5..], &wrap_aad(key_id, version, ctx))
            .map_err(|_| KmsError::InvalidCiphertext)
    }

    async fn create_key(&self, key_id: &str) -> Result<(), KmsError> {
        validate_key_id(key_id)?;
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        if keys.contains_key(key_id) {
            return Err(KmsError::KeyAlreadyExists(key_id.to_owned()));
        }
        keys.insert(key_id.to_owned(), FIRST_VERSION);
        Ok(())
    }

    async fn list_keys(&self) -> Result<Vec<String>, KmsError> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        Ok(keys.keys().cloned().collect())
    }

    async fn key_exists(&self, key_id: &str) -> Result<bool, KmsError> {
        validate_key_id(key_id)?;
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        Ok(keys.contains_key(key_id))
    }

    async fn health(&self) -> Result<(), KmsError> {
        Ok(())
    }

    // Rotation, enable/disable and the replicated key registry come with the local key
    // registry in Raft; until then those answer `Unsupported`.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            create: true,
            versions: true,
            rewrap: true,
            ..Capabilities::default()
        }
    }

    async fn describe_key(&self, key_id: &str) -> Result<KeyInfo, KmsError> {
        let current = self.current_version(key_id)?;
        Ok(KeyInfo {
            key_id: key_id.to_owned(),
            provider_key_id: None,
            state: KeyState::Enabled,
            current_version: Some(current),
            min_decryption_version: Some(FIRST_VERSION),
            versions: (FIRST_VERSION..=current).collect(),
        })
    }

    async fn rewrap_data_key(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        ctx: &EncryptionContext,
        to_key_id: &str,
    ) -> Result<Rewrapped, KmsError> {
        // Local keys live in this process, so unwrapping here is no extra exposure.
        let dk = self.decrypt_data_key(key_id, ciphertext, ctx).await?;
        let version = self.current_version(to_key_id)?;
        Ok(Rewrapped {
            key_id: to_key_id.to_owned(),
            key_version: version,
            ciphertext: self.wrap(to_key_id, version, &dk, ctx),
        })
    }

    fn wrapped_key_version(&self, ciphertext: &[u8]) -> Option<u32> {
        match ciphertext {
            [LOCAL_BLOB_VERSION, a, b, c, d, ..] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
            _ => None,
        }
    }
}

impl fmt::Debug for LocalKms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.keys.read().map(|k| k.len()).unwrap_or(0);
        f.debug_struct("LocalKms")
            .field("keys", &count)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_crypto::{Cipher, CipherSuite, SeededEntropy};

    /// A blob as written before sealed keys had version 2: `01 ‖ key version ‖ 01 ‖ nonce ‖
    /// AES-256-GCM(master, nonce, 01 ‖ wrap AAD, data key)`, 66 bytes.
    fn old_blob(kms: &LocalKms, key_id: &str, ctx: &EncryptionContext, dk: &SecretKey) -> Vec<u8> {
        let nonce = [7u8; 12];
        let mut aad = vec![1u8];
        aad.extend_from_slice(&wrap_aad(key_id, FIRST_VERSION, ctx));
        let mut blob = vec![LOCAL_BLOB_VERSION];
        blob.extend_from_slice(&FIRST_VERSION.to_be_bytes());
        blob.push(1);
        blob.extend_from_slice(&nonce);
        let master = kms.master_key(key_id, FIRST_VERSION);
        Cipher::new(CipherSuite::Aes256Gcm, &master).seal_append(
            &nonce,
            &aad,
            dk.as_bytes(),
            &mut blob,
        );
        blob
    }

    #[tokio::test]
    async fn blobs_with_a_version_1_sealed_key_stay_readable() {
        let kms = LocalKms::new(
            SecretKey::from_bytes([0x5A; 32]),
            Arc::new(SeededEntropy::new(1)),
        );
        let ctx: EncryptionContext = [("bucket", "photos")].into_iter().collect();
        let dk = SecretKey::from_bytes([0x42; 32]);
        let blob = old_blob(&kms, DEFAULT_KEY_ID, &ctx, &dk);
        assert_eq!(blob.len(), 66);
        assert_eq!(blob.len(), LOCAL_BLOB_LEN_SEALED_V1);
        let got = kms
            .decrypt_data_key(DEFAULT_KEY_ID, &blob, &ctx)
            .await
            .unwrap();
        assert_eq!(got, dk);
        let other: EncryptionContext = [("bucket", "other")].into_iter().collect();
        assert_eq!(
            kms.decrypt_data_key(DEFAULT_KEY_ID, &blob, &other).await,
            Err(KmsError::InvalidCiphertext)
        );
        // New blobs are one byte longer (the sealed key's algorithm id).
        let new = kms.generate_data_key(DEFAULT_KEY_ID, &ctx).await.unwrap();
        assert_eq!(new.ciphertext.len(), 67);
        assert_eq!(new.ciphertext[5], 2, "sealed key version 2");
        // A new blob cut to the old length, or an old one padded, does not open.
        for bad in [
            new.ciphertext[..66].to_vec(),
            [&blob[..], &[0u8][..]].concat(),
        ] {
            assert_eq!(
                kms.decrypt_data_key(DEFAULT_KEY_ID, &bad, &ctx).await,
                Err(KmsError::InvalidCiphertext)
            );
        }
    }
}
