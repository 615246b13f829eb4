//! The benchmarks' no-op cipher: same package framing as the STREAM format (64 KiB packages,
//! each followed by a 16-byte tag, one package held back until the end is known), but it copies
//! plaintext and the tag is zeros. It exists only here, never in the product.

use coffer_crypto::{CryptoError, PACKAGE_SIZE, TAG_LEN};
use coffer_node::pipeline::{PackageOpener, StreamSealer};

pub struct NoopSealer {
    pending: Vec<u8>,
}

impl NoopSealer {
    pub fn new() -> Self {
        Self {
            pending: Vec::with_capacity(PACKAGE_SIZE),
        }
    }
}

fn noop_seal(package: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(package);
    out.extend_from_slice(&[0u8; TAG_LEN]);
}

impl StreamSealer for NoopSealer {
    fn push(&mut self, mut plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        while !plaintext.is_empty() {
            if self.pending.len() == PACKAGE_SIZE {
                noop_seal(&self.pending, out);
                self.pending.clear();
            }
            if self.pending.is_empty() {
                let full = (plaintext.len().saturating_sub(1)) / PACKAGE_SIZE;
                out.reserve(full * (PACKAGE_SIZE + TAG_LEN));
                for _ in 0..full {
                    let (package, rest) = plaintext.split_at(PACKAGE_SIZE);
                    noop_seal(package, out);
                    plaintext = rest;
                }
            }
            let take = (PACKAGE_SIZE - self.pending.len()).min(plaintext.len());
            self.pending.extend_from_slice(&plaintext[..take]);
            plaintext = &plaintext[take..];
        }
        Ok(())
    }

    fn finish(self, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        noop_seal(&self.pending, out);
        Ok(())
    }

    fn finish_boxed(self: Box<Self>, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        (*self).finish(out)
    }
}

pub struct NoopOpener;

impl PackageOpener for NoopOpener {
    fn open_package(&self, _: u64, _: bool, mut sealed: Vec<u8>) -> Result<Vec<u8>, CryptoError> {
        let n = sealed
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(CryptoError::Malformed("short package"))?;
        if sealed[n..] != [0u8; TAG_LEN] {
            return Err(CryptoError::Malformed("bad no-op tag"));
        }
        // Opened where it lies, as open_package_vec does.
        sealed.truncate(n);
        Ok(sealed)
    }
}
