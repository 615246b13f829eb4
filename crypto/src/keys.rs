//! The key hierarchy: HKDF derivations with domain-separation labels, and sealing one key
//! under another (a per-object key under a key-encryption key).
//!
//! Byte layouts: docs/format/object-encryption.md.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::cipher::{Cipher, CipherSuite, NONCE_LEN, TAG_LEN};
use crate::entropy::Entropy;
use crate::error::CryptoError;
use crate::secret::{SecretKey, KEY_LEN};

/// HKDF label for key-encryption keys derived from a KMS data key.
pub const KEK_LABEL: &str = "coffer/kek/v1";
/// Version byte of the sealed-key blob written by [`seal_key`] and [`seal_key_with`].
pub const SEALED_KEY_VERSION: u8 = 2;
/// Length of a version-2 sealed-key blob: version ‖ algorithm ‖ nonce ‖ ciphertext ‖ tag.
pub const SEALED_KEY_LEN: usize = 1 + 1 + NONCE_LEN + KEY_LEN + TAG_LEN;
/// Length of a version-1 sealed-key blob (still readable): version ‖ nonce ‖ ciphertext ‖ tag.
pub const SEALED_KEY_LEN_V1: usize = 1 + NONCE_LEN + KEY_LEN + TAG_LEN;

const SEALED_KEY_V1: u8 = 1;

/// HKDF-SHA256 expanding `out.len()` bytes with info = `label ‖ 0x00 ‖ context`.
///
/// The NUL after the label keeps labels and contexts from running into each other, so two
/// different (label, context) pairs never produce the same info string.
pub(crate) fn hkdf_expand(
    ikm: &[u8],
    salt: Option<&[u8]>,
    label: &str,
    context: &[u8],
    out: &mut [u8],
) {
    debug_assert!(
        !label.as_bytes().contains(&0),
        "labels must not contain NUL"
    );
    let hk = Hkdf::<Sha256>::new(salt, ikm);
    hk.expand_multi_info(&[label.as_bytes(), &[0u8], context], out)
        .expect("callers expand far less than HKDF-SHA256's 8160-byte limit");
}

/// HKDF-SHA256 with info = `label ‖ 0x00 ‖ context` and 32 bytes of output.
pub(crate) fn hkdf_sha256(
    ikm: &[u8],
    salt: Option<&[u8]>,
    label: &str,
    context: &[u8],
) -> SecretKey {
    let mut okm = Zeroizing::new([0u8; KEY_LEN]);
    hkdf_expand(ikm, salt, label, context, okm.as_mut());
    SecretKey::from_bytes(*okm)
}

/// Derives a sub-key for a named purpose (`label`, no NUL bytes) and context.
///
/// Other crates (e.g. the local KMS) use this with their own label so that their keys never
/// collide with the ones derived here.
pub fn derive_key(ikm: &SecretKey, label: &str, context: &[u8]) -> SecretKey {
    hkdf_sha256(ikm.as_bytes(), None, label, context)
}

/// Derives the key-encryption key for one object from a KMS data key.
///
/// `context` binds the KEK to what the node decides (bucket, object key, SSE type), so a
/// sealed key copied to another object or SSE type does not unseal.
pub fn derive_kek(data_key: &SecretKey, context: &[u8]) -> SecretKey {
    derive_key(data_key, KEK_LABEL, context)
}

/// The AAD of a sealed key: its header bytes (version, and from version 2 on the algorithm id)
/// followed by the caller's AAD.
fn sealed_key_aad(header: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(header.len() + aad.len());
    full.extend_from_slice(header);
    full.extend_from_slice(aad);
    full
}

/// Seals `key` under `kek` with AES-256-GCM and a random nonce; see [`seal_key_with`].
pub fn seal_key(kek: &SecretKey, key: &SecretKey, aad: &[u8], rng: &dyn Entropy) -> Vec<u8> {
    seal_key_with(CipherSuite::Aes256Gcm, kek, key, aad, rng)
}

/// Seals `key` under `kek` with `suite` and a nonce drawn from `rng`.
///
/// The blob is version 2, [`SEALED_KEY_LEN`] bytes:
/// `0x02 ‖ algorithm id ‖ nonce (12) ‖ ciphertext (32) ‖ tag (16)`, sealed with
/// AAD = `0x02 ‖ algorithm id ‖ aad`.
pub fn seal_key_with(
    suite: CipherSuite,
    kek: &SecretKey,
    key: &SecretKey,
    aad: &[u8],
    rng: &dyn Entropy,
) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce);
    let header = [SEALED_KEY_VERSION, suite.id()];
    let cipher = Cipher::new(suite, kek);
    let mut out = Vec::with_capacity(SEALED_KEY_LEN);
    out.extend_from_slice(&header);
    out.extend_from_slice(&nonce);
    cipher.seal_append(
        &nonce,
        &sealed_key_aad(&header, aad),
        key.as_bytes(),
        &mut out,
    );
    out
}

/// Opens a blob made by [`seal_key`] / [`seal_key_with`] (version 2) or by the version-1
/// writer, with the same KEK and AAD. Malformed blobs are errors, never panics.
pub fn unseal_key(kek: &SecretKey, sealed: &[u8], aad: &[u8]) -> Result<SecretKey, CryptoError> {
    let (&version, _) = sealed
        .split_first()
        .ok_or(CryptoError::Malformed("empty sealed key"))?;
    let (suite, header_len) = match version {
        SEALED_KEY_V1 => (CipherSuite::Aes256Gcm, 1),
        SEALED_KEY_VERSION => {
            let &id = sealed
                .get(1)
                .ok_or(CryptoError::Malformed("sealed key has the wrong length"))?;
            (CipherSuite::from_id(id)?, 2)
        }
        other => return Err(CryptoError::UnsupportedVersion(other)),
    };
    let expected_len = if version == SEALED_KEY_V1 {
        SEALED_KEY_LEN_V1
    } else {
        SEALED_KEY_LEN
    };
    if sealed.len() != expected_len {
        return Err(CryptoError::Malformed("sealed key has the wrong length"));
    }
    let (header, rest) = sealed.split_at(header_len);
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| CryptoError::Malformed("sealed key nonce"))?;
    let mut buf = Zeroizing::new([0u8; KEY_LEN + TAG_LEN]);
    if ct.len() != buf.len() {
        return Err(CryptoError::Malformed("sealed key has the wrong length"));
    }
    buf.copy_from_slice(ct);
    let cipher = Cipher::new(suite, kek);
    let plain = cipher.open_in_place(&nonce, &sealed_key_aad(header, aad), buf.as_mut())?;
    SecretKey::from_slice(plain)
}
