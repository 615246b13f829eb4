//! The randomness seam: every random byte the crate uses comes through [`Entropy`].

use std::fmt;
use std::sync::Mutex;

use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, RngCore, SeedableRng};

/// A source of random bytes; production uses the OS, the simulation a seeded generator.
pub trait Entropy: Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's CSPRNG (getrandom); the production entropy source.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        // A failing OS RNG leaves no safe way to continue: keys would not be random.
        OsRng.fill_bytes(buf);
    }
}

/// A deterministic generator for tests and the simulation: the same seed gives the same bytes.
pub struct SeededEntropy {
    rng: Mutex<ChaCha20Rng>,
}

impl SeededEntropy {
    /// Creates a generator from a 64-bit seed.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Mutex::new(ChaCha20Rng::seed_from_u64(seed)),
        }
    }

    /// Derives an independent deterministic generator (e.g. one per simulated node).
    pub fn split(&self) -> Self {
        let mut seed = [0u8; 32];
        self.fill(&mut seed);
        Self {
            rng: Mutex::new(ChaCha20Rng::from_seed(seed)),
        }
    }
}

impl Entropy for SeededEntropy {
    fn fill(&self, buf: &mut [u8]) {
        // A poisoned lock only means another thread panicked mid-draw; the state is still valid.
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        rng.fill_bytes(buf);
    }
}

// The generator state determines every future key, so it must not be printed.
impl fmt::Debug for SeededEntropy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeededEntropy(..)")
    }
}

/// Draws a fresh 32-byte salt (per object and per multipart part).
pub fn random_salt(rng: &dyn Entropy) -> [u8; 32] {
    let mut salt = [0u8; 32];
    rng.fill(&mut salt);
    salt
}
