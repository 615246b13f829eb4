//! The streaming package format (STREAM construction): plaintext is cut into 64 KiB packages,
//! each sealed on its own with a nonce made of its sequence number and a final-package flag.
//! The byte layout is documented in docs/format/stream.md.

use std::fmt;

use crate::cipher::{Cipher, CipherSuite, NONCE_LEN, TAG_LEN};
use crate::error::CryptoError;
use crate::keys::hkdf_sha256;
use crate::secret::SecretKey;

/// Plaintext bytes per package (the last package of a stream may be shorter, even empty).
pub const PACKAGE_SIZE: usize = 64 * 1024;
/// Version of the stream format; part of every package's AAD and recorded in the manifest.
pub const STREAM_FORMAT_VERSION: u8 = 1;
/// HKDF label for stream keys.
pub const STREAM_KEY_LABEL: &str = "coffer/stream/v1";

const PKG: u64 = PACKAGE_SIZE as u64;
const TAG: u64 = TAG_LEN as u64;
const SEALED_PKG: u64 = PKG + TAG;
const FINAL_FLAG: u8 = 0x01;

/// Fails unless this build can read streams written with `version`.
pub fn check_stream_version(version: u8) -> Result<(), CryptoError> {
    if version == STREAM_FORMAT_VERSION {
        Ok(())
    } else {
        Err(CryptoError::UnsupportedVersion(version))
    }
}

/// Number of packages in a stream: an empty stream still has one (empty, final) package.
pub fn package_count(plain_len: u64) -> u64 {
    plain_len.div_ceil(PKG).max(1)
}

/// Sealed size of a stream: the plaintext plus one tag per package.
pub fn sealed_len(plain_len: u64) -> u64 {
    plain_len + TAG * package_count(plain_len)
}

/// The key that seals one stream (one object, or one multipart part).
pub struct StreamKey {
    suite: CipherSuite,
    key: SecretKey,
}

impl StreamKey {
    /// The AEAD suite this stream is sealed with.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    fn cipher(&self) -> Cipher {
        Cipher::new(self.suite, &self.key)
    }
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamKey")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// Derives the stream key from the object key and a salt that is random per object and per
/// multipart part, so re-uploading a part never reuses a (key, nonce) pair.
pub fn derive_stream_key(oek: &SecretKey, suite: CipherSuite, salt: &[u8; 32]) -> StreamKey {
    StreamKey {
        suite,
        key: hkdf_sha256(oek.as_bytes(), Some(salt), STREAM_KEY_LABEL, &[suite.id()]),
    }
}

fn package_nonce(index: u64, is_final: bool) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..8].copy_from_slice(&index.to_be_bytes());
    if is_final {
        nonce[NONCE_LEN - 1] = FINAL_FLAG;
    }
    nonce
}

fn package_aad(suite: CipherSuite) -> [u8; 2] {
    [STREAM_FORMAT_VERSION, suite.id()]
}

/// Seals a plaintext stream package by package.
///
/// One full package is held back until more data (or `finish`) shows whether it is the last.
pub struct Encryptor {
    cipher: Cipher,
    aad: [u8; 2],
    index: u64,
    pending: Vec<u8>,
}

impl Encryptor {
    /// Starts a stream; the key is consumed so it cannot seal a second stream.
    pub fn new(key: StreamKey) -> Self {
        Self {
            cipher: key.cipher(),
            aad: package_aad(key.suite),
            index: 0,
            pending: Vec::with_capacity(PACKAGE_SIZE),
        }
    }

    fn seal_package(&mut self, plaintext: &[u8], is_final: bool, out: &mut Vec<u8>) {
        let nonce = package_nonce(self.index, is_final);
        self.cipher.seal_append(&nonce, &self.aad, plaintext, out);
        self.index += 1;
    }

    /// Feeds plaintext; appends every package that is now known not to be the last to `out`.
    pub fn push(&mut self, mut plaintext: &[u8], out: &mut Vec<u8>) {
        while !plaintext.is_empty() {
            if self.pending.len() == PACKAGE_SIZE {
                let pending = std::mem::take(&mut self.pending);
                self.seal_package(&pending, false, out);
                self.pending = pending;
                self.pending.clear();
            }
            if self.pending.is_empty() {
                // Seal straight from the caller's slice: no copy through the pending buffer.
                let full = (plaintext.len().saturating_sub(1)) / PACKAGE_SIZE;
                out.reserve(full * (PACKAGE_SIZE + TAG_LEN));
                for _ in 0..full {
                    let (package, rest) = plaintext.split_at(PACKAGE_SIZE);
                    self.seal_package(package, false, out);
                    plaintext = rest;
                }
            }
            let take = (PACKAGE_SIZE - self.pending.len()).min(plaintext.len());
            self.pending.extend_from_slice(&plaintext[..take]);
            plaintext = &plaintext[take..];
        }
    }

    /// Seals the final package (possibly empty) and ends the stream.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        let pending = std::mem::take(&mut self.pending);
        self.seal_package(&pending, true, out);
    }
}

impl fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encryptor")
            .field("suite", &self.cipher.suite())
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// Seals a whole plaintext in one call.
pub fn seal(key: StreamKey, plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sealed_len(plaintext.len() as u64) as usize);
    let mut enc = Encryptor::new(key);
    enc.push(plaintext, &mut out);
    enc.finish(&mut out);
    out
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
pub fn plan_range(
    plain_len: u64,
    first: u64,
    last_inclusive: u64,
) -> Result<RangePlan, CryptoError> {
    if first > last_inclusive || last_inclusive >= plain_len {
        return Err(CryptoError::InvalidRange {
            first,
            last: last_inclusive,
            len: plain_len,
        });
    }
    let first_package = first / PKG;
    let last_package = last_inclusive / PKG;
    Ok(RangePlan {
        first_package,
        last_package,
        sealed_start: first_package * SEALED_PKG,
        sealed_end: ((last_package + 1) * SEALED_PKG).min(sealed_len(plain_len)),
        skip: first - first_package * PKG,
        len: last_inclusive - first + 1,
    })
}

/// Plans the read of a whole stream, including the single empty package of an empty one.
pub fn plan_full(plain_len: u64) -> RangePlan {
    if plain_len == 0 {
        RangePlan {
            first_package: 0,
            last_package: 0,
            sealed_start: 0,
            sealed_end: TAG,
            skip: 0,
            len: 0,
        }
    } else {
        plan_range(plain_len, 0, plain_len - 1).expect("whole range of a non-empty stream")
    }
}

/// Opens the sealed bytes of a [`RangePlan`], however they are chunked.
pub struct Decryptor {
    cipher: Cipher,
    aad: [u8; 2],
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
    /// Prepares to open `plan`'s sealed bytes; fails if the plan does not fit `plain_len`.
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
        Ok(Self {
            cipher: key.cipher(),
            aad: package_aad(key.suite),
            plain_len,
            final_index: package_count(plain_len) - 1,
            next: plan.first_package,
            last: plan.last_package,
            skip: plan.skip as usize,
            remaining: plan.len,
            buf: Vec::new(),
            failed: None,
        })
    }

    fn sealed_package_len(&self, index: u64) -> usize {
        if index < self.final_index {
            SEALED_PKG as usize
        } else {
            (self.plain_len - self.final_index * PKG + TAG) as usize
        }
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
        let nonce = package_nonce(index, index == self.final_index);
        let start = out.len();
        out.extend_from_slice(package);
        let plain_len = match self
            .cipher
            .open_in_place(&nonce, &self.aad, &mut out[start..])
        {
            Ok(plain) => plain.len(),
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
    let mut buf = sealed.to_vec();
    let plain_len = key
        .cipher()
        .open_in_place(
            &package_nonce(index, is_final),
            &package_aad(key.suite),
            &mut buf,
        )?
        .len();
    buf.truncate(plain_len);
    Ok(buf)
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
