//! Key sealing, KEK derivation, SSE-C checks, secrets and entropy.

use coffer_crypto::{
    derive_kek, random_salt, seal_key, seal_key_with, ssec_fingerprint, ssec_kek, ssec_verify,
    unseal_key, CipherSuite, CryptoError, Entropy, OsEntropy, SecretKey, SeededEntropy,
    StreamBinding, SEALED_KEY_LEN, SEALED_KEY_LEN_V1, SEALED_KEY_VERSION,
};

use crate::reference;

#[test]
fn seal_and_unseal() {
    let rng = SeededEntropy::new(5);
    let kek = SecretKey::random(&rng);
    let oek = SecretKey::random(&rng);
    let blob = seal_key(&kek, &oek, b"aad", &rng);
    assert_eq!(
        (SEALED_KEY_LEN, SEALED_KEY_LEN_V1, SEALED_KEY_VERSION),
        (62, 61, 2)
    );
    assert_eq!(blob.len(), SEALED_KEY_LEN);
    assert_eq!(blob[0], 2);
    assert_eq!(blob[1], CipherSuite::Aes256Gcm.id());
    assert_eq!(unseal_key(&kek, &blob, b"aad").unwrap(), oek);
    // Fresh nonce each time.
    assert_ne!(seal_key(&kek, &oek, b"aad", &rng), blob);
    for suite in CipherSuite::ALL {
        let blob = seal_key_with(suite, &kek, &oek, b"aad", &rng);
        assert_eq!(blob.len(), SEALED_KEY_LEN);
        assert_eq!(&blob[..2], &[2, suite.id()]);
        assert_eq!(unseal_key(&kek, &blob, b"aad").unwrap(), oek);
    }
}

fn v1_blob(kek: &SecretKey, oek: &SecretKey, aad: &[u8]) -> Vec<u8> {
    reference::seal_key_v1(kek.as_bytes(), oek.as_bytes(), aad, &[9; 12])
}

#[test]
fn version_1_blobs_stay_readable() {
    let rng = SeededEntropy::new(8);
    let kek = SecretKey::random(&rng);
    let oek = SecretKey::random(&rng);
    let blob = v1_blob(&kek, &oek, b"aad");
    assert_eq!(blob.len(), SEALED_KEY_LEN_V1);
    assert_eq!(unseal_key(&kek, &blob, b"aad").unwrap(), oek);
    assert_eq!(
        unseal_key(&kek, &blob, b"other"),
        Err(CryptoError::Authentication)
    );
    let mut bad = blob.clone();
    bad[20] ^= 1;
    assert_eq!(
        unseal_key(&kek, &bad, b"aad"),
        Err(CryptoError::Authentication)
    );
    // A v1 blob relabelled as v2 (or given an extra byte) is refused, not misparsed.
    let mut relabelled = blob.clone();
    relabelled[0] = 2;
    assert!(unseal_key(&kek, &relabelled, b"aad").is_err());
    let mut longer = blob.clone();
    longer.push(0);
    assert!(matches!(
        unseal_key(&kek, &longer, b"aad"),
        Err(CryptoError::Malformed(_))
    ));
}

#[test]
fn the_algorithm_byte_is_authenticated() {
    let rng = SeededEntropy::new(10);
    let kek = SecretKey::random(&rng);
    let oek = SecretKey::random(&rng);
    let mut blob = seal_key_with(CipherSuite::ChaCha20Poly1305, &kek, &oek, b"aad", &rng);
    blob[1] = CipherSuite::Aes256Gcm.id();
    assert_eq!(
        unseal_key(&kek, &blob, b"aad"),
        Err(CryptoError::Authentication)
    );
    blob[1] = 3;
    assert_eq!(
        unseal_key(&kek, &blob, b"aad"),
        Err(CryptoError::UnknownCipher(3))
    );
}

#[test]
fn unseal_failures_are_typed() {
    let rng = SeededEntropy::new(6);
    let kek = SecretKey::random(&rng);
    let oek = SecretKey::random(&rng);
    let blob = seal_key(&kek, &oek, b"aad", &rng);
    assert_eq!(
        unseal_key(&kek, &blob, b"other"),
        Err(CryptoError::Authentication)
    );
    assert_eq!(
        unseal_key(&SecretKey::random(&rng), &blob, b"aad"),
        Err(CryptoError::Authentication)
    );
    let mut bad = blob.clone();
    bad[20] ^= 1;
    assert_eq!(
        unseal_key(&kek, &bad, b"aad"),
        Err(CryptoError::Authentication)
    );
    for version in [0, 3, 0xff] {
        let mut other = blob.clone();
        other[0] = version;
        assert_eq!(
            unseal_key(&kek, &other, b"aad"),
            Err(CryptoError::UnsupportedVersion(version))
        );
    }
    assert!(matches!(
        unseal_key(&kek, &blob[..1], b"aad"),
        Err(CryptoError::Malformed(_))
    ));
    assert!(matches!(
        unseal_key(&kek, &blob[..SEALED_KEY_LEN_V1], b"aad"),
        Err(CryptoError::Malformed(_))
    ));
    assert!(matches!(
        unseal_key(&kek, &blob[..40], b"aad"),
        Err(CryptoError::Malformed(_))
    ));
    assert!(matches!(
        unseal_key(&kek, &[], b"aad"),
        Err(CryptoError::Malformed(_))
    ));
}

#[test]
fn kek_is_bound_to_context() {
    let dk = SecretKey::from_bytes([9; 32]);
    assert_ne!(derive_kek(&dk, b"b/o1"), derive_kek(&dk, b"b/o2"));
    assert_eq!(derive_kek(&dk, b"b/o1"), derive_kek(&dk, b"b/o1"));
    assert_ne!(derive_kek(&dk, b"b/o1").as_bytes(), dk.as_bytes());
}

#[test]
fn ssec_fingerprint_is_keyed_and_salted() {
    let key = [1u8; 32];
    let fp = ssec_fingerprint(&key, b"salt-1");
    assert!(ssec_verify(&key, b"salt-1", &fp));
    assert!(!ssec_verify(&[2u8; 32], b"salt-1", &fp));
    assert!(!ssec_verify(&key, b"salt-2", &fp));
    assert!(!ssec_verify(&key, b"salt-1", &fp[..31]));
    assert_ne!(ssec_fingerprint(&key, b"salt-2"), fp);
    assert_ne!(ssec_kek(&key, b"ctx").as_bytes(), &key);
    assert_ne!(ssec_kek(&key, b"ctx").as_bytes(), &fp);
}

#[test]
fn secrets_do_not_print() {
    let key = SecretKey::from_bytes([0xAB; 32]);
    let shown = format!("{key:?}");
    assert_eq!(shown, "SecretKey(..)");
    let binding = StreamBinding::new("b", "o", "v", 1);
    let stream = coffer_crypto::derive_stream_key(&key, CipherSuite::Aes256Gcm, &[0; 32], &binding);
    assert_eq!(format!("{stream:?}"), "StreamKey { suite: Aes256Gcm, .. }");
    let v1 = coffer_crypto::derive_stream_key_v1(&key, CipherSuite::Aes256Gcm, &[0; 32]);
    assert_eq!(format!("{v1:?}"), "StreamKey { suite: Aes256Gcm, .. }");
    let enc = coffer_crypto::Encryptor::new(stream);
    assert!(!format!("{enc:?}").contains("ab"));
    assert!(format!("{:?}", SeededEntropy::new(1)).contains(".."));
}

#[test]
fn cipher_ids_and_names_are_stable() {
    assert_eq!(CipherSuite::Aes256Gcm.id(), 1);
    assert_eq!(CipherSuite::ChaCha20Poly1305.id(), 2);
    assert_eq!(CipherSuite::Aes256Gcm.name(), "AES256-GCM");
    assert_eq!(CipherSuite::ChaCha20Poly1305.name(), "CHACHA20-POLY1305");
    for suite in CipherSuite::ALL {
        assert_eq!(CipherSuite::from_id(suite.id()), Ok(suite));
    }
    assert_eq!(CipherSuite::from_id(0), Err(CryptoError::UnknownCipher(0)));
    assert_eq!(CipherSuite::from_id(3), Err(CryptoError::UnknownCipher(3)));
    assert_eq!(coffer_crypto::check_stream_version(1), Ok(()));
    assert_eq!(coffer_crypto::check_stream_version(2), Ok(()));
    for version in [0, 3, 0xff] {
        assert_eq!(
            coffer_crypto::check_stream_version(version),
            Err(CryptoError::UnsupportedVersion(version))
        );
    }
}

#[test]
fn entropy_sources() {
    let a = SeededEntropy::new(77);
    let b = SeededEntropy::new(77);
    assert_eq!(random_salt(&a), random_salt(&b));
    assert_ne!(random_salt(&a.split()), random_salt(&a));
    let os = OsEntropy;
    let mut x = [0u8; 32];
    let mut y = [0u8; 32];
    os.fill(&mut x);
    os.fill(&mut y);
    assert_ne!(x, y);
}
