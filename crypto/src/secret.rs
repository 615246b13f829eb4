//! Secret key material that zeroizes on drop and never prints.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::entropy::Entropy;

/// Length in bytes of every symmetric key in Coffer.
pub const KEY_LEN: usize = 32;

/// A 256-bit symmetric key; wiped from memory when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// Wraps raw key bytes (the caller should zeroize its own copy).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Wraps a key read from a slice; fails unless it is exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, crate::CryptoError> {
        let arr: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| crate::CryptoError::Malformed("key must be 32 bytes"))?;
        Ok(Self(arr))
    }

    /// Draws a fresh key from the given entropy source.
    pub fn random(rng: &dyn Entropy) -> Self {
        let mut key = Self([0u8; KEY_LEN]);
        rng.fill(&mut key.0);
        key
    }

    /// Borrows the raw key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

// Constant time so comparing keys (e.g. in a cache) leaks nothing through timing.
impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        self.0[..].ct_eq(&other.0[..]).into()
    }
}

impl Eq for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}
