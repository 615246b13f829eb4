//! The built-in KMS: master keys derived from one root key, so nothing but the root and the
//! key registry (ids, versions, states; `local_registry.rs`) has to survive a restart. Blob
//! layout: docs/format/object-encryption.md.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use coffer_crypto::{
    derive_key, seal_key, unseal_key, Entropy, SecretKey, SEALED_KEY_LEN, SEALED_KEY_LEN_V1,
};

use crate::context::EncryptionContext;
use crate::error::KmsError;
use crate::local_registry::{LocalKeyRecord, LocalKeyRegistry};
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

// Every key starts at version 1; rotation adds versions and keeps old ones readable.
const FIRST_VERSION: u32 = 1;
/// Compare-and-set attempts of a registry change before giving up on a busy key.
const CAS_ATTEMPTS: usize = 5;

/// The local KMS provider.
pub struct LocalKms {
    root: SecretKey,
    entropy: Arc<dyn Entropy>,
    keys: RwLock<BTreeMap<String, LocalKeyRecord>>,
    // Without one, keys live only in memory and cannot rotate (a rotation that a restart
    // forgets would make the new version's data unreadable).
    registry: RwLock<Option<Arc<dyn LocalKeyRegistry>>>,
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
        let mut keys: BTreeMap<String, LocalKeyRecord> = ids
            .into_iter()
            .filter(|id| validate_key_id(id).is_ok())
            .map(|id| (id.clone(), LocalKeyRecord::new(&id)))
            .collect();
        keys.insert(
            DEFAULT_KEY_ID.to_owned(),
            LocalKeyRecord::new(DEFAULT_KEY_ID),
        );
        Self {
            root: root_key,
            entropy,
            keys: RwLock::new(keys),
            registry: RwLock::new(None),
        }
    }

    /// Keeps the key registry in `registry` from now on (the node passes its Raft-backed one)
    /// and loads what it holds; keys created before stay known.
    pub async fn attach_registry(
        &self,
        registry: Arc<dyn LocalKeyRegistry>,
    ) -> Result<(), KmsError> {
        *self.registry.write().unwrap_or_else(|e| e.into_inner()) = Some(registry);
        self.refresh().await
    }

    fn registry(&self) -> Option<Arc<dyn LocalKeyRegistry>> {
        self.registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reloads the registry (another node may have created or rotated a key).
    async fn refresh(&self) -> Result<(), KmsError> {
        let Some(reg) = self.registry() else {
            return Ok(());
        };
        let records = reg.load().await?;
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        for r in records {
            if validate_key_id(&r.key_id).is_ok() && r.current_version >= FIRST_VERSION {
                keys.insert(r.key_id.clone(), r);
            }
        }
        Ok(())
    }

    fn cached(&self, key_id: &str) -> Option<LocalKeyRecord> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        keys.get(key_id).cloned()
    }

    /// The key's record; an unknown id (or one whose `version` this node has not seen yet) is
    /// looked up in the registry again before it counts as missing.
    async fn record(&self, key_id: &str, version: Option<u32>) -> Result<LocalKeyRecord, KmsError> {
        validate_key_id(key_id)?;
        match self.cached(key_id) {
            Some(r) if version.is_none_or(|v| v <= r.current_version) => return Ok(r),
            _ => {}
        }
        self.refresh().await?;
        self.cached(key_id)
            .ok_or_else(|| KmsError::KeyNotFound(key_id.to_owned()))
    }

    async fn usable(&self, key_id: &str, version: Option<u32>) -> Result<LocalKeyRecord, KmsError> {
        let r = self.record(key_id, version).await?;
        if !r.enabled {
            return Err(KmsError::KeyUnusable {
                key_id: key_id.to_owned(),
                reason: "the key is disabled".into(),
            });
        }
        Ok(r)
    }

    /// Read-modify-write of one key's record through the registry, retried on a lost race.
    async fn change(
        &self,
        key_id: &str,
        operation: &'static str,
        f: impl Fn(&LocalKeyRecord) -> LocalKeyRecord,
    ) -> Result<LocalKeyRecord, KmsError> {
        let Some(reg) = self.registry() else {
            return Err(self.unsupported(operation));
        };
        for _ in 0..CAS_ATTEMPTS {
            let old = self.record(key_id, None).await?;
            let new = f(&old);
            // The default key exists without a stored record until its first change.
            let stored = reg.load().await?.into_iter().find(|r| r.key_id == key_id);
            if stored.as_ref().is_some_and(|s| *s != old) {
                self.refresh().await?;
                continue;
            }
            if reg.store(&new, stored.as_ref()).await? {
                let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
                keys.insert(key_id.to_owned(), new.clone());
                return Ok(new);
            }
            self.refresh().await?;
        }
        Err(KmsError::Unavailable(format!(
            "the local key registry kept changing under {operation} of {key_id}"
        )))
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
        let version = self.usable(key_id, None).await?.current_version;
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
        validate_key_id(key_id)?;
        let known_len = matches!(ciphertext.len(), LOCAL_BLOB_LEN | LOCAL_BLOB_LEN_SEALED_V1);
        if !known_len || ciphertext[0] != LOCAL_BLOB_VERSION {
            return Err(KmsError::InvalidCiphertext);
        }
        // unseal_key checks that the sealed key's own version byte matches its length.
        let version = u32::from_be_bytes(ciphertext[1..5].try_into().expect("4 bytes"));
        let rec = self.usable(key_id, Some(version)).await?;
        if version == 0 || version > rec.current_version {
            return Err(KmsError::InvalidCiphertext);
        }
        if version < rec.min_decryption_version {
            return Err(KmsError::KeyUnusable {
                key_id: key_id.to_owned(),
                reason: format!(
                    "version {version} is below min_decryption_version {}",
                    rec.min_decryption_version
                ),
            });
        }
        let master = self.master_key(key_id, version);
        unseal_key(&master, &ciphertext[5..], &wrap_aad(key_id, version, ctx))
            .map_err(|_| KmsError::InvalidCiphertext)
    }

    async fn create_key(&self, key_id: &str) -> Result<(), KmsError> {
        validate_key_id(key_id)?;
        self.refresh().await?;
        let exists = || KmsError::KeyAlreadyExists(key_id.to_owned());
        if self.cached(key_id).is_some() {
            return Err(exists());
        }
        let rec = LocalKeyRecord::new(key_id);
        if let Some(reg) = self.registry() {
            if !reg.store(&rec, None).await? {
                self.refresh().await?;
                return Err(exists());
            }
        }
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        if keys.contains_key(key_id) {
            return Err(exists());
        }
        keys.insert(key_id.to_owned(), rec);
        Ok(())
    }

    async fn list_keys(&self) -> Result<Vec<String>, KmsError> {
        self.refresh().await?;
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        Ok(keys.keys().cloned().collect())
    }

    async fn key_exists(&self, key_id: &str) -> Result<bool, KmsError> {
        match self.record(key_id, None).await {
            Ok(_) => Ok(true),
            Err(KmsError::KeyNotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn health(&self) -> Result<(), KmsError> {
        Ok(())
    }

    // Rotation and enable/disable need the registry: a change a restart forgets would make
    // data written under it unreadable.
    fn capabilities(&self) -> Capabilities {
        let persistent = self.registry().is_some();
        Capabilities {
            create: true,
            versions: true,
            rewrap: true,
            rotate: persistent,
            enable_disable: persistent,
        }
    }

    async fn describe_key(&self, key_id: &str) -> Result<KeyInfo, KmsError> {
        // An admin question: answer from the registry, not from what this node last saw.
        validate_key_id(key_id)?;
        self.refresh().await?;
        Ok(info(&self.record(key_id, None).await?))
    }

    async fn rotate_key(&self, key_id: &str) -> Result<KeyInfo, KmsError> {
        let rec = self
            .change(key_id, "rotate_key", |r| LocalKeyRecord {
                current_version: r.current_version + 1,
                ..r.clone()
            })
            .await?;
        Ok(info(&rec))
    }

    async fn set_key_enabled(&self, key_id: &str, enabled: bool) -> Result<(), KmsError> {
        self.change(key_id, "set_key_enabled", |r| LocalKeyRecord {
            enabled,
            ..r.clone()
        })
        .await
        .map(|_| ())
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
        let version = self.usable(to_key_id, None).await?.current_version;
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

fn info(r: &LocalKeyRecord) -> KeyInfo {
    KeyInfo {
        key_id: r.key_id.clone(),
        provider_key_id: None,
        state: if r.enabled {
            KeyState::Enabled
        } else {
            KeyState::Disabled
        },
        current_version: Some(r.current_version),
        min_decryption_version: Some(r.min_decryption_version),
        versions: (r.min_decryption_version..=r.current_version).collect(),
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
