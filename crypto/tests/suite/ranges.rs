//! Range reads decrypt only the packages they need and return exactly the requested bytes.

use coffer_crypto::{
    plan_full, plan_range, seal, CipherSuite, CryptoError, RangePlan, SeededEntropy,
};
use proptest::prelude::*;

use crate::support::*;

const LEN: usize = 3 * PKG + 5;
const SP: u64 = PKG as u64 + 16;

fn check(
    suite: CipherSuite,
    sealed: &[u8],
    data: &[u8],
    first: u64,
    last: u64,
    rng: &SeededEntropy,
) {
    let plan = plan_range(data.len() as u64, first, last).unwrap();
    let got = open_plan(key(suite), data.len() as u64, &plan, sealed, rng).unwrap();
    assert_eq!(
        got,
        &data[first as usize..=last as usize],
        "{first}..={last}"
    );
}

#[test]
fn plans_have_the_expected_shape() {
    let len = LEN as u64;
    let pkg = PKG as u64;
    assert_eq!(
        plan_range(len, 0, 0).unwrap(),
        RangePlan {
            first_package: 0,
            last_package: 0,
            sealed_start: 0,
            sealed_end: SP,
            skip: 0,
            len: 1
        }
    );
    assert_eq!(
        plan_range(len, len - 1, len - 1).unwrap(),
        RangePlan {
            first_package: 3,
            last_package: 3,
            sealed_start: 3 * SP,
            sealed_end: 3 * SP + 5 + 16,
            skip: 4,
            len: 1,
        }
    );
    assert_eq!(
        plan_range(len, pkg - 2, pkg + 1).unwrap(),
        RangePlan {
            first_package: 0,
            last_package: 1,
            sealed_start: 0,
            sealed_end: 2 * SP,
            skip: pkg - 2,
            len: 4,
        }
    );
    assert_eq!(plan_full(len), plan_range(len, 0, len - 1).unwrap());
    assert_eq!(plan_full(len).sealed_end, coffer_crypto::sealed_len(len));
    assert_eq!(plan_full(0).sealed_end, 16);
}

#[test]
fn invalid_ranges_are_refused() {
    assert!(matches!(
        plan_range(10, 5, 4),
        Err(CryptoError::InvalidRange { .. })
    ));
    assert!(matches!(
        plan_range(10, 0, 10),
        Err(CryptoError::InvalidRange { .. })
    ));
    assert!(matches!(
        plan_range(0, 0, 0),
        Err(CryptoError::InvalidRange { .. })
    ));
    // A plan that does not match the object length is refused before any byte is read.
    let plan = plan_range(100, 0, 99).unwrap();
    assert!(coffer_crypto::Decryptor::new(key(CipherSuite::Aes256Gcm), 50, &plan).is_err());
}

#[test]
fn every_kind_of_range() {
    let rng = SeededEntropy::new(3);
    let data = plaintext(LEN);
    let len = LEN as u64;
    let pkg = PKG as u64;
    for suite in CipherSuite::ALL {
        let sealed = seal(key(suite), &data).unwrap();
        let cases = [
            (0, 0),
            (len - 1, len - 1),
            (0, len - 1),
            (pkg - 1, pkg),
            (pkg - 10, 2 * pkg + 10),
            (pkg, 2 * pkg - 1),
            (3 * pkg, len - 1),
            (5, pkg - 1),
            (2 * pkg + 17, 2 * pkg + 17),
        ];
        for (first, last) in cases {
            check(suite, &sealed, &data, first, last, &rng);
        }
    }
}

#[test]
fn range_of_exact_multiple_length() {
    let rng = SeededEntropy::new(4);
    let data = plaintext(2 * PKG);
    let sealed = seal(key(CipherSuite::Aes256Gcm), &data).unwrap();
    let len = data.len() as u64;
    check(
        CipherSuite::Aes256Gcm,
        &sealed,
        &data,
        len - 1,
        len - 1,
        &rng,
    );
    check(CipherSuite::Aes256Gcm, &sealed, &data, 0, len - 1, &rng);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn any_range_matches_the_slice(a in 0u64..LEN as u64, b in 0u64..LEN as u64, seed in any::<u64>()) {
        let (first, last) = (a.min(b), a.max(b));
        let rng = SeededEntropy::new(seed);
        let data = plaintext(LEN);
        let sealed = seal(key(CipherSuite::ChaCha20Poly1305), &data).unwrap();
        let plan = plan_range(LEN as u64, first, last).unwrap();
        prop_assert_eq!(plan.len, last - first + 1);
        let got = open_plan(key(CipherSuite::ChaCha20Poly1305), LEN as u64, &plan, &sealed, &rng).unwrap();
        prop_assert_eq!(&got[..], &data[first as usize..=last as usize]);
    }
}
