//! Reading one segment back: fetch the erasure blocks that cover a package, check each shard
//! block's CRC32C, reconstruct from parity when a shard is missing or corrupt, and open the
//! package. When a package fails authentication although its shards' checksums passed, other
//! shard combinations are tried before giving up: the AEAD tag is the end-to-end guard.
//! Combinations are taken in lexicographic order (data shards first) but never include a shard
//! known to be missing or to hold a corrupt block of the package: with 4+4 and shards 0 and 4
//! gone, the first combination tried is [1, 2, 3, 5], not one of the 35 that contain shard 0.
//!
//! [`PackageStream`] pipelines a run of packages: the reading stage (shard reads, CRCs,
//! reconstruction) runs ahead of the opening by up to [`READ_AHEAD`] packages, each opened by a
//! short task on the runtime's workers, so decryption overlaps with reading the following
//! packages and with sending earlier ones. The reading stage itself fetches the next erasure
//! block in a task of its own ([`block::Prefetch`]) while it cuts the current block's packages,
//! and cuts them straight from the shards' read buffers: the stage that every package passes
//! through one at a time does nothing but one copy per package. Opening is CPU work of
//! 10-30 µs per package, not blocking I/O: as blocking-pool tasks the hand-offs (a thread woken
//! per package) cost more CPU than the opens and made 64 MiB GETs ~20% slower
//! (docs/benchmarks.md). Only packages whose tag verified are released, in order; an
//! authentication failure sends that package back through the serial path, which tries the
//! remaining shard combinations.

use std::collections::VecDeque;
use std::sync::Arc;

use coffer_crypto::{CryptoError, StreamKey, PACKAGE_SIZE, TAG_LEN};
use coffer_erasure::{Codec, ErasureConfig};
use coffer_s3api::backend::StoreError;

use crate::drive::DataId;
use crate::manifest::Segment;
use crate::pipeline::block::{self, Block, BlockSpan, Fault, Prefetch};
use crate::pipeline::cipher::PackageOpener;
use crate::shards::{ShardReader, ShardStore};

/// Sealed packages read ahead of the opening thread (16 × 64 KiB = 1 MiB per stream).
pub const READ_AHEAD: usize = 16;

/// Shard combinations read per package before the object is declared unreadable.
const MAX_ATTEMPTS: usize = 32;

/// Sealed bytes per full package.
const SEALED_PACKAGE: u64 = (PACKAGE_SIZE + TAG_LEN) as u64;

enum SourceState {
    Unopened,
    Open(Arc<dyn ShardReader>),
    Missing,
}

/// Reads packages of one segment, opened by `O` (a [`StreamKey`] in production).
pub struct SegmentReader<O: PackageOpener = StreamKey> {
    seg: Segment,
    id: DataId,
    cfg: ErasureConfig,
    codec: Arc<Codec>,
    key: Arc<O>,
    drives: Vec<Arc<dyn ShardStore>>,
    sources: Vec<SourceState>,
    /// The block last read: (index, shard combination, bytes).
    cache: Option<(u64, Vec<usize>, Block)>,
    /// The next block, being read by a task of its own while packages of `cache` are handed
    /// out (only for a run of packages, up to `prefetch_to`).
    ahead: Option<Prefetch>,
    /// The last block a run of packages needs; None when reading single packages.
    prefetch_to: Option<u64>,
    /// (shard, block) pairs whose block failed its checksum: no combination for a package
    /// covering that block uses the shard again.
    bad_blocks: Vec<(usize, u64)>,
    /// A shard was given up on because its node did not answer: running out of shards then
    /// means "unavailable for now" (503), not "lost".
    unreachable: bool,
    /// Called once when a shard turns out missing or corrupt (heal on read).
    on_degraded: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl<O: PackageOpener> SegmentReader<O> {
    /// Prepares to read `seg` with stream key (or other package opener) `key`; `stores[i]`
    /// holds shard `i` (see `ShardMap::resolve`).
    pub fn new(seg: Segment, key: O, stores: &[Arc<dyn ShardStore>]) -> Result<Self, StoreError> {
        if seg.codec != coffer_erasure::CODEC_ID {
            return Err(StoreError::Internal(format!("unknown codec {}", seg.codec)));
        }
        let id = DataId::from_hex(&seg.data_id).ok_or(StoreError::DataCorrupt)?;
        let cfg = ErasureConfig {
            data: seg.data,
            parity: seg.parity,
            block_size: seg.block_size,
        };
        let codec = Codec::new(cfg).map_err(|e| StoreError::Internal(e.to_string()))?;
        let codec = Arc::new(codec);
        let width = seg.data + seg.parity;
        if seg.drives.len() != width || stores.len() != width {
            return Err(StoreError::Internal(
                "segment placement names unknown drives".into(),
            ));
        }
        let picked = stores.to_vec();
        Ok(Self {
            bad_blocks: Vec::new(),
            unreachable: false,
            sources: (0..width).map(|_| SourceState::Unopened).collect(),
            seg,
            id,
            cfg,
            codec,
            key: Arc::new(key),
            drives: picked,
            cache: None,
            ahead: None,
            prefetch_to: None,
            on_degraded: None,
        })
    }

    /// Calls `hook` (once) when a shard of the segment is found missing or corrupt.
    pub fn on_degraded(mut self, hook: Arc<dyn Fn() + Send + Sync>) -> Self {
        self.on_degraded = Some(hook);
        self
    }

    fn degraded(&mut self) {
        if let Some(hook) = self.on_degraded.take() {
            hook();
        }
    }

    /// Number of packages in the segment (at least one, even when empty).
    pub fn package_count(&self) -> u64 {
        self.seg.plain_len.div_ceil(PACKAGE_SIZE as u64).max(1)
    }

    /// Where package `index` lies in the sealed stream: (start, len, is_final).
    fn package_span(&self, index: u64) -> Result<(u64, u64, bool), StoreError> {
        let count = self.package_count();
        if index >= count {
            return Err(StoreError::Internal("package index past the end".into()));
        }
        let plain_start = index * PACKAGE_SIZE as u64;
        let plain = (self.seg.plain_len - plain_start).min(PACKAGE_SIZE as u64);
        let start = index * SEALED_PACKAGE;
        let len = plain + TAG_LEN as u64;
        if start + len > self.seg.sealed_len {
            return Err(StoreError::DataCorrupt);
        }
        Ok((start, len, index + 1 == count))
    }

    /// The plaintext of package `index`.
    pub async fn read_package(&mut self, index: u64) -> Result<Vec<u8>, StoreError> {
        let mut budget = MAX_ATTEMPTS;
        self.read_package_after(index, None, &mut budget).await
    }

    /// Like [`Self::read_package`], trying only shard combinations after `after` (one whose
    /// package failed authentication), at most `budget` more.
    async fn read_package_after(
        &mut self,
        index: u64,
        mut after: Option<Vec<usize>>,
        budget: &mut usize,
    ) -> Result<Vec<u8>, StoreError> {
        while let Some((sealed, used, is_final)) =
            self.sealed_package(index, after.as_deref(), budget).await?
        {
            match self.key.open_package(index, is_final, sealed) {
                Ok(p) => return Ok(p),
                Err(_) => self.auth_failed(index, &used),
            }
            after = Some(used);
        }
        Err(self.exhausted())
    }

    /// The error once no shard combination is left to try.
    fn exhausted(&self) -> StoreError {
        if self.unreachable {
            StoreError::Unavailable
        } else {
            StoreError::DataCorrupt
        }
    }

    fn auth_failed(&self, index: u64, combo: &[usize]) {
        tracing::warn!(data_id = %self.seg.data_id, index, ?combo, "package failed authentication; trying other shards");
    }

    /// The sealed bytes of package `index` from the first shard combination after `after`
    /// whose shards are available and pass their checksums, reading at most `budget`
    /// combinations: (bytes, combination, is_final). None when none is left.
    async fn sealed_package(
        &mut self,
        index: u64,
        after: Option<&[usize]>,
        budget: &mut usize,
    ) -> Result<Option<(Vec<u8>, Vec<usize>, bool)>, StoreError> {
        let (start, len, is_final) = self.package_span(index)?;
        let mut prev = after.map(<[usize]>::to_vec);
        while *budget > 0 {
            let Some(combo) = self.next_combo(start, len, prev.as_deref()) else {
                break;
            };
            *budget -= 1;
            if let Some(b) = self.sealed_bytes(start, len, &combo).await? {
                return Ok(Some((b, combo, is_final)));
            }
            prev = Some(combo);
        }
        Ok(None)
    }

    /// The next combination after `after` (or the first) of shards that may serve the sealed
    /// bytes [start, start+len): not missing, no corrupt block in that span.
    fn next_combo(&self, start: u64, len: u64, after: Option<&[usize]>) -> Option<Vec<usize>> {
        let bs = self.cfg.block_size as u64;
        let blocks = start / bs..=(start + len - 1) / bs;
        let usable: Vec<bool> = (0..self.sources.len())
            .map(|shard| {
                !matches!(self.sources[shard], SourceState::Missing)
                    && !self
                        .bad_blocks
                        .iter()
                        .any(|&(s, b)| s == shard && blocks.contains(&b))
            })
            .collect();
        next_combination(&usable, self.cfg.data, after)
    }

    /// Packages `first..=last`, in order, with reading pipelined ahead of opening.
    pub fn packages(mut self, first: u64, last: u64) -> PackageStream<O> {
        if let Ok((start, len, _)) = self.package_span(last) {
            self.prefetch_to = Some((start + len - 1) / self.cfg.block_size as u64);
        }
        PackageStream {
            reader: self,
            next_read: first,
            next_yield: first,
            last,
            inflight: VecDeque::with_capacity(READ_AHEAD),
        }
    }

    /// Sealed bytes [start, start+len) using the shards in `combo`; None if one of them is bad.
    async fn sealed_bytes(
        &mut self,
        start: u64,
        len: u64,
        combo: &[usize],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let bs = self.cfg.block_size as u64;
        let mut out = Vec::with_capacity(len as usize);
        let (first, last) = (start / bs, (start + len - 1) / bs);
        for b in first..=last {
            if !self.load_block(b, combo).await? {
                return Ok(None);
            }
            let Some((_, _, block)) = &self.cache else {
                return Ok(None);
            };
            let block_start = b * bs;
            let from = start.max(block_start) - block_start;
            let to = (start + len).min(block_start + block.len() as u64) - block_start;
            block.copy_to(from as usize, to as usize, &mut out);
        }
        Ok(Some(out))
    }

    /// Makes block `b`, read from the shards in `combo`, the cached block; false if a shard
    /// of the combination is unavailable or corrupt. Then starts reading the next block if a
    /// run of packages will need it.
    async fn load_block(&mut self, b: u64, combo: &[usize]) -> Result<bool, StoreError> {
        if let Some((cb, cc, _)) = &self.cache {
            if *cb == b && cc == combo {
                return Ok(true);
            }
        }
        let fetched = match self.ahead.take() {
            Some(p) if p.block == b && p.combo == combo => p.finish().await,
            _ => None,
        };
        let fetched = match fetched {
            Some(f) => f,
            None => {
                let mut sources = Vec::with_capacity(combo.len());
                for &shard in combo {
                    let Some(src) = self.source(shard).await else {
                        return Ok(false);
                    };
                    sources.push((shard, src));
                }
                block::fetch(self.codec.clone(), sources, self.span_of(b)).await
            }
        };
        match fetched {
            Ok(block) => {
                self.cache = Some((b, combo.to_vec(), block));
                self.prefetch(b + 1, combo);
                Ok(true)
            }
            Err(Fault::Read(shard, e)) => {
                tracing::warn!(data_id = %self.seg.data_id, shard, error = %e, "shard read failed");
                self.unreachable |= crate::shards::liveness::is_transient(&e);
                self.sources[shard] = SourceState::Missing;
                self.degraded();
                Ok(false)
            }
            Err(Fault::BadBlock(shard)) => {
                tracing::warn!(data_id = %self.seg.data_id, shard, block = b, "shard block failed its checksum");
                self.bad_blocks.push((shard, b));
                self.degraded();
                Ok(false)
            }
            Err(Fault::Rebuild) => Err(StoreError::DataCorrupt),
        }
    }

    /// Where block `b` lies in the shard files.
    fn span_of(&self, b: u64) -> BlockSpan {
        let sealed_len = self.seg.sealed_len;
        let bs = self.cfg.block_size as u64;
        BlockSpan {
            offset: coffer_erasure::block_offset_in_file(&self.cfg, sealed_len, b),
            framed_len: coffer_erasure::framed_block_len(&self.cfg, sealed_len, b),
            len: (sealed_len - b * bs).min(bs) as usize,
        }
    }

    /// Starts reading block `b` from `combo` in the background, if a run of packages needs it
    /// and every shard of the combination is open (a shard is opened, and its failure
    /// recorded, only on the reader's own path).
    fn prefetch(&mut self, b: u64, combo: &[usize]) {
        if self.prefetch_to.is_none_or(|last| b > last) {
            return;
        }
        let mut sources = Vec::with_capacity(combo.len());
        for &shard in combo {
            match &self.sources[shard] {
                SourceState::Open(src) => sources.push((shard, src.clone())),
                _ => return,
            }
        }
        let span = self.span_of(b);
        self.ahead = Some(Prefetch::start(
            b,
            combo.to_vec(),
            self.codec.clone(),
            sources,
            span,
        ));
    }

    async fn source(&mut self, shard: usize) -> Option<Arc<dyn ShardReader>> {
        match &self.sources[shard] {
            SourceState::Open(s) => return Some(s.clone()),
            SourceState::Missing => return None,
            SourceState::Unopened => {}
        }
        let drive = self.drives[shard].clone();
        let id = self.id;
        let opened = drive.open_shard(id, shard).await;
        match opened {
            Ok(src) => {
                self.sources[shard] = SourceState::Open(src.clone());
                Some(src)
            }
            other => {
                tracing::warn!(data_id = %self.seg.data_id, shard, "shard file unavailable");
                self.sources[shard] = SourceState::Missing;
                // A shard on a node that is down is not lost: the healer's passes cover the
                // node's return. One that is gone from a live drive is healed now.
                let node_down =
                    matches!(&other, Err(e) if crate::shards::liveness::is_unreachable(e));
                self.unreachable |=
                    matches!(&other, Err(e) if crate::shards::liveness::is_transient(e));
                if !node_down {
                    self.degraded();
                }
                None
            }
        }
    }
}

/// A run of packages of one segment being read (see the module docs).
pub struct PackageStream<O: PackageOpener = StreamKey> {
    reader: SegmentReader<O>,
    next_read: u64,
    next_yield: u64,
    last: u64,
    /// In-flight opens, oldest first: the shard combination each package was read with, how
    /// many more combinations it may try should its tag fail, and the task opening it. Each
    /// task opens one package (~10-30 µs) and ends, so a slow client pins no thread.
    inflight: VecDeque<(Vec<usize>, usize, OpenTask)>,
}

type OpenTask = tokio::task::JoinHandle<Result<Vec<u8>, CryptoError>>;

impl<O: PackageOpener> PackageStream<O> {
    /// The plaintext of the next package (authenticated), or None after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        if self.next_yield > self.last {
            return Ok(None);
        }
        let index = self.next_yield;
        if self.inflight.is_empty() && index == self.last {
            // A single package left and nothing queued: no point in a hand-off.
            self.next_yield += 1;
            self.next_read = self.next_yield;
            return self.reader.read_package(index).await.map(Some);
        }
        while self.next_read <= self.last && self.inflight.len() < READ_AHEAD {
            let mut budget = MAX_ATTEMPTS;
            let Some((sealed, combo, is_final)) = self
                .reader
                .sealed_package(self.next_read, None, &mut budget)
                .await?
            else {
                return Err(self.reader.exhausted());
            };
            let opener = self.reader.key.clone();
            let at = self.next_read;
            let task = tokio::spawn(async move { opener.open_package(at, is_final, sealed) });
            self.inflight.push_back((combo, budget, task));
            self.next_read += 1;
        }
        let Some((combo, mut budget, task)) = self.inflight.pop_front() else {
            return Err(StoreError::Internal("package pipeline out of step".into()));
        };
        let opened = task
            .await
            .map_err(|_| StoreError::Internal("package opener failed".into()))?;
        self.next_yield += 1;
        match opened {
            Ok(p) => Ok(Some(p)),
            Err(_) => {
                // The checksums passed but the tag did not: try the other combinations.
                self.reader.auth_failed(index, &combo);
                self.reader
                    .read_package_after(index, Some(combo), &mut budget)
                    .await
                    .map(Some)
            }
        }
    }
}

/// The lexicographically smallest k-subset of the usable shards that comes after `after` (the
/// first one without `after`); None when there is none. Lexicographic order puts the data
/// shards first, so a healthy segment is read without any reconstruction.
fn next_combination(usable: &[bool], k: usize, after: Option<&[usize]>) -> Option<Vec<usize>> {
    let avail: Vec<usize> = (0..usable.len()).filter(|&i| usable[i]).collect();
    if k == 0 || avail.len() < k {
        return None;
    }
    let Some(x) = after else {
        return Some(avail[..k].to_vec());
    };
    // Keep the longest prefix of `after` that is still usable and raise the next position to
    // the smallest usable shard above it, then fill up with the smallest ones after that.
    for i in (0..k.min(x.len())).rev() {
        if !x[..i]
            .iter()
            .all(|&s| usable.get(s).copied().unwrap_or(false))
        {
            continue;
        }
        let pos = avail.partition_point(|&s| s <= x[i]);
        if pos + (k - i) <= avail.len() {
            let mut out = x[..i].to_vec();
            out.extend_from_slice(&avail[pos..pos + (k - i)]);
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::next_combination;

    fn all(usable: &[bool], k: usize) -> Vec<Vec<usize>> {
        let mut out: Vec<Vec<usize>> = Vec::new();
        while let Some(c) = next_combination(usable, k, out.last().map(Vec::as_slice)) {
            out.push(c);
        }
        out
    }

    #[test]
    fn combinations_start_with_data_shards_and_cover_all() {
        let c = all(&[true; 4], 2);
        assert_eq!(
            c,
            vec![
                vec![0, 1],
                vec![0, 2],
                vec![0, 3],
                vec![1, 2],
                vec![1, 3],
                vec![2, 3]
            ]
        );
        assert_eq!(all(&[true], 1), vec![vec![0]]);
        assert_eq!(all(&[true; 16], 8).len(), 12_870);
        assert!(all(&[true; 3], 0).is_empty());
    }

    #[test]
    fn combinations_skip_unusable_shards() {
        // 4+4 with shards 0 and 4 gone: the first try already avoids both.
        let mut usable = [true; 8];
        usable[0] = false;
        usable[4] = false;
        let c = all(&usable, 4);
        assert_eq!(c[0], vec![1, 2, 3, 5]);
        assert_eq!(c.len(), 15, "C(6, 4)");
        assert!(c.iter().all(|x| !x.contains(&0) && !x.contains(&4)));
        assert!(c.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
        // A shard lost after `after` was tried: the next combination drops it too.
        let now = next_combination(&usable, 4, Some(&[0, 1, 2, 3])).unwrap();
        assert_eq!(now, vec![1, 2, 3, 5]);
        let mut fewer = usable;
        fewer[2] = false;
        assert_eq!(
            next_combination(&fewer, 4, Some(&[1, 2, 3, 5])),
            Some(vec![1, 3, 5, 6])
        );
        // Fewer usable shards than data shards: nothing to try.
        assert_eq!(next_combination(&[true, false, false], 2, None), None);
    }
}
