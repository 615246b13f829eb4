//! Every manipulation of a sealed stream is detected.

use coffer_crypto::{
    derive_stream_key, open, open_package, plan_full, plan_range, seal, CipherSuite, CryptoError,
    Decryptor, SecretKey,
};

use crate::support::*;

const SP: usize = PKG + 16;

fn sealed3(suite: CipherSuite) -> (Vec<u8>, Vec<u8>) {
    let data = plaintext(3 * PKG + 5);
    let sealed = seal(key(suite), &data);
    (data, sealed)
}

#[test]
fn truncation_at_a_package_boundary() {
    for suite in CipherSuite::ALL {
        let (_, sealed) = sealed3(suite);
        // The manifest still says 3 × 64 KiB + 5: the missing package is noticed at the end.
        let mut dec = Decryptor::new(
            key(suite),
            3 * PKG as u64 + 5,
            &plan_full(3 * PKG as u64 + 5),
        )
        .unwrap();
        let mut out = Vec::new();
        dec.push(&sealed[..3 * SP], &mut out).unwrap();
        assert_eq!(dec.finish(), Err(CryptoError::Truncated));
        // The length was cut too: package 2 was not sealed as final.
        let err = open(key(suite), 3 * PKG as u64, &sealed[..3 * SP]).unwrap_err();
        assert_eq!(err, CryptoError::Authentication);
    }
}

#[test]
fn truncation_inside_a_package() {
    let (_, sealed) = sealed3(CipherSuite::Aes256Gcm);
    let len = 3 * PKG as u64 + 5;
    let mut dec = Decryptor::new(key(CipherSuite::Aes256Gcm), len, &plan_full(len)).unwrap();
    let mut out = Vec::new();
    dec.push(&sealed[..sealed.len() - 1], &mut out).unwrap();
    assert_eq!(dec.finish(), Err(CryptoError::Truncated));
}

#[test]
fn empty_stream_cannot_be_truncated_to_nothing() {
    let sealed = seal(key(CipherSuite::Aes256Gcm), b"");
    assert_eq!(sealed.len(), 16);
    assert_eq!(open(key(CipherSuite::Aes256Gcm), 0, &sealed).unwrap(), b"");
    assert_eq!(
        open(key(CipherSuite::Aes256Gcm), 0, &[]),
        Err(CryptoError::Truncated)
    );
}

#[test]
fn dropped_final_package() {
    for suite in CipherSuite::ALL {
        let data = plaintext(2 * PKG);
        let sealed = seal(key(suite), &data);
        // Claim the object was one package long: package 0 was not sealed as final.
        let err = open(key(suite), PKG as u64, &sealed[..SP]).unwrap_err();
        assert_eq!(err, CryptoError::Authentication);
    }
}

#[test]
fn reordered_packages() {
    for suite in CipherSuite::ALL {
        let (_, sealed) = sealed3(suite);
        let mut swapped = sealed.clone();
        swapped[..SP].copy_from_slice(&sealed[SP..2 * SP]);
        swapped[SP..2 * SP].copy_from_slice(&sealed[..SP]);
        let len = 3 * PKG as u64 + 5;
        assert_eq!(
            open(key(suite), len, &swapped),
            Err(CryptoError::Authentication)
        );
    }
}

#[test]
fn appended_package() {
    for suite in CipherSuite::ALL {
        let data = plaintext(2 * PKG);
        let sealed = seal(key(suite), &data);
        let mut longer = sealed.clone();
        longer.extend_from_slice(&sealed[..SP]);
        // Length left alone: the extra bytes are refused.
        assert_eq!(
            open(key(suite), 2 * PKG as u64, &longer),
            Err(CryptoError::TrailingData)
        );
        // Length bumped as well: the old final package is no longer last, so it fails.
        assert_eq!(
            open(key(suite), 3 * PKG as u64, &longer),
            Err(CryptoError::Authentication)
        );
    }
}

#[test]
fn flipped_bytes() {
    for suite in CipherSuite::ALL {
        let (_, sealed) = sealed3(suite);
        let len = 3 * PKG as u64 + 5;
        for pos in [
            0,
            17,
            PKG - 1,
            PKG,
            PKG + 15,
            SP,
            2 * SP + 100,
            sealed.len() - 1,
        ] {
            let mut bad = sealed.clone();
            bad[pos] ^= 0x01;
            assert_eq!(
                open(key(suite), len, &bad),
                Err(CryptoError::Authentication),
                "{pos}"
            );
        }
    }
}

#[test]
fn no_unauthenticated_plaintext_is_released() {
    let (data, mut sealed) = sealed3(CipherSuite::Aes256Gcm);
    sealed[SP + 3] ^= 0x80;
    let len = data.len() as u64;
    let mut dec = Decryptor::new(key(CipherSuite::Aes256Gcm), len, &plan_full(len)).unwrap();
    let mut out = Vec::new();
    assert_eq!(
        dec.push(&sealed, &mut out),
        Err(CryptoError::Authentication)
    );
    // Only package 0 (verified) came out; the failed one left nothing behind.
    assert_eq!(out, &data[..PKG]);
    // The decryptor stays failed.
    assert_eq!(dec.push(&[], &mut out), Err(CryptoError::Authentication));
    assert_eq!(dec.finish(), Err(CryptoError::Authentication));
}

#[test]
fn wrong_key_salt_or_suite() {
    let (data, sealed) = sealed3(CipherSuite::Aes256Gcm);
    let len = data.len() as u64;
    let other_oek = SecretKey::from_bytes([0x12; 32]);
    let wrong_key = derive_stream_key(&other_oek, CipherSuite::Aes256Gcm, &SALT);
    assert_eq!(
        open(wrong_key, len, &sealed),
        Err(CryptoError::Authentication)
    );
    let wrong_salt = derive_stream_key(&oek(), CipherSuite::Aes256Gcm, &[0x23; 32]);
    assert_eq!(
        open(wrong_salt, len, &sealed),
        Err(CryptoError::Authentication)
    );
    let wrong_suite = key(CipherSuite::ChaCha20Poly1305);
    assert_eq!(
        open(wrong_suite, len, &sealed),
        Err(CryptoError::Authentication)
    );
}

#[test]
fn splicing_between_streams_of_one_object_key() {
    // Two parts of one object share the OEK but not the salt: packages do not transplant.
    let data = plaintext(2 * PKG + 1);
    let a = seal(key(CipherSuite::Aes256Gcm), &data);
    let b = seal(
        derive_stream_key(&oek(), CipherSuite::Aes256Gcm, &[0x33; 32]),
        &data,
    );
    let mut spliced = a.clone();
    spliced[SP..2 * SP].copy_from_slice(&b[SP..2 * SP]);
    let len = data.len() as u64;
    assert_eq!(
        open(key(CipherSuite::Aes256Gcm), len, &spliced),
        Err(CryptoError::Authentication)
    );
}

#[test]
fn range_reads_also_authenticate() {
    let (data, mut sealed) = sealed3(CipherSuite::ChaCha20Poly1305);
    let len = data.len() as u64;
    sealed[2 * SP + 1] ^= 4;
    let plan = plan_range(len, 2 * PKG as u64 + 3, 2 * PKG as u64 + 9).unwrap();
    let rng = coffer_crypto::SeededEntropy::new(9);
    let err = open_plan(
        key(CipherSuite::ChaCha20Poly1305),
        len,
        &plan,
        &sealed,
        &rng,
    )
    .unwrap_err();
    assert_eq!(err, CryptoError::Authentication);
}

#[test]
fn single_packages_open_with_index_and_flag() {
    let (data, sealed) = sealed3(CipherSuite::Aes256Gcm);
    let k = key(CipherSuite::Aes256Gcm);
    assert_eq!(
        open_package(&k, 1, false, &sealed[SP..2 * SP]).unwrap(),
        &data[PKG..2 * PKG]
    );
    assert_eq!(
        open_package(&k, 3, true, &sealed[3 * SP..]).unwrap(),
        &data[3 * PKG..]
    );
    assert_eq!(
        open_package(&k, 2, false, &sealed[SP..2 * SP]),
        Err(CryptoError::Authentication)
    );
    assert_eq!(
        open_package(&k, 1, true, &sealed[SP..2 * SP]),
        Err(CryptoError::Authentication)
    );
    assert_eq!(
        open_package(&k, 3, false, &sealed[3 * SP..]),
        Err(CryptoError::Authentication)
    );
    assert_eq!(
        open_package(&k, 0, false, &[0u8; 5]),
        Err(CryptoError::Truncated)
    );
}
