//! Key management for Coffer: the provider-neutral [`Kms`] trait, the providers (built-in
//! [`LocalKms`], Vault/OpenBao transit [`VaultKms`], AWS KMS [`AwsKms`]), the
//! [`ResilientKms`] wrapper (timeouts, retries, circuit breaker) and the bounded
//! [`DataKeyCache`]. Providers know nothing about buckets or objects beyond the opaque
//! [`EncryptionContext`] they bind to every wrapped key.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod aws;
mod cache;
mod clock;
mod context;
mod error;
mod local;
mod local_registry;
mod provider;
mod resilient;
mod secret;
mod vault;

pub use aws::{AwsConfig, AwsKms};
pub use cache::{CacheConfig, CacheEvents, DataKeyCache};
pub use clock::{CacheClock, ManualClock, TokioClock};
pub use context::EncryptionContext;
pub use error::KmsError;
pub use local::{LocalKms, DEFAULT_KEY_ID, LOCAL_BLOB_LEN, LOCAL_BLOB_VERSION, LOCAL_KEY_LABEL};
pub use local_registry::{LocalKeyRecord, LocalKeyRegistry, MemoryKeyRegistry};
pub use provider::{validate_key_id, Capabilities, DataKey, KeyInfo, KeyState, Kms, Rewrapped};
pub use resilient::{BreakerState, ResilienceConfig, ResilientKms};
pub use secret::SecretString;
pub use vault::{vault_blob_version, VaultAuth, VaultConfig, VaultKms, DEFAULT_VAULT_MOUNT};

/// The secret key type shared with the crypto crate, re-exported for providers' callers.
pub use coffer_crypto::SecretKey;
