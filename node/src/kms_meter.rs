//! A [`Kms`] wrapper that counts and times every call reaching the provider, behind the
//! data-key cache: these are the KMS round trips an operator pays for.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use coffer_crypto::SecretKey;
use coffer_kms::{Capabilities, DataKey, EncryptionContext, KeyInfo, Kms, KmsError, Rewrapped};

use crate::metrics::Metrics;

/// Meters a provider.
pub struct MeteredKms {
    inner: Arc<dyn Kms>,
    metrics: Arc<Metrics>,
}

impl MeteredKms {
    /// Wraps `inner`, recording into `metrics`.
    pub fn new(inner: Arc<dyn Kms>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn record<T>(&self, op: &str, start: Instant, r: &Result<T, KmsError>) {
        self.metrics.record_kms_call(
            self.inner.provider(),
            op,
            r.is_ok(),
            start.elapsed().as_secs_f64(),
        );
    }
}

#[async_trait]
impl Kms for MeteredKms {
    fn provider(&self) -> &'static str {
        self.inner.provider()
    }

    async fn generate_data_key(
        &self,
        key_id: &str,
        ctx: &EncryptionContext,
    ) -> Result<DataKey, KmsError> {
        let start = Instant::now();
        let r = self.inner.generate_data_key(key_id, ctx).await;
        self.record("generate_data_key", start, &r);
        r
    }

    async fn decrypt_data_key(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<SecretKey, KmsError> {
        let start = Instant::now();
        let r = self.inner.decrypt_data_key(key_id, ciphertext, ctx).await;
        self.record("decrypt_data_key", start, &r);
        r
    }

    async fn create_key(&self, key_id: &str) -> Result<(), KmsError> {
        let start = Instant::now();
        let r = self.inner.create_key(key_id).await;
        self.record("create_key", start, &r);
        r
    }

    async fn list_keys(&self) -> Result<Vec<String>, KmsError> {
        let start = Instant::now();
        let r = self.inner.list_keys().await;
        self.record("list_keys", start, &r);
        r
    }

    async fn key_exists(&self, key_id: &str) -> Result<bool, KmsError> {
        let start = Instant::now();
        let r = self.inner.key_exists(key_id).await;
        self.record("key_exists", start, &r);
        r
    }

    async fn health(&self) -> Result<(), KmsError> {
        let start = Instant::now();
        let r = self.inner.health().await;
        self.record("health", start, &r);
        r
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn describe_key(&self, key_id: &str) -> Result<KeyInfo, KmsError> {
        let start = Instant::now();
        let r = self.inner.describe_key(key_id).await;
        self.record("describe_key", start, &r);
        r
    }

    async fn rotate_key(&self, key_id: &str) -> Result<KeyInfo, KmsError> {
        let start = Instant::now();
        let r = self.inner.rotate_key(key_id).await;
        self.record("rotate_key", start, &r);
        r
    }

    async fn set_key_enabled(&self, key_id: &str, enabled: bool) -> Result<(), KmsError> {
        let start = Instant::now();
        let r = self.inner.set_key_enabled(key_id, enabled).await;
        self.record("set_key_enabled", start, &r);
        r
    }

    async fn rewrap_data_key(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        ctx: &EncryptionContext,
        to_key_id: &str,
    ) -> Result<Rewrapped, KmsError> {
        let start = Instant::now();
        let r = self
            .inner
            .rewrap_data_key(key_id, ciphertext, ctx, to_key_id)
            .await;
        self.record("rewrap_data_key", start, &r);
        r
    }

    fn wrapped_key_version(&self, ciphertext: &[u8]) -> Option<u32> {
        self.inner.wrapped_key_version(ciphertext)
    }
}
