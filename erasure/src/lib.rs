//! Erasure coding for Coffer: Reed-Solomon blocks into k data + m parity shards,
//! a CRC32C per shard block against bitrot, the shard file layout, placement of
//! an object's shards on drives, and quorum arithmetic.
//!
//! Pure functions and types only: no I/O. The node reads and writes shard files
//! and uses this crate to know what to put in them and where to find a range.
//! The on-disk format is documented in `docs/format/shards.md`.

#![warn(missing_docs)]

mod bitrot;
mod codec;
mod config;
mod error;
mod placement;
mod shard_file;

pub use bitrot::{checksum, frame_block, unframe_block, unframe_block_vec, CHECKSUM_LEN};
pub use codec::{Codec, CODEC_ID};
pub use config::{
    default_parity, ErasureConfig, DEFAULT_BLOCK_SIZE, MAX_BLOCK_SIZE, MAX_DEFAULT_WIDTH, MAX_WIDTH,
};
pub use error::ErasureError;
pub use placement::{object_hash, place, place_on_nodes};
pub use shard_file::{
    block_offset_in_file, block_range_for_bytes, framed_block_len, shard_file_len, CodecId,
    ShardHeader, FORMAT_VERSION, HEADER_LEN, MAGIC,
};
