//! The resilience wrapper on paused tokio time: retries, backoff bounds, timeouts and the
//! circuit breaker, against a provider whose behaviour the test switches.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use coffer_crypto::{SecretKey, SeededEntropy};
use coffer_kms::{
    BreakerState, DataKey, EncryptionContext, Kms, KmsError, LocalKms, ResilienceConfig,
    ResilientKms, DEFAULT_KEY_ID,
};
use tokio::time::Instant;

#[derive(Clone)]
enum Mode {
    Ok,
    Fail(KmsError),
    Hang,
}

struct Fake {
    inner: LocalKms,
    mode: Mutex<Mode>,
    calls: AtomicUsize,
}

impl Fake {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: LocalKms::new(
                SecretKey::from_bytes([9; 32]),
                Arc::new(SeededEntropy::new(4)),
            ),
            mode: Mutex::new(Mode::Ok),
            calls: AtomicUsize::new(0),
        })
    }
    fn set(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    async fn gate(&self) -> Result<(), KmsError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let m = self.mode.lock().unwrap().clone();
        match m {
            Mode::Ok => Ok(()),
            Mode::Fail(e) => Err(e),
            Mode::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            }
        }
    }
}

#[async_trait]
impl Kms for Fake {
    fn provider(&self) -> &'static str {
        "fake"
    }
    async fn generate_data_key(
        &self,
        key_id: &str,
        ctx: &EncryptionContext,
    ) -> Result<DataKey, KmsError> {
        self.gate().await?;
        self.inner.generate_data_key(key_id, ctx).await
    }
    async fn decrypt_data_key(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<SecretKey, KmsError> {
        self.gate().await?;
        self.inner.decrypt_data_key(key_id, ciphertext, ctx).await
    }
    async fn create_key(&self, key_id: &str) -> Result<(), KmsError> {
        self.gate().await?;
        self.inner.create_key(key_id).await
    }
    async fn list_keys(&self) -> Result<Vec<String>, KmsError> {
        self.gate().await?;
        self.inner.list_keys().await
    }
    async fn key_exists(&self, key_id: &str) -> Result<bool, KmsError> {
        self.gate().await?;
        self.inner.key_exists(key_id).await
    }
    async fn health(&self) -> Result<(), KmsError> {
        self.gate().await
    }
}

const CFG: ResilienceConfig = ResilienceConfig {
    call_timeout: Duration::from_secs(2),
    max_attempts: 3,
    base_backoff: Duration::from_millis(100),
    max_backoff: Duration::from_millis(300),
    failure_threshold: 5,
    open_for: Duration::from_secs(10),
};

fn wrap(fake: &Arc<Fake>, cfg: ResilienceConfig) -> ResilientKms {
    ResilientKms::new(fake.clone(), cfg, Arc::new(SeededEntropy::new(7)))
}

fn ctx() -> EncryptionContext {
    [("bucket", "b")].into_iter().collect()
}

fn down() -> Mode {
    Mode::Fail(KmsError::Unavailable("connection refused".into()))
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_with_bounded_backoff() {
    let fake = Fake::new();
    let kms = wrap(&fake, CFG);
    fake.set(down());
    let t0 = Instant::now();
    let err = kms
        .generate_data_key(DEFAULT_KEY_ID, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, KmsError::Unavailable(_)), "{err:?}");
    assert_eq!(fake.calls(), 3, "three attempts");
    // Backoffs: attempt 1 → [50, 100] ms, attempt 2 → [100, 200] ms (half fixed, half jitter).
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited <= Duration::from_millis(300),
        "{waited:?}"
    );
    // A success in between resets the count: two more failures do not open the breaker.
    fake.set(Mode::Ok);
    kms.generate_data_key(DEFAULT_KEY_ID, &ctx()).await.unwrap();
    assert_eq!(kms.breaker_state(), BreakerState::Closed { failures: 0 });
}

#[tokio::test(start_paused = true)]
async fn recovery_within_the_retries_is_invisible() {
    let fake = Fake::new();
    let kms = Arc::new(wrap(&fake, CFG));
    fake.set(down());
    let k = kms.clone();
    let call = tokio::spawn(async move { k.generate_data_key(DEFAULT_KEY_ID, &ctx()).await });
    // Let the first attempt fail, then bring the provider back during the backoff.
    tokio::time::sleep(Duration::from_millis(10)).await;
    fake.set(Mode::Ok);
    assert!(call.await.unwrap().is_ok());
    assert_eq!(fake.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried() {
    let fake = Fake::new();
    let kms = wrap(&fake, CFG);
    let err = kms.generate_data_key("missing", &ctx()).await.unwrap_err();
    assert_eq!(err, KmsError::KeyNotFound("missing".into()));
    assert_eq!(fake.calls(), 1);
    fake.set(Mode::Fail(KmsError::PermissionDenied("bad token".into())));
    let err = kms
        .generate_data_key(DEFAULT_KEY_ID, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, KmsError::PermissionDenied(_)));
    assert_eq!(fake.calls(), 2);
    assert_eq!(kms.breaker_state(), BreakerState::Closed { failures: 0 });
}

#[tokio::test(start_paused = true)]
async fn a_hanging_kms_times_out_per_attempt() {
    let fake = Fake::new();
    let kms = wrap(&fake, CFG);
    fake.set(Mode::Hang);
    let t0 = Instant::now();
    let err = kms
        .generate_data_key(DEFAULT_KEY_ID, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, KmsError::Unavailable(_)), "{err:?}");
    let waited = t0.elapsed();
    // 3 × 2 s timeouts + backoffs of at most 100 + 200 ms: bounded, never a hang.
    assert!(
        waited >= Duration::from_secs(6) && waited <= Duration::from_millis(6300),
        "{waited:?}"
    );
    assert_eq!(fake.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn rotate_is_never_sent_twice() {
    let fake = Fake::new();
    let kms = wrap(&fake, CFG);
    fake.set(down());
    // create_key is not idempotent either (a retry after a lost answer would say "exists").
    assert!(kms.create_key("k").await.is_err());
    assert_eq!(fake.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn breaker_opens_fails_fast_and_probes_after_the_cool_down() {
    let fake = Fake::new();
    let cfg = ResilienceConfig {
        max_attempts: 1,
        ..CFG
    };
    let kms = wrap(&fake, cfg);
    fake.set(down());
    for i in 1..5u32 {
        assert!(kms.health().await.is_err());
        assert_eq!(kms.breaker_state(), BreakerState::Closed { failures: i });
    }
    assert!(kms.health().await.is_err());
    assert!(matches!(kms.breaker_state(), BreakerState::Open { .. }));
    assert_eq!(fake.calls(), 5);

    // Open: refused at once, without reaching the provider, even once it is back.
    fake.set(Mode::Ok);
    let t0 = Instant::now();
    let err = kms.health().await.unwrap_err();
    assert!(matches!(err, KmsError::Unavailable(_)));
    assert_eq!(t0.elapsed(), Duration::ZERO);
    assert_eq!(fake.calls(), 5);

    // After the cool-down one probe goes through; a failed probe opens it again.
    fake.set(down());
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(kms.health().await.is_err());
    assert_eq!(fake.calls(), 6);
    assert!(matches!(kms.breaker_state(), BreakerState::Open { .. }));
    assert!(kms.health().await.is_err());
    assert_eq!(fake.calls(), 6, "open again: no call");

    // A successful probe closes it.
    fake.set(Mode::Ok);
    tokio::time::advance(Duration::from_secs(10)).await;
    kms.health().await.unwrap();
    assert_eq!(kms.breaker_state(), BreakerState::Closed { failures: 0 });
    kms.health().await.unwrap();
    assert_eq!(fake.calls(), 8);
}

#[tokio::test(start_paused = true)]
async fn only_one_probe_while_half_open_and_a_dropped_probe_frees_the_slot() {
    let fake = Fake::new();
    let cfg = ResilienceConfig {
        max_attempts: 1,
        failure_threshold: 1,
        ..CFG
    };
    let kms = Arc::new(wrap(&fake, cfg));
    fake.set(down());
    assert!(kms.health().await.is_err());
    tokio::time::advance(Duration::from_secs(10)).await;
    fake.set(Mode::Hang);
    let k = kms.clone();
    let probe = tokio::spawn(async move { k.health().await });
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(kms.breaker_state(), BreakerState::HalfOpen);
    assert!(kms.health().await.is_err(), "second caller refused");
    assert_eq!(fake.calls(), 2);
    // The probe's request is cancelled: the next caller may probe at once.
    probe.abort();
    let _ = probe.await;
    fake.set(Mode::Ok);
    kms.health().await.unwrap();
    assert_eq!(kms.breaker_state(), BreakerState::Closed { failures: 0 });
}
