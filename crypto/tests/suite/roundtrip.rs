//! Sealing then opening gives the plaintext back, however the data is chunked.

use coffer_crypto::{
    open, package_count, plan_full, seal, sealed_len, CipherSuite, SeededEntropy, PACKAGE_SIZE,
};
use proptest::prelude::*;

use crate::support::*;

const SIZES: [usize; 7] = [0, 1, PKG - 1, PKG, PKG + 1, 2 * PKG, 3 * PKG + 5];

#[test]
fn sealed_len_formula() {
    assert_eq!(sealed_len(0), 16);
    assert_eq!(sealed_len(1), 17);
    assert_eq!(sealed_len(65_536), 65_552);
    assert_eq!(sealed_len(65_537), 65_537 + 32);
    assert_eq!(sealed_len(3 * 65_536 + 5), 3 * 65_536 + 5 + 64);
    assert_eq!(package_count(0), 1);
    assert_eq!(package_count(2 * 65_536), 2);
}

#[test]
fn round_trip_fixed_sizes_random_chunking() {
    let rng = SeededEntropy::new(7);
    for version in VERSIONS {
        for suite in CipherSuite::ALL {
            for &len in &SIZES {
                let data = plaintext(len);
                let whole = seal(key_in(version, suite), &data).unwrap();
                for max_chunk in [1 + PKG / 3, PKG + 7, 4 * PKG] {
                    let sealed = seal_with(key_in(version, suite), &data, &rng, max_chunk);
                    assert_eq!(
                        sealed.len() as u64,
                        sealed_len(len as u64),
                        "v{version} {suite:?} {len}"
                    );
                    assert_eq!(sealed, whole, "chunking changes nothing");
                    let opened = open_plan(
                        key_in(version, suite),
                        len as u64,
                        &plan_full(len as u64),
                        &sealed,
                        &rng,
                    )
                    .unwrap();
                    assert_eq!(opened, data, "v{version} {suite:?} len {len}");
                }
                assert_eq!(
                    open(key_in(version, suite), len as u64, &whole).unwrap(),
                    data
                );
            }
        }
    }
}

#[test]
fn the_versions_differ() {
    let data = plaintext(100);
    for suite in CipherSuite::ALL {
        let v1 = seal(key_v1(suite), &data).unwrap();
        let v2 = seal(key(suite), &data).unwrap();
        assert_ne!(v1, v2);
        assert!(open(key(suite), 100, &v1).is_err());
        assert!(open(key_v1(suite), 100, &v2).is_err());
    }
}

#[test]
fn byte_at_a_time_small() {
    let rng = SeededEntropy::new(1);
    let data = plaintext(300);
    let sealed = seal_chunked(CipherSuite::Aes256Gcm, &data, &rng, 1);
    let mut dec =
        coffer_crypto::Decryptor::new(key(CipherSuite::Aes256Gcm), 300, &plan_full(300)).unwrap();
    let mut out = Vec::new();
    for b in &sealed {
        dec.push(std::slice::from_ref(b), &mut out).unwrap();
    }
    dec.finish().unwrap();
    assert_eq!(out, data);
}

#[test]
fn the_two_suites_differ() {
    let data = plaintext(100);
    assert_ne!(
        seal(key(CipherSuite::Aes256Gcm), &data).unwrap(),
        seal(key(CipherSuite::ChaCha20Poly1305), &data).unwrap()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_any_length_any_chunking(
        len in 0usize..(3 * PACKAGE_SIZE + 100),
        seed in any::<u64>(),
        chacha in any::<bool>(),
    ) {
        let suite = if chacha { CipherSuite::ChaCha20Poly1305 } else { CipherSuite::Aes256Gcm };
        let rng = SeededEntropy::new(seed);
        let data = plaintext(len);
        let sealed = seal_chunked(suite, &data, &rng, 2 * PACKAGE_SIZE);
        prop_assert_eq!(sealed.len() as u64, sealed_len(len as u64));
        let opened = open_plan(key(suite), len as u64, &plan_full(len as u64), &sealed, &rng).unwrap();
        prop_assert_eq!(opened, data);
    }
}
