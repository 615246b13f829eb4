//! Reading one segment back: fetch the erasure blocks that cover a package, check each shard
//! block's CRC32C, reconstruct from parity when a shard is missing or corrupt, and open the
//! package. When a package fails authentication although its shards' checksums passed, other
//! shard combinations are tried before giving up: the AEAD tag is the end-to-end guard.
//!
//! [`PackageStream`] pipelines a run of packages: the reading stage (shard reads, CRCs,
//! reconstruction) runs ahead of the opening by up to [`READ_AHEAD`] packages, each opened by a
//! short blocking-pool task, so decryption overlaps with reading the following packages and
//! with sending earlier ones. Only
//! packages whose tag verified are released, in order; an authentication failure sends that
//! package back through the serial path, which tries the remaining shard combinations.

use std::collections::VecDeque;
use std::sync::Arc;

use coffer_crypto::{CryptoError, StreamKey, PACKAGE_SIZE, TAG_LEN};
use coffer_erasure::{Codec, ErasureConfig};
use coffer_s3api::backend::StoreError;

use crate::drive::DataId;
use crate::manifest::Segment;
use crate::pipeline::cipher::PackageOpener;
use crate::seams::ShardSource;
use crate::shards::ShardStore;

/// Sealed packages read ahead of the opening thread (16 × 64 KiB = 1 MiB per stream).
pub const READ_AHEAD: usize = 16;

/// Shard combinations tried per package before the object is declared unreadable.
const MAX_ATTEMPTS: usize = 32;

/// Sealed bytes per full package.
const SEALED_PACKAGE: u64 = (PACKAGE_SIZE + TAG_LEN) as u64;

enum SourceState {
    Unopened,
    Open(Arc<dyn ShardSource>),
    Missing,
}

/// Reads packages of one segment, opened by `O` (a [`StreamKey`] in production).
pub struct SegmentReader<O: PackageOpener = StreamKey> {
    seg: Segment,
    id: DataId,
    cfg: ErasureConfig,
    codec: Codec,
    key: Arc<O>,
    drives: Vec<Arc<dyn ShardStore>>,
    sources: Vec<SourceState>,
    cache: Option<(u64, Vec<usize>, Vec<u8>)>,
    combos: Vec<Vec<usize>>,
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
        let width = seg.data + seg.parity;
        if seg.drives.len() != width || stores.len() != width {
            return Err(StoreError::Internal(
                "segment placement names unknown drives".into(),
            ));
        }
        let picked = stores.to_vec();
        Ok(Self {
            combos: combinations(width, seg.data, MAX_ATTEMPTS),
            sources: (0..width).map(|_| SourceState::Unopened).collect(),
            seg,
            id,
            cfg,
            codec,
            key: Arc::new(key),
            drives: picked,
            cache: None,
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
        self.read_package_from(index, 0).await
    }

    /// Like [`Self::read_package`], trying shard combinations from `first_attempt` on.
    async fn read_package_from(
        &mut self,
        index: u64,
        first_attempt: usize,
    ) -> Result<Vec<u8>, StoreError> {
        let mut attempt = first_attempt;
        while let Some((sealed, used, is_final)) = self.sealed_package(index, attempt).await? {
            match self.key.open_package(index, is_final, &sealed) {
                Ok(p) => return Ok(p),
                Err(_) => self.auth_failed(index, used),
            }
            attempt = used + 1;
        }
        Err(StoreError::DataCorrupt)
    }

    fn auth_failed(&self, index: u64, attempt: usize) {
        let combo = &self.combos[attempt];
        tracing::warn!(data_id = %self.seg.data_id, index, ?combo, "package failed authentication; trying other shards");
    }

    /// The sealed bytes of package `index` from the first shard combination, at or after
    /// `first_attempt`, whose shards are available and pass their checksums: (bytes, attempt,
    /// is_final). None when no combination is left.
    async fn sealed_package(
        &mut self,
        index: u64,
        first_attempt: usize,
    ) -> Result<Option<(Vec<u8>, usize, bool)>, StoreError> {
        let (start, len, is_final) = self.package_span(index)?;
        for attempt in first_attempt..self.combos.len() {
            let combo = self.combos[attempt].clone();
            if let Some(b) = self.sealed_bytes(start, len, &combo).await? {
                return Ok(Some((b, attempt, is_final)));
            }
        }
        Ok(None)
    }

    /// Packages `first..=last`, in order, with reading pipelined ahead of opening.
    pub fn packages(self, first: u64, last: u64) -> PackageStream<O> {
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
            out.extend_from_slice(&block[from as usize..to as usize]);
        }
        Ok(Some(out))
    }

    /// Makes block `b`, rebuilt from the shards in `combo`, the cached block; false if a shard
    /// of the combination is unavailable or corrupt.
    async fn load_block(&mut self, b: u64, combo: &[usize]) -> Result<bool, StoreError> {
        if let Some((cb, cc, _)) = &self.cache {
            if *cb == b && cc == combo {
                return Ok(true);
            }
        }
        let sealed_len = self.seg.sealed_len;
        let block_len =
            (sealed_len - b * self.cfg.block_size as u64).min(self.cfg.block_size as u64);
        let offset = coffer_erasure::block_offset_in_file(&self.cfg, sealed_len, b);
        let framed_len = coffer_erasure::framed_block_len(&self.cfg, sealed_len, b);
        let mut reads = Vec::with_capacity(combo.len());
        for &shard in combo {
            let Some(src) = self.source(shard).await else {
                return Ok(false);
            };
            reads.push(tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; framed_len];
                src.read_exact_at(&mut buf, offset)?;
                Ok::<_, std::io::Error>(buf)
            }));
        }
        let mut shards: Vec<Option<Vec<u8>>> = vec![None; self.cfg.data + self.cfg.parity];
        for (&shard, read) in combo.iter().zip(reads) {
            let framed = match read.await {
                Ok(Ok(f)) => f,
                Ok(Err(e)) => {
                    tracing::warn!(data_id = %self.seg.data_id, shard, error = %e, "shard read failed");
                    self.sources[shard] = SourceState::Missing;
                    self.degraded();
                    return Ok(false);
                }
                Err(_) => return Err(StoreError::Internal("shard read task failed".into())),
            };
            match coffer_erasure::unframe_block(&framed) {
                Ok(data) => shards[shard] = Some(data.to_vec()),
                Err(_) => {
                    tracing::warn!(data_id = %self.seg.data_id, shard, block = b, "shard block failed its checksum");
                    self.degraded();
                    return Ok(false);
                }
            }
        }
        let block = self
            .codec
            .reconstruct_data(&mut shards, block_len as usize)
            .map_err(|_| StoreError::DataCorrupt)?;
        self.cache = Some((b, combo.to_vec(), block));
        Ok(true)
    }

    async fn source(&mut self, shard: usize) -> Option<Arc<dyn ShardSource>> {
        match &self.sources[shard] {
            SourceState::Open(s) => return Some(s.clone()),
            SourceState::Missing => return None,
            SourceState::Unopened => {}
        }
        let drive = self.drives[shard].clone();
        let id = self.id;
        let opened = tokio::task::spawn_blocking(move || drive.open_shard(id, shard)).await;
        match opened {
            Ok(Ok(src)) => {
                let src: Arc<dyn ShardSource> = Arc::from(src);
                self.sources[shard] = SourceState::Open(src.clone());
                Some(src)
            }
            other => {
                tracing::warn!(data_id = %self.seg.data_id, shard, "shard file unavailable");
                self.sources[shard] = SourceState::Missing;
                // A shard on a node that is down is not lost: the healer's passes cover the
                // node's return. One that is gone from a live drive is healed now.
                let node_down =
                    matches!(&other, Ok(Err(e)) if crate::shards::liveness::is_unreachable(e));
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
    /// In-flight opens, oldest first: the shard-combination attempt each package was read
    /// with, and the blocking-pool task opening it. Each task opens one package (~10-30 µs) and
    /// ends, so a slow client never pins a thread of the blocking pool that shard I/O needs.
    inflight: VecDeque<(usize, OpenTask)>,
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
            let Some((sealed, attempt, is_final)) =
                self.reader.sealed_package(self.next_read, 0).await?
            else {
                return Err(StoreError::DataCorrupt);
            };
            let opener = self.reader.key.clone();
            let at = self.next_read;
            let task =
                tokio::task::spawn_blocking(move || opener.open_package(at, is_final, &sealed));
            self.inflight.push_back((attempt, task));
            self.next_read += 1;
        }
        let Some((attempt, task)) = self.inflight.pop_front() else {
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
                self.reader.auth_failed(index, attempt);
                self.reader
                    .read_package_from(index, attempt + 1)
                    .await
                    .map(Some)
            }
        }
    }
}

/// The first `limit` k-subsets of 0..n in lexicographic order, so the data shards come first.
fn combinations(n: usize, k: usize, limit: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut cur: Vec<usize> = (0..k).collect();
    loop {
        out.push(cur.clone());
        if out.len() >= limit {
            return out;
        }
        let mut i = k;
        loop {
            if i == 0 {
                return out;
            }
            i -= 1;
            if cur[i] < n - k + i {
                cur[i] += 1;
                for j in i + 1..k {
                    cur[j] = cur[j - 1] + 1;
                }
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::combinations;

    #[test]
    fn combinations_start_with_data_shards_and_cover_all() {
        let c = combinations(4, 2, 100);
        assert_eq!(c[0], vec![0, 1]);
        assert_eq!(c.len(), 6);
        assert_eq!(c[5], vec![2, 3]);
        assert_eq!(combinations(1, 1, 10), vec![vec![0]]);
        assert_eq!(combinations(16, 8, 5).len(), 5);
    }
}
