//! Sealed-key vectors: sealed_key.json.

use coffer_crypto::{
    seal_key_with, unseal_key, CipherSuite, CryptoError, Entropy, SecretKey, SeededEntropy,
};
use serde::{Deserialize, Serialize};

use super::*;
use crate::reference;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedKeyFile {
    description: String,
    vectors: Vec<SealedKeyVector>,
    invalid: Vec<InvalidSealedKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedKeyVector {
    name: String,
    version: u8,
    cipher_id: u8,
    kek: String,
    key: String,
    aad: String,
    nonce: String,
    sealed: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InvalidSealedKey {
    name: String,
    kek: String,
    aad: String,
    sealed: String,
    /// The `CryptoError` variant coffer_crypto returns.
    error: String,
}

/// Hands out a fixed byte string, so `seal_key_with` uses a recorded nonce.
struct FixedEntropy(Vec<u8>);

impl Entropy for FixedEntropy {
    fn fill(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&self.0[..buf.len()]);
    }
}

fn error_name(e: &CryptoError) -> &'static str {
    match e {
        CryptoError::Authentication => "Authentication",
        CryptoError::Malformed(_) => "Malformed",
        CryptoError::UnsupportedVersion(_) => "UnsupportedVersion",
        CryptoError::UnknownCipher(_) => "UnknownCipher",
        _ => "other",
    }
}

fn generate_sealed_keys() -> SealedKeyFile {
    let rng = SeededEntropy::new(4242);
    let mut vectors = Vec::new();
    let cases = [
        (1u8, CipherSuite::Aes256Gcm, &b"bucket/object"[..]),
        (
            2,
            CipherSuite::Aes256Gcm,
            b"coffer/object-key/v1\0S3\0photos\0cat.jpg",
        ),
        (
            2,
            CipherSuite::ChaCha20Poly1305,
            b"coffer/object-key/v1\0KMS\0photos\0cat.jpg",
        ),
        (2, CipherSuite::Aes256Gcm, b""),
    ];
    for (i, (version, suite, aad)) in cases.into_iter().enumerate() {
        let (kek, key) = (bytes32(&rng), bytes32(&rng));
        let mut nonce = [0u8; 12];
        rng.fill(&mut nonce);
        let sealed = if version == 1 {
            reference::seal_key_v1(&kek, &key, aad, &nonce)
        } else {
            seal_key_with(
                suite,
                &SecretKey::from_bytes(kek),
                &SecretKey::from_bytes(key),
                aad,
                &FixedEntropy(nonce.to_vec()),
            )
        };
        vectors.push(SealedKeyVector {
            name: format!("v{version}-{}-{i}", suite.name().to_lowercase()),
            version,
            cipher_id: suite.id(),
            kek: hex::encode(kek),
            key: hex::encode(key),
            aad: hex::encode(aad),
            nonce: hex::encode(nonce),
            sealed: hex::encode(sealed),
        });
    }
    let v1 = unhex(&vectors[0].sealed);
    let v2 = unhex(&vectors[1].sealed);
    let bad = |name: &str, from: usize, blob: Vec<u8>| {
        let kek = SecretKey::from_bytes(unhex32(&vectors[from].kek));
        let aad = unhex(&vectors[from].aad);
        let err = unseal_key(&kek, &blob, &aad).unwrap_err();
        InvalidSealedKey {
            name: name.into(),
            kek: vectors[from].kek.clone(),
            aad: vectors[from].aad.clone(),
            sealed: hex::encode(&blob),
            error: error_name(&err).into(),
        }
    };
    let flip = |mut b: Vec<u8>, i: usize| {
        b[i] ^= 1;
        b
    };
    let invalid = vec![
        bad("empty", 1, Vec::new()),
        bad("version-0", 1, [&[0u8][..], &v2[1..]].concat()),
        bad("version-3", 1, [&[3u8][..], &v2[1..]].concat()),
        bad(
            "v2-unknown-algorithm",
            1,
            [&[2u8, 3][..], &v2[2..]].concat(),
        ),
        bad(
            "v2-algorithm-swapped",
            1,
            [&[2u8, 2][..], &v2[2..]].concat(),
        ),
        bad("v2-truncated", 1, v2[..61].to_vec()),
        bad("v2-trailing-byte", 1, [&v2[..], &[0][..]].concat()),
        bad("v2-header-only", 1, v2[..2].to_vec()),
        bad("v2-tag-flipped", 1, flip(v2.clone(), 61)),
        bad("v2-nonce-flipped", 1, flip(v2.clone(), 2)),
        bad("v1-truncated", 0, v1[..60].to_vec()),
        bad("v1-read-as-v2", 0, [&[2u8][..], &v1[1..]].concat()),
        bad("v1-ciphertext-flipped", 0, flip(v1.clone(), 20)),
    ];
    SealedKeyFile {
        description: "Coffer sealed keys. v1 (read-only): 0x01 ‖ nonce (12) ‖ AES-256-GCM \
                      ciphertext (32) ‖ tag (16), AAD = 0x01 ‖ aad. v2: 0x02 ‖ algorithm id ‖ \
                      nonce (12) ‖ ciphertext (32) ‖ tag (16), AAD = 0x02 ‖ algorithm id ‖ aad. \
                      `invalid` blobs must be rejected. See docs/format/object-encryption.md."
            .into(),
        vectors,
        invalid,
    }
}

#[test]
fn sealed_key_vectors() {
    let file: SealedKeyFile = load("sealed_key.json", generate_sealed_keys);
    for version in [1, 2] {
        assert!(file.vectors.iter().any(|v| v.version == version));
    }
    for suite in CipherSuite::ALL {
        assert!(file
            .vectors
            .iter()
            .any(|v| v.version == 2 && v.cipher_id == suite.id()));
    }
    for v in &file.vectors {
        let name = &v.name;
        let suite = suite_of(v.cipher_id);
        let (kek, key, aad, sealed) = (
            unhex(&v.kek),
            unhex(&v.key),
            unhex(&v.aad),
            unhex(&v.sealed),
        );
        let nonce: [u8; 12] = unhex(&v.nonce).try_into().unwrap();
        let ring_kek = SecretKey::from_slice(&kek).unwrap();
        match v.version {
            1 => {
                assert_eq!(suite, CipherSuite::Aes256Gcm);
                assert_eq!(sealed.len(), coffer_crypto::SEALED_KEY_LEN_V1);
                // No v1 writer is left in coffer_crypto: only the reference makes v1 blobs.
                assert_eq!(
                    reference::seal_key_v1(&kek, &key, &aad, &nonce),
                    sealed,
                    "{name}"
                );
            }
            2 => {
                assert_eq!(sealed.len(), coffer_crypto::SEALED_KEY_LEN);
                let ours = seal_key_with(
                    suite,
                    &ring_kek,
                    &SecretKey::from_slice(&key).unwrap(),
                    &aad,
                    &FixedEntropy(nonce.to_vec()),
                );
                assert_eq!(ours, sealed, "{name}: (a) ring output");
                let reference = reference::seal_key_v2(suite, &kek, &key, &aad, &nonce);
                assert_eq!(reference, sealed, "{name}: (b) reference output");
            }
            other => panic!("unknown sealed-key version {other}"),
        }
        assert_eq!(
            reference::unseal_key(&kek, &sealed, &aad),
            Some(key.clone()),
            "{name}"
        );
        let opened = unseal_key(&ring_kek, &sealed, &aad).unwrap();
        assert_eq!(opened.as_bytes()[..], key[..], "{name}: (c) ring opens");
        assert_eq!(
            unseal_key(&ring_kek, &sealed, b"other aad"),
            Err(CryptoError::Authentication)
        );
    }
    assert!(!file.invalid.is_empty());
    for bad in &file.invalid {
        let kek = SecretKey::from_slice(&unhex(&bad.kek)).unwrap();
        let blob = unhex(&bad.sealed);
        let aad = unhex(&bad.aad);
        let err = unseal_key(&kek, &blob, &aad).unwrap_err();
        assert_eq!(error_name(&err), bad.error, "{}", bad.name);
        assert_eq!(
            reference::unseal_key(&unhex(&bad.kek), &blob, &aad),
            None,
            "{}",
            bad.name
        );
    }
}
