//! Shared fixtures.

use coffer_crypto::{
    derive_stream_key, CipherSuite, Decryptor, Encryptor, Entropy, RangePlan, SecretKey,
    SeededEntropy, StreamKey,
};

pub const PKG: usize = coffer_crypto::PACKAGE_SIZE;

pub fn oek() -> SecretKey {
    SecretKey::from_bytes([0x11; 32])
}

pub const SALT: [u8; 32] = [0x22; 32];

pub fn key(suite: CipherSuite) -> StreamKey {
    derive_stream_key(&oek(), suite, &SALT)
}

pub fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Splits `data` into chunks of random sizes (including empty ones) drawn from `rng`.
pub fn chunks<'a>(data: &'a [u8], rng: &SeededEntropy, max: usize) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    loop {
        let mut b = [0u8; 4];
        rng.fill(&mut b);
        let n = (u32::from_le_bytes(b) as usize % (max + 1)).min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
        if rest.is_empty() {
            return out;
        }
    }
}

pub fn seal_chunked(suite: CipherSuite, data: &[u8], rng: &SeededEntropy, max: usize) -> Vec<u8> {
    let mut enc = Encryptor::new(key(suite));
    let mut out = Vec::new();
    for chunk in chunks(data, rng, max) {
        enc.push(chunk, &mut out);
    }
    enc.finish(&mut out);
    out
}

/// Opens `plan`'s slice of `sealed` in random chunks.
pub fn open_plan(
    key: StreamKey,
    plain_len: u64,
    plan: &RangePlan,
    sealed: &[u8],
    rng: &SeededEntropy,
) -> Result<Vec<u8>, coffer_crypto::CryptoError> {
    let mut dec = Decryptor::new(key, plain_len, plan)?;
    let mut out = Vec::new();
    let range = &sealed[plan.sealed_start as usize..plan.sealed_end as usize];
    for chunk in chunks(range, rng, 3 * PKG) {
        dec.push(chunk, &mut out)?;
    }
    dec.finish()?;
    Ok(out)
}
