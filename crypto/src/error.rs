//! The one error type of the crypto crate.

use thiserror::Error;

/// Everything that can go wrong while sealing or opening data or keys.
///
/// Variants are typed so callers map them (e.g. to S3 error codes) without matching on strings.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CryptoError {
    /// An AEAD tag did not verify: wrong key, wrong salt, wrong context, or tampered bytes.
    #[error("authentication failed: wrong key or tampered data")]
    Authentication,
    /// The sealed input ended before every expected package had arrived.
    #[error("sealed data is truncated")]
    Truncated,
    /// More sealed bytes arrived than the plaintext length allows.
    #[error("sealed data has trailing bytes")]
    TrailingData,
    /// A cipher id that this build does not know.
    #[error("unknown cipher id {0}")]
    UnknownCipher(u8),
    /// A format version byte that this build cannot read.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// Bytes that do not have the shape of the expected format.
    #[error("malformed input: {0}")]
    Malformed(&'static str),
    /// A stream would need more packages than its format can number (2^32 for version 2).
    #[error("stream exceeds the package limit of its format")]
    TooManyPackages,
    /// A byte range outside the object, or with first > last.
    #[error("invalid range {first}..={last} for a plaintext of {len} bytes")]
    InvalidRange {
        /// First requested plaintext byte.
        first: u64,
        /// Last requested plaintext byte (inclusive).
        last: u64,
        /// Plaintext length of the object.
        len: u64,
    },
}
