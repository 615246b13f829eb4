//! The bodies of the cargo-fuzz targets in crypto/fuzz/ (which `#[path]`-import this file) and
//! of the CI test in fuzz.rs, so CI runs exactly the code the fuzzer runs. Uses only the public
//! coffer_crypto API. A body panics only when the code under test misbehaves: it must never
//! panic itself, never accept tampered bytes, and never return wrong plaintext.

use coffer_crypto::{
    derive_stream_key_for, open, open_package, plan_full, plan_range, seal, seal_key_with,
    unseal_key, CipherSuite, Decryptor, Entropy, RangePlan, SecretKey, StreamBinding, StreamKey,
    PACKAGE_SIZE, STREAM_FORMAT_V1, STREAM_FORMAT_VERSION,
};

/// The fixed object key, salt and binding every fuzzed stream uses.
pub const FUZZ_OEK: [u8; 32] = [0x5a; 32];
pub const FUZZ_SALT: [u8; 32] = [0xa5; 32];
pub const FUZZ_KEK: [u8; 32] = [0x3c; 32];
pub const FUZZ_AAD: &[u8] = b"fuzz/aad";

/// Flag bits of the first input byte of [`stream_decoder`].
pub const F_V2: u8 = 0x01;
pub const F_CHACHA: u8 = 0x02;
pub const F_SEAL_THEN_TAMPER: u8 = 0x04;
pub const F_RANGE: u8 = 0x08;
pub const F_WIDE_LEN: u8 = 0x10;

/// Largest plaintext a seal-then-tamper input seals (keeps each run fast).
const MAX_SEALED_PLAIN: usize = 3 * PACKAGE_SIZE + 100;

pub fn fuzz_binding() -> StreamBinding {
    StreamBinding::new("fuzz", "object", "v1", 1)
}

/// The key of the fuzzed stream of `version` and `suite`.
pub fn fuzz_key(version: u8, suite: CipherSuite) -> StreamKey {
    derive_stream_key_for(
        version,
        &SecretKey::from_bytes(FUZZ_OEK),
        suite,
        &FUZZ_SALT,
        &fuzz_binding(),
    )
    .expect("both versions are readable")
}

/// Reads fixed-width fields from the front of the input; zeros once it runs out.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u8(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.bytes())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }
    fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// Opens `sealed` (the bytes of `plan`) in chunks of `chunk` bytes.
fn decrypt(
    key: StreamKey,
    plain_len: u64,
    plan: &RangePlan,
    sealed: &[u8],
    chunk: usize,
) -> Result<Vec<u8>, coffer_crypto::CryptoError> {
    let mut dec = Decryptor::new(key, plain_len, plan)?;
    let mut out = Vec::new();
    for piece in sealed.chunks(chunk.max(1)) {
        dec.push(piece, &mut out)?;
    }
    dec.finish()?;
    Ok(out)
}

/// Fuzz target `stream_decoder`.
///
/// Input: flags (u8) ‖ plaintext length (u32, or u64 with [`F_WIDE_LEN`]) ‖ range first (u64)
/// ‖ range last (u64) ‖ chunk size (u16) ‖ tamper position (u32) ‖ tamper xor (u8) ‖ payload.
/// Without [`F_SEAL_THEN_TAMPER`] the payload is the sealed stream, taken as is. With it, the
/// payload is a plaintext that is sealed, then one byte is xored (or, with xor 0, the stream is
/// cut at the position); the decoder must then refuse exactly the reads that cover the damage.
pub fn stream_decoder(data: &[u8]) {
    let mut c = Cursor(data);
    let flags = c.u8();
    let version = if flags & F_V2 != 0 {
        STREAM_FORMAT_VERSION
    } else {
        STREAM_FORMAT_V1
    };
    let suite = if flags & F_CHACHA != 0 {
        CipherSuite::ChaCha20Poly1305
    } else {
        CipherSuite::Aes256Gcm
    };
    let len_field = if flags & F_WIDE_LEN != 0 {
        c.u64()
    } else {
        u64::from(c.u32())
    };
    let (first, last) = (c.u64(), c.u64());
    let chunk = usize::from(c.u16()) + 1;
    let tamper_pos = c.u32() as usize;
    let tamper_xor = c.u8();
    let payload = c.rest();

    if flags & F_SEAL_THEN_TAMPER == 0 {
        let plain_len = if flags & F_WIDE_LEN != 0 {
            len_field
        } else {
            len_field % (4 * PACKAGE_SIZE as u64 + 64)
        };
        let plan = if flags & F_RANGE != 0 {
            match plan_range(plain_len, first, last) {
                Ok(plan) => plan,
                Err(_) => return,
            }
        } else {
            plan_full(plain_len)
        };
        if let Ok(out) = decrypt(fuzz_key(version, suite), plain_len, &plan, payload, chunk) {
            assert_eq!(
                out.len() as u64,
                plan.len,
                "a read yields exactly its range"
            );
        }
        let _ = open(fuzz_key(version, suite), plain_len, payload);
        let index = first % (1 << 33);
        let _ = open_package(&fuzz_key(version, suite), index, last & 1 == 1, payload);
        return;
    }

    let plain = &payload[..payload.len().min(MAX_SEALED_PLAIN)];
    let plain_len = plain.len() as u64;
    let mut sealed = seal(fuzz_key(version, suite), plain).expect("a small stream seals");
    let plan = if flags & F_RANGE != 0 && plain_len > 0 {
        let (a, b) = (first % plain_len, last % plain_len);
        plan_range(plain_len, a.min(b), a.max(b)).expect("a range inside the stream")
    } else {
        plan_full(plain_len)
    };
    let (start, end) = (plan.sealed_start as usize, plan.sealed_end as usize);
    let pos = tamper_pos % sealed.len();
    let damaged = if tamper_xor == 0 {
        // Cut the stream at `pos`; the read is hurt if it needs any byte from there on.
        sealed.truncate(pos);
        pos < end
    } else {
        sealed[pos] ^= tamper_xor;
        (start..end).contains(&pos)
    };
    let window = &sealed[start.min(sealed.len())..end.min(sealed.len())];
    let got = decrypt(fuzz_key(version, suite), plain_len, &plan, window, chunk);
    if damaged {
        assert!(got.is_err(), "tampered bytes were accepted");
    } else {
        let want = &plain[(plan.first_package as usize * PACKAGE_SIZE + plan.skip as usize)..]
            [..plan.len as usize];
        assert_eq!(got.expect("an undamaged read opens"), want);
    }
}

/// Hands out fixed bytes, for a chosen nonce.
struct FixedEntropy([u8; 12]);

impl Entropy for FixedEntropy {
    fn fill(&self, buf: &mut [u8]) {
        for (b, x) in buf.iter_mut().zip(self.0.iter().cycle()) {
            *b = *x;
        }
    }
}

/// Fuzz target `sealed_key`.
///
/// Input: mode (u8) ‖ rest. Mode bit 0 clear: the rest is a blob for [`unseal_key`], which must
/// return Ok or Err, never panic. Set: mode bit 1 picks the suite, the rest gives nonce (12) ‖
/// key (32) ‖ tamper position (u8) ‖ tamper xor (u8); the key is sealed and one byte xored:
/// the blob must then open if and only if nothing changed.
pub fn sealed_key(data: &[u8]) {
    let kek = SecretKey::from_bytes(FUZZ_KEK);
    let mut c = Cursor(data);
    let mode = c.u8();
    if mode & 1 == 0 {
        let blob = c.rest();
        let _ = unseal_key(&kek, blob, FUZZ_AAD);
        let _ = unseal_key(&kek, blob, b"");
        return;
    }
    let suite = if mode & 2 != 0 {
        CipherSuite::ChaCha20Poly1305
    } else {
        CipherSuite::Aes256Gcm
    };
    let nonce = c.bytes::<12>();
    let key = SecretKey::from_bytes(c.bytes::<32>());
    let (pos, xor) = (c.u8(), c.u8());
    let mut blob = seal_key_with(suite, &kek, &key, FUZZ_AAD, &FixedEntropy(nonce));
    let pos = usize::from(pos) % blob.len();
    blob[pos] ^= xor;
    match unseal_key(&kek, &blob, FUZZ_AAD) {
        Ok(opened) => {
            assert_eq!(xor, 0, "a tampered sealed key opened");
            assert!(opened == key);
        }
        Err(e) => assert_ne!(xor, 0, "an intact sealed key failed: {e}"),
    }
}
