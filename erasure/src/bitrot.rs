//! Bitrot detection: a CRC32C in front of every shard block.
//!
//! Frame layout: `crc32c(shard) as u32 little-endian (4 bytes) ‖ shard bytes`.
//! The checksum goes first so it sits at a fixed offset at the start of every
//! frame, and a writer can reserve it, produce the shard in place, then fill it in
//! (see [`crate::Codec::encode_framed`]). The frame carries no length: readers
//! know every frame's length from the layout arithmetic.
//!
//! CRC32C is a detector for drive corruption, not an authenticator: the AEAD
//! tags of the encrypted stream are the end-to-end guard. What CRC32C buys is
//! knowing *which* shard is bad, so a read can switch to parity and heal it.

use crate::ErasureError;

/// Bytes of checksum in front of every shard block.
pub const CHECKSUM_LEN: usize = 4;

/// The CRC32C (Castagnoli) of `data`, hardware-accelerated where the CPU allows.
pub fn checksum(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Appends one framed shard block (`crc32c LE ‖ shard`) to `out`.
pub fn frame_block(shard: &[u8], out: &mut Vec<u8>) {
    out.reserve(CHECKSUM_LEN + shard.len());
    out.extend_from_slice(&checksum(shard).to_le_bytes());
    out.extend_from_slice(shard);
}

/// Checks one framed shard block and returns its shard bytes.
pub fn unframe_block(framed: &[u8]) -> Result<&[u8], ErasureError> {
    if framed.len() < CHECKSUM_LEN {
        return Err(ErasureError::FrameTooShort { len: framed.len() });
    }
    let (sum, shard) = framed.split_at(CHECKSUM_LEN);
    let expected = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
    if checksum(shard) != expected {
        return Err(ErasureError::ChecksumMismatch);
    }
    Ok(shard)
}

/// Checks one framed shard block held in an owned buffer and strips the checksum in place.
///
/// Saves the reader a second allocation when the shard is headed for
/// [`crate::Codec::reconstruct`], which wants owned shards.
pub fn unframe_block_vec(mut framed: Vec<u8>) -> Result<Vec<u8>, ErasureError> {
    unframe_block(&framed)?;
    framed.drain(..CHECKSUM_LEN);
    Ok(framed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip_and_layout() {
        let shard = b"123456789";
        let mut out = vec![0xAA];
        frame_block(shard, &mut out);
        // Appends after what is already there.
        assert_eq!(out[0], 0xAA);
        // 0xE3069283 is the published CRC32C check value of "123456789".
        assert_eq!(&out[1..5], &0xE306_9283u32.to_le_bytes());
        assert_eq!(&out[5..], shard);
        assert_eq!(unframe_block(&out[1..]).unwrap(), shard);
        assert_eq!(unframe_block_vec(out[1..].to_vec()).unwrap(), shard);
    }

    #[test]
    fn detects_any_flipped_byte() {
        let shard: Vec<u8> = (0..64u8).collect();
        let mut framed = Vec::new();
        frame_block(&shard, &mut framed);
        // Every position, checksum bytes (0..4) and data bytes alike.
        for i in 0..framed.len() {
            let mut bad = framed.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                unframe_block(&bad),
                Err(ErasureError::ChecksumMismatch),
                "flip at {i}"
            );
            assert_eq!(unframe_block_vec(bad), Err(ErasureError::ChecksumMismatch));
        }
    }

    #[test]
    fn empty_and_short_frames() {
        let mut framed = Vec::new();
        frame_block(&[], &mut framed);
        assert_eq!(framed.len(), CHECKSUM_LEN);
        assert_eq!(unframe_block(&framed).unwrap(), &[] as &[u8]);
        assert_eq!(
            unframe_block(&framed[..3]),
            Err(ErasureError::FrameTooShort { len: 3 })
        );
    }
}
