//! The bulk AEAD backends side by side on this CPU: ring (what the data path uses), aws-lc-rs
//! (already linked for rustls/quinn) and the RustCrypto crates (the test reference), sealing and
//! opening 64 KiB packages in place as the stream format does.
//!
//! `cargo bench -p coffer-crypto --bench aead_backends [-- --rounds N]`
//!
//! Rounds interleave the backends (each round runs every backend once, in a rotated order), and
//! each figure is the median over rounds, so load on this shared machine hits all alike. The
//! output is the evidence for which backend the data path should use (house plan §7).

use std::hint::black_box;
use std::time::Instant;

use aes_gcm::aead::{AeadInPlace, KeyInit};

const PACKAGE: usize = 64 * 1024;
/// Bytes per measurement: enough to leave the caches' warm-up behind.
const TOTAL: usize = 64 * 1024 * 1024;
const KEY: [u8; 32] = [7; 32];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Alg {
    Aes,
    ChaCha,
}

#[derive(Clone, Copy)]
enum Backend {
    Ring,
    AwsLc,
    RustCrypto,
}

impl Backend {
    const ALL: [Backend; 3] = [Backend::Ring, Backend::AwsLc, Backend::RustCrypto];

    fn name(self) -> &'static str {
        match self {
            Backend::Ring => "ring 0.17",
            Backend::AwsLc => "aws-lc-rs 1.19",
            Backend::RustCrypto => "RustCrypto 0.10",
        }
    }
}

fn nonce(i: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&i.to_be_bytes());
    n
}

/// Seals TOTAL bytes in PACKAGE pieces, or (with `open`) opens one sealed package TOTAL/PACKAGE
/// times, each time from a fresh copy (opening is in place); MiB/s. Every backend pays the copy.
fn run(backend: Backend, alg: Alg, open: bool, buf: &mut [u8]) -> f64 {
    let packages = TOTAL / PACKAGE;
    let aad = b"bench";
    macro_rules! ring_like {
        ($m:ident) => {{
            use $m::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};
            let alg = if alg == Alg::Aes {
                &AES_256_GCM
            } else {
                &CHACHA20_POLY1305
            };
            let key = LessSafeKey::new(UnboundKey::new(alg, &KEY).expect("key"));
            let n = |i: usize| Nonce::assume_unique_for_key(nonce(i as u64));
            if open {
                let mut sealed = buf.to_vec();
                let tag = key
                    .seal_in_place_separate_tag(n(0), Aad::from(aad), &mut sealed)
                    .expect("seal");
                sealed.extend_from_slice(tag.as_ref());
                let mut scratch = sealed.clone();
                let t = Instant::now();
                for _ in 0..packages {
                    scratch.copy_from_slice(&sealed);
                    let plain = key
                        .open_in_place(n(0), Aad::from(aad), &mut scratch)
                        .expect("open");
                    black_box(plain.len());
                }
                t.elapsed()
            } else {
                let t = Instant::now();
                for i in 0..packages {
                    let tag = key
                        .seal_in_place_separate_tag(n(i), Aad::from(aad), buf)
                        .expect("seal");
                    black_box(tag.as_ref());
                }
                t.elapsed()
            }
        }};
    }
    macro_rules! rust_crypto {
        ($ty:ty) => {{
            let key = <$ty>::new_from_slice(&KEY).expect("key");
            if open {
                let mut sealed = buf.to_vec();
                let tag = key
                    .encrypt_in_place_detached(&nonce(0).into(), aad, &mut sealed)
                    .expect("seal");
                let mut scratch = sealed.clone();
                let t = Instant::now();
                for _ in 0..packages {
                    scratch.copy_from_slice(&sealed);
                    key.decrypt_in_place_detached(&nonce(0).into(), aad, &mut scratch, &tag)
                        .expect("open");
                    black_box(scratch.len());
                }
                t.elapsed()
            } else {
                let t = Instant::now();
                for i in 0..packages {
                    let tag = key
                        .encrypt_in_place_detached(&nonce(i as u64).into(), aad, buf)
                        .expect("seal");
                    black_box(tag);
                }
                t.elapsed()
            }
        }};
    }
    let elapsed = match (backend, alg) {
        (Backend::Ring, _) => ring_like!(ring),
        (Backend::AwsLc, _) => ring_like!(aws_lc_rs),
        (Backend::RustCrypto, Alg::Aes) => rust_crypto!(aes_gcm::Aes256Gcm),
        (Backend::RustCrypto, Alg::ChaCha) => rust_crypto!(chacha20poly1305::ChaCha20Poly1305),
    };
    TOTAL as f64 / (1 << 20) as f64 / elapsed.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

fn main() {
    let mut rounds = 7;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--rounds" {
            rounds = args
                .next()
                .and_then(|v| v.parse().ok())
                .expect("--rounds N");
        }
    }
    // One package-sized buffer sealed over and over: the data stays in L2, so this measures the
    // cipher, not memory bandwidth (the data path's packages are cache-hot too).
    let mut buf = vec![0x5Au8; PACKAGE];
    println!("## AEAD backends, 64 KiB packages, single core, median of {rounds} interleaved rounds (MiB/s)\n");
    let names = Backend::ALL.map(Backend::name);
    println!(
        "| cipher | op | {} | {} | {} | aws-lc-rs ÷ ring |",
        names[0], names[1], names[2]
    );
    println!("|---|---|---:|---:|---:|---:|");
    for (alg, name) in [
        (Alg::Aes, "AES-256-GCM"),
        (Alg::ChaCha, "ChaCha20-Poly1305"),
    ] {
        for open in [false, true] {
            let mut figures = vec![Vec::new(); Backend::ALL.len()];
            for r in 0..rounds {
                for k in 0..Backend::ALL.len() {
                    let b = (r + k) % Backend::ALL.len();
                    figures[b].push(run(Backend::ALL[b], alg, open, &mut buf));
                }
            }
            let m: Vec<f64> = figures.into_iter().map(median).collect();
            println!(
                "| {name} | {} | {:.0} | {:.0} | {:.0} | {:.2} |",
                if open { "open" } else { "seal" },
                m[0],
                m[1],
                m[2],
                m[1] / m[0]
            );
        }
    }
}
