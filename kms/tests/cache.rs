//! The data-key cache, driven by a manual clock (no sleeping).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use coffer_crypto::{SecretKey, SeededEntropy};
use coffer_kms::{
    CacheConfig, DataKey, DataKeyCache, EncryptionContext, Kms, KmsError, LocalKms, ManualClock,
    DEFAULT_KEY_ID,
};

/// Counts the calls that reach the real provider.
struct Counting {
    inner: LocalKms,
    generated: AtomicUsize,
    decrypted: AtomicUsize,
}

#[async_trait]
impl Kms for Counting {
    fn provider(&self) -> &'static str {
        "counting"
    }
    async fn generate_data_key(
        &self,
        key_id: &str,
        ctx: &EncryptionContext,
    ) -> Result<DataKey, KmsError> {
        self.generated.fetch_add(1, Ordering::SeqCst);
        self.inner.generate_data_key(key_id, ctx).await
    }
    async fn decrypt_data_key(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<SecretKey, KmsError> {
        self.decrypted.fetch_add(1, Ordering::SeqCst);
        self.inner.decrypt_data_key(key_id, ciphertext, ctx).await
    }
    async fn create_key(&self, key_id: &str) -> Result<(), KmsError> {
        self.inner.create_key(key_id).await
    }
    async fn list_keys(&self) -> Result<Vec<String>, KmsError> {
        self.inner.list_keys().await
    }
    async fn key_exists(&self, key_id: &str) -> Result<bool, KmsError> {
        self.inner.key_exists(key_id).await
    }
    async fn health(&self) -> Result<(), KmsError> {
        self.inner.health().await
    }
}

fn setup(config: CacheConfig) -> (Arc<Counting>, Arc<ManualClock>, DataKeyCache) {
    let counting = Arc::new(Counting {
        inner: LocalKms::new(
            SecretKey::from_bytes([3; 32]),
            Arc::new(SeededEntropy::new(8)),
        ),
        generated: AtomicUsize::new(0),
        decrypted: AtomicUsize::new(0),
    });
    let clock = Arc::new(ManualClock::new());
    let cache = DataKeyCache::new(counting.clone(), clock.clone(), config);
    (counting, clock, cache)
}

fn ctx(bucket: &str) -> EncryptionContext {
    [("bucket", bucket)].into_iter().collect()
}

#[tokio::test]
async fn reuses_a_data_key_within_its_limits() {
    let (inner, clock, cache) = setup(CacheConfig::default());
    assert_eq!(cache.provider(), "counting");
    let a = cache
        .generate_data_key(DEFAULT_KEY_ID, &ctx("b1"))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(299));
    let b = cache
        .generate_data_key(DEFAULT_KEY_ID, &ctx("b1"))
        .await
        .unwrap();
    assert_eq!(a.plaintext, b.plaintext);
    assert_eq!(a.ciphertext, b.ciphertext);
    assert_eq!(inner.generated.load(Ordering::SeqCst), 1);
    // A different context is a different bucket key.
    let c = cache
        .generate_data_key(DEFAULT_KEY_ID, &ctx("b2"))
        .await
        .unwrap();
    assert_ne!(c.plaintext, a.plaintext);
    assert_eq!(inner.generated.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn fresh_key_after_lifetime() {
    let (inner, clock, cache) = setup(CacheConfig::default());
    let a = cache
        .generate_data_key(DEFAULT_KEY_ID, &ctx("b"))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(300));
    let b = cache
        .generate_data_key(DEFAULT_KEY_ID, &ctx("b"))
        .await
        .unwrap();
    assert_ne!(a.plaintext, b.plaintext);
    assert_eq!(inner.generated.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn fresh_key_after_use_count() {
    let config = CacheConfig {
        data_key_max_uses: 3,
        ..CacheConfig::default()
    };
    let (inner, _clock, cache) = setup(config);
    let mut keys = Vec::new();
    for _ in 0..7 {
        keys.push(
            cache
                .generate_data_key(DEFAULT_KEY_ID, &ctx("b"))
                .await
                .unwrap(),
        );
    }
    assert_eq!(inner.generated.load(Ordering::SeqCst), 3);
    assert_eq!(keys[0].plaintext, keys[2].plaintext);
    assert_ne!(keys[2].plaintext, keys[3].plaintext);
    assert_eq!(keys[3].plaintext, keys[5].plaintext);
    assert_ne!(keys[5].plaintext, keys[6].plaintext);
}

#[tokio::test]
async fn decrypted_keys_are_cached_for_a_bounded_time() {
    let (inner, clock, cache) = setup(CacheConfig::default());
    // Made without the cache, as an object written earlier would have been.
    let dk = inner
        .inner
        .generate_data_key(DEFAULT_KEY_ID, &ctx("b"))
        .await
        .unwrap();
    for _ in 0..3 {
        let got = cache
            .decrypt_data_key(DEFAULT_KEY_ID, &dk.ciphertext, &ctx("b"))
            .await
            .unwrap();
        assert_eq!(got, dk.plaintext);
    }
    assert_eq!(inner.decrypted.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_secs(301));
    cache
        .decrypt_data_key(DEFAULT_KEY_ID, &dk.ciphertext, &ctx("b"))
        .await
        .unwrap();
    assert_eq!(inner.decrypted.load(Ordering::SeqCst), 2);
    // A wrong context is not served from the cache, and its failure is not cached.
    assert_eq!(
        cache
            .decrypt_data_key(DEFAULT_KEY_ID, &dk.ciphertext, &ctx("x"))
            .await,
        Err(KmsError::InvalidCiphertext)
    );
    assert_eq!(cache.unwrapped_len(), 1);
}

#[tokio::test]
async fn generated_keys_decrypt_without_a_kms_call() {
    let (inner, _clock, cache) = setup(CacheConfig::default());
    let dk = cache
        .generate_data_key(DEFAULT_KEY_ID, &ctx("b"))
        .await
        .unwrap();
    let got = cache
        .decrypt_data_key(DEFAULT_KEY_ID, &dk.ciphertext, &ctx("b"))
        .await
        .unwrap();
    assert_eq!(got, dk.plaintext);
    assert_eq!(inner.decrypted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn entries_are_bounded() {
    let config = CacheConfig {
        max_entries: 4,
        ..CacheConfig::default()
    };
    let (inner, clock, cache) = setup(config);
    for i in 0..10 {
        clock.advance(Duration::from_millis(1));
        cache
            .generate_data_key(DEFAULT_KEY_ID, &ctx(&format!("b{i}")))
            .await
            .unwrap();
        assert!(cache.generated_len() <= 4);
        assert!(cache.unwrapped_len() <= 4);
    }
    assert_eq!(cache.generated_len(), 4);
    // The newest stayed, the oldest went.
    cache
        .generate_data_key(DEFAULT_KEY_ID, &ctx("b9"))
        .await
        .unwrap();
    assert_eq!(inner.generated.load(Ordering::SeqCst), 10);
    cache
        .generate_data_key(DEFAULT_KEY_ID, &ctx("b0"))
        .await
        .unwrap();
    assert_eq!(inner.generated.load(Ordering::SeqCst), 11);
    cache.clear();
    assert_eq!(cache.generated_len(), 0);
    assert_eq!(cache.unwrapped_len(), 0);
}

#[tokio::test]
async fn errors_pass_through_uncached() {
    let (_inner, _clock, cache) = setup(CacheConfig::default());
    assert_eq!(
        cache
            .generate_data_key("missing", &ctx("b"))
            .await
            .unwrap_err(),
        KmsError::KeyNotFound("missing".into())
    );
    assert_eq!(cache.generated_len(), 0);
    cache.create_key("missing").await.unwrap();
    assert!(cache.key_exists("missing").await.unwrap());
    assert_eq!(cache.list_keys().await.unwrap().len(), 2);
    cache.health().await.unwrap();
}

/// Records every lookup the cache reports.
#[derive(Default)]
struct Events(std::sync::Mutex<Vec<(&'static str, bool)>>);

impl coffer_kms::CacheEvents for Events {
    fn lookup(&self, operation: &'static str, hit: bool) {
        self.0.lock().unwrap().push((operation, hit));
    }
}

#[tokio::test]
async fn reports_hits_and_misses() {
    let (_inner, _clock, cache) = setup(CacheConfig::default());
    let events = Arc::new(Events::default());
    let cache = cache.with_events(events.clone());
    let dk = cache
        .generate_data_key(DEFAULT_KEY_ID, &ctx("b"))
        .await
        .unwrap();
    cache
        .generate_data_key(DEFAULT_KEY_ID, &ctx("b"))
        .await
        .unwrap();
    // The generated key's plaintext is cached for reads, so this decrypt hits.
    cache
        .decrypt_data_key(DEFAULT_KEY_ID, &dk.ciphertext, &ctx("b"))
        .await
        .unwrap();
    cache.clear();
    cache
        .decrypt_data_key(DEFAULT_KEY_ID, &dk.ciphertext, &ctx("b"))
        .await
        .unwrap();
    assert_eq!(
        *events.0.lock().unwrap(),
        vec![
            ("generate_data_key", false),
            ("generate_data_key", true),
            ("decrypt_data_key", true),
            ("decrypt_data_key", false),
        ]
    );
}
