//! Opening a stream, or any range of it, package by package.

use std::fmt;

use zeroize::Zeroize;

use super::key::StreamKey;
use super::{package_count, plan_full, plan_range, RangePlan, PKG, SEALED_PKG, TAG};
use crate::cipher::Cipher;
use crate::error::CryptoError;

/// Opens the sealed bytes of a [`RangePlan`], however they are chunked, in the format version
/// of its key.
pub struct Decryptor {
    cipher: Cipher,
    key: StreamKey,
    plain_len: u64,
    final_index: u64,
    next: u64,
    last: u64,
    skip: usize,
    remaining: u64,
    buf: Vec<u8>,
    failed: Option<CryptoError>,
}

impl Decryptor {
    /// Prepares to open `plan`'s sealed bytes; fails if the plan does not fit `plain_len`, or
    /// if `plain_len` needs more packages than the key's format can number.
    pub fn new(key: StreamKey, plain_len: u64, plan: &RangePlan) -> Result<Self, CryptoError> {
        let expected = if plan.len == 0 {
            plan_full(0)
        } else {
            let first = plan
                .first_package
                .saturating_mul(PKG)
                .saturating_add(plan.skip);
            plan_range(plain_len, first, first.saturating_add(plan.len - 1))?
        };
        if expected != *plan || (plan.len == 0 && plain_len != 0) {
            return Err(CryptoError::Malformed(
                "range plan does not fit the plaintext length",
            ));
        }
        let packages = package_count(plain_len);
        if packages > key.max_packages() {
            return Err(CryptoError::TooManyPackages);
        }
        Ok(Self {
            cipher: key.cipher(),
            key,
            plain_len,
            final_index: packages - 1,
            next: plan.first_package,
            last: plan.last_package,
            skip: usize::try_from(plan.skip).expect("skip is below one package"),
            remaining: plan.len,
            buf: Vec::new(),
            failed: None,
        })
    }

    fn sealed_package_len(&self, index: u64) -> usize {
        let len = if index < self.final_index {
            SEALED_PKG
        } else {
            self.plain_len - self.final_index * PKG + TAG
        };
        usize::try_from(len).expect("a sealed package is at most 65552 bytes")
    }

    /// Feeds the next sealed bytes; appends the plaintext of the requested range to `out`.
    ///
    /// Nothing from a package reaches `out` unless its tag verified.
    pub fn push(&mut self, mut sealed: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        while !sealed.is_empty() {
            if self.next > self.last {
                self.failed = Some(CryptoError::TrailingData);
                return Err(CryptoError::TrailingData);
            }
            let need = self.sealed_package_len(self.next);
            if self.buf.is_empty() && sealed.len() >= need {
                let (package, rest) = sealed.split_at(need);
                self.open_into(package, out)?;
                sealed = rest;
            } else {
                let take = (need - self.buf.len()).min(sealed.len());
                self.buf.extend_from_slice(&sealed[..take]);
                sealed = &sealed[take..];
                if self.buf.len() == need {
                    let mut package = std::mem::take(&mut self.buf);
                    let opened = self.open_into(&package, out);
                    package.clear();
                    self.buf = package;
                    opened?;
                }
            }
        }
        Ok(())
    }

    fn open_into(&mut self, package: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let index = self.next;
        let start = out.len();
        let opened = self
            .key
            .nonce(index, index == self.final_index)
            .and_then(|nonce| {
                out.extend_from_slice(package);
                self.cipher
                    .open_in_place(&nonce, self.key.aad(), &mut out[start..])
                    .map(|plain| plain.len())
            });
        let plain_len = match opened {
            Ok(len) => len,
            Err(err) => {
                out.truncate(start);
                self.failed = Some(err.clone());
                return Err(err);
            }
        };
        out.truncate(start + plain_len);
        let skip = std::mem::take(&mut self.skip);
        if skip > 0 {
            out.drain(start..start + skip);
        }
        let keep = ((out.len() - start) as u64).min(self.remaining);
        out.truncate(start + keep as usize);
        self.remaining -= keep;
        self.next += 1;
        Ok(())
    }

    /// Ends the read; fails if any package of the plan is missing or incomplete.
    pub fn finish(self) -> Result<(), CryptoError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        if self.next <= self.last || !self.buf.is_empty() {
            return Err(CryptoError::Truncated);
        }
        Ok(())
    }
}

impl fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decryptor")
            .field("suite", &self.cipher.suite())
            .field("version", &self.key.version())
            .field("next", &self.next)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

/// Opens one sealed package (ciphertext ‖ tag) on its own.
pub fn open_package(
    key: &StreamKey,
    index: u64,
    is_final: bool,
    sealed: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    open_package_vec(key, index, is_final, sealed.to_vec())
}

/// Like [`open_package`], but opens `sealed` where it lies and returns it truncated to the
/// plaintext: a caller that owns the sealed bytes saves a copy per package.
pub fn open_package_vec(
    key: &StreamKey,
    index: u64,
    is_final: bool,
    mut sealed: Vec<u8>,
) -> Result<Vec<u8>, CryptoError> {
    let nonce = key.nonce(index, is_final)?;
    let opened = key
        .cipher()
        .open_in_place(&nonce, key.aad(), &mut sealed)
        .map(|plain| plain.len());
    match opened {
        Ok(plain_len) => {
            sealed.truncate(plain_len);
            Ok(sealed)
        }
        Err(e) => {
            // The buffer may hold plaintext that failed authentication: never hand it on.
            sealed.zeroize();
            Err(e)
        }
    }
}

/// Opens a whole sealed stream of `plain_len` plaintext bytes in one call.
pub fn open(key: StreamKey, plain_len: u64, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    // Sized by the input actually present: a corrupt length must not trigger a huge allocation.
    let mut out = Vec::with_capacity(sealed.len());
    let mut dec = Decryptor::new(key, plain_len, &plan_full(plain_len))?;
    dec.push(sealed, &mut out)?;
    dec.finish()?;
    Ok(out)
}
