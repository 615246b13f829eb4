//! Timeouts, retries and a circuit breaker around any provider, so a slow or dead KMS makes
//! requests fail fast with [`KmsError::Unavailable`] instead of hanging, and recovery needs no
//! restart.
//!
//! Time is tokio's (`tokio::time::Instant`, `sleep`, `timeout`), so tests run it paused and the
//! simulation can drive it; jitter comes from the [`Entropy`] seam for the same reason.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use coffer_crypto::{Entropy, SecretKey};
use tokio::time::Instant;

use crate::context::EncryptionContext;
use crate::error::KmsError;
use crate::provider::{Capabilities, DataKey, KeyInfo, Kms, Rewrapped};

/// Limits of a [`ResilientKms`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResilienceConfig {
    /// Longest one attempt may take before it counts as a transient failure.
    pub call_timeout: Duration,
    /// Attempts per call for idempotent operations (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time, up to `max_backoff`.
    pub base_backoff: Duration,
    /// Upper bound of one backoff.
    pub max_backoff: Duration,
    /// Consecutive transient failures that open the breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open before one probe call is let through.
    pub open_for: Duration,
}

impl Default for ResilienceConfig {
    // A PUT waits at most ~3 × 2 s + backoffs when the KMS hangs, and once the breaker has
    // opened it fails in microseconds; 5 s of cool-down keeps probe traffic to a trickle.
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(2),
            max_attempts: 3,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            failure_threshold: 5,
            open_for: Duration::from_secs(5),
        }
    }
}

/// The breaker's state, as reported by [`ResilientKms::breaker_state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; counts consecutive transient failures.
    Closed {
        /// Consecutive transient failures so far.
        failures: u32,
    },
    /// Calls fail at once until the instant has passed.
    Open {
        /// When one probe is let through.
        until: Instant,
    },
    /// One probe call is in flight; the others fail at once.
    HalfOpen,
}

/// A [`Kms`] that gives every call of `inner` a timeout, retries transient failures with
/// exponential backoff and jitter, and opens a circuit breaker after repeated failures.
pub struct ResilientKms {
    inner: Arc<dyn Kms>,
    config: ResilienceConfig,
    entropy: Arc<dyn Entropy>,
    state: Arc<Mutex<BreakerState>>,
}

/// Whether an operation may be sent twice: a repeated rotate would add two versions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    Yes,
    No,
}

impl ResilientKms {
    /// Wraps `inner`; `entropy` draws the jitter.
    pub fn new(inner: Arc<dyn Kms>, config: ResilienceConfig, entropy: Arc<dyn Entropy>) -> Self {
        Self {
            inner,
            config,
            entropy,
            state: Arc::new(Mutex::new(BreakerState::Closed { failures: 0 })),
        }
    }

    /// The breaker's current state.
    pub fn breaker_state(&self) -> BreakerState {
        *self.lock()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        // The state is one small value written whole, so a poisoned lock still holds a valid one.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets a call through, or refuses it while the breaker is open or probing.
    fn admit(&self) -> Result<Probe, KmsError> {
        let now = Instant::now();
        let mut state = self.lock();
        match *state {
            BreakerState::Closed { .. } => Ok(Probe::none()),
            BreakerState::Open { until } if now >= until => {
                *state = BreakerState::HalfOpen;
                Ok(Probe::armed(self.state.clone()))
            }
            BreakerState::Open { until } => Err(KmsError::Unavailable(format!(
                "{} KMS circuit breaker open after {} consecutive failures; next probe in {} ms",
                self.inner.provider(),
                self.config.failure_threshold,
                until.saturating_duration_since(now).as_millis()
            ))),
            BreakerState::HalfOpen => Err(KmsError::Unavailable(format!(
                "{} KMS circuit breaker half-open: a probe call is in flight",
                self.inner.provider()
            ))),
        }
    }

    fn record(&self, transient_failure: bool, probe: &mut Probe) {
        probe.disarm();
        let mut state = self.lock();
        *state = if !transient_failure {
            BreakerState::Closed { failures: 0 }
        } else {
            match *state {
                BreakerState::Closed { failures }
                    if failures + 1 < self.config.failure_threshold =>
                {
                    BreakerState::Closed {
                        failures: failures + 1,
                    }
                }
                _ => {
                    tracing::warn!(
                        provider = self.inner.provider(),
                        open_for_ms = self.config.open_for.as_millis() as u64,
                        "KMS circuit breaker open"
                    );
                    BreakerState::Open {
                        until: Instant::now() + self.config.open_for,
                    }
                }
            }
        };
    }

    /// Backoff before attempt `attempt + 1`: half the exponential step fixed, half jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .config
            .base_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.config.max_backoff);
        let mut b = [0u8; 8];
        self.entropy.fill(&mut b);
        let frac = (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64;
        exp / 2 + exp.mul_f64(frac / 2.0)
    }

    async fn call<T, F, Fut>(&self, retry: Retry, mut op: F) -> Result<T, KmsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, KmsError>>,
    {
        let attempts = match retry {
            Retry::Yes => self.config.max_attempts.max(1),
            Retry::No => 1,
        };
        let mut attempt = 1;
        loop {
            let mut probe = self.admit()?;
            let outcome = match tokio::time::timeout(self.config.call_timeout, op()).await {
                Ok(r) => r,
                Err(_) => Err(KmsError::Unavailable(format!(
                    "{} KMS did not answer within {} ms",
                    self.inner.provider(),
                    self.config.call_timeout.as_millis()
                ))),
            };
            let transient = matches!(&outcome, Err(e) if e.is_transient());
            self.record(transient, &mut probe);
            if !transient || attempt >= attempts {
                return outcome;
            }
            tokio::time::sleep(self.backoff(attempt)).await;
            attempt += 1;
        }
    }
}

/// The one probe call of a half-open breaker. If that call is dropped before it finishes
/// (its request was cancelled), the breaker goes back to open-and-due, so the next call probes.
struct Probe(Option<Arc<Mutex<BreakerState>>>);

impl Probe {
    fn none() -> Self {
        Self(None)
    }
    fn armed(state: Arc<Mutex<BreakerState>>) -> Self {
        Self(Some(state))
    }
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if let Some(state) = self.0.take() {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            if *s == BreakerState::HalfOpen {
                *s = BreakerState::Open {
                    until: Instant::now(),
                };
            }
        }
    }
}

#[async_trait]
impl Kms for ResilientKms {
    fn provider(&self) -> &'static str {
        self.inner.provider()
    }

    async fn generate_data_key(
        &self,
        key_id: &str,
        ctx: &EncryptionContext,
    ) -> Result<DataKey, KmsError> {
        self.call(Retry::Yes, || self.inner.generate_data_key(key_id, ctx))
            .await
    }

    async fn decrypt_data_key(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<SecretKey, KmsError> {
        self.call(Retry::Yes, || {
            self.inner.decrypt_data_key(key_id, ciphertext, ctx)
        })
        .await
    }

    async fn create_key(&self, key_id: &str) -> Result<(), KmsError> {
        self.call(Retry::No, || self.inner.create_key(key_id)).await
    }

    async fn list_keys(&self) -> Result<Vec<String>, KmsError> {
        self.call(Retry::Yes, || self.inner.list_keys()).await
    }

    async fn key_exists(&self, key_id: &str) -> Result<bool, KmsError> {
        self.call(Retry::Yes, || self.inner.key_exists(key_id))
            .await
    }

    async fn health(&self) -> Result<(), KmsError> {
        // Health answers "now": no retries, but it does count towards the breaker.
        self.call(Retry::No, || self.inner.health()).await
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn describe_key(&self, key_id: &str) -> Result<KeyInfo, KmsError> {
        self.call(Retry::Yes, || self.inner.describe_key(key_id))
            .await
    }

    async fn rotate_key(&self, key_id: &str) -> Result<KeyInfo, KmsError> {
        self.call(Retry::No, || self.inner.rotate_key(key_id)).await
    }

    async fn set_key_enabled(&self, key_id: &str, enabled: bool) -> Result<(), KmsError> {
        // Idempotent: enabling twice is enabling once.
        self.call(Retry::Yes, || self.inner.set_key_enabled(key_id, enabled))
            .await
    }

    async fn rewrap_data_key(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        ctx: &EncryptionContext,
        to_key_id: &str,
    ) -> Result<Rewrapped, KmsError> {
        self.call(Retry::Yes, || {
            self.inner
                .rewrap_data_key(key_id, ciphertext, ctx, to_key_id)
        })
        .await
    }

    fn wrapped_key_version(&self, ciphertext: &[u8]) -> Option<u32> {
        self.inner.wrapped_key_version(ciphertext)
    }
}

impl fmt::Debug for ResilientKms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResilientKms")
            .field("provider", &self.inner.provider())
            .field("config", &self.config)
            .field("breaker", &self.breaker_state())
            .finish()
    }
}
