//! Known-answer vectors committed under crypto/tests/vectors/ (docs/format/object-encryption.md
//! §"Test vectors"). By default every file is loaded and checked three ways:
//! (a) coffer_crypto (ring) produces exactly the recorded bytes, (b) the independent
//! implementation in `reference.rs` (RustCrypto crates) derives, produces and opens the same
//! bytes, (c) coffer_crypto opens them. A missing file fails the test.
//!
//! `COFFER_REGEN_VECTORS=1 cargo test -p coffer-crypto vectors` rewrites the files from
//! coffer_crypto's output (and then checks them like any other run).

mod hkdf;
mod sealed_key;
mod stream;

use std::path::PathBuf;

use coffer_crypto::{CipherSuite, Entropy, SeededEntropy};
use serde::{de::DeserializeOwned, Serialize};

pub const PLAINTEXT_RULE: &str = "byte i of the plaintext is (i * 31 + 7) mod 251";
/// Packages no longer than this are stored in full; longer ones by head, tag and SHA-256.
pub const FULL_HEX_MAX: usize = 64;
pub const HEAD_LEN: usize = 32;

pub fn vector_plaintext(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| ((i * 31 + 7) % 251) as u8)
        .collect()
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn regen() -> bool {
    std::env::var("COFFER_REGEN_VECTORS").as_deref() == Ok("1")
}

/// Loads `name`, or with `COFFER_REGEN_VECTORS=1` writes `generate()`'s output there first.
pub fn load<T: Serialize + DeserializeOwned>(name: &str, generate: impl FnOnce() -> T) -> T {
    let path = vectors_dir().join(name);
    if regen() {
        std::fs::create_dir_all(vectors_dir()).unwrap();
        let mut text = serde_json::to_string_pretty(&generate()).unwrap();
        text.push('\n');
        std::fs::write(&path, text).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "vector file {} is missing ({e}); regenerate with COFFER_REGEN_VECTORS=1",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

pub fn unhex32(s: &str) -> [u8; 32] {
    unhex(s).try_into().expect("32 bytes")
}

pub fn suite_of(id: u8) -> CipherSuite {
    CipherSuite::from_id(id).unwrap()
}

/// A deterministic key-sized value for the generators.
pub fn bytes32(rng: &SeededEntropy) -> [u8; 32] {
    let mut b = [0u8; 32];
    rng.fill(&mut b);
    b
}
