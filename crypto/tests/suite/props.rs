//! Randomised round trips (proptest, run in CI): any length, cipher, binding, chunking and
//! range; every stream sealed by ring also opens with the RustCrypto reference.

use coffer_crypto::{
    derive_stream_key, plan_full, plan_range, sealed_len, CipherSuite, SecretKey, SeededEntropy,
    StreamBinding,
};
use proptest::prelude::*;

use crate::reference::{self, RefStream};
use crate::support::*;

const MAX_LEN: usize = 300_000;

fn suite_strategy() -> impl Strategy<Value = CipherSuite> {
    prop_oneof![
        Just(CipherSuite::Aes256Gcm),
        Just(CipherSuite::ChaCha20Poly1305)
    ]
}

fn binding_strategy() -> impl Strategy<Value = StreamBinding> {
    (
        "[a-z0-9.-]{0,63}",
        "\\PC{0,40}",
        "[A-Za-z0-9+/=._-]{0,32}",
        prop_oneof![Just(0u32), 1u32..=10_000, any::<u32>()],
    )
        .prop_map(|(bucket, object, version_id, part)| StreamBinding {
            bucket,
            object,
            version_id,
            part,
        })
}

/// Plaintext of `len` bytes that depends on `seed`.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    coffer_crypto::Entropy::fill(&SeededEntropy::new(seed), &mut out);
    out
}

fn reference_for(
    oek: &[u8; 32],
    suite: CipherSuite,
    salt: &[u8; 32],
    b: &StreamBinding,
) -> RefStream {
    let bytes = reference::binding_bytes(&b.bucket, &b.object, &b.version_id, b.part);
    RefStream::v2(oek, suite, salt, &bytes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn ring_seals_and_both_implementations_open(
        len in 0usize..MAX_LEN,
        suite in suite_strategy(),
        binding in binding_strategy(),
        oek in any::<[u8; 32]>(),
        salt in any::<[u8; 32]>(),
        seed in any::<u64>(),
    ) {
        let rng = SeededEntropy::new(seed);
        let plain = data(len, seed);
        let k = || derive_stream_key(&SecretKey::from_bytes(oek), suite, &salt, &binding);
        let sealed = seal_with(k(), &plain, &rng, 2 * PKG + 3);
        prop_assert_eq!(sealed.len() as u64, sealed_len(len as u64));
        let r = reference_for(&oek, suite, &salt, &binding);
        prop_assert_eq!(k().nonce_prefix(), r.prefix);
        prop_assert!(r.seal(&plain) == sealed, "reference ciphertext differs");
        prop_assert!(r.open(len, &sealed) == Some(plain.clone()), "reference cannot open");
        let opened = open_plan(k(), len as u64, &plan_full(len as u64), &sealed, &rng).unwrap();
        prop_assert!(opened == plain, "ring cannot open");
    }

    #[test]
    fn any_range_of_any_stream(
        len in 1usize..MAX_LEN,
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
        suite in suite_strategy(),
        binding in binding_strategy(),
        version in prop::sample::select(VERSIONS.to_vec()),
        seed in any::<u64>(),
    ) {
        let (a, b) = (a.index(len) as u64, b.index(len) as u64);
        let (first, last) = (a.min(b), a.max(b));
        let rng = SeededEntropy::new(seed);
        let plain = data(len, seed);
        let k = || coffer_crypto::derive_stream_key_for(version, &oek(), suite, &SALT, &binding)
            .unwrap();
        let sealed = coffer_crypto::seal(k(), &plain).unwrap();
        let plan = plan_range(len as u64, first, last).unwrap();
        prop_assert_eq!(plan.len, last - first + 1);
        prop_assert_eq!(plan.first_package, first / PKG as u64);
        prop_assert_eq!(plan.last_package, last / PKG as u64);
        prop_assert!(plan.sealed_end <= sealed.len() as u64);
        let got = open_plan(k(), len as u64, &plan, &sealed, &rng).unwrap();
        prop_assert!(got[..] == plain[first as usize..=last as usize]);
    }

    #[test]
    fn chunking_of_the_sealed_bytes_does_not_matter(
        len in 0usize..MAX_LEN,
        suite in suite_strategy(),
        binding in binding_strategy(),
        max_chunk in 1usize..(3 * PKG),
        seed in any::<u64>(),
    ) {
        let rng = SeededEntropy::new(seed);
        let plain = data(len, seed);
        let k = || derive_stream_key(&oek(), suite, &SALT, &binding);
        let sealed = coffer_crypto::seal(k(), &plain).unwrap();
        let mut dec = coffer_crypto::Decryptor::new(k(), len as u64, &plan_full(len as u64)).unwrap();
        let mut out = Vec::new();
        for chunk in chunks(&sealed, &rng, max_chunk) {
            dec.push(chunk, &mut out).unwrap();
        }
        dec.finish().unwrap();
        prop_assert!(out == plain);
    }
}
