//! Runs the fuzz target bodies (fuzz_bodies.rs) in CI: over the committed seed corpus in
//! crypto/fuzz/corpus/<target>/ and over a few thousand deterministic pseudo-random inputs.
//! `COFFER_REGEN_VECTORS=1` rewrites the seed corpus too.

use std::path::PathBuf;

use coffer_crypto::{seal, seal_key_with, CipherSuite, Entropy, SecretKey, SeededEntropy};

use crate::fuzz_bodies::*;
use crate::support::draw;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// The committed corpus of `target`; a missing or empty corpus fails the test.
fn corpus(target: &str, seeds: impl FnOnce() -> Vec<(String, Vec<u8>)>) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    if std::env::var("COFFER_REGEN_VECTORS").as_deref() == Ok("1") {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds() {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {} is missing: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(
        inputs.len() >= 8,
        "seed corpus {} is too small",
        dir.display()
    );
    inputs
}

/// A stream_decoder input header.
fn header(flags: u8, len: u64, first: u64, last: u64, chunk: u16, pos: u32, xor: u8) -> Vec<u8> {
    let mut h = vec![flags];
    if flags & F_WIDE_LEN != 0 {
        h.extend_from_slice(&len.to_le_bytes());
    } else {
        h.extend_from_slice(&(len as u32).to_le_bytes());
    }
    h.extend_from_slice(&first.to_le_bytes());
    h.extend_from_slice(&last.to_le_bytes());
    h.extend_from_slice(&chunk.to_le_bytes());
    h.extend_from_slice(&pos.to_le_bytes());
    h.push(xor);
    h
}

fn stream_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let suites = [
        (0u8, CipherSuite::Aes256Gcm, "aes"),
        (F_CHACHA, CipherSuite::ChaCha20Poly1305, "chacha"),
    ];
    for (vflag, v) in [(0u8, 1u8), (F_V2, 2)] {
        for (cflag, suite, s) in suites {
            // Multi-package seeds only for AES, to keep the corpus small.
            let lens: &[usize] = if cflag == 0 {
                &[0, 1, 100, 65_537]
            } else {
                &[0, 1, 100]
            };
            for &len in lens {
                let plain: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let sealed = seal(fuzz_key(v, suite), &plain).unwrap();
                // A valid stream, read whole and as a range.
                let mut valid = header(vflag | cflag, len as u64, 0, 0, 4096, 0, 0);
                valid.extend_from_slice(&sealed);
                out.push((format!("v{v}-{s}-valid-{len}"), valid));
                if len > 1 {
                    let (first, last) = (len as u64 / 2, len as u64 - 1);
                    let flags = vflag | cflag | F_RANGE;
                    let mut range = header(flags, len as u64, first, last, 999, 0, 0);
                    range.extend_from_slice(&sealed);
                    out.push((format!("v{v}-{s}-range-{len}"), range));
                }
            }
            let flags = vflag | cflag | F_SEAL_THEN_TAMPER;
            let mut flip = header(flags | F_RANGE, 0, 3, 900, 50, 700, 0x40);
            flip.extend((0..1000u32).map(|i| i as u8));
            out.push((format!("v{v}-{s}-seal-then-flip"), flip));
            let mut cut = header(flags, 0, 0, 0, 7, 300, 0);
            cut.extend((0..500u32).map(|i| (i * 3) as u8));
            out.push((format!("v{v}-{s}-seal-then-cut"), cut));
        }
    }
    let flags = F_V2 | F_SEAL_THEN_TAMPER | F_RANGE;
    let mut long = header(flags, 0, 65_530, 65_540, 500, 65_560, 0x01);
    long.extend((0..65_600u32).map(|i| (i * 5) as u8));
    out.push(("v2-aes-seal-then-flip-two-packages".into(), long));
    let mut wide = header(F_V2 | F_WIDE_LEN, u64::MAX, 0, u64::MAX - 1, 0, 0, 0);
    wide.extend_from_slice(&[0u8; 40]);
    out.push(("v2-wide-length".into(), wide));
    out.push(("empty".into(), Vec::new()));
    out
}

fn sealed_key_seeds() -> Vec<(String, Vec<u8>)> {
    let kek = SecretKey::from_bytes(FUZZ_KEK);
    let key = SecretKey::from_bytes([0x77; 32]);
    let rng = SeededEntropy::new(5);
    let mut out = Vec::new();
    for suite in CipherSuite::ALL {
        let blob = seal_key_with(suite, &kek, &key, FUZZ_AAD, &rng);
        out.push((format!("v2-{}", suite.id()), [&[0u8][..], &blob].concat()));
        let mut mutate = vec![1u8 | if suite.id() == 2 { 2 } else { 0 }];
        mutate.extend_from_slice(&[9u8; 12]);
        mutate.extend_from_slice(&[0x77; 32]);
        mutate.extend_from_slice(&[30, 0x10]);
        out.push((format!("v2-{}-flip", suite.id()), mutate));
    }
    // A version-1 blob (made by the reference implementation: no v1 writer is left).
    let v1 = crate::reference::seal_key_v1(&FUZZ_KEK, &[0x77; 32], FUZZ_AAD, &[3; 12]);
    out.push(("v1".into(), [&[0u8][..], &v1].concat()));
    out.push(("v1-truncated".into(), [&[0u8][..], &v1[..40]].concat()));
    out.push(("v2-unknown-alg".into(), vec![0, 2, 9, 1, 2, 3]));
    out.push(("version-only".into(), vec![0, 2]));
    out.push(("empty".into(), Vec::new()));
    out.push(("v3".into(), [&[0u8, 3][..], &[0u8; 61]].concat()));
    out
}

/// A random input of random shape: mostly short, sometimes a few packages long.
fn random_input(rng: &SeededEntropy, header_len: usize) -> Vec<u8> {
    let payload = match draw(rng) % 20 {
        0 => draw(rng) as usize % (2 * 65_536 + 100),
        1..=9 => draw(rng) as usize % 64,
        _ => draw(rng) as usize % 1200,
    };
    let mut input = vec![0u8; header_len + payload];
    rng.fill(&mut input);
    input
}

#[test]
fn stream_decoder_corpus_and_random_inputs() {
    for input in corpus("stream_decoder", stream_seeds) {
        stream_decoder(&input);
    }
    let rng = SeededEntropy::new(0x5eed);
    for i in 0..3000 {
        let mut input = random_input(&rng, 32);
        if i % 3 == 0 {
            // Keep the wide-length flag rare, so most inputs reach the package paths.
            input[0] &= !F_WIDE_LEN;
        }
        stream_decoder(&input);
    }
}

#[test]
fn sealed_key_corpus_and_random_inputs() {
    for input in corpus("sealed_key", sealed_key_seeds) {
        sealed_key(&input);
    }
    let rng = SeededEntropy::new(0x5eee);
    for i in 0..4000 {
        let mut input = random_input(&rng, 0);
        input.truncate(1 + (draw(&rng) as usize % 80));
        if i % 2 == 0 && input.len() > 2 {
            // Well-formed-looking prefixes reach the AEAD rather than the length checks.
            input[0] = 0;
            input[1] = 1 + (draw(&rng) % 2) as u8;
            input.resize(if input[1] == 1 { 62 } else { 63 }, 0);
        }
        sealed_key(&input);
    }
}
