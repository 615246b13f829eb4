//! A bounded data-key cache in front of any provider (like S3 Bucket Keys): new objects reuse
//! a data key for a limited time and number of uses, and reads reuse unwrapped keys for a
//! limited time, so a busy bucket does not make one KMS call per object or multipart part.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use coffer_crypto::SecretKey;

use crate::clock::{CacheClock, TokioClock};
use crate::context::EncryptionContext;
use crate::error::KmsError;
use crate::provider::{Capabilities, DataKey, KeyInfo, Kms, Rewrapped};

/// Limits of a [`DataKeyCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long a generated data key is handed to new objects.
    pub data_key_ttl: Duration,
    /// How many times a generated data key is handed out before a fresh one is made.
    pub data_key_max_uses: u64,
    /// How long an unwrapped data key is kept for reads.
    pub decrypted_key_ttl: Duration,
    /// Most entries in each of the two maps (generated, unwrapped).
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            data_key_ttl: Duration::from_secs(300),
            data_key_max_uses: 10_000,
            decrypted_key_ttl: Duration::from_secs(300),
            max_entries: 1024,
        }
    }
}

struct Generated {
    key: DataKey,
    created: Instant,
    uses: u64,
}

struct Unwrapped {
    key: SecretKey,
    created: Instant,
}

type GenKey = (String, Vec<u8>);
type UnwrapKey = (String, Vec<u8>, Vec<u8>);

#[derive(Default)]
struct State {
    generated: HashMap<GenKey, Generated>,
    unwrapped: HashMap<UnwrapKey, Unwrapped>,
}

/// Receives the outcome of every cache lookup (for hit/miss metrics).
pub trait CacheEvents: Send + Sync {
    /// A lookup for `operation` (`"generate_data_key"` or `"decrypt_data_key"`) hit or missed.
    fn lookup(&self, operation: &'static str, hit: bool);
}

/// A [`Kms`] that caches another one's data keys within bounded lifetime, uses and size.
///
/// Evicted keys are dropped, and [`SecretKey`] zeroizes on drop.
pub struct DataKeyCache {
    inner: Arc<dyn Kms>,
    clock: Arc<dyn CacheClock>,
    config: CacheConfig,
    state: Mutex<State>,
    events: Option<Arc<dyn CacheEvents>>,
}

impl DataKeyCache {
    /// Wraps `inner` with the given clock and limits.
    pub fn new(inner: Arc<dyn Kms>, clock: Arc<dyn CacheClock>, config: CacheConfig) -> Self {
        Self {
            inner,
            clock,
            config,
            state: Mutex::new(State::default()),
            events: None,
        }
    }

    /// Wraps `inner` with the production clock and default limits.
    pub fn with_defaults(inner: Arc<dyn Kms>) -> Self {
        Self::new(inner, Arc::new(TokioClock), CacheConfig::default())
    }

    /// Reports every lookup to `events`.
    pub fn with_events(mut self, events: Arc<dyn CacheEvents>) -> Self {
        self.events = Some(events);
        self
    }

    fn report(&self, operation: &'static str, hit: bool) {
        if let Some(e) = &self.events {
            e.lookup(operation, hit);
        }
    }

    /// The limits in force.
    pub fn config(&self) -> CacheConfig {
        self.config
    }

    /// Number of cached generated data keys (expired ones may linger until the next insert).
    pub fn generated_len(&self) -> usize {
        self.lock().generated.len()
    }

    /// Number of cached unwrapped data keys (expired ones may linger until the next insert).
    pub fn unwrapped_len(&self) -> usize {
        self.lock().unwrapped.len()
    }

    /// Drops every cached key (e.g. after a KMS key is disabled).
    pub fn clear(&self) {
        let mut state = self.lock();
        state.generated.clear();
        state.unwrapped.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Entries are only inserted or removed whole, so a poisoned map is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn generated_live(&self, entry: &Generated, now: Instant) -> bool {
        now.saturating_duration_since(entry.created) < self.config.data_key_ttl
            && entry.uses < self.config.data_key_max_uses
    }

    fn unwrapped_live(&self, entry: &Unwrapped, now: Instant) -> bool {
        now.saturating_duration_since(entry.created) < self.config.decrypted_key_ttl
    }

    fn insert_generated(&self, state: &mut State, key: GenKey, entry: Generated, now: Instant) {
        if self.config.max_entries == 0 {
            return;
        }
        if !state.generated.contains_key(&key) && state.generated.len() >= self.config.max_entries {
            state.generated.retain(|_, e| self.generated_live(e, now));
            evict_oldest(&mut state.generated, self.config.max_entries, |e| e.created);
        }
        state.generated.insert(key, entry);
    }

    fn insert_unwrapped(&self, state: &mut State, key: UnwrapKey, entry: Unwrapped, now: Instant) {
        if self.config.max_entries == 0 {
            return;
        }
        if !state.unwrapped.contains_key(&key) && state.unwrapped.len() >= self.config.max_entries {
            state.unwrapped.retain(|_, e| self.unwrapped_live(e, now));
            evict_oldest(&mut state.unwrapped, self.config.max_entries, |e| e.created);
        }
        state.unwrapped.insert(key, entry);
    }
}

// Makes room for one more entry by dropping the oldest; linear, but the maps are small.
fn evict_oldest<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    max: usize,
    created: impl Fn(&V) -> Instant,
) {
    while map.len() >= max {
        let Some(oldest) = map
            .iter()
            .min_by_key(|(_, v)| created(v))
            .map(|(k, _)| k.clone())
        else {
            return;
        };
        map.remove(&oldest);
    }
}

#[async_trait]
impl Kms for DataKeyCache {
    fn provider(&self) -> &'static str {
        self.inner.provider()
    }

    async fn generate_data_key(
        &self,
        key_id: &str,
        ctx: &EncryptionContext,
    ) -> Result<DataKey, KmsError> {
        let cache_key = (key_id.to_owned(), ctx.canonical_bytes());
        {
            let now = self.clock.now();
            let mut state = self.lock();
            if let Some(entry) = state.generated.get_mut(&cache_key) {
                if self.generated_live(entry, now) {
                    entry.uses += 1;
                    let key = entry.key.clone();
                    drop(state);
                    self.report("generate_data_key", true);
                    return Ok(key);
                }
                state.generated.remove(&cache_key);
            }
        }
        self.report("generate_data_key", false);
        // No lock across the call: a slow KMS must not stall reads that hit the cache.
        let fresh = self.inner.generate_data_key(key_id, ctx).await?;
        let now = self.clock.now();
        let mut state = self.lock();
        let unwrap_key = (
            key_id.to_owned(),
            fresh.ciphertext.clone(),
            cache_key.1.clone(),
        );
        let unwrapped = Unwrapped {
            key: fresh.plaintext.clone(),
            created: now,
        };
        self.insert_unwrapped(&mut state, unwrap_key, unwrapped, now);
        let entry = Generated {
            key: fresh.clone(),
            created: now,
            uses: 1,
        };
        self.insert_generated(&mut state, cache_key, entry, now);
        Ok(fresh)
    }

    async fn decrypt_data_key(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<SecretKey, KmsError> {
        let cache_key = (
            key_id.to_owned(),
            ciphertext.to_vec(),
            ctx.canonical_bytes(),
        );
        {
            let now = self.clock.now();
            let mut state = self.lock();
            if let Some(entry) = state.unwrapped.get(&cache_key) {
                if self.unwrapped_live(entry, now) {
                    let key = entry.key.clone();
                    drop(state);
                    self.report("decrypt_data_key", true);
                    return Ok(key);
                }
                state.unwrapped.remove(&cache_key);
            }
        }
        self.report("decrypt_data_key", false);
        let key = self.inner.decrypt_data_key(key_id, ciphertext, ctx).await?;
        let now = self.clock.now();
        let mut state = self.lock();
        let entry = Unwrapped {
            key: key.clone(),
            created: now,
        };
        self.insert_unwrapped(&mut state, cache_key, entry, now);
        Ok(key)
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

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn describe_key(&self, key_id: &str) -> Result<KeyInfo, KmsError> {
        self.inner.describe_key(key_id).await
    }

    async fn rotate_key(&self, key_id: &str) -> Result<KeyInfo, KmsError> {
        let info = self.inner.rotate_key(key_id).await?;
        // New objects must get the new version now, not when the cached data key expires.
        self.lock().generated.retain(|(id, _), _| id != key_id);
        Ok(info)
    }

    async fn set_key_enabled(&self, key_id: &str, enabled: bool) -> Result<(), KmsError> {
        self.inner.set_key_enabled(key_id, enabled).await?;
        if !enabled {
            // A disabled key must stop working at once, cached or not.
            let mut state = self.lock();
            state.generated.retain(|(id, _), _| id != key_id);
            state.unwrapped.retain(|(id, _, _), _| id != key_id);
        }
        Ok(())
    }

    async fn rewrap_data_key(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        ctx: &EncryptionContext,
        to_key_id: &str,
    ) -> Result<Rewrapped, KmsError> {
        self.inner
            .rewrap_data_key(key_id, ciphertext, ctx, to_key_id)
            .await
    }

    fn wrapped_key_version(&self, ciphertext: &[u8]) -> Option<u32> {
        self.inner.wrapped_key_version(ciphertext)
    }

    fn forget_generated(&self, key_id: &str) {
        self.lock().generated.retain(|(id, _), _| id != key_id);
        self.inner.forget_generated(key_id);
    }
}

impl fmt::Debug for DataKeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKeyCache")
            .field("provider", &self.inner.provider())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
