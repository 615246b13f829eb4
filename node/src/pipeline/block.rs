//! One erasure block of a segment as the reader sees it: the k shard blocks it is made of,
//! read together and checked against their CRC32C, and rebuilt only when a data shard is not
//! among them. A healthy block is not copied at all: packages are cut straight out of the data
//! shards' read buffers (the block is their concatenation).
//!
//! [`Prefetch`] fetches a block as a task of its own, so that a reader handing out one block's
//! packages already has the next block's reads, checksums and any rebuild running beside it
//! instead of waiting for them once it gets there.

use std::io;
use std::sync::Arc;

use coffer_erasure::Codec;
use tokio::task::JoinHandle;

use crate::shards::ShardReader;

/// The bytes of one erasure block, possibly spread over several buffers.
pub(crate) struct Block {
    /// Buffers whose concatenation, each taken from `skip` for `stride` bytes, is the block.
    bufs: Vec<Vec<u8>>,
    skip: usize,
    stride: usize,
    len: usize,
}

impl Block {
    /// Length of the block in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends bytes `from..to` of the block to `out`.
    pub(crate) fn copy_to(&self, mut from: usize, to: usize, out: &mut Vec<u8>) {
        debug_assert!(from <= to && to <= self.len);
        while from < to {
            let (i, at) = (from / self.stride, from % self.stride);
            let n = (self.stride - at).min(to - from);
            let start = self.skip + at;
            out.extend_from_slice(&self.bufs[i][start..start + n]);
            from += n;
        }
    }
}

/// Why a block could not be had from a combination of shards.
pub(crate) enum Fault {
    /// Reading shard `.0` failed.
    Read(usize, io::Error),
    /// Shard `.0`'s block failed its checksum (or came back the wrong size).
    BadBlock(usize),
    /// The erasure code refused to rebuild the block from shards that passed their checksums.
    Rebuild,
}

/// Where a block lies in every shard file of its segment.
#[derive(Clone, Copy)]
pub(crate) struct BlockSpan {
    /// Offset of the framed shard block in each shard file.
    pub offset: u64,
    /// Framed shard block length (checksum included).
    pub framed_len: usize,
    /// Length of the block itself.
    pub len: usize,
}

/// Reads block `span` from `sources` (shard index and reader, in ascending shard order, as
/// many as the code has data shards), all at once.
pub(crate) async fn fetch(
    codec: Arc<Codec>,
    sources: Vec<(usize, Arc<dyn ShardReader>)>,
    span: BlockSpan,
) -> Result<Block, Fault> {
    let reads = sources
        .iter()
        .map(|(_, src)| src.read_at(span.offset, span.framed_len));
    let reads = futures::future::join_all(reads).await;
    let cfg = codec.config();
    let shard_len = cfg.shard_len(span.len);
    let mut framed = Vec::with_capacity(sources.len());
    // Faults are judged in combination order, whatever order the reads finished in.
    for (&(shard, _), read) in sources.iter().zip(reads) {
        let buf = read.map_err(|e| Fault::Read(shard, e))?;
        let skip = match coffer_erasure::unframe_block(&buf) {
            Ok(data) if data.len() == shard_len => buf.len() - data.len(),
            _ => return Err(Fault::BadBlock(shard)),
        };
        framed.push((shard, buf, skip));
    }
    let data_shards_only = framed.iter().map(|(s, _, _)| *s).eq(0..cfg.data);
    if data_shards_only {
        let skip = framed.first().map_or(0, |(_, _, skip)| *skip);
        return Ok(Block {
            bufs: framed.into_iter().map(|(_, buf, _)| buf).collect(),
            skip,
            stride: shard_len,
            len: span.len,
        });
    }
    let mut shards: Vec<Option<Vec<u8>>> = vec![None; cfg.width()];
    for (shard, mut buf, skip) in framed {
        buf.drain(..skip);
        shards[shard] = Some(buf);
    }
    let whole = codec
        .reconstruct_data(&mut shards, span.len)
        .map_err(|_| Fault::Rebuild)?;
    Ok(Block {
        bufs: vec![whole],
        skip: 0,
        stride: span.len,
        len: span.len,
    })
}

/// A block being fetched by a task of its own; dropping it stops the task.
pub(crate) struct Prefetch {
    /// Index of the block in its segment.
    pub block: u64,
    /// The shard combination it is read from.
    pub combo: Vec<usize>,
    task: JoinHandle<Result<Block, Fault>>,
}

impl Prefetch {
    /// Starts fetching block `block` (at `span`) from `sources`, the shards of `combo`.
    pub(crate) fn start(
        block: u64,
        combo: Vec<usize>,
        codec: Arc<Codec>,
        sources: Vec<(usize, Arc<dyn ShardReader>)>,
        span: BlockSpan,
    ) -> Self {
        Self {
            block,
            combo,
            task: tokio::spawn(fetch(codec, sources, span)),
        }
    }

    /// The fetched block, or None if the task did not finish (the caller reads it itself).
    pub(crate) async fn finish(mut self) -> Option<Result<Block, Fault>> {
        (&mut self.task).await.ok()
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_ranges_across_buffers() {
        let block = Block {
            bufs: vec![b"xxabcd".to_vec(), b"xxefgh".to_vec(), b"xxij\0\0".to_vec()],
            skip: 2,
            stride: 4,
            len: 10,
        };
        let whole: Vec<u8> = b"abcdefghij".to_vec();
        for from in 0..=10 {
            for to in from..=10 {
                let mut out = vec![b'>'];
                block.copy_to(from, to, &mut out);
                assert_eq!(out[0], b'>');
                assert_eq!(&out[1..], &whole[from..to], "{from}..{to}");
            }
        }
        assert_eq!(block.len(), 10);
    }
}
