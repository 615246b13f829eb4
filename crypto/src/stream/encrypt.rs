//! Sealing a stream package by package.

use std::fmt;

use super::key::StreamKey;
use super::{sealed_len, PACKAGE_SIZE};
use crate::cipher::{Cipher, TAG_LEN};
use crate::error::CryptoError;

/// Seals a plaintext stream package by package, in the format version of its key.
///
/// One full package is held back until more data (or `finish`) shows whether it is the last.
/// Sealing more packages than the format can number (2^32 for version 2) is an error, and the
/// encryptor stays failed: a counter never wraps.
pub struct Encryptor {
    cipher: Cipher,
    key: StreamKey,
    index: u64,
    pending: Vec<u8>,
    failed: bool,
}

impl Encryptor {
    /// Starts a stream; the key is consumed so it cannot seal a second stream.
    pub fn new(key: StreamKey) -> Self {
        Self {
            cipher: key.cipher(),
            key,
            index: 0,
            pending: Vec::with_capacity(PACKAGE_SIZE),
            failed: false,
        }
    }

    fn seal_package(
        &mut self,
        plaintext: &[u8],
        is_final: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        if self.failed || self.index >= self.key.max_packages() {
            self.failed = true;
            return Err(CryptoError::TooManyPackages);
        }
        let nonce = self.key.nonce(self.index, is_final)?;
        self.cipher
            .seal_append(&nonce, self.key.aad(), plaintext, out);
        self.index += 1;
        Ok(())
    }

    /// Feeds plaintext; appends every package that is now known not to be the last to `out`.
    pub fn push(&mut self, mut plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        if self.failed {
            return Err(CryptoError::TooManyPackages);
        }
        while !plaintext.is_empty() {
            if self.pending.len() == PACKAGE_SIZE {
                let pending = std::mem::take(&mut self.pending);
                let sealed = self.seal_package(&pending, false, out);
                self.pending = pending;
                self.pending.clear();
                sealed?;
            }
            if self.pending.is_empty() {
                // Seal straight from the caller's slice: no copy through the pending buffer.
                let full = (plaintext.len().saturating_sub(1)) / PACKAGE_SIZE;
                out.reserve(full * (PACKAGE_SIZE + TAG_LEN));
                for _ in 0..full {
                    let (package, rest) = plaintext.split_at(PACKAGE_SIZE);
                    self.seal_package(package, false, out)?;
                    plaintext = rest;
                }
            }
            let take = (PACKAGE_SIZE - self.pending.len()).min(plaintext.len());
            self.pending.extend_from_slice(&plaintext[..take]);
            plaintext = &plaintext[take..];
        }
        Ok(())
    }

    /// Seals the final package (possibly empty) and ends the stream.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let pending = std::mem::take(&mut self.pending);
        self.seal_package(&pending, true, out)
    }
}

impl fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encryptor")
            .field("suite", &self.cipher.suite())
            .field("version", &self.key.version())
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// Seals a whole plaintext in one call.
pub fn seal(key: StreamKey, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let capacity = usize::try_from(sealed_len(plaintext.len() as u64)).unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity(capacity);
    let mut enc = Encryptor::new(key);
    enc.push(plaintext, &mut out)?;
    enc.finish(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{derive_stream_key, derive_stream_key_v1, StreamBinding};
    use crate::{CipherSuite, SecretKey};

    fn v2() -> StreamKey {
        let oek = SecretKey::from_bytes([1; 32]);
        let binding = StreamBinding::new("b", "o", "v", 0);
        derive_stream_key(&oek, CipherSuite::Aes256Gcm, &[2; 32], &binding)
    }

    #[test]
    fn the_v2_counter_never_wraps() {
        // Pretend 2^32 - 1 packages went out: one more (the last allowed) may be sealed.
        let mut enc = Encryptor::new(v2());
        enc.index = u64::from(u32::MAX);
        let mut out = Vec::new();
        enc.push(&[7u8; PACKAGE_SIZE], &mut out).unwrap();
        assert!(
            out.is_empty(),
            "the package is held back until the end is known"
        );
        // More data makes package 2^32 necessary: refused, and the encryptor stays failed.
        assert_eq!(
            enc.push(&[7u8; PACKAGE_SIZE + 1], &mut out),
            Err(CryptoError::TooManyPackages)
        );
        assert_eq!(
            out.len(),
            PACKAGE_SIZE + TAG_LEN,
            "package 2^32 - 1 was sealed"
        );
        assert_eq!(enc.push(&[], &mut out), Err(CryptoError::TooManyPackages));
        assert_eq!(enc.finish(&mut out), Err(CryptoError::TooManyPackages));

        // Exactly 2^32 packages, the last of them final: fine.
        let mut enc = Encryptor::new(v2());
        enc.index = u64::from(u32::MAX);
        let mut out = Vec::new();
        enc.push(&[7u8; 10], &mut out).unwrap();
        enc.finish(&mut out).unwrap();
        assert_eq!(out.len(), 10 + TAG_LEN);

        // Already past the limit: even the final package is refused.
        let mut enc = Encryptor::new(v2());
        enc.index = 1 << 32;
        assert_eq!(
            enc.finish(&mut Vec::new()),
            Err(CryptoError::TooManyPackages)
        );

        // One byte more than 2^32 full packages: noticed when the end is.
        let mut out = Vec::new();
        let mut enc = Encryptor::new(v2());
        enc.index = u64::from(u32::MAX);
        enc.push(&[7u8; PACKAGE_SIZE], &mut out).unwrap();
        enc.push(&[7u8; 1], &mut out).unwrap();
        assert_eq!(enc.finish(&mut out), Err(CryptoError::TooManyPackages));
    }

    #[test]
    fn v1_counts_past_u32() {
        let oek = SecretKey::from_bytes([1; 32]);
        let mut enc = Encryptor::new(derive_stream_key_v1(&oek, CipherSuite::Aes256Gcm, &[2; 32]));
        enc.index = 1 << 32;
        enc.finish(&mut Vec::new()).unwrap();
    }
}
