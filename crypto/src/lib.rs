//! Coffer's encryption at rest: the AEAD suites, the streaming package format, the key
//! hierarchy (object keys sealed under key-encryption keys), SSE-C key checks, and the
//! randomness seam. No I/O happens here: no files, no network, no clock.
//!
//! Byte layouts: docs/format/object-encryption.md.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cipher;
mod entropy;
mod error;
mod keys;
mod secret;
mod ssec;
mod stream;

pub use cipher::{Cipher, CipherSuite, NONCE_LEN, TAG_LEN};
pub use entropy::{random_salt, Entropy, OsEntropy, SeededEntropy};
pub use error::CryptoError;
pub use keys::{
    derive_kek, derive_key, seal_key, seal_key_with, unseal_key, KEK_LABEL, SEALED_KEY_LEN,
    SEALED_KEY_LEN_V1, SEALED_KEY_VERSION,
};
pub use secret::{SecretKey, KEY_LEN};
pub use ssec::{ssec_fingerprint, ssec_kek, ssec_verify, SSEC_FINGERPRINT_LABEL, SSEC_KEK_LABEL};
pub use stream::{
    check_stream_version, derive_stream_key, derive_stream_key_for, derive_stream_key_v1, open,
    open_package, open_package_vec, package_count, plan_full, plan_range, seal, sealed_len,
    Decryptor, Encryptor, RangePlan, StreamBinding, StreamKey, MAX_PACKAGES_V2, NONCE_PREFIX_LEN,
    PACKAGE_SIZE, STREAM_FORMAT_V1, STREAM_FORMAT_VERSION, STREAM_KEY_LABEL, STREAM_KEY_LABEL_V1,
};
