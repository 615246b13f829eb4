//! Object keys: a fresh key per object, sealed under a KEK derived from a KMS data key or the
//! client's SSE-C key (house plan §3, step 2). Only sealed forms leave this module.

use std::collections::BTreeMap;
use std::sync::Arc;

use coffer_crypto::{CipherSuite, Entropy, SecretKey};
use coffer_kms::{EncryptionContext, Kms, KmsError};
use coffer_s3api::backend::{SseCustomerKey, StoreError};

use crate::manifest::{SseMode, SseRecord};

/// The local KMS's key, the default for SSE-S3 and for SSE-KMS without a named key.
pub use coffer_kms::DEFAULT_KEY_ID;

/// A new object key with its sealed record.
pub struct NewObjectKey {
    /// The plaintext object key, for this request's pipeline only.
    pub oek: SecretKey,
    /// What goes into the manifest.
    pub record: SseRecord,
}

/// How a new object's key is to be protected.
#[derive(Debug, Clone)]
pub struct KeySpec {
    /// SSE mode.
    pub mode: SseMode,
    /// KMS key, if not the default.
    pub kms_key_id: Option<String>,
    /// The client's SSE-KMS encryption context.
    pub kms_context: Option<BTreeMap<String, String>>,
    /// SSE-KMS: share a cached data key (S3 Bucket Key) instead of asking the KMS per object.
    pub bucket_key: bool,
    /// Data cipher.
    pub suite: CipherSuite,
}

/// Issues and opens object keys.
pub struct KeyService {
    kms: Arc<dyn Kms>,
    provider: Arc<dyn Kms>,
    entropy: Arc<dyn Entropy>,
    default_key: String,
}

impl KeyService {
    /// A key service over `kms` (normally a data-key cache in front of the provider).
    pub fn new(kms: Arc<dyn Kms>, entropy: Arc<dyn Entropy>) -> Self {
        Self {
            provider: kms.clone(),
            kms,
            entropy,
            default_key: DEFAULT_KEY_ID.to_string(),
        }
    }

    /// Uses `key_id` for SSE-S3 and for SSE-KMS without a named key (`COFFER_KMS_DEFAULT_KEY`).
    pub fn with_default_key(mut self, key_id: impl Into<String>) -> Self {
        self.default_key = key_id.into();
        self
    }

    /// The key SSE-S3 uses.
    pub fn default_key(&self) -> &str {
        &self.default_key
    }

    /// Uses `provider` directly for SSE-KMS objects without a bucket key (one data key each).
    pub fn with_provider(mut self, provider: Arc<dyn Kms>) -> Self {
        self.provider = provider;
        self
    }

    /// The KMS behind this service.
    pub fn kms(&self) -> &Arc<dyn Kms> {
        &self.kms
    }

    /// The provider without the data-key cache in front (admin operations go here).
    pub fn provider(&self) -> &Arc<dyn Kms> {
        &self.provider
    }

    /// The entropy seam.
    pub fn entropy(&self) -> &Arc<dyn Entropy> {
        &self.entropy
    }

    /// Seals `oek` (a fresh random key when `None`) for `bucket/key` as `spec` says.
    ///
    /// Re-sealing an existing object key changes how it is protected without touching the data.
    pub async fn seal(
        &self,
        bucket: &str,
        key: &str,
        spec: KeySpec,
        customer: Option<&SseCustomerKey>,
        oek: Option<SecretKey>,
    ) -> Result<NewObjectKey, StoreError> {
        let oek = oek.unwrap_or_else(|| SecretKey::random(self.entropy.as_ref()));
        let mode = spec.mode;
        let context = kek_context(mode, bucket, key);
        let mut record = SseRecord {
            mode,
            cipher: spec.suite.id(),
            kms_key_id: None,
            wrapped_data_key: None,
            sealed_oek: Vec::new(),
            ssec_salt: None,
            ssec_fingerprint: None,
            customer_key_md5: None,
            kms_context: None,
            bucket_key: false,
        };
        let kek = match mode {
            SseMode::Customer => {
                let c = customer.ok_or(StoreError::SseCustomerKeyMissing)?;
                let mut salt = vec![0u8; 32];
                self.entropy.fill(&mut salt);
                record.ssec_fingerprint =
                    Some(coffer_crypto::ssec_fingerprint(&c.key, &salt).to_vec());
                record.ssec_salt = Some(salt);
                record.customer_key_md5 = Some(c.key_md5.clone());
                coffer_crypto::ssec_kek(&c.key, &context)
            }
            SseMode::S3 | SseMode::Kms => {
                let key_id = spec.kms_key_id.unwrap_or_else(|| self.default_key.clone());
                let user_ctx = if mode == SseMode::Kms {
                    spec.kms_context.filter(|c| !c.is_empty())
                } else {
                    None
                };
                let ctx = kms_context(bucket, user_ctx.as_ref());
                // SSE-S3 always shares bucket keys; SSE-KMS only when asked, as in S3.
                let shared = mode == SseMode::S3 || spec.bucket_key;
                let kms = if shared { &self.kms } else { &self.provider };
                let dk = kms
                    .generate_data_key(&key_id, &ctx)
                    .await
                    .map_err(|e| kms_error(kms.provider(), e))?;
                record.kms_key_id = Some(dk.key_id.clone());
                record.wrapped_data_key = Some(dk.ciphertext.clone());
                record.kms_context = user_ctx;
                record.bucket_key = mode == SseMode::Kms && spec.bucket_key;
                coffer_crypto::derive_kek(&dk.plaintext, &context)
            }
        };
        record.sealed_oek = coffer_crypto::seal_key(&kek, &oek, &context, self.entropy.as_ref());
        Ok(NewObjectKey { oek, record })
    }

    /// Opens the object key of `bucket/key` from its record.
    pub async fn open(
        &self,
        bucket: &str,
        key: &str,
        record: &SseRecord,
        customer: Option<&SseCustomerKey>,
    ) -> Result<SecretKey, StoreError> {
        let context = kek_context(record.mode, bucket, key);
        let kek = match record.mode {
            SseMode::Customer => {
                let c = customer.ok_or(StoreError::SseCustomerKeyMissing)?;
                let (Some(salt), Some(fp)) = (&record.ssec_salt, &record.ssec_fingerprint) else {
                    return Err(StoreError::DataCorrupt);
                };
                if !coffer_crypto::ssec_verify(&c.key, salt, fp) {
                    return Err(StoreError::SseCustomerKeyMismatch);
                }
                coffer_crypto::ssec_kek(&c.key, &context)
            }
            SseMode::S3 | SseMode::Kms => {
                if customer.is_some() {
                    return Err(StoreError::SseNotApplicable);
                }
                let (Some(key_id), Some(wrapped)) = (&record.kms_key_id, &record.wrapped_data_key)
                else {
                    return Err(StoreError::DataCorrupt);
                };
                let dk = self
                    .kms
                    .decrypt_data_key(
                        key_id,
                        wrapped,
                        &kms_context(bucket, record.kms_context.as_ref()),
                    )
                    .await
                    .map_err(|e| kms_error(self.kms.provider(), e))?;
                coffer_crypto::derive_kek(&dk, &context)
            }
        };
        coffer_crypto::unseal_key(&kek, &record.sealed_oek, &context)
            .map_err(|_| StoreError::DataCorrupt)
    }

    /// The version new data keys under `key_id` get now; `None` when the provider exposes no
    /// versions (AWS KMS). Also drops cached data keys of `key_id`, so objects written from now
    /// on are wrapped under that version even if the key was rotated behind the cache's back.
    pub async fn current_version(&self, key_id: &str) -> Result<Option<u32>, StoreError> {
        self.kms.forget_generated(key_id);
        match self.provider.describe_key(key_id).await {
            Ok(info) => Ok(info.current_version),
            Err(KmsError::Unsupported { .. }) => Ok(None),
            Err(e) => Err(kms_error(self.provider.provider(), e)),
        }
    }

    /// The KMS key version recorded in a record's wrapped data key, if the provider records one.
    pub fn wrapped_version(&self, record: &SseRecord) -> Option<u32> {
        record
            .wrapped_data_key
            .as_deref()
            .and_then(|w| self.kms.wrapped_key_version(w))
    }

    /// `record` with its data key wrapped anew under the newest version of `to_key_id`. The data
    /// key itself is unchanged, so the sealed object key and the object's bytes stay valid.
    pub async fn rewrap(
        &self,
        bucket: &str,
        record: &SseRecord,
        to_key_id: &str,
    ) -> Result<SseRecord, StoreError> {
        let (Some(key_id), Some(wrapped)) = (&record.kms_key_id, &record.wrapped_data_key) else {
            return Err(StoreError::InvalidArgument(
                "only SSE-S3 and SSE-KMS objects have a KMS data key".into(),
            ));
        };
        let ctx = kms_context(bucket, record.kms_context.as_ref());
        let new = self
            .provider
            .rewrap_data_key(key_id, wrapped, &ctx, to_key_id)
            .await
            .map_err(|e| kms_error(self.provider.provider(), e))?;
        let mut out = record.clone();
        out.kms_key_id = Some(new.key_id);
        out.wrapped_data_key = Some(new.ciphertext);
        Ok(out)
    }

    /// The cipher suite of a record.
    pub fn suite_of(record: &SseRecord) -> Result<CipherSuite, StoreError> {
        CipherSuite::from_id(record.cipher).map_err(|_| StoreError::DataCorrupt)
    }
}

/// The KMS encryption context: the bucket plus the client's SSE-KMS context, so one data key can
/// serve many objects (as S3 Bucket Keys do); the object name is bound by the KEK derivation.
/// Client keys never start with `coffer:` (the S3 layer refuses them), so they cannot collide.
fn kms_context(bucket: &str, user: Option<&BTreeMap<String, String>>) -> EncryptionContext {
    let mut m = user.cloned().unwrap_or_default();
    m.insert("coffer:bucket".to_string(), bucket.to_string());
    EncryptionContext::from(m)
}

fn kek_context(mode: SseMode, bucket: &str, key: &str) -> Vec<u8> {
    let mut c = Vec::with_capacity(32 + bucket.len() + key.len());
    c.extend_from_slice(b"coffer/object-key/v1\0");
    c.extend_from_slice(mode.label().as_bytes());
    c.push(0);
    c.extend_from_slice(bucket.as_bytes());
    c.push(0);
    c.extend_from_slice(key.as_bytes());
    c
}

/// The one mapping from KMS failures to storage errors; `provider` names the KMS in the
/// client's message when it is unavailable.
pub fn kms_error(provider: &str, e: KmsError) -> StoreError {
    match e {
        KmsError::KeyNotFound(id) => StoreError::KmsKeyNotFound(id),
        KmsError::InvalidKeyId(id) => {
            StoreError::InvalidArgument(format!("invalid KMS key id {id}"))
        }
        KmsError::KeyUnusable { key_id, reason } => {
            StoreError::InvalidArgument(format!("KMS key {key_id} cannot be used: {reason}"))
        }
        KmsError::InvalidCiphertext => StoreError::DataCorrupt,
        KmsError::Unsupported { .. } | KmsError::KeyAlreadyExists(_) => {
            StoreError::Internal(e.to_string())
        }
        // Unreachable, refusing our credentials, or misconfigured: the client can only retry.
        KmsError::Unavailable(_) | KmsError::PermissionDenied(_) | KmsError::Config(_) => {
            tracing::warn!(provider, error = %e, "KMS call failed");
            StoreError::KmsUnavailable(provider.to_string())
        }
    }
}
