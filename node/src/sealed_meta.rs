//! User metadata (`x-amz-meta-*`) sealed under the object key, so that it never reaches the Raft
//! log in plaintext. Layout (docs/format/object-encryption.md, "Sealed user metadata"):
//!
//! ```text
//! 0x01 ‖ cipher id ‖ nonce (12, random) ‖ AEAD(JSON object of the pairs) ‖ tag (16)
//! key = HKDF-SHA256(OEK, "coffer/user-metadata/v1", binding)   AAD = 0x01 ‖ cipher id ‖ binding
//! ```

use std::collections::BTreeMap;

use coffer_crypto::{Cipher, CipherSuite, Entropy, SecretKey, StreamBinding, NONCE_LEN, TAG_LEN};
use zeroize::Zeroizing;

/// Version byte of a sealed metadata blob.
pub const SEALED_META_VERSION: u8 = 1;
/// HKDF label of the metadata key.
pub const SEALED_META_LABEL: &str = "coffer/user-metadata/v1";

const HEADER_LEN: usize = 2 + NONCE_LEN;

/// Why sealed metadata did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealedMetaError {
    /// Too short, unknown version or cipher.
    #[error("sealed metadata is malformed")]
    Malformed,
    /// The tag did not verify (wrong key, wrong object, or tampering).
    #[error("sealed metadata failed authentication")]
    Authentication,
}

fn aad(suite: CipherSuite, binding: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(2 + binding.len());
    a.push(SEALED_META_VERSION);
    a.push(suite.id());
    a.extend_from_slice(binding);
    a
}

fn cipher(oek: &SecretKey, suite: CipherSuite, binding: &[u8]) -> Cipher {
    let key = coffer_crypto::derive_key(oek, SEALED_META_LABEL, binding);
    Cipher::new(suite, &key)
}

/// Seals `pairs`; `None` when there is nothing to seal.
pub fn seal(
    oek: &SecretKey,
    suite: CipherSuite,
    binding: &StreamBinding,
    pairs: &BTreeMap<String, String>,
    rng: &dyn Entropy,
) -> Option<Vec<u8>> {
    if pairs.is_empty() {
        return None;
    }
    let binding = binding.encode();
    // Serializing a map of strings cannot fail.
    let plain = Zeroizing::new(serde_json::to_vec(pairs).unwrap_or_default());
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce);
    let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN);
    out.push(SEALED_META_VERSION);
    out.push(suite.id());
    out.extend_from_slice(&nonce);
    cipher(oek, suite, &binding).seal_append(&nonce, &aad(suite, &binding), &plain, &mut out);
    Some(out)
}

/// Opens a blob made by [`seal`] for the same object key and binding.
pub fn open(
    oek: &SecretKey,
    binding: &StreamBinding,
    blob: &[u8],
) -> Result<BTreeMap<String, String>, SealedMetaError> {
    if blob.len() < HEADER_LEN + TAG_LEN || blob[0] != SEALED_META_VERSION {
        return Err(SealedMetaError::Malformed);
    }
    let suite = CipherSuite::from_id(blob[1]).map_err(|_| SealedMetaError::Malformed)?;
    let nonce: [u8; NONCE_LEN] = blob[2..HEADER_LEN]
        .try_into()
        .map_err(|_| SealedMetaError::Malformed)?;
    let binding = binding.encode();
    let mut buf = Zeroizing::new(blob[HEADER_LEN..].to_vec());
    let plain = cipher(oek, suite, &binding)
        .open_in_place(&nonce, &aad(suite, &binding), &mut buf)
        .map_err(|_| SealedMetaError::Authentication)?;
    serde_json::from_slice(plain).map_err(|_| SealedMetaError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_crypto::SeededEntropy;

    fn pairs() -> BTreeMap<String, String> {
        [("color".to_string(), "blue-MARKER".to_string())].into()
    }

    #[test]
    fn round_trips_and_hides_the_values() {
        let oek = SecretKey::from_bytes([9; 32]);
        let b = StreamBinding::new("bkt", "a/b", "null", 0);
        for suite in CipherSuite::ALL {
            let blob = seal(&oek, suite, &b, &pairs(), &SeededEntropy::new(1)).unwrap();
            assert!(!blob.windows(6).any(|w| w == b"MARKER"));
            assert_eq!(open(&oek, &b, &blob).unwrap(), pairs());
        }
        assert!(seal(
            &oek,
            CipherSuite::Aes256Gcm,
            &b,
            &BTreeMap::new(),
            &SeededEntropy::new(1)
        )
        .is_none());
    }

    #[test]
    fn is_bound_to_key_and_object() {
        let oek = SecretKey::from_bytes([9; 32]);
        let b = StreamBinding::new("bkt", "a", "null", 0);
        let blob = seal(
            &oek,
            CipherSuite::Aes256Gcm,
            &b,
            &pairs(),
            &SeededEntropy::new(2),
        )
        .unwrap();
        let other_key = SecretKey::from_bytes([8; 32]);
        assert_eq!(
            open(&other_key, &b, &blob),
            Err(SealedMetaError::Authentication)
        );
        let moved = StreamBinding::new("bkt", "b", "null", 0);
        assert_eq!(
            open(&oek, &moved, &blob),
            Err(SealedMetaError::Authentication)
        );
        let mut flipped = blob.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(
            open(&oek, &b, &flipped),
            Err(SealedMetaError::Authentication)
        );
        assert_eq!(open(&oek, &b, &blob[..10]), Err(SealedMetaError::Malformed));
        let mut unknown = blob;
        unknown[1] = 77;
        assert_eq!(open(&oek, &b, &unknown), Err(SealedMetaError::Malformed));
    }
}
