//! Stream key derivation: versions, bindings, and unique keys per part upload attempt.

use coffer_crypto::{
    derive_stream_key, derive_stream_key_for, derive_stream_key_v1, open_package, random_salt,
    seal, CipherSuite, CryptoError, SecretKey, SeededEntropy, StreamBinding, MAX_PACKAGES_V2,
    NONCE_PREFIX_LEN, STREAM_FORMAT_V1, STREAM_FORMAT_VERSION, STREAM_KEY_LABEL,
    STREAM_KEY_LABEL_V1,
};

use crate::reference;
use crate::support::*;

#[test]
fn constants() {
    assert_eq!(STREAM_FORMAT_VERSION, 2);
    assert_eq!(STREAM_FORMAT_V1, 1);
    assert_eq!(NONCE_PREFIX_LEN, 7);
    assert_eq!(STREAM_KEY_LABEL, "coffer/stream/v2");
    assert_eq!(STREAM_KEY_LABEL_V1, "coffer/stream/v1");
    assert_eq!(MAX_PACKAGES_V2, 1 << 32);
}

#[test]
fn binding_bytes_are_canonical() {
    let b = StreamBinding::new("bkt", "a/b", "v7", 3);
    assert_eq!(
        hex::encode(b.encode()),
        "00000003626b74\
         00000003612f62\
         000000027637\
         00000003"
    );
    assert_eq!(
        b,
        StreamBinding {
            bucket: "bkt".into(),
            object: "a/b".into(),
            version_id: "v7".into(),
            part: 3
        }
    );
    assert_eq!(
        StreamBinding::new("", "", "", 0).encode(),
        [0u8; 16].to_vec()
    );
    // Length prefixes: moving a byte between fields changes the encoding.
    assert_ne!(
        StreamBinding::new("ab", "c", "", 0).encode(),
        StreamBinding::new("a", "bc", "", 0).encode()
    );
    assert_ne!(
        StreamBinding::new("a", "b", "c", 0).encode(),
        StreamBinding::new("a", "b", "", 0).encode()
    );
    let u = StreamBinding::new("données", "ü ✓", "", 10_000);
    assert_eq!(
        u.encode(),
        reference::binding_bytes("données", "ü ✓", "", 10_000)
    );
}

#[test]
fn each_part_upload_attempt_gets_its_own_key_and_prefix() {
    let rng = SeededEntropy::new(11);
    let part1 = StreamBinding::new("photos", "big.iso", "", 1);
    for suite in CipherSuite::ALL {
        let (s1, s2) = (random_salt(&rng), random_salt(&rng));
        let first = derive_stream_key(&oek(), suite, &s1, &part1);
        let retry = derive_stream_key(&oek(), suite, &s2, &part1);
        assert!(first != retry, "same part, new salt: the keys must differ");
        assert_ne!(first.nonce_prefix(), retry.nonce_prefix());
        // Same inputs: same key (readers re-derive it from the manifest).
        assert!(first == derive_stream_key(&oek(), suite, &s1, &part1));
        // A package of the first attempt does not open under the retry's key.
        let sealed = seal(first, b"part one, attempt one").unwrap();
        assert_eq!(
            open_package(&retry, 0, true, &sealed),
            Err(CryptoError::Authentication)
        );
    }
}

#[test]
fn keys_compare_by_every_field() {
    let b = binding();
    let k = |suite| derive_stream_key(&oek(), suite, &SALT, &b);
    assert!(k(CipherSuite::Aes256Gcm) == k(CipherSuite::Aes256Gcm));
    assert!(k(CipherSuite::Aes256Gcm) != k(CipherSuite::ChaCha20Poly1305));
    assert!(key(CipherSuite::Aes256Gcm) != key_v1(CipherSuite::Aes256Gcm));
    let other_oek = SecretKey::from_bytes([0x12; 32]);
    assert!(
        derive_stream_key(&other_oek, CipherSuite::Aes256Gcm, &SALT, &b)
            != k(CipherSuite::Aes256Gcm)
    );
    // Same key bytes and prefix, other binding: not the same stream key.
    let mut part2 = b.clone();
    part2.part = 2;
    let k2 = derive_stream_key(&oek(), CipherSuite::Aes256Gcm, &SALT, &part2);
    assert_eq!(k2.nonce_prefix(), k(CipherSuite::Aes256Gcm).nonce_prefix());
    assert!(k2 != k(CipherSuite::Aes256Gcm));
}

#[test]
fn key_for_picks_the_version() {
    let b = binding();
    for suite in CipherSuite::ALL {
        let v2 = derive_stream_key_for(2, &oek(), suite, &SALT, &b).unwrap();
        assert!(v2 == key(suite));
        assert_eq!(v2.version(), 2);
        assert_eq!(v2.suite(), suite);
        let v1 = derive_stream_key_for(1, &oek(), suite, &SALT, &b).unwrap();
        assert!(v1 == derive_stream_key_v1(&oek(), suite, &SALT));
        assert_eq!(v1.version(), 1);
        assert_eq!(v1.nonce_prefix(), [0; NONCE_PREFIX_LEN]);
        // Version 1 ignores the binding.
        let other = StreamBinding::new("x", "y", "z", 9);
        assert!(derive_stream_key_for(1, &oek(), suite, &SALT, &other).unwrap() == v1);
        for version in [0, 3, 0xff] {
            assert_eq!(
                derive_stream_key_for(version, &oek(), suite, &SALT, &b).unwrap_err(),
                CryptoError::UnsupportedVersion(version)
            );
        }
    }
}

#[test]
fn v2_refuses_package_indices_beyond_its_counter() {
    let k = key(CipherSuite::Aes256Gcm);
    assert_eq!(
        open_package(&k, 1 << 32, false, &[0u8; 16]),
        Err(CryptoError::TooManyPackages)
    );
    // The last numberable index is merely unauthenticated garbage here.
    assert_eq!(
        open_package(&k, u64::from(u32::MAX), true, &[0u8; 16]),
        Err(CryptoError::Authentication)
    );
    // A manifest length past 2^32 packages is refused before any byte is read ...
    let too_long = MAX_PACKAGES_V2 * PKG as u64 + 1;
    let plan = coffer_crypto::plan_range(too_long, 0, 0).unwrap();
    assert_eq!(
        coffer_crypto::Decryptor::new(key(CipherSuite::Aes256Gcm), too_long, &plan).unwrap_err(),
        CryptoError::TooManyPackages
    );
    // ... while exactly 2^32 packages is allowed, and version 1 has no such limit.
    let longest = MAX_PACKAGES_V2 * PKG as u64;
    let plan = coffer_crypto::plan_range(longest, 0, 0).unwrap();
    coffer_crypto::Decryptor::new(key(CipherSuite::Aes256Gcm), longest, &plan).unwrap();
    let plan = coffer_crypto::plan_range(too_long, 0, 0).unwrap();
    coffer_crypto::Decryptor::new(key_v1(CipherSuite::Aes256Gcm), too_long, &plan).unwrap();
}

#[test]
fn absurd_lengths_do_not_overflow() {
    assert_eq!(coffer_crypto::sealed_len(u64::MAX), u64::MAX);
    assert!(coffer_crypto::plan_range(u64::MAX, 0, u64::MAX - 1).is_err());
    let plan = coffer_crypto::plan_range(u64::MAX - (1 << 53), 5, 9).unwrap();
    assert_eq!(plan.sealed_start, 0);
    assert!(coffer_crypto::plan_range(u64::MAX - (1 << 40), 5, 9).is_err());
    for len in [u64::MAX, u64::MAX - (1 << 40)] {
        let plan = coffer_crypto::plan_full(len);
        assert!(coffer_crypto::Decryptor::new(key_v1(CipherSuite::Aes256Gcm), len, &plan).is_err());
        assert!(coffer_crypto::Decryptor::new(key(CipherSuite::Aes256Gcm), len, &plan).is_err());
    }
}
