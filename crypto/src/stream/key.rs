//! Stream keys: derivation (version 2 and legacy version 1), package nonces and AAD.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::binding::StreamBinding;
use super::{MAX_PACKAGES_V2, STREAM_FORMAT_V1, STREAM_FORMAT_VERSION};
use crate::cipher::{Cipher, CipherSuite, NONCE_LEN};
use crate::error::CryptoError;
use crate::keys::{hkdf_expand, hkdf_sha256};
use crate::secret::{SecretKey, KEY_LEN};

/// Length of the per-stream nonce prefix of version 2.
pub const NONCE_PREFIX_LEN: usize = 7;
/// HKDF label for version-2 stream keys and nonce prefixes.
pub const STREAM_KEY_LABEL: &str = "coffer/stream/v2";
/// HKDF label for version-1 stream keys (read-only legacy).
pub const STREAM_KEY_LABEL_V1: &str = "coffer/stream/v1";

/// HKDF label of [`StreamKey::key_check`].
pub const KEY_CHECK_LABEL: &str = "coffer/key-check/v1";

const FINAL_FLAG: u8 = 0x01;
const OKM_V2_LEN: usize = KEY_LEN + NONCE_PREFIX_LEN;

/// The key that seals one stream (one object, or one upload attempt of a multipart part).
///
/// Besides the AEAD key it carries what the format version adds to every package: the nonce
/// prefix and the AAD (version 2 binds the [`StreamBinding`] there). Never prints key bytes.
pub struct StreamKey {
    suite: CipherSuite,
    version: u8,
    key: SecretKey,
    prefix: [u8; NONCE_PREFIX_LEN],
    aad: Vec<u8>,
}

impl StreamKey {
    /// The AEAD suite this stream is sealed with.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// The stream format version this key seals and opens.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The nonce prefix of every package (all zeros for version 1, which has none).
    pub fn nonce_prefix(&self) -> [u8; NONCE_PREFIX_LEN] {
        self.prefix
    }

    /// A one-way check value of the key (HKDF under its own label, 16 bytes): equal keys have
    /// equal check values, and the value reveals nothing about the key. Operators and tests use
    /// it to see that two streams (e.g. two uploads of one part) have different keys.
    pub fn key_check(&self) -> [u8; 16] {
        let check = hkdf_sha256(self.key.as_bytes(), None, KEY_CHECK_LABEL, &[self.version]);
        let mut out = [0u8; 16];
        out.copy_from_slice(&check.as_bytes()[..16]);
        out
    }

    pub(crate) fn cipher(&self) -> Cipher {
        Cipher::new(self.suite, &self.key)
    }

    /// The AAD of every package of the stream.
    pub(crate) fn aad(&self) -> &[u8] {
        &self.aad
    }

    /// Most packages a stream of this version may have.
    pub(crate) fn max_packages(&self) -> u64 {
        if self.version == STREAM_FORMAT_V1 {
            u64::MAX
        } else {
            MAX_PACKAGES_V2
        }
    }

    /// The nonce of package `index`; fails if the format cannot number it.
    pub(crate) fn nonce(&self, index: u64, is_final: bool) -> Result<[u8; NONCE_LEN], CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        if self.version == STREAM_FORMAT_V1 {
            nonce[..8].copy_from_slice(&index.to_be_bytes());
        } else {
            let counter = u32::try_from(index).map_err(|_| CryptoError::TooManyPackages)?;
            nonce[..NONCE_PREFIX_LEN].copy_from_slice(&self.prefix);
            nonce[NONCE_PREFIX_LEN..NONCE_LEN - 1].copy_from_slice(&counter.to_be_bytes());
        }
        if is_final {
            nonce[NONCE_LEN - 1] = FINAL_FLAG;
        }
        Ok(nonce)
    }
}

// Key bytes compare in constant time; suite, version, prefix and AAD are not secret.
impl PartialEq for StreamKey {
    fn eq(&self, other: &Self) -> bool {
        let same_key: bool = self.key.as_bytes().ct_eq(other.key.as_bytes()).into();
        same_key
            && self.suite == other.suite
            && self.version == other.version
            && self.prefix == other.prefix
            && self.aad == other.aad
    }
}

impl Eq for StreamKey {}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamKey")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// Derives a version-2 stream key and nonce prefix from the object key and the stream's salt,
/// and binds the stream to `binding`.
///
/// One HKDF-SHA256 expand: salt = `salt`, ikm = OEK, info = `"coffer/stream/v2" ‖ 0x00 ‖
/// cipher id`, 39 bytes: key = bytes 0..32, nonce prefix = bytes 32..39. The salt is random per
/// object and per upload attempt of every part, so re-uploading a part gets a new key and a new
/// prefix and never reuses a (key, nonce) pair.
pub fn derive_stream_key(
    oek: &SecretKey,
    suite: CipherSuite,
    salt: &[u8; 32],
    binding: &StreamBinding,
) -> StreamKey {
    let mut okm = Zeroizing::new([0u8; OKM_V2_LEN]);
    hkdf_expand(
        oek.as_bytes(),
        Some(salt),
        STREAM_KEY_LABEL,
        &[suite.id()],
        okm.as_mut(),
    );
    let key = SecretKey::from_slice(&okm[..KEY_LEN]).expect("32 bytes of key material");
    let mut prefix = [0u8; NONCE_PREFIX_LEN];
    prefix.copy_from_slice(&okm[KEY_LEN..]);
    let binding = binding.encode();
    let mut aad = Vec::with_capacity(2 + binding.len());
    aad.push(STREAM_FORMAT_VERSION);
    aad.push(suite.id());
    aad.extend_from_slice(&binding);
    StreamKey {
        suite,
        version: STREAM_FORMAT_VERSION,
        key,
        prefix,
        aad,
    }
}

/// Derives a legacy version-1 stream key (no nonce prefix, no binding), to read old streams.
pub fn derive_stream_key_v1(oek: &SecretKey, suite: CipherSuite, salt: &[u8; 32]) -> StreamKey {
    StreamKey {
        suite,
        version: STREAM_FORMAT_V1,
        key: hkdf_sha256(
            oek.as_bytes(),
            Some(salt),
            STREAM_KEY_LABEL_V1,
            &[suite.id()],
        ),
        prefix: [0u8; NONCE_PREFIX_LEN],
        aad: vec![STREAM_FORMAT_V1, suite.id()],
    }
}

/// For readers: derives the key of a stream written in `version` (from the manifest).
///
/// Version 1 ignores the binding; an unknown version is [`CryptoError::UnsupportedVersion`].
pub fn derive_stream_key_for(
    version: u8,
    oek: &SecretKey,
    suite: CipherSuite,
    salt: &[u8; 32],
    binding: &StreamBinding,
) -> Result<StreamKey, CryptoError> {
    match version {
        STREAM_FORMAT_VERSION => Ok(derive_stream_key(oek, suite, salt, binding)),
        STREAM_FORMAT_V1 => Ok(derive_stream_key_v1(oek, suite, salt)),
        other => Err(CryptoError::UnsupportedVersion(other)),
    }
}
