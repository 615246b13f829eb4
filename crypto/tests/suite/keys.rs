//! Key sealing, KEK derivation, SSE-C checks, secrets and entropy.

use coffer_crypto::{
    derive_kek, random_salt, seal_key, ssec_fingerprint, ssec_kek, ssec_verify, unseal_key,
    CipherSuite, CryptoError, Entropy, OsEntropy, SecretKey, SeededEntropy, SEALED_KEY_LEN,
};

#[test]
fn seal_and_unseal() {
    let rng = SeededEntropy::new(5);
    let kek = SecretKey::random(&rng);
    let oek = SecretKey::random(&rng);
    let blob = seal_key(&kek, &oek, b"aad", &rng);
    assert_eq!(blob.len(), SEALED_KEY_LEN);
    assert_eq!(blob[0], 1);
    assert_eq!(unseal_key(&kek, &blob, b"aad").unwrap(), oek);
    // Fresh nonce each time.
    assert_ne!(seal_key(&kek, &oek, b"aad", &rng), blob);
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
    let mut v2 = blob.clone();
    v2[0] = 2;
    assert_eq!(
        unseal_key(&kek, &v2, b"aad"),
        Err(CryptoError::UnsupportedVersion(2))
    );
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
    let stream = coffer_crypto::derive_stream_key(&key, CipherSuite::Aes256Gcm, &[0; 32]);
    assert_eq!(format!("{stream:?}"), "StreamKey { suite: Aes256Gcm, .. }");
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
    assert_eq!(
        coffer_crypto::check_stream_version(2),
        Err(CryptoError::UnsupportedVersion(2))
    );
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
