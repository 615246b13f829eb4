//! Pinned output bytes of both stream versions and of the key derivations, checked against the
//! independent implementation in `reference.rs`. The full vector files live in vectors.rs.

use coffer_crypto::{seal, unseal_key, CipherSuite, SecretKey, SeededEntropy};
use sha2::{Digest, Sha256};

use crate::reference::{self, RefStream};
use crate::support::*;

fn reference(version: u8, suite: CipherSuite) -> RefStream {
    let b = binding();
    let bytes = reference::binding_bytes(&b.bucket, &b.object, &b.version_id, b.part);
    match version {
        1 => RefStream::v1(oek().as_bytes(), suite, &SALT),
        _ => RefStream::v2(oek().as_bytes(), suite, &SALT, &bytes),
    }
}

#[test]
fn ring_matches_the_reference_crates() {
    for version in VERSIONS {
        for suite in CipherSuite::ALL {
            let r = reference(version, suite);
            assert_eq!(key_in(version, suite).nonce_prefix(), r.prefix);
            for len in [0, 1, 100, PKG, PKG + 1, 3 * PKG + 5] {
                let data = plaintext(len);
                let sealed = seal(key_in(version, suite), &data).unwrap();
                assert!(sealed == r.seal(&data), "v{version} {suite:?} {len}");
                assert!(
                    r.open(len, &sealed) == Some(data),
                    "v{version} {suite:?} {len}"
                );
            }
        }
    }
}

// Version 1 output, pinned before version 2 existed: old objects must keep opening.
#[test]
fn pinned_small_streams_v1() {
    let data = b"coffer";
    assert_eq!(
        hex::encode(seal(key_v1(CipherSuite::Aes256Gcm), data).unwrap()),
        "43af0292f64cd057e63570dd3f6ce2f5cf689d2729eb"
    );
    assert_eq!(
        hex::encode(seal(key_v1(CipherSuite::ChaCha20Poly1305), data).unwrap()),
        "90b5eaea3997912d080610e170b49bca8903a385475d"
    );
    assert_eq!(
        hex::encode(seal(key_v1(CipherSuite::Aes256Gcm), b"").unwrap()),
        "06348c487cc75446bc3c4030ca9a42c1"
    );
    let sealed = hex::decode("43af0292f64cd057e63570dd3f6ce2f5cf689d2729eb").unwrap();
    assert_eq!(
        coffer_crypto::open(key_v1(CipherSuite::Aes256Gcm), 6, &sealed).unwrap(),
        data
    );
    // The same bytes under a version-2 key of the same OEK and salt do not open.
    assert!(coffer_crypto::open(key(CipherSuite::Aes256Gcm), 6, &sealed).is_err());
}

#[test]
fn pinned_multi_package_streams_v1() {
    let data = plaintext(3 * PKG + 5);
    let digest = |suite| hex::encode(Sha256::digest(seal(key_v1(suite), &data).unwrap()));
    assert_eq!(
        digest(CipherSuite::Aes256Gcm),
        "900246008acce78ea38bf6e01f9917c8765bb5c3270e25edef2fab83f2621a1d"
    );
    assert_eq!(
        digest(CipherSuite::ChaCha20Poly1305),
        "9b521e58fbcfd8f8fbeadc4a0cd6619873efa4c67de3d2e75d467541f4c9da49"
    );
}

// A version-1 sealed key written by the version-1 `seal_key` (SeededEntropy(42) nonce).
const PINNED_V1_SEALED_KEY: &str = "017848b5d711bc9883996317a36d35f138a80198a65584ca8720a154d303280902d3b123d91cb6707afc6c6df337cf1676ad589b891484bb7399870c1f";

#[test]
fn pinned_sealed_key_v1_stays_readable() {
    let kek = SecretKey::from_bytes([0x44; 32]);
    let oek = SecretKey::from_bytes([0x55; 32]);
    let blob = hex::decode(PINNED_V1_SEALED_KEY).unwrap();
    assert_eq!(blob.len(), coffer_crypto::SEALED_KEY_LEN_V1);
    let mut nonce = [0u8; 12];
    coffer_crypto::Entropy::fill(&SeededEntropy::new(42), &mut nonce);
    assert_eq!(&blob[1..13], &nonce);
    assert_eq!(
        reference::seal_key_v1(kek.as_bytes(), oek.as_bytes(), b"bucket/object", &nonce),
        blob
    );
    assert_eq!(unseal_key(&kek, &blob, b"bucket/object").unwrap(), oek);
}

#[test]
fn pinned_sealed_key_v2() {
    let kek = SecretKey::from_bytes([0x44; 32]);
    let oek = SecretKey::from_bytes([0x55; 32]);
    for suite in CipherSuite::ALL {
        let blob = coffer_crypto::seal_key_with(
            suite,
            &kek,
            &oek,
            b"bucket/object",
            &SeededEntropy::new(42),
        );
        assert_eq!(blob.len(), coffer_crypto::SEALED_KEY_LEN);
        assert_eq!(&blob[..2], &[2, suite.id()]);
        let nonce: [u8; 12] = blob[2..14].try_into().unwrap();
        assert_eq!(
            reference::seal_key_v2(
                suite,
                kek.as_bytes(),
                oek.as_bytes(),
                b"bucket/object",
                &nonce
            ),
            blob
        );
        assert_eq!(unseal_key(&kek, &blob, b"bucket/object").unwrap(), oek);
    }
    let aes = coffer_crypto::seal_key(&kek, &oek, b"bucket/object", &SeededEntropy::new(42));
    assert_eq!(&aes[..2], &[2, 1], "seal_key writes v2 with AES-256-GCM");
}

#[test]
fn pinned_derivations() {
    let dk = SecretKey::from_bytes([0x66; 32]);
    let kek = coffer_crypto::derive_kek(&dk, b"ctx");
    assert_eq!(
        kek.as_bytes(),
        &reference::hkdf32(dk.as_bytes(), None, "coffer/kek/v1", b"ctx")
    );
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
