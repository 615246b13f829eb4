//! The one error type of this crate.

use thiserror::Error;

/// Everything that can go wrong while coding, checking or locating shards.
///
/// Variants are typed so callers decide by variant, never by message: a
/// `ChecksumMismatch` or `BadHeader` means "this shard is corrupt, heal it",
/// while `UnsupportedVersion` means "written by a newer release, leave it alone".
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ErasureError {
    /// The erasure configuration is unusable (zero data shards, too wide, bad block size...).
    #[error("invalid erasure config: {0}")]
    InvalidConfig(String),

    /// Fewer shards are present than the data shard count needed to rebuild a block.
    #[error("too few shards to reconstruct: have {have}, need {need}")]
    TooFewShards {
        /// Shards present.
        have: usize,
        /// Shards needed (the data shard count).
        need: usize,
    },

    /// The shard list does not have exactly `width` entries.
    #[error("wrong number of shard slots: have {have}, expected {expected}")]
    ShardCountMismatch {
        /// Slots given.
        have: usize,
        /// Slots expected (data + parity).
        expected: usize,
    },

    /// A present shard is not `shard_len(block_len)` bytes long.
    #[error("shard {index} has {len} bytes, expected {expected}")]
    ShardSizeMismatch {
        /// Index of the offending shard.
        index: usize,
        /// Its length.
        len: usize,
        /// The length every shard of this block must have.
        expected: usize,
    },

    /// A block is empty or longer than the configured block size.
    #[error("block length {len} is outside 1..={max}")]
    InvalidBlockLen {
        /// The length given.
        len: usize,
        /// The configured block size.
        max: usize,
    },

    /// A framed shard block failed its CRC32C check (bitrot or a torn write).
    #[error("shard block checksum mismatch")]
    ChecksumMismatch,

    /// A framed shard block is shorter than its checksum.
    #[error("framed shard block of {len} bytes is shorter than its checksum")]
    FrameTooShort {
        /// The length given.
        len: usize,
    },

    /// A shard file header is corrupt or inconsistent.
    #[error("bad shard header: {0}")]
    BadHeader(String),

    /// A shard file header carries a format version this release does not know.
    #[error("unsupported shard format version {0}")]
    UnsupportedVersion(u8),

    /// A codec name or id is not one this release implements.
    #[error("unknown erasure codec {0:?}")]
    UnknownCodec(String),

    /// A byte range is empty, reversed or past the end of the object.
    #[error("byte range {start}..={end_inclusive} is not within an object of {object_len} bytes")]
    InvalidRange {
        /// First byte asked for.
        start: u64,
        /// Last byte asked for.
        end_inclusive: u64,
        /// Length of the object.
        object_len: u64,
    },

    /// Placement was asked for more shards than there are drives.
    #[error("cannot place {width} shards on {drives} drives")]
    NotEnoughDrives {
        /// Drives available.
        drives: usize,
        /// Shards to place.
        width: usize,
    },

    /// The Reed-Solomon library refused an operation our own checks should have ruled out.
    #[error("reed-solomon backend: {0}")]
    Backend(String),
}
