//! The key hierarchy: HKDF derivations with domain-separation labels, and sealing one key
//! under another (a per-object key under a key-encryption key).

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::cipher::{Cipher, CipherSuite, NONCE_LEN, TAG_LEN};
use crate::entropy::Entropy;
use crate::error::CryptoError;
use crate::secret::{SecretKey, KEY_LEN};

/// HKDF label for key-encryption keys derived from a KMS data key.
pub const KEK_LABEL: &str = "coffer/kek/v1";
/// Version byte of the sealed-key blob written by [`seal_key`].
pub const SEALED_KEY_VERSION: u8 = 1;
/// Length of a version-1 sealed-key blob: version ‖ nonce ‖ ciphertext ‖ tag.
pub const SEALED_KEY_LEN: usize = 1 + NONCE_LEN + KEY_LEN + TAG_LEN;

/// HKDF-SHA256 with info = `label ‖ 0x00 ‖ context`.
///
/// The NUL after the label keeps labels and contexts from running into each other, so two
/// different (label, context) pairs never produce the same info string.
pub(crate) fn hkdf_sha256(
    ikm: &[u8],
    salt: Option<&[u8]>,
    label: &str,
    context: &[u8],
) -> SecretKey {
    debug_assert!(
        !label.as_bytes().contains(&0),
        "labels must not contain NUL"
    );
    let hk = Hkdf::<Sha256>::new(salt, ikm);
    let mut okm = Zeroizing::new([0u8; KEY_LEN]);
    hk.expand_multi_info(&[label.as_bytes(), &[0u8], context], okm.as_mut())
        .expect("32 bytes is within HKDF-SHA256's output limit");
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

fn sealed_key_aad(version: u8, aad: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(1 + aad.len());
    full.push(version);
    full.extend_from_slice(aad);
    full
}

/// Seals `key` under `kek` (AES-256-GCM, random nonce); the blob is [`SEALED_KEY_LEN`] bytes.
pub fn seal_key(kek: &SecretKey, key: &SecretKey, aad: &[u8], rng: &dyn Entropy) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce);
    let cipher = Cipher::new(CipherSuite::Aes256Gcm, kek);
    let mut out = Vec::with_capacity(SEALED_KEY_LEN);
    out.push(SEALED_KEY_VERSION);
    out.extend_from_slice(&nonce);
    cipher.seal_append(
        &nonce,
        &sealed_key_aad(SEALED_KEY_VERSION, aad),
        key.as_bytes(),
        &mut out,
    );
    out
}

/// Opens a blob made by [`seal_key`] with the same KEK and AAD.
pub fn unseal_key(kek: &SecretKey, sealed: &[u8], aad: &[u8]) -> Result<SecretKey, CryptoError> {
    let (&version, rest) = sealed
        .split_first()
        .ok_or(CryptoError::Malformed("empty sealed key"))?;
    if version != SEALED_KEY_VERSION {
        return Err(CryptoError::UnsupportedVersion(version));
    }
    if sealed.len() != SEALED_KEY_LEN {
        return Err(CryptoError::Malformed("sealed key has the wrong length"));
    }
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at NONCE_LEN");
    let mut buf = Zeroizing::new([0u8; KEY_LEN + TAG_LEN]);
    buf.copy_from_slice(ct);
    let cipher = Cipher::new(CipherSuite::Aes256Gcm, kek);
    let plain = cipher.open_in_place(&nonce, &sealed_key_aad(version, aad), buf.as_mut())?;
    SecretKey::from_slice(plain)
}
