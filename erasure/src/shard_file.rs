//! Shard file layout: a fixed 48-byte header, then one framed block per object block.
//!
//! The byte layout is documented in `docs/format/shards.md`; keep the two in step.

use serde::{Deserialize, Serialize};

use crate::bitrot::checksum;
use crate::{ErasureConfig, ErasureError, CODEC_ID};

/// Magic bytes that open every shard file.
pub const MAGIC: [u8; 4] = *b"CFSH";

/// The shard file format version this release writes and reads.
pub const FORMAT_VERSION: u8 = 1;

/// Bytes of the shard file header; block 0's frame starts right after it.
pub const HEADER_LEN: usize = 48;

/// Offset of the header's own CRC32C, which covers bytes `0..HEADER_CRC_OFFSET`.
const HEADER_CRC_OFFSET: usize = 44;

/// The erasure codecs this release knows, by their manifest name and header byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CodecId {
    /// Systematic Reed-Solomon over GF(2^8), shards as in [`crate::Codec`]: "rs-gf8-v1", byte 1.
    #[serde(rename = "rs-gf8-v1")]
    RsGf8V1,
}

impl CodecId {
    /// The manifest name, e.g. [`CODEC_ID`].
    pub fn as_str(self) -> &'static str {
        match self {
            CodecId::RsGf8V1 => CODEC_ID,
        }
    }

    /// The codec named `name` in a manifest.
    pub fn from_name(name: &str) -> Result<Self, ErasureError> {
        match name {
            CODEC_ID => Ok(CodecId::RsGf8V1),
            other => Err(ErasureError::UnknownCodec(other.to_owned())),
        }
    }

    /// The byte that stands for this codec in a shard header.
    pub fn to_byte(self) -> u8 {
        match self {
            CodecId::RsGf8V1 => 1,
        }
    }

    /// The codec a shard header byte stands for.
    pub fn from_byte(b: u8) -> Result<Self, ErasureError> {
        match b {
            1 => Ok(CodecId::RsGf8V1),
            other => Err(ErasureError::UnknownCodec(format!("header byte {other}"))),
        }
    }
}

/// The header at the start of every shard file: what the file is and how to read it.
///
/// It binds the file to one object version (`data_id`) and one shard slot, so a
/// file left over from an overwritten object, or put in the wrong place, is
/// recognised as such instead of being fed to the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardHeader {
    /// Format version ([`FORMAT_VERSION`] when written by this release).
    pub version: u8,
    /// Codec the shards were produced with.
    pub codec: CodecId,
    /// Erasure configuration of the object.
    pub config: ErasureConfig,
    /// Which shard of each block this file holds (0-based; data shards first).
    pub shard_index: u8,
    /// Length of the (ciphertext) object stream that was erasure-coded.
    pub object_len: u64,
    /// Identifier of this object version's data, shared by all its shard files.
    pub data_id: [u8; 16],
}

impl ShardHeader {
    /// A current-version header for shard `shard_index` of an object coded with `config`.
    pub fn new(
        config: ErasureConfig,
        shard_index: u8,
        object_len: u64,
        data_id: [u8; 16],
    ) -> Result<Self, ErasureError> {
        let h = Self {
            version: FORMAT_VERSION,
            codec: CodecId::RsGf8V1,
            config,
            shard_index,
            object_len,
            data_id,
        };
        h.check_fields()?;
        Ok(h)
    }

    /// The header's 48 bytes (see `docs/format/shards.md`).
    ///
    /// Assumes a header built by [`ShardHeader::new`] or [`ShardHeader::decode`];
    /// counts beyond one byte (impossible in a validated config) would be truncated.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4] = self.version;
        b[5] = self.codec.to_byte();
        b[6] = self.config.data as u8;
        b[7] = self.config.parity as u8;
        b[8..12].copy_from_slice(&(self.config.block_size as u32).to_le_bytes());
        b[12] = self.shard_index;
        // 13..16 reserved, zero.
        b[16..24].copy_from_slice(&self.object_len.to_le_bytes());
        b[24..40].copy_from_slice(&self.data_id);
        // 40..44 reserved, zero.
        let crc = checksum(&b[..HEADER_CRC_OFFSET]);
        b[HEADER_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and checks a header from the first [`HEADER_LEN`] bytes of `bytes`.
    ///
    /// Longer input is fine (a reader may fetch the header and block 0 together).
    /// Order of checks: magic, version (so a newer format reports
    /// `UnsupportedVersion`, not corruption), CRC, then field sanity.
    pub fn decode(bytes: &[u8]) -> Result<Self, ErasureError> {
        if bytes.len() < HEADER_LEN {
            return Err(bad(format!("{} bytes, need {HEADER_LEN}", bytes.len())));
        }
        let b = &bytes[..HEADER_LEN];
        if b[0..4] != MAGIC {
            return Err(bad("bad magic".into()));
        }
        if b[4] != FORMAT_VERSION {
            return Err(ErasureError::UnsupportedVersion(b[4]));
        }
        let stored = u32::from_le_bytes(le4(&b[HEADER_CRC_OFFSET..]));
        if checksum(&b[..HEADER_CRC_OFFSET]) != stored {
            return Err(bad("header checksum mismatch".into()));
        }
        if b[13..16] != [0; 3] || b[40..44] != [0; 4] {
            return Err(bad("reserved bytes are not zero".into()));
        }
        let codec = CodecId::from_byte(b[5]).map_err(|e| bad(e.to_string()))?;
        let config = ErasureConfig {
            data: usize::from(b[6]),
            parity: usize::from(b[7]),
            block_size: u32::from_le_bytes(le4(&b[8..12])) as usize,
        };
        let mut data_id = [0u8; 16];
        data_id.copy_from_slice(&b[24..40]);
        let h = Self {
            version: b[4],
            codec,
            config,
            shard_index: b[12],
            object_len: u64::from_le_bytes(le8(&b[16..24])),
            data_id,
        };
        h.check_fields()?;
        Ok(h)
    }

    /// Length the whole shard file must have (header included).
    pub fn file_len(&self) -> u64 {
        shard_file_len(&self.config, self.object_len)
    }

    fn check_fields(&self) -> Result<(), ErasureError> {
        self.config
            .validate()
            .map_err(|e| bad(format!("config: {e}")))?;
        if usize::from(self.shard_index) >= self.config.width() {
            return Err(bad(format!(
                "shard index {} outside a {}-wide set",
                self.shard_index,
                self.config.width()
            )));
        }
        Ok(())
    }
}

/// Length of a whole shard file (header + all framed blocks) for an object of `object_len` bytes.
pub fn shard_file_len(cfg: &ErasureConfig, object_len: u64) -> u64 {
    HEADER_LEN as u64 + cfg.shard_file_data_len(object_len)
}

/// File offset where the frame of block `block_index` starts.
///
/// Every block but the last is full, so frames before `block_index` are all
/// `CHECKSUM_LEN + shard_len(block_size)` long. Any `block_index >= block_count`
/// gives the end of the file.
pub fn block_offset_in_file(cfg: &ErasureConfig, object_len: u64, block_index: u64) -> u64 {
    // At or past the last block the answer is the file end, which is not
    // `index * full` when the last block is short.
    if block_index >= cfg.block_count(object_len) {
        return shard_file_len(cfg, object_len);
    }
    let full = (crate::CHECKSUM_LEN + cfg.shard_len(cfg.block_size)) as u64;
    HEADER_LEN as u64 + block_index * full
}

/// Bytes of the frame of block `block_index` (checksum + shard); 0 for a block past the end.
pub fn framed_block_len(cfg: &ErasureConfig, object_len: u64, block_index: u64) -> usize {
    cfg.framed_block_len(object_len, block_index)
}

/// The first and last block (inclusive) holding object bytes `start..=end_inclusive`.
///
/// Errors unless `start <= end_inclusive < object_len`.
pub fn block_range_for_bytes(
    cfg: &ErasureConfig,
    object_len: u64,
    start: u64,
    end_inclusive: u64,
) -> Result<(u64, u64), ErasureError> {
    if start > end_inclusive || end_inclusive >= object_len {
        return Err(ErasureError::InvalidRange {
            start,
            end_inclusive,
            object_len,
        });
    }
    let bs = cfg.block_size as u64;
    Ok((start / bs, end_inclusive / bs))
}

fn bad(msg: String) -> ErasureError {
    ErasureError::BadHeader(msg)
}

fn le4(b: &[u8]) -> [u8; 4] {
    [b[0], b[1], b[2], b[3]]
}

fn le8(b: &[u8]) -> [u8; 8] {
    [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]
}
