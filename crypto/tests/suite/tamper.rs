//! Every manipulation of a sealed stream is detected: an error, never wrong plaintext.

use coffer_crypto::{
    derive_stream_key, derive_stream_key_v1, open, open_package, open_package_vec, plan_full,
    plan_range, seal, CipherSuite, CryptoError, Decryptor, SecretKey, StreamBinding, StreamKey,
};

use crate::support::*;

const SP: usize = PKG + 16;

type MakeKey<'a> = Box<dyn Fn() -> StreamKey + 'a>;
const LEN3: usize = 3 * PKG + 5;

fn sealed3(key: StreamKey) -> (Vec<u8>, Vec<u8>) {
    let data = plaintext(LEN3);
    let sealed = seal(key, &data).unwrap();
    (data, sealed)
}

/// Every (version, suite) pair with a function making that stream's key.
fn all_keys() -> Vec<(u8, CipherSuite)> {
    VERSIONS
        .iter()
        .flat_map(|&v| CipherSuite::ALL.map(|s| (v, s)))
        .collect()
}

/// Packages of a sealed stream.
fn packages(sealed: &[u8]) -> Vec<Vec<u8>> {
    sealed.chunks(SP).map(<[u8]>::to_vec).collect()
}

/// The tampered bytes are refused by `open` and by a chunked `Decryptor`, and the decryptor
/// releases nothing but a prefix of the true plaintext before it fails.
fn assert_rejected(
    make_key: &dyn Fn() -> StreamKey,
    plain_len: u64,
    bytes: &[u8],
    truth: &[u8],
    what: &str,
) -> CryptoError {
    let err = open(make_key(), plain_len, bytes).expect_err(what);
    let mut dec = Decryptor::new(make_key(), plain_len, &plan_full(plain_len)).unwrap();
    let mut out = Vec::new();
    let mut failed = false;
    for chunk in bytes.chunks(PKG / 2 + 3) {
        if dec.push(chunk, &mut out).is_err() {
            failed = true;
            break;
        }
    }
    if !failed {
        dec.finish().expect_err(what);
    }
    assert!(
        truth.starts_with(&out),
        "{what}: unauthenticated bytes came out"
    );
    err
}

#[test]
fn truncation_at_a_package_boundary() {
    for (version, suite) in all_keys() {
        let (data, sealed) = sealed3(key_in(version, suite));
        let k = || key_in(version, suite);
        // The manifest still says 3 × 64 KiB + 5: the missing package is noticed at the end.
        let len = LEN3 as u64;
        let mut dec = Decryptor::new(k(), len, &plan_full(len)).unwrap();
        let mut out = Vec::new();
        dec.push(&sealed[..3 * SP], &mut out).unwrap();
        assert_eq!(dec.finish(), Err(CryptoError::Truncated));
        for cut in 1..=3 {
            assert_eq!(
                assert_rejected(&k, len, &sealed[..cut * SP], &data, "truncated"),
                CryptoError::Truncated
            );
            // The length was cut too: package cut-1 was not sealed as final.
            let err = open(k(), (cut * PKG) as u64, &sealed[..cut * SP]).unwrap_err();
            assert_eq!(
                err,
                CryptoError::Authentication,
                "v{version} {suite:?} {cut}"
            );
        }
    }
}

#[test]
fn truncation_inside_a_package() {
    for (version, suite) in all_keys() {
        let (data, sealed) = sealed3(key_in(version, suite));
        let k = || key_in(version, suite);
        for cut in [1, 16, 17, SP - 1] {
            let bytes = &sealed[..sealed.len() - cut];
            assert_rejected(&k, LEN3 as u64, bytes, &data, "cut inside");
        }
    }
}

#[test]
fn empty_stream_cannot_be_truncated_to_nothing() {
    for (version, suite) in all_keys() {
        let sealed = seal(key_in(version, suite), b"").unwrap();
        assert_eq!(sealed.len(), 16);
        assert_eq!(open(key_in(version, suite), 0, &sealed).unwrap(), b"");
        assert_eq!(
            open(key_in(version, suite), 0, &[]),
            Err(CryptoError::Truncated)
        );
    }
}

#[test]
fn dropped_final_package() {
    for (version, suite) in all_keys() {
        let data = plaintext(2 * PKG);
        let sealed = seal(key_in(version, suite), &data).unwrap();
        // Claim the object was one package long: package 0 was not sealed as final.
        let err = open(key_in(version, suite), PKG as u64, &sealed[..SP]).unwrap_err();
        assert_eq!(err, CryptoError::Authentication);
        // Or keep the length: the final package is missing.
        let k = || key_in(version, suite);
        assert_eq!(
            assert_rejected(&k, 2 * PKG as u64, &sealed[..SP], &data, "dropped"),
            CryptoError::Truncated
        );
    }
}

#[test]
fn reordered_packages() {
    for (version, suite) in all_keys() {
        let (data, sealed) = sealed3(key_in(version, suite));
        let k = || key_in(version, suite);
        let p = packages(&sealed);
        for (a, b) in [(0, 1), (1, 2), (0, 2)] {
            let mut q = p.clone();
            q.swap(a, b);
            let err = assert_rejected(&k, LEN3 as u64, &q.concat(), &data, "swap");
            assert_eq!(err, CryptoError::Authentication);
        }
        // Moving the short final package forward changes the lengths: still refused.
        let moved = [p[3].clone(), p[0].clone(), p[1].clone(), p[2].clone()].concat();
        assert_rejected(&k, LEN3 as u64, &moved, &data, "final moved");
    }
}

#[test]
fn appended_package() {
    for (version, suite) in all_keys() {
        let data = plaintext(2 * PKG);
        let sealed = seal(key_in(version, suite), &data).unwrap();
        let mut longer = sealed.clone();
        longer.extend_from_slice(&sealed[..SP]);
        let k = || key_in(version, suite);
        // Length left alone: the extra bytes are refused.
        assert_eq!(
            assert_rejected(&k, 2 * PKG as u64, &longer, &data, "appended"),
            CryptoError::TrailingData
        );
        // Length bumped as well: the old final package is no longer last, so it fails.
        assert_eq!(
            open(key_in(version, suite), 3 * PKG as u64, &longer),
            Err(CryptoError::Authentication)
        );
    }
}

#[test]
fn duplicated_package() {
    for (version, suite) in all_keys() {
        let (data, sealed) = sealed3(key_in(version, suite));
        let k = || key_in(version, suite);
        let p = packages(&sealed);
        // Package 0 written over package 1.
        let over = [p[0].clone(), p[0].clone(), p[2].clone(), p[3].clone()].concat();
        let err = assert_rejected(&k, LEN3 as u64, &over, &data, "dup over");
        assert_eq!(err, CryptoError::Authentication);
        // Package 1 inserted twice, the manifest length bumped to match.
        let inserted = [
            p[0].clone(),
            p[1].clone(),
            p[1].clone(),
            p[2].clone(),
            p[3].clone(),
        ]
        .concat();
        let truth = [&data[..2 * PKG], &data[PKG..]].concat();
        let len = (LEN3 + PKG) as u64;
        let err = assert_rejected(&k, len, &inserted, &truth, "dup inserted");
        assert_eq!(err, CryptoError::Authentication);
    }
}

#[test]
fn flipped_bits_anywhere() {
    for (version, suite) in all_keys() {
        let (data, sealed) = sealed3(key_in(version, suite));
        let k = || key_in(version, suite);
        for pos in [
            0,
            17,
            PKG - 1,
            PKG,
            PKG + 15,
            SP,
            2 * SP + 100,
            3 * SP,
            sealed.len() - 17,
            sealed.len() - 1,
        ] {
            for bit in [0x01, 0x80] {
                let mut bad = sealed.clone();
                bad[pos] ^= bit;
                let err = assert_rejected(&k, LEN3 as u64, &bad, &data, "flip");
                assert_eq!(
                    err,
                    CryptoError::Authentication,
                    "v{version} {suite:?} {pos}"
                );
            }
        }
    }
}

#[test]
fn no_unauthenticated_plaintext_is_released() {
    for (version, suite) in all_keys() {
        let (data, mut sealed) = sealed3(key_in(version, suite));
        sealed[SP + 3] ^= 0x80;
        let len = data.len() as u64;
        let mut dec = Decryptor::new(key_in(version, suite), len, &plan_full(len)).unwrap();
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
}

#[test]
fn wrong_key_salt_suite_or_version() {
    let (data, sealed) = sealed3(key(CipherSuite::Aes256Gcm));
    let len = data.len() as u64;
    let b = binding();
    let other_oek = SecretKey::from_bytes([0x12; 32]);
    let wrong: Vec<(&str, MakeKey<'_>)> = vec![
        (
            "oek",
            Box::new(|| derive_stream_key(&other_oek, CipherSuite::Aes256Gcm, &SALT, &b)),
        ),
        (
            "salt",
            Box::new(|| derive_stream_key(&oek(), CipherSuite::Aes256Gcm, &[0x23; 32], &b)),
        ),
        ("suite", Box::new(|| key(CipherSuite::ChaCha20Poly1305))),
        (
            "version",
            Box::new(|| derive_stream_key_v1(&oek(), CipherSuite::Aes256Gcm, &SALT)),
        ),
    ];
    for (what, k) in &wrong {
        let err = assert_rejected(k.as_ref(), len, &sealed, &data, what);
        assert_eq!(err, CryptoError::Authentication, "{what}");
    }
}

/// The bindings that differ from the fixture's in exactly one field.
fn other_bindings() -> Vec<(&'static str, StreamBinding)> {
    let base = binding();
    let mut out = Vec::new();
    let mut b = base.clone();
    b.bucket = "photos2".into();
    out.push(("bucket", b));
    let mut b = base.clone();
    b.object = "2024/dog.jpg".into();
    out.push(("object", b));
    let mut b = base.clone();
    b.version_id = "3f1d".into();
    out.push(("version", b));
    let mut b = base.clone();
    b.part = 1;
    out.push(("part", b));
    // Same bytes shifted between fields: the length prefixes tell them apart.
    let mut b = base.clone();
    b.bucket = "photos2024".into();
    b.object = "/cat.jpg".into();
    out.push(("field boundary", b));
    out
}

#[test]
fn splicing_between_streams_of_one_object_key() {
    // Two parts (or two attempts at one part) share the OEK but not the salt.
    for suite in CipherSuite::ALL {
        let data = plaintext(2 * PKG + 1);
        let a = seal(key(suite), &data).unwrap();
        let b = seal(
            derive_stream_key(&oek(), suite, &[0x33; 32], &binding()),
            &data,
        )
        .unwrap();
        let mut spliced = a.clone();
        spliced[SP..2 * SP].copy_from_slice(&b[SP..2 * SP]);
        let k = || key(suite);
        let err = assert_rejected(&k, data.len() as u64, &spliced, &data, "other salt");
        assert_eq!(err, CryptoError::Authentication);
    }
}

#[test]
fn splicing_between_bindings_with_the_same_oek_and_salt() {
    // Even if a salt were ever reused, the binding keeps packages in their own stream.
    for suite in CipherSuite::ALL {
        let data = plaintext(2 * PKG + 1);
        let len = data.len() as u64;
        let a = seal(key(suite), &data).unwrap();
        for (what, other) in other_bindings() {
            let kb = || derive_stream_key(&oek(), suite, &SALT, &other);
            assert_eq!(kb().nonce_prefix(), key(suite).nonce_prefix(), "{what}");
            let b = seal(kb(), &data).unwrap();
            assert_ne!(a, b, "{what}");
            for i in 0..3 {
                let mut spliced = a.clone();
                let end = ((i + 1) * SP).min(a.len());
                spliced[i * SP..end].copy_from_slice(&b[i * SP..end]);
                let k = || key(suite);
                let err = assert_rejected(&k, len, &spliced, &data, what);
                assert_eq!(err, CryptoError::Authentication, "{what} package {i}");
            }
            // The whole stream moved to another object, version or part does not open either.
            let err = assert_rejected(&kb, len, &a, &data, what);
            assert_eq!(err, CryptoError::Authentication, "{what} whole stream");
        }
    }
}

#[test]
fn splicing_a_v1_package_into_a_v2_stream() {
    for suite in CipherSuite::ALL {
        let data = plaintext(2 * PKG + 1);
        let v2 = seal(key(suite), &data).unwrap();
        let v1 = seal(key_v1(suite), &data).unwrap();
        let mut spliced = v2.clone();
        spliced[..SP].copy_from_slice(&v1[..SP]);
        let k = || key(suite);
        assert_rejected(&k, data.len() as u64, &spliced, &data, "v1 into v2");
        let mut spliced = v1.clone();
        spliced[..SP].copy_from_slice(&v2[..SP]);
        let k = || key_v1(suite);
        assert_rejected(&k, data.len() as u64, &spliced, &data, "v2 into v1");
    }
}

#[test]
fn range_reads_also_authenticate() {
    for (version, suite) in all_keys() {
        let (data, mut sealed) = sealed3(key_in(version, suite));
        let len = data.len() as u64;
        sealed[2 * SP + 1] ^= 4;
        let plan = plan_range(len, 2 * PKG as u64 + 3, 2 * PKG as u64 + 9).unwrap();
        let rng = coffer_crypto::SeededEntropy::new(9);
        let err = open_plan(key_in(version, suite), len, &plan, &sealed, &rng).unwrap_err();
        assert_eq!(err, CryptoError::Authentication);
    }
}

#[test]
fn single_packages_open_with_index_and_flag() {
    for (version, suite) in all_keys() {
        let (data, sealed) = sealed3(key_in(version, suite));
        let k = key_in(version, suite);
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
        // The owned-buffer form opens the same packages and refuses the same forgeries.
        assert_eq!(
            open_package_vec(&k, 1, false, sealed[SP..2 * SP].to_vec()).unwrap(),
            &data[PKG..2 * PKG]
        );
        assert_eq!(
            open_package_vec(&k, 3, true, sealed[3 * SP..].to_vec()).unwrap(),
            &data[3 * PKG..]
        );
        assert_eq!(
            open_package_vec(&k, 2, false, sealed[SP..2 * SP].to_vec()),
            Err(CryptoError::Authentication)
        );
        assert_eq!(
            open_package_vec(&k, 0, false, vec![0u8; 5]),
            Err(CryptoError::Truncated)
        );
    }
}
