//! Shared fixtures.

use coffer_crypto::{
    derive_stream_key, derive_stream_key_for, derive_stream_key_v1, CipherSuite, Decryptor,
    Encryptor, Entropy, RangePlan, SecretKey, SeededEntropy, StreamBinding, StreamKey,
    STREAM_FORMAT_V1, STREAM_FORMAT_VERSION,
};

pub const PKG: usize = coffer_crypto::PACKAGE_SIZE;

/// Every stream format version this build reads.
pub const VERSIONS: [u8; 2] = [STREAM_FORMAT_V1, STREAM_FORMAT_VERSION];

pub fn oek() -> SecretKey {
    SecretKey::from_bytes([0x11; 32])
}

pub const SALT: [u8; 32] = [0x22; 32];

pub fn binding() -> StreamBinding {
    StreamBinding::new("photos", "2024/cat.jpg", "3f1c", 0)
}

/// The version-2 key of the default fixture stream.
pub fn key(suite: CipherSuite) -> StreamKey {
    derive_stream_key(&oek(), suite, &SALT, &binding())
}

/// The version-1 key of the default fixture stream.
pub fn key_v1(suite: CipherSuite) -> StreamKey {
    derive_stream_key_v1(&oek(), suite, &SALT)
}

/// The default fixture stream's key in `version`.
pub fn key_in(version: u8, suite: CipherSuite) -> StreamKey {
    derive_stream_key_for(version, &oek(), suite, &SALT, &binding()).unwrap()
}

pub fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Draws a u64 from `rng`.
pub fn draw(rng: &dyn Entropy) -> u64 {
    let mut b = [0u8; 8];
    rng.fill(&mut b);
    u64::from_le_bytes(b)
}

/// Splits `data` into chunks of random sizes (including empty ones) drawn from `rng`.
pub fn chunks<'a>(data: &'a [u8], rng: &SeededEntropy, max: usize) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    loop {
        let n = (draw(rng) as usize % (max + 1)).min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
        if rest.is_empty() {
            return out;
        }
    }
}

/// Seals `data` with `key`, fed in random chunks.
pub fn seal_with(key: StreamKey, data: &[u8], rng: &SeededEntropy, max: usize) -> Vec<u8> {
    let mut enc = Encryptor::new(key);
    let mut out = Vec::new();
    for chunk in chunks(data, rng, max) {
        enc.push(chunk, &mut out).unwrap();
    }
    enc.finish(&mut out).unwrap();
    out
}

/// Seals `data` with the default version-2 key, fed in random chunks.
pub fn seal_chunked(suite: CipherSuite, data: &[u8], rng: &SeededEntropy, max: usize) -> Vec<u8> {
    seal_with(key(suite), data, rng, max)
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
