//! The streaming package format (STREAM construction): plaintext is cut into 64 KiB packages,
//! each sealed on its own with a nonce made of a per-stream prefix, its sequence number and a
//! final-package flag, and an AAD that binds the stream to its bucket, object, version and part.
//! The byte layout is documented in docs/format/object-encryption.md.
//!
//! Version 2 is written; version 1 (no nonce prefix, no binding) stays readable.

mod binding;
mod decrypt;
mod encrypt;
mod key;

pub use binding::StreamBinding;
pub use decrypt::{open, open_package, open_package_vec, Decryptor};
pub use encrypt::{seal, Encryptor};
pub use key::{
    derive_stream_key, derive_stream_key_for, derive_stream_key_v1, StreamKey, NONCE_PREFIX_LEN,
    STREAM_KEY_LABEL, STREAM_KEY_LABEL_V1,
};

use crate::cipher::TAG_LEN;
use crate::error::CryptoError;

/// Plaintext bytes per package (the last package of a stream may be shorter, even empty).
pub const PACKAGE_SIZE: usize = 64 * 1024;
/// Version new streams are written in; part of every package's AAD and recorded in the manifest.
pub const STREAM_FORMAT_VERSION: u8 = 2;
/// The legacy stream format (counter-only nonces, AAD without binding); read-only.
pub const STREAM_FORMAT_V1: u8 = 1;
/// Most packages one version-2 stream may have (the counter is a u32): 2^32 × 64 KiB = 256 TiB.
pub const MAX_PACKAGES_V2: u64 = 1 << 32;

pub(crate) const PKG: u64 = PACKAGE_SIZE as u64;
pub(crate) const TAG: u64 = TAG_LEN as u64;
pub(crate) const SEALED_PKG: u64 = PKG + TAG;

/// Fails unless this build can read streams written with `version`.
pub fn check_stream_version(version: u8) -> Result<(), CryptoError> {
    match version {
        STREAM_FORMAT_V1 | STREAM_FORMAT_VERSION => Ok(()),
        other => Err(CryptoError::UnsupportedVersion(other)),
    }
}

/// Number of packages in a stream: an empty stream still has one (empty, final) package.
pub fn package_count(plain_len: u64) -> u64 {
    plain_len.div_ceil(PKG).max(1)
}

/// Sealed size of a stream: the plaintext plus one tag per package (same for every version).
///
/// Saturates at `u64::MAX` for lengths no real stream has (within 2^20 of `u64::MAX`).
pub fn sealed_len(plain_len: u64) -> u64 {
    checked_sealed_len(plain_len).unwrap_or(u64::MAX)
}

fn checked_sealed_len(plain_len: u64) -> Option<u64> {
    plain_len.checked_add(TAG * package_count(plain_len))
}

/// Which sealed bytes a plaintext range needs, and how to cut the decrypted packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangePlan {
    /// Index of the first package to read.
    pub first_package: u64,
    /// Index of the last package to read.
    pub last_package: u64,
    /// Offset of the first sealed byte to read.
    pub sealed_start: u64,
    /// Offset one past the last sealed byte to read.
    pub sealed_end: u64,
    /// Plaintext bytes to drop at the front of the first package.
    pub skip: u64,
    /// Plaintext bytes the range yields.
    pub len: u64,
}

/// Plans the read of plaintext bytes `first..=last_inclusive` of a stream of `plain_len` bytes.
///
/// O(1): packages have a fixed size, so the covering packages follow from two divisions.
pub fn plan_range(
    plain_len: u64,
    first: u64,
    last_inclusive: u64,
) -> Result<RangePlan, CryptoError> {
    let invalid = CryptoError::InvalidRange {
        first,
        last: last_inclusive,
        len: plain_len,
    };
    if first > last_inclusive || last_inclusive >= plain_len {
        return Err(invalid);
    }
    // Only lengths within 2^20 of u64::MAX overflow; no stream is that long.
    let total = checked_sealed_len(plain_len).ok_or(invalid)?;
    let first_package = first / PKG;
    let last_package = last_inclusive / PKG;
    Ok(RangePlan {
        first_package,
        last_package,
        sealed_start: first_package * SEALED_PKG,
        sealed_end: (last_package + 1).saturating_mul(SEALED_PKG).min(total),
        skip: first - first_package * PKG,
        len: last_inclusive - first + 1,
    })
}

/// Plans the read of a whole stream, including the single empty package of an empty one.
///
/// For a length no stream can have (sealed size beyond `u64::MAX`) the plan is unusable:
/// [`Decryptor::new`] refuses it.
pub fn plan_full(plain_len: u64) -> RangePlan {
    if plain_len == 0 {
        return RangePlan {
            first_package: 0,
            last_package: 0,
            sealed_start: 0,
            sealed_end: TAG,
            skip: 0,
            len: 0,
        };
    }
    plan_range(plain_len, 0, plain_len - 1).unwrap_or(RangePlan {
        first_package: 0,
        last_package: package_count(plain_len) - 1,
        sealed_start: 0,
        sealed_end: u64::MAX,
        skip: 0,
        len: plain_len,
    })
}
