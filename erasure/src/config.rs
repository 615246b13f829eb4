//! Erasure configuration, the default parity table, quorum and block arithmetic.

use serde::{Deserialize, Serialize};

use crate::ErasureError;

/// Default size of one erasure block of the (ciphertext) object stream: 1 MiB.
pub const DEFAULT_BLOCK_SIZE: usize = 1 << 20;

/// Widest erasure set `for_drives` builds; more drives still give a 16-wide set.
///
/// Why 16: wider sets cost more per read (k shards fetched per block) and per
/// heal while adding little durability; MinIO caps its sets at 16 for the same reason.
pub const MAX_DEFAULT_WIDTH: usize = 16;

/// Widest set any configuration may have: every count and shard index must fit
/// one header byte (and GF(2^8) allows at most 256 shards).
pub const MAX_WIDTH: usize = 255;

/// Largest block size accepted; keeps all per-block arithmetic far from overflow
/// and bounds the memory a (possibly corrupt) header can make a reader allocate.
pub const MAX_BLOCK_SIZE: usize = 1 << 30;

/// Parity shard count for an erasure set spanning `drives` drives.
///
/// 1 → 0, 2–3 → 1, 4–5 → 2, 6–7 → 3, ≥ 8 → 4 (0 drives → 0). This is the
/// MinIO/RustFS default table: roughly a third of a small set, never more than 4.
pub fn default_parity(drives: usize) -> usize {
    match drives {
        0 | 1 => 0,
        2..=3 => 1,
        4..=5 => 2,
        6..=7 => 3,
        _ => 4,
    }
}

/// How objects are cut into blocks and each block into data and parity shards.
///
/// The fields are public so a manifest can be read back, but only a validated
/// config (from [`ErasureConfig::new`], [`ErasureConfig::for_drives`] or serde,
/// which validates) should reach the arithmetic below: it divides by `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawConfig")]
pub struct ErasureConfig {
    /// Data shards per block (k).
    pub data: usize,
    /// Parity shards per block (m).
    pub parity: usize,
    /// Bytes of the object stream per block; the last block may be shorter.
    pub block_size: usize,
}

/// Unvalidated wire form, so deserializing can never yield a config that panics later.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data: usize,
    parity: usize,
    block_size: usize,
}

impl TryFrom<RawConfig> for ErasureConfig {
    type Error = ErasureError;

    fn try_from(raw: RawConfig) -> Result<Self, Self::Error> {
        Self::new(raw.data, raw.parity, raw.block_size)
    }
}

impl ErasureConfig {
    /// A validated config with `data` + `parity` shards and `block_size`-byte blocks.
    pub fn new(data: usize, parity: usize, block_size: usize) -> Result<Self, ErasureError> {
        let cfg = Self {
            data,
            parity,
            block_size,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The default config for an erasure set over `drives` drives (see [`default_parity`]).
    ///
    /// More than [`MAX_DEFAULT_WIDTH`] drives still give a 16-wide set with the
    /// parity the table gives 16 drives (12 + 4); the placement layer spreads
    /// objects over all drives.
    pub fn for_drives(drives: usize) -> Result<Self, ErasureError> {
        if drives == 0 {
            return Err(ErasureError::InvalidConfig(
                "an erasure set needs at least one drive".into(),
            ));
        }
        let width = drives.min(MAX_DEFAULT_WIDTH);
        let parity = default_parity(width);
        Self::new(width - parity, parity, DEFAULT_BLOCK_SIZE)
    }

    /// Checks the invariants every other method relies on.
    pub fn validate(&self) -> Result<(), ErasureError> {
        if self.data == 0 {
            return Err(ErasureError::InvalidConfig(
                "data shard count must be at least 1".into(),
            ));
        }
        if self.data.saturating_add(self.parity) > MAX_WIDTH {
            return Err(ErasureError::InvalidConfig(format!(
                "{} data + {} parity shards exceed the maximum width {MAX_WIDTH}",
                self.data, self.parity
            )));
        }
        if self.block_size == 0 || self.block_size > MAX_BLOCK_SIZE {
            return Err(ErasureError::InvalidConfig(format!(
                "block size {} is outside 1..={MAX_BLOCK_SIZE}",
                self.block_size
            )));
        }
        Ok(())
    }

    /// Total shards per block (data + parity), i.e. drives per object.
    pub fn width(&self) -> usize {
        self.data + self.parity
    }

    /// Shards a read needs: any `data` of them rebuild a block.
    pub fn read_quorum(&self) -> usize {
        self.data
    }

    /// Shards that must be durable before a write is acknowledged.
    ///
    /// `data + 1` when there are at least two parity shards (Ceph's `min_size = k + 1`): a write
    /// acknowledged with exactly `data` shards has no margin, so one drive lost before the healer
    /// runs loses it while older objects, whose other shards are only unreachable, survive (the
    /// five-node simulation found this, docs/simulation.md). With one parity shard a margin would
    /// need every shard, so one drive out would stop all writes: such sets keep `data`, except
    /// 1 + 1, where `data + 1` keeps two disjoint halves from both acknowledging a write.
    pub fn write_quorum(&self) -> usize {
        if self.parity >= 2 || self.data == self.parity {
            self.data + 1
        } else {
            self.data
        }
    }

    /// Bytes in each shard of a block of `block_len` bytes: ceil(block_len / data).
    ///
    /// The block is zero-padded to `data * shard_len`; 0 for an empty block.
    pub fn shard_len(&self, block_len: usize) -> usize {
        block_len.div_ceil(self.data)
    }

    /// Number of blocks an object of `object_len` bytes is cut into (0 when empty).
    pub fn block_count(&self, object_len: u64) -> u64 {
        object_len.div_ceil(self.block_size as u64)
    }

    /// Length of block `block_index` of an object of `object_len` bytes (0 past the end).
    pub fn block_len(&self, object_len: u64, block_index: u64) -> usize {
        let bs = self.block_size as u64;
        let start = block_index.saturating_mul(bs);
        // The result is at most block_size, so the narrowing cannot truncate.
        object_len.saturating_sub(start).min(bs) as usize
    }

    /// Bytes of one framed shard block (checksum + shard) for block `block_index` (0 past the end).
    pub fn framed_block_len(&self, object_len: u64, block_index: u64) -> usize {
        match self.block_len(object_len, block_index) {
            0 => 0,
            len => crate::CHECKSUM_LEN + self.shard_len(len),
        }
    }

    /// Payload bytes of one shard file (all framed blocks, checksums included, header excluded).
    ///
    /// Every shard file of an object has this same length: all shards of a block are equal.
    pub fn shard_file_data_len(&self, object_len: u64) -> u64 {
        let count = self.block_count(object_len);
        if count == 0 {
            return 0;
        }
        let full = self.framed_block_len(object_len, 0) as u64;
        let last = self.framed_block_len(object_len, count - 1) as u64;
        (count - 1) * full + last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parity_table() {
        let expect = [
            (1, 0),
            (2, 1),
            (3, 1),
            (4, 2),
            (5, 2),
            (6, 3),
            (7, 3),
            (8, 4),
            (20, 4),
        ];
        for (drives, parity) in expect {
            assert_eq!(default_parity(drives), parity, "{drives} drives");
        }
    }

    #[test]
    fn for_drives_shapes() {
        let shape = |n| {
            let c = ErasureConfig::for_drives(n).unwrap();
            (c.data, c.parity)
        };
        assert_eq!(shape(1), (1, 0));
        assert_eq!(shape(2), (1, 1));
        assert_eq!(shape(3), (2, 1));
        assert_eq!(shape(4), (2, 2));
        assert_eq!(shape(6), (3, 3));
        assert_eq!(shape(8), (4, 4));
        assert_eq!(shape(12), (8, 4));
        assert_eq!(shape(16), (12, 4));
        assert_eq!(shape(40), (12, 4));
        assert!(ErasureConfig::for_drives(0).is_err());
        assert_eq!(
            ErasureConfig::for_drives(4).unwrap().block_size,
            DEFAULT_BLOCK_SIZE
        );
    }

    #[test]
    fn quorums() {
        let q = |d, p| {
            let c = ErasureConfig::new(d, p, 1024).unwrap();
            (c.read_quorum(), c.write_quorum())
        };
        assert_eq!(q(1, 0), (1, 1));
        assert_eq!(q(1, 1), (1, 2));
        assert_eq!(q(2, 1), (2, 2));
        assert_eq!(q(2, 2), (2, 3));
        assert_eq!(q(3, 2), (3, 4));
        assert_eq!(q(4, 2), (4, 5));
        assert_eq!(q(4, 4), (4, 5));
        assert_eq!(q(6, 4), (6, 7));
        assert_eq!(q(12, 4), (12, 13));
    }

    #[test]
    fn validation() {
        assert!(ErasureConfig::new(0, 2, 1024).is_err());
        assert!(ErasureConfig::new(200, 56, 1024).is_err());
        assert!(ErasureConfig::new(200, 55, 1024).is_ok());
        assert!(ErasureConfig::new(4, 2, 0).is_err());
        assert!(ErasureConfig::new(4, 2, MAX_BLOCK_SIZE + 1).is_err());
    }

    #[test]
    fn block_arithmetic() {
        let c = ErasureConfig::new(3, 2, 10).unwrap();
        assert_eq!(c.block_count(0), 0);
        assert_eq!(c.block_count(1), 1);
        assert_eq!(c.block_count(10), 1);
        assert_eq!(c.block_count(11), 2);
        assert_eq!(c.block_len(25, 0), 10);
        assert_eq!(c.block_len(25, 2), 5);
        assert_eq!(c.block_len(25, 3), 0);
        assert_eq!(c.shard_len(10), 4);
        assert_eq!(c.shard_len(5), 2);
        assert_eq!(c.shard_len(1), 1);
        assert_eq!(c.shard_len(0), 0);
        // 25 bytes: blocks 10, 10, 5 → shards 4, 4, 2 → framed 8, 8, 6.
        assert_eq!(c.shard_file_data_len(25), 22);
        assert_eq!(c.shard_file_data_len(0), 0);
    }

    #[test]
    fn serde_validates_and_rejects_unknown_fields() {
        let c: ErasureConfig =
            serde_json::from_str(r#"{"data":4,"parity":2,"block_size":1048576}"#).unwrap();
        assert_eq!(c, ErasureConfig::new(4, 2, 1 << 20).unwrap());
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"data":4,"parity":2,"block_size":1048576}"#
        );
        assert!(
            serde_json::from_str::<ErasureConfig>(r#"{"data":0,"parity":2,"block_size":1}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<ErasureConfig>(
            r#"{"data":4,"parity":2,"block_size":1,"extra":1}"#
        )
        .is_err());
    }
}
