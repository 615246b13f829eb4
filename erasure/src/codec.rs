//! Reed-Solomon over GF(2^8): one block in, `data + parity` equal shards out, and back.

use reed_solomon_erasure::galois_8::ReedSolomon;

use crate::bitrot::{checksum, CHECKSUM_LEN};
use crate::{ErasureConfig, ErasureError};

/// Name of this codec as recorded in every object manifest, so another codec
/// (or another shard arrangement) can be added later without guessing.
pub const CODEC_ID: &str = "rs-gf8-v1";

/// Systematic Reed-Solomon codec for one [`ErasureConfig`].
///
/// Systematic: data shard `i` is bytes `i * shard_len ..` of the zero-padded
/// block, so a read with all data shards healthy never runs the decoder.
/// Shareable across threads (the backend's decode-matrix cache is behind a lock).
#[derive(Debug, Clone)]
pub struct Codec {
    cfg: ErasureConfig,
    /// `None` when parity is 0: the backend refuses m = 0, and there is nothing to compute.
    rs: Option<ReedSolomon>,
}

impl Codec {
    /// A codec for `cfg` (validated here).
    pub fn new(cfg: ErasureConfig) -> Result<Self, ErasureError> {
        cfg.validate()?;
        let rs = if cfg.parity == 0 {
            None
        } else {
            Some(ReedSolomon::new(cfg.data, cfg.parity).map_err(backend)?)
        };
        Ok(Self { cfg, rs })
    }

    /// The codec name for manifests: [`CODEC_ID`].
    pub fn id(&self) -> &'static str {
        CODEC_ID
    }

    /// The configuration this codec was built for.
    pub fn config(&self) -> ErasureConfig {
        self.cfg
    }

    /// Splits `block` into `width()` shards (data shards zero-padded, then parity).
    ///
    /// Allocates the shards; use [`Codec::encode_into`] or [`Codec::encode_framed`]
    /// in a loop to reuse buffers.
    pub fn encode(&self, block: &[u8]) -> Result<Vec<Vec<u8>>, ErasureError> {
        let mut shards = Vec::with_capacity(self.cfg.width());
        self.encode_into(block, &mut shards)?;
        Ok(shards)
    }

    /// Like [`Codec::encode`] but writes into `shards`, reusing its buffers.
    ///
    /// `shards` is resized to `width()` entries of `shard_len(block.len())` bytes each.
    pub fn encode_into(&self, block: &[u8], shards: &mut Vec<Vec<u8>>) -> Result<(), ErasureError> {
        let shard_len = self.check_block_len(block.len())?;
        shards.resize_with(self.cfg.width(), Vec::new);
        let (data, parity) = shards.split_at_mut(self.cfg.data);
        for (i, shard) in data.iter_mut().enumerate() {
            shard.clear();
            shard.extend_from_slice(data_chunk(block, i, shard_len));
            shard.resize(shard_len, 0);
        }
        // Stale bytes in reused parity buffers are fine: the encoder overwrites them all.
        for shard in parity.iter_mut() {
            shard.resize(shard_len, 0);
        }
        if let Some(rs) = &self.rs {
            rs.encode_sep(&*data, parity).map_err(backend)?;
        }
        Ok(())
    }

    /// Encodes `block` and appends one framed shard block (`crc32c LE ‖ shard`) to each `outs[i]`.
    ///
    /// The fast path for writers: each data byte is copied once, straight from the
    /// block into its output, and parity is computed in place there, so no
    /// intermediate shard buffers exist. `outs` must have `width()` entries; shard
    /// `i` goes to `outs[i]`. The result equals [`crate::frame_block`] over
    /// [`Codec::encode`]'s shards.
    pub fn encode_framed(&self, block: &[u8], outs: &mut [Vec<u8>]) -> Result<(), ErasureError> {
        let shard_len = self.check_block_len(block.len())?;
        self.check_slot_count(outs.len())?;
        let starts: Vec<usize> = outs.iter().map(Vec::len).collect();
        for (i, out) in outs.iter_mut().enumerate() {
            let end = starts[i] + CHECKSUM_LEN + shard_len;
            out.reserve(CHECKSUM_LEN + shard_len);
            // Placeholder checksum, filled in once the shard bytes are final.
            out.extend_from_slice(&[0; CHECKSUM_LEN]);
            if i < self.cfg.data {
                out.extend_from_slice(data_chunk(block, i, shard_len));
            }
            out.resize(end, 0);
        }
        if let Some(rs) = &self.rs {
            let (data, parity) = outs.split_at_mut(self.cfg.data);
            let data_in: Vec<&[u8]> = data
                .iter()
                .zip(&starts)
                .map(|(out, &s)| &out[s + CHECKSUM_LEN..])
                .collect();
            let mut parity_out: Vec<&mut [u8]> = parity
                .iter_mut()
                .zip(&starts[self.cfg.data..])
                .map(|(out, &s)| &mut out[s + CHECKSUM_LEN..])
                .collect();
            if let Err(e) = rs.encode_sep(&data_in, &mut parity_out) {
                // Leave the outputs as they were rather than half-framed.
                for (out, &s) in outs.iter_mut().zip(&starts) {
                    out.truncate(s);
                }
                return Err(backend(e));
            }
        }
        for (out, &s) in outs.iter_mut().zip(&starts) {
            let sum = checksum(&out[s + CHECKSUM_LEN..]);
            out[s..s + CHECKSUM_LEN].copy_from_slice(&sum.to_le_bytes());
        }
        Ok(())
    }

    /// Rebuilds a block of `block_len` bytes from any `data` of its shards, and
    /// fills in every missing shard (data and parity) so the caller can heal them.
    ///
    /// `shards` has `width()` slots, `None` where a shard is missing or failed
    /// its checksum. On error the slots are left untouched.
    pub fn reconstruct(
        &self,
        shards: &mut [Option<Vec<u8>>],
        block_len: usize,
    ) -> Result<Vec<u8>, ErasureError> {
        let mut out = Vec::with_capacity(block_len);
        self.rebuild(shards, block_len, Rebuild::All, &mut Vec::new(), &mut out)?;
        Ok(out)
    }

    /// Like [`Codec::reconstruct`] but rebuilds only missing data shards (parity
    /// slots stay `None`): cheaper for a read that will not heal.
    pub fn reconstruct_data(
        &self,
        shards: &mut [Option<Vec<u8>>],
        block_len: usize,
    ) -> Result<Vec<u8>, ErasureError> {
        let mut out = Vec::with_capacity(block_len);
        self.rebuild(
            shards,
            block_len,
            Rebuild::DataOnly,
            &mut Vec::new(),
            &mut out,
        )?;
        Ok(out)
    }

    /// The allocation-free read path: like [`Codec::reconstruct_data`], but
    /// appends the block to `out` and rebuilds missing shards in buffers taken
    /// from `spares` (allocating only when it runs dry).
    ///
    /// Buffers it took but did not need go back to `spares`; the caller recycles
    /// shard buffers it is done with by pushing them there. Measured: fresh
    /// buffers per call cost 3-4× the decoding itself in page faults.
    pub fn reconstruct_data_into(
        &self,
        shards: &mut [Option<Vec<u8>>],
        block_len: usize,
        spares: &mut Vec<Vec<u8>>,
        out: &mut Vec<u8>,
    ) -> Result<(), ErasureError> {
        self.rebuild(shards, block_len, Rebuild::DataOnly, spares, out)
    }

    /// Checks, rebuilds the missing shards `what` asks for, and appends the block to `out`.
    fn rebuild(
        &self,
        shards: &mut [Option<Vec<u8>>],
        block_len: usize,
        what: Rebuild,
        spares: &mut Vec<Vec<u8>>,
        out: &mut Vec<u8>,
    ) -> Result<(), ErasureError> {
        let shard_len = self.check_block_len(block_len)?;
        self.check_shards(shards, shard_len)?;
        let data = self.cfg.data;
        let done = match what {
            Rebuild::All => shards.iter().all(Option::is_some),
            Rebuild::DataOnly => shards[..data].iter().all(Option::is_some),
        };
        if let (Some(rs), false) = (&self.rs, done) {
            // The backend's `Option` form allocates each missing shard afresh;
            // its `(buffer, present)` form lets us hand it recycled buffers.
            let mut work: Vec<(Vec<u8>, bool)> = shards
                .iter_mut()
                .map(|slot| match slot.take() {
                    Some(v) => (v, true),
                    None => {
                        let mut v = spares.pop().unwrap_or_default();
                        // Stale contents are fine: the backend overwrites missing shards.
                        v.resize(shard_len, 0);
                        (v, false)
                    }
                })
                .collect();
            let result = match what {
                Rebuild::All => rs.reconstruct(&mut work),
                Rebuild::DataOnly => rs.reconstruct_data(&mut work),
            };
            for (i, (slot, (v, present))) in shards.iter_mut().zip(work).enumerate() {
                let rebuilt = result.is_ok() && (what == Rebuild::All || i < data);
                if present || rebuilt {
                    *slot = Some(v);
                } else {
                    spares.push(v);
                }
            }
            result.map_err(backend)?;
        }
        out.reserve(block_len);
        let mut left = block_len;
        for shard in shards[..data].iter().flatten() {
            let take = left.min(shard.len());
            out.extend_from_slice(&shard[..take]);
            left -= take;
        }
        Ok(())
    }

    /// Returns the shard length for a block of `len` bytes, or the error if `len` is out of range.
    fn check_block_len(&self, len: usize) -> Result<usize, ErasureError> {
        if len == 0 || len > self.cfg.block_size {
            return Err(ErasureError::InvalidBlockLen {
                len,
                max: self.cfg.block_size,
            });
        }
        Ok(self.cfg.shard_len(len))
    }

    fn check_slot_count(&self, have: usize) -> Result<(), ErasureError> {
        if have != self.cfg.width() {
            return Err(ErasureError::ShardCountMismatch {
                have,
                expected: self.cfg.width(),
            });
        }
        Ok(())
    }

    /// Validates slots, sizes and count up front so the backend never sees bad input.
    fn check_shards(
        &self,
        shards: &[Option<Vec<u8>>],
        expected: usize,
    ) -> Result<(), ErasureError> {
        self.check_slot_count(shards.len())?;
        let mut have = 0;
        for (index, shard) in shards.iter().enumerate() {
            if let Some(s) = shard {
                if s.len() != expected {
                    return Err(ErasureError::ShardSizeMismatch {
                        index,
                        len: s.len(),
                        expected,
                    });
                }
                have += 1;
            }
        }
        if have < self.cfg.data {
            return Err(ErasureError::TooFewShards {
                have,
                need: self.cfg.data,
            });
        }
        Ok(())
    }
}

/// Which missing shards a rebuild fills in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rebuild {
    /// Data and parity (healing).
    All,
    /// Data only (reading).
    DataOnly,
}

/// The bytes of `block` that belong to data shard `i` (short or empty near the end; the caller pads).
fn data_chunk(block: &[u8], i: usize, shard_len: usize) -> &[u8] {
    let start = (i * shard_len).min(block.len());
    let end = (start + shard_len).min(block.len());
    &block[start..end]
}

fn backend(e: reed_solomon_erasure::Error) -> ErasureError {
    ErasureError::Backend(e.to_string())
}
