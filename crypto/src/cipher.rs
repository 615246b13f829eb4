//! The two AEAD suites behind one [`Cipher`] type, both run by `ring`.

use std::fmt;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};

use crate::error::CryptoError;
use crate::secret::SecretKey;

/// Length of every AEAD nonce.
pub const NONCE_LEN: usize = 12;
/// Length of every AEAD tag.
pub const TAG_LEN: usize = 16;

/// The AEAD algorithms Coffer can store data with; the id is part of the on-disk format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherSuite {
    /// AES-256 in Galois/Counter Mode (fastest where AES-NI/PCLMUL exist).
    Aes256Gcm,
    /// ChaCha20-Poly1305 (fast without AES hardware).
    ChaCha20Poly1305,
}

impl CipherSuite {
    /// Every suite, in id order.
    pub const ALL: [CipherSuite; 2] = [CipherSuite::Aes256Gcm, CipherSuite::ChaCha20Poly1305];

    /// The stable wire id (never reuse a retired one).
    pub fn id(self) -> u8 {
        match self {
            CipherSuite::Aes256Gcm => 1,
            CipherSuite::ChaCha20Poly1305 => 2,
        }
    }

    /// Parses a wire id.
    pub fn from_id(id: u8) -> Result<Self, CryptoError> {
        match id {
            1 => Ok(CipherSuite::Aes256Gcm),
            2 => Ok(CipherSuite::ChaCha20Poly1305),
            other => Err(CryptoError::UnknownCipher(other)),
        }
    }

    /// The display name used in manifests and the admin API.
    pub fn name(self) -> &'static str {
        match self {
            CipherSuite::Aes256Gcm => "AES256-GCM",
            CipherSuite::ChaCha20Poly1305 => "CHACHA20-POLY1305",
        }
    }

    fn algorithm(self) -> &'static aead::Algorithm {
        match self {
            CipherSuite::Aes256Gcm => &aead::AES_256_GCM,
            CipherSuite::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }
}

/// A keyed AEAD instance.
///
/// Low level: the caller owns nonce uniqueness. The stream format and key sealing build their
/// nonces for it; use those rather than this directly.
pub struct Cipher {
    suite: CipherSuite,
    key: LessSafeKey,
}

impl Cipher {
    /// Keys the given suite.
    pub fn new(suite: CipherSuite, key: &SecretKey) -> Self {
        // ring only rejects keys of the wrong length, and SecretKey is always 32 bytes.
        let unbound = UnboundKey::new(suite.algorithm(), key.as_bytes())
            .expect("32-byte key fits both AEAD suites");
        Self {
            suite,
            key: LessSafeKey::new(unbound),
        }
    }

    /// The suite this instance runs.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// Encrypts `in_out` in place and returns the tag to store after it.
    pub fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> [u8; TAG_LEN] {
        // ring fails only for inputs beyond ~64 GiB; callers seal at most one package.
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                in_out,
            )
            .expect("AEAD input within ring's length limit");
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Seals `plaintext` and appends ciphertext ‖ tag to `out`.
    pub fn seal_append(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) {
        let start = out.len();
        out.reserve(plaintext.len() + TAG_LEN);
        out.extend_from_slice(plaintext);
        let tag = self.seal_in_place(nonce, aad, &mut out[start..]);
        out.extend_from_slice(&tag);
    }

    /// Verifies and decrypts ciphertext ‖ tag in place; returns the plaintext prefix.
    pub fn open_in_place<'a>(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &'a mut [u8],
    ) -> Result<&'a mut [u8], CryptoError> {
        if in_out.len() < TAG_LEN {
            return Err(CryptoError::Truncated);
        }
        self.key
            .open_in_place(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), in_out)
            .map_err(|_| CryptoError::Authentication)
    }
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}
