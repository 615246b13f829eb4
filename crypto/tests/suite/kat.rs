//! Known answers: pinned output bytes, and an independent re-implementation of the documented
//! format with the `aes-gcm` / `chacha20poly1305` / `hkdf` crates.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use coffer_crypto::{seal, seal_key, CipherSuite, SecretKey, SeededEntropy, PACKAGE_SIZE};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};

use crate::support::*;

/// The stream key as docs/format/stream.md describes it.
fn reference_stream_key(suite: CipherSuite) -> [u8; 32] {
    let hk = Hkdf::<Sha256>::new(Some(&SALT), oek().as_bytes());
    let mut okm = [0u8; 32];
    hk.expand_multi_info(&[b"coffer/stream/v1", &[0], &[suite.id()]], &mut okm)
        .unwrap();
    okm
}

fn reference_nonce(index: u64, is_final: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(is_final);
    n
}

/// Seals a stream package by package with the reference crates.
fn reference_seal(suite: CipherSuite, data: &[u8]) -> Vec<u8> {
    let key = reference_stream_key(suite);
    let aad = [1u8, suite.id()];
    let packages: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(PACKAGE_SIZE).collect()
    };
    let mut out = Vec::new();
    for (i, msg) in packages.iter().enumerate() {
        let nonce = reference_nonce(i as u64, i + 1 == packages.len());
        let payload = Payload { msg, aad: &aad };
        let sealed = match suite {
            CipherSuite::Aes256Gcm => aes_gcm::Aes256Gcm::new_from_slice(&key)
                .unwrap()
                .encrypt(aes_gcm::Nonce::from_slice(&nonce), payload)
                .unwrap(),
            CipherSuite::ChaCha20Poly1305 => {
                chacha20poly1305::ChaCha20Poly1305::new_from_slice(&key)
                    .unwrap()
                    .encrypt(chacha20poly1305::Nonce::from_slice(&nonce), payload)
                    .unwrap()
            }
        };
        out.extend_from_slice(&sealed);
    }
    out
}

#[test]
fn ring_matches_the_reference_crates() {
    for suite in CipherSuite::ALL {
        for len in [0, 1, 100, PKG, PKG + 1, 3 * PKG + 5] {
            let data = plaintext(len);
            assert_eq!(
                seal(key(suite), &data),
                reference_seal(suite, &data),
                "{suite:?} {len}"
            );
        }
    }
}

#[test]
fn pinned_small_streams() {
    let data = b"coffer";
    assert_eq!(
        hex::encode(seal(key(CipherSuite::Aes256Gcm), data)),
        "43af0292f64cd057e63570dd3f6ce2f5cf689d2729eb"
    );
    assert_eq!(
        hex::encode(seal(key(CipherSuite::ChaCha20Poly1305), data)),
        "90b5eaea3997912d080610e170b49bca8903a385475d"
    );
    assert_eq!(
        hex::encode(seal(key(CipherSuite::Aes256Gcm), b"")),
        "06348c487cc75446bc3c4030ca9a42c1"
    );
}

#[test]
fn pinned_multi_package_streams() {
    let data = plaintext(3 * PKG + 5);
    let digest = |suite| hex::encode(Sha256::digest(seal(key(suite), &data)));
    assert_eq!(
        digest(CipherSuite::Aes256Gcm),
        "900246008acce78ea38bf6e01f9917c8765bb5c3270e25edef2fab83f2621a1d"
    );
    assert_eq!(
        digest(CipherSuite::ChaCha20Poly1305),
        "9b521e58fbcfd8f8fbeadc4a0cd6619873efa4c67de3d2e75d467541f4c9da49"
    );
}

#[test]
fn pinned_sealed_key() {
    let kek = SecretKey::from_bytes([0x44; 32]);
    let oek = SecretKey::from_bytes([0x55; 32]);
    let rng = SeededEntropy::new(42);
    let blob = seal_key(&kek, &oek, b"bucket/object", &rng);
    assert_eq!(hex::encode(&blob), "017848b5d711bc9883996317a36d35f138a80198a65584ca8720a154d303280902d3b123d91cb6707afc6c6df337cf1676ad589b891484bb7399870c1f");
    // Independent open: version ‖ nonce ‖ AES-256-GCM(ct ‖ tag), AAD = version ‖ aad.
    let plain = aes_gcm::Aes256Gcm::new_from_slice(kek.as_bytes())
        .unwrap()
        .decrypt(
            aes_gcm::Nonce::from_slice(&blob[1..13]),
            Payload {
                msg: &blob[13..],
                aad: b"\x01bucket/object",
            },
        )
        .unwrap();
    assert_eq!(plain, oek.as_bytes());
}

#[test]
fn pinned_derivations() {
    let dk = SecretKey::from_bytes([0x66; 32]);
    let kek = coffer_crypto::derive_kek(&dk, b"ctx");
    let hk = Hkdf::<Sha256>::new(None, dk.as_bytes());
    let mut okm = [0u8; 32];
    hk.expand(b"coffer/kek/v1\0ctx", &mut okm).unwrap();
    assert_eq!(kek.as_bytes(), &okm);
    assert_eq!(
        hex::encode(kek.as_bytes()),
        "eb8e0648dc308a4d482fe5e0557415cec3e28e0d38bb409e87fecbf9a64c0f57"
    );
    let ck = [0x77; 32];
    assert_eq!(
        hex::encode(coffer_crypto::ssec_fingerprint(&ck, b"salt")),
        "1e7c42c2f7ddd11b5cc8bbebe90f66a40d3033110053b9bc85cdd078dfb891aa"
    );
    assert_eq!(
        hex::encode(coffer_crypto::ssec_kek(&ck, b"ctx").as_bytes()),
        "beb63910a0a513768fdbb6c6d328c9e1c0dfc7cea79bb30888dea21047364fa5"
    );
}

#[test]
fn seeded_entropy_is_pinned() {
    let mut buf = [0u8; 8];
    coffer_crypto::Entropy::fill(&SeededEntropy::new(1), &mut buf);
    assert_eq!(hex::encode(buf), "9a3744504560639e");
}
