//! Builds the node's KMS stack from its settings and checks it at start-up.
//!
//! The stack, outermost first: [`DataKeyCache`] → [`ResilientKms`] (timeouts, retries,
//! breaker) → [`MeteredKms`] (counts every attempt that reaches the provider) → provider.
//! SSE-KMS without bucket keys uses the stack below the cache (one data key per object).

use std::sync::Arc;

use coffer_crypto::{Entropy, SecretKey};
use coffer_kms::{
    AwsKms, DataKeyCache, EncryptionContext, Kms, KmsError, LocalKms, ResilientKms, VaultKms,
};

use crate::kms_config::{KmsProvider, KmsSettings};
use crate::kms_meter::MeteredKms;
use crate::metrics::Metrics;

/// Why the KMS could not be used at start-up. The message names the provider, where it was
/// looked for, and the cause; it never contains a token or key material.
#[derive(Debug, thiserror::Error)]
#[error("KMS provider {provider} ({location}): {cause}")]
pub struct KmsStartError {
    /// Provider name.
    pub provider: &'static str,
    /// Address, endpoint or region (never a credential).
    pub location: String,
    /// What went wrong, in words.
    pub cause: String,
    /// The typed error behind it.
    #[source]
    pub error: KmsError,
}

/// The KMS as the node uses it.
pub struct KmsStack {
    /// Resilient, metered provider, without the cache.
    pub provider: Arc<dyn Kms>,
    /// The same behind the data-key cache.
    pub cached: Arc<dyn Kms>,
    /// The built-in provider itself, when it is the one: the node attaches its key registry
    /// once the metadata store is open.
    pub local: Option<Arc<LocalKms>>,
}

fn location(p: &KmsProvider) -> String {
    match p {
        KmsProvider::Local => "built in".into(),
        KmsProvider::Vault(v) => format!("{} mount {}", v.address, v.mount),
        KmsProvider::Aws(a) => match (&a.endpoint, &a.region) {
            (Some(e), _) => e.clone(),
            (None, Some(r)) => format!("region {r}"),
            (None, None) => "default region".into(),
        },
    }
}

fn explain(default_key: &str, e: &KmsError) -> String {
    match e {
        KmsError::Unavailable(m) => format!("cannot reach the KMS: {m}"),
        KmsError::PermissionDenied(m) => {
            format!("the KMS refused the credentials (wrong or expired token?): {m}")
        }
        KmsError::KeyNotFound(_) => format!(
            "the default key {default_key:?} (COFFER_KMS_DEFAULT_KEY) does not exist in the KMS"
        ),
        KmsError::KeyUnusable { reason, .. } => {
            format!("the default key {default_key:?} cannot be used: {reason}")
        }
        KmsError::Config(m) => format!("bad configuration: {m}"),
        other => format!("start-up check failed: {other}"),
    }
}

/// Connects the configured provider, wraps it, and checks it with one data-key round trip
/// under the default key (which proves the address, the credentials, the key and the
/// permissions to make and unwrap data keys). `local_root` is asked only for the local provider.
pub async fn build(
    settings: &KmsSettings,
    local_root: impl FnOnce() -> Result<SecretKey, crate::secrets::SecretError>,
    entropy: Arc<dyn Entropy>,
    metrics: Arc<Metrics>,
) -> Result<KmsStack, crate::server::NodeError> {
    let name = settings.provider.name();
    let fail = |error: KmsError| KmsStartError {
        provider: name,
        location: location(&settings.provider),
        cause: explain(&settings.default_key, &error),
        error,
    };
    let mut local = None;
    let raw: Arc<dyn Kms> = match &settings.provider {
        KmsProvider::Local => {
            let l = Arc::new(LocalKms::new(local_root()?, entropy.clone()));
            local = Some(l.clone());
            l
        }
        KmsProvider::Vault(v) => Arc::new(VaultKms::connect(v.clone()).await.map_err(fail)?),
        KmsProvider::Aws(a) => Arc::new(AwsKms::connect(a.clone()).await.map_err(fail)?),
    };
    let metered: Arc<dyn Kms> = Arc::new(MeteredKms::new(raw, metrics.clone()));
    let provider: Arc<dyn Kms> = Arc::new(ResilientKms::new(
        metered,
        settings.resilience,
        entropy.clone(),
    ));
    check(provider.as_ref(), &settings.default_key)
        .await
        .map_err(fail)?;
    tracing::info!(
        provider = name,
        location = %location(&settings.provider),
        default_key = %settings.default_key,
        "KMS ready"
    );
    let cached: Arc<dyn Kms> =
        Arc::new(DataKeyCache::with_defaults(provider.clone()).with_events(metrics));
    Ok(KmsStack {
        provider,
        cached,
        local,
    })
}

async fn check(kms: &dyn Kms, key_id: &str) -> Result<(), KmsError> {
    let ctx: EncryptionContext = [("coffer:check", "start-up")].into_iter().collect();
    let dk = kms.generate_data_key(key_id, &ctx).await?;
    let back = kms
        .decrypt_data_key(&dk.key_id, &dk.ciphertext, &ctx)
        .await?;
    if back != dk.plaintext {
        return Err(KmsError::InvalidCiphertext);
    }
    Ok(())
}
