//! Key management for Coffer: the provider-neutral [`Kms`] trait, the built-in
//! [`LocalKms`] provider, and the bounded [`DataKeyCache`]. Providers know nothing about
//! buckets or objects beyond the opaque [`EncryptionContext`] they bind as AAD.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cache;
mod clock;
mod context;
mod error;
mod local;
mod provider;

pub use cache::{CacheConfig, CacheEvents, DataKeyCache};
pub use clock::{CacheClock, ManualClock, TokioClock};
pub use context::EncryptionContext;
pub use error::KmsError;
pub use local::{LocalKms, DEFAULT_KEY_ID, LOCAL_BLOB_LEN, LOCAL_BLOB_VERSION, LOCAL_KEY_LABEL};
pub use provider::{validate_key_id, DataKey, Kms};

/// The secret key type shared with the crypto crate, re-exported for providers' callers.
pub use coffer_crypto::SecretKey;
