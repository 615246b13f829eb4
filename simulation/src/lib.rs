//! Deterministic simulation (house plan §5, `docs/simulation.md`): a metadata cluster of real
//! `MetaStore`s under a seeded nemesis with linearizability and durability checks
//! ([`cluster`]), the simulated network and disk seams, and a smoke scenario of the real crypto
//! and erasure code on turmoil hosts. Every random choice comes from one seed and the event
//! trace is hashed, so a seed replays exactly.

// turmoil seeds each host's tokio runtime (`select!` order, `watch` wake-ups) only when tokio
// is built with this cfg; without it a seed would not replay. `.cargo/config.toml` sets it.
#[cfg(not(tokio_unstable))]
compile_error!(
    "the simulation needs `--cfg tokio_unstable` (set in .cargo/config.toml; a RUSTFLAGS \
     environment variable replaces it)"
);

pub mod check;
pub mod cluster;
#[cfg(feature = "node-seams")]
pub mod disk;
pub mod nemesis;
pub mod net;
#[cfg(feature = "node-seams")]
pub mod objects;
#[cfg(feature = "node-seams")]
pub mod s3node;
pub mod s3wire;
pub mod task_ids;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_crypto::{CipherSuite, Encryptor, Entropy, SecretKey, SeededEntropy};
use coffer_erasure::{Codec, ErasureConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Failures of a simulation run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// turmoil reported a failed host or client.
    #[error("simulation failed: {0}")]
    Run(String),
    /// An invariant did not hold.
    #[error("invariant violated: {0}")]
    Invariant(String),
}

/// An FNV-1a hash over the ordered event trace.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    hash: u64,
    events: u64,
}

impl Trace {
    pub(crate) fn record(&mut self, event: &[u8]) {
        let mut h = if self.events == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.hash
        };
        for b in event {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.hash = h;
        self.events += 1;
    }

    /// The trace hash.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Number of events.
    pub fn events(&self) -> u64 {
        self.events
    }
}

const PORT: u16 = 9002;

/// Runs the smoke scenario: a client encrypts `objects` seeded objects, erasure-codes them 2+2,
/// and ships the shards to a storage host over simulated TCP with seeded latency; the host
/// acknowledges each shard with its CRC32C. Returns the trace.
pub fn run_smoke(seed: u64, objects: usize) -> Result<Trace, SimError> {
    let trace = Arc::new(Mutex::new(Trace::default()));
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(20))
        .simulation_duration(Duration::from_secs(60))
        .build();

    let host_trace = trace.clone();
    sim.host("store", move || {
        let trace = host_trace.clone();
        async move {
            let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
            loop {
                let (mut s, _) = listener.accept().await?;
                let trace = trace.clone();
                tokio::spawn(async move {
                    loop {
                        let Ok(len) = s.read_u32().await else { return };
                        let mut buf = vec![0u8; len as usize];
                        if s.read_exact(&mut buf).await.is_err() {
                            return;
                        }
                        let crc = crc32c_of(&buf);
                        if let Ok(mut t) = trace.lock() {
                            t.record(&crc.to_le_bytes());
                        }
                        if s.write_u32(crc).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
    });

    let client_trace = trace.clone();
    sim.client("gateway", async move {
        let entropy = SeededEntropy::new(seed);
        let cfg = ErasureConfig {
            data: 2,
            parity: 2,
            block_size: 64 * 1024,
        };
        let codec = Codec::new(cfg)?;
        let mut s = turmoil::net::TcpStream::connect(("store", PORT)).await?;
        for i in 0..objects {
            let mut len_bytes = [0u8; 2];
            entropy.fill(&mut len_bytes);
            let mut plain = vec![0u8; usize::from(u16::from_le_bytes(len_bytes)) * 3];
            entropy.fill(&mut plain);
            let oek = SecretKey::random(&entropy);
            let mut salt = [0u8; 32];
            entropy.fill(&mut salt);
            let binding = coffer_crypto::StreamBinding::new("sim", &format!("obj-{i}"), "null", 0);
            let key =
                coffer_crypto::derive_stream_key(&oek, CipherSuite::Aes256Gcm, &salt, &binding);
            let mut sealed = Vec::new();
            let mut enc = Encryptor::new(key);
            enc.push(&plain, &mut sealed)?;
            enc.finish(&mut sealed)?;
            for block in sealed.chunks(cfg.block_size) {
                for shard in codec.encode(block)? {
                    s.write_u32(shard.len() as u32).await?;
                    s.write_all(&shard).await?;
                    let ack = s.read_u32().await?;
                    if ack != crc32c_of(&shard) {
                        return Err(
                            format!("object {i}: shard acknowledged with a wrong CRC").into()
                        );
                    }
                    if let Ok(mut t) = client_trace.lock() {
                        t.record(&(i as u64).to_le_bytes());
                        t.record(&turmoil::elapsed().as_nanos().to_le_bytes());
                    }
                }
            }
        }
        Ok(())
    });

    sim.run().map_err(|e| SimError::Run(e.to_string()))?;
    let t = trace
        .lock()
        .map_err(|_| SimError::Invariant("trace lock poisoned".into()))?
        .clone();
    if t.events() == 0 {
        return Err(SimError::Invariant("no events recorded".into()));
    }
    Ok(t)
}

fn crc32c_of(b: &[u8]) -> u32 {
    crc32c::crc32c(b)
}
