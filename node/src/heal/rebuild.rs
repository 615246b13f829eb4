//! Checking and rebuilding one segment's shards. Healing never decrypts: shards are ciphertext,
//! and a missing or corrupt shard is recomputed by the erasure code from any k good ones, block
//! by block, with fresh CRCs, and written back where the manifest says it lives.
//!
//! The shard I/O is async (local drives run it as stages, peers answer RPCs); the erasure
//! arithmetic runs on the calling task, a block (≤ 1 MiB) at a time, like the GET path's.

use std::io;
use std::sync::Arc;

use coffer_erasure::{Codec, ErasureConfig, ShardHeader};

use crate::drive::DataId;
use crate::manifest::Segment;
use crate::shards::{ShardReader, ShardStore};

/// What a check of one segment found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SegmentHealth {
    /// Shards that were missing, short or (deep check) failed a CRC.
    pub bad: Vec<usize>,
    /// Shards whose node did not answer (left for a later pass).
    pub unreachable: Vec<usize>,
    /// Shards rewritten.
    pub healed: Vec<usize>,
}

impl SegmentHealth {
    /// True when every shard is in place now.
    pub fn is_whole(&self) -> bool {
        self.unreachable.is_empty() && self.bad.iter().all(|s| self.healed.contains(s))
    }
}

fn cfg_of(seg: &Segment) -> ErasureConfig {
    ErasureConfig {
        data: seg.data,
        parity: seg.parity,
        block_size: seg.block_size,
    }
}

/// Checks every shard of `seg` (`deep`: every block's CRC too) and rebuilds the bad ones from
/// the good ones when at least k are good.
pub async fn check_and_heal(
    seg: &Segment,
    stores: &[Arc<dyn ShardStore>],
    deep: bool,
) -> Result<SegmentHealth, String> {
    let id = DataId::from_hex(&seg.data_id).ok_or("bad data id")?;
    let cfg = cfg_of(seg);
    let width = cfg.width();
    if stores.len() != width {
        return Err("placement does not match the layout".into());
    }
    let codec = Codec::new(cfg).map_err(|e| e.to_string())?;
    let file_len = coffer_erasure::shard_file_len(&cfg, seg.sealed_len);
    let blocks = cfg.block_count(seg.sealed_len);
    let mut health = SegmentHealth::default();
    let mut sources: Vec<Option<Arc<dyn ShardReader>>> = Vec::with_capacity(width);
    let opened = futures::future::join_all(
        stores
            .iter()
            .enumerate()
            .map(|(s, st)| st.open_shard(id, s)),
    )
    .await;
    for (shard, opened) in opened.into_iter().enumerate() {
        match opened {
            Ok(src) if src.len() == file_len => sources.push(Some(src)),
            Ok(_) => {
                health.bad.push(shard);
                sources.push(None);
            }
            Err(e) if crate::shards::liveness::is_unreachable(&e) => {
                health.unreachable.push(shard);
                sources.push(None);
            }
            Err(_) => {
                health.bad.push(shard);
                sources.push(None);
            }
        }
    }
    if deep {
        for (shard, src) in sources.iter_mut().enumerate() {
            let Some(s) = src.as_ref() else {
                continue;
            };
            let mut intact = true;
            for b in 0..blocks {
                if read_block(s.as_ref(), &cfg, seg.sealed_len, b)
                    .await
                    .is_err()
                {
                    intact = false;
                    break;
                }
            }
            if !intact {
                health.bad.push(shard);
                *src = None;
            }
        }
    }
    if health.bad.is_empty() {
        return Ok(health);
    }
    // A source that fails mid-rebuild (a corrupt block a shallow check cannot see) joins the
    // bad ones and the rebuild starts over from the others, while k good ones are left.
    for _attempt in 0..=width {
        let good: Vec<usize> = (0..width).filter(|s| sources[*s].is_some()).collect();
        if good.len() < cfg.data {
            return Err(format!(
                "only {} of {} shards are good; {} needed to rebuild",
                good.len(),
                width,
                cfg.data
            ));
        }
        match rebuild(
            seg,
            id,
            &cfg,
            &codec,
            stores,
            &sources,
            &good[..cfg.data],
            &health.bad,
        )
        .await
        {
            Ok(healed) => {
                health.healed = healed;
                return Ok(health);
            }
            Err(Rebuild::SourceFailed(s)) => {
                sources[s] = None;
                health.bad.push(s);
            }
            Err(Rebuild::Other(e)) => return Err(e),
        }
    }
    Err("rebuild kept failing".into())
}

enum Rebuild {
    /// This good shard failed to read back.
    SourceFailed(usize),
    Other(String),
}

/// Rewrites shards `bad` from the good shards `from`; a target that cannot be written is
/// skipped (left for a later pass), the others are healed.
#[allow(clippy::too_many_arguments)]
async fn rebuild(
    seg: &Segment,
    id: DataId,
    cfg: &ErasureConfig,
    codec: &Codec,
    stores: &[Arc<dyn ShardStore>],
    sources: &[Option<Arc<dyn ShardReader>>],
    from: &[usize],
    bad: &[usize],
) -> Result<Vec<usize>, Rebuild> {
    let width = cfg.width();
    let blocks = cfg.block_count(seg.sealed_len);
    let mut sinks = Vec::with_capacity(bad.len());
    for &shard in bad {
        let opened = match stores[shard].create(id, shard).await {
            Ok(mut sink) => sink
                .append(vec![0u8; coffer_erasure::HEADER_LEN])
                .await
                .map(|()| sink),
            Err(e) => Err(e),
        };
        match opened {
            Ok(sink) => sinks.push((shard, sink)),
            Err(e) => tracing::debug!(shard, error = %e, "cannot write a rebuilt shard now"),
        }
    }
    if sinks.is_empty() {
        return Ok(Vec::new());
    }
    for b in 0..blocks {
        let block_len =
            (seg.sealed_len - b * cfg.block_size as u64).min(cfg.block_size as u64) as usize;
        let mut slots: Vec<Option<Vec<u8>>> = vec![None; width];
        let mut reads = Vec::with_capacity(from.len());
        for &s in from {
            let src = sources[s].clone().ok_or(Rebuild::SourceFailed(s))?;
            let sealed_len = seg.sealed_len;
            reads.push(async move { read_block(src.as_ref(), cfg, sealed_len, b).await });
        }
        for (&s, data) in from.iter().zip(futures::future::join_all(reads).await) {
            slots[s] = Some(data.map_err(|_| Rebuild::SourceFailed(s))?);
        }
        codec
            .reconstruct(&mut slots, block_len)
            .map_err(|e| Rebuild::Other(e.to_string()))?;
        let mut failed = Vec::new();
        for (i, (shard, sink)) in sinks.iter_mut().enumerate() {
            let Some(data) = slots[*shard].as_ref() else {
                return Err(Rebuild::Other("shard not rebuilt".into()));
            };
            let mut framed = Vec::with_capacity(data.len() + coffer_erasure::CHECKSUM_LEN);
            coffer_erasure::frame_block(data, &mut framed);
            if sink.append(framed).await.is_err() {
                failed.push(i);
            }
        }
        for i in failed.into_iter().rev() {
            // Dropping the sink removes its partial file.
            sinks.remove(i);
        }
    }
    let mut healed = Vec::with_capacity(sinks.len());
    for (shard, mut sink) in sinks {
        let header = ShardHeader::new(*cfg, shard as u8, seg.sealed_len, id.0)
            .map_err(|e| Rebuild::Other(e.to_string()))?;
        if sink.write_at(0, header.encode().to_vec()).await.is_ok() && sink.commit().await.is_ok() {
            healed.push(shard);
        }
    }
    Ok(healed)
}

/// Block `b` of a shard file, CRC checked.
async fn read_block(
    src: &dyn ShardReader,
    cfg: &ErasureConfig,
    sealed_len: u64,
    b: u64,
) -> io::Result<Vec<u8>> {
    let offset = coffer_erasure::block_offset_in_file(cfg, sealed_len, b);
    let framed_len = coffer_erasure::framed_block_len(cfg, sealed_len, b);
    let buf = src.read_at(offset, framed_len).await?;
    coffer_erasure::unframe_block_vec(buf)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drive::Drive;
    use crate::pipeline::SegmentWriter;
    use crate::seams::FsDriveIo;
    use crate::shards::{local_stores, ShardTargets};
    use bytes::Bytes;
    use coffer_crypto::{CipherSuite, SecretKey, StreamBinding};

    async fn written(dir: &std::path::Path) -> (Segment, Vec<Arc<Drive>>) {
        let drives: Vec<Arc<Drive>> = (0..4)
            .map(|i| {
                Arc::new(Drive::open(i, &dir.join(format!("d{i}")), Arc::new(FsDriveIo)).unwrap())
            })
            .collect();
        let cfg = ErasureConfig {
            data: 2,
            parity: 2,
            block_size: 64 * 1024,
        };
        let mut w = SegmentWriter::start(
            DataId([3; 16]),
            [4; 32],
            &SecretKey::from_bytes([5; 32]),
            CipherSuite::Aes256Gcm,
            &StreamBinding::new("b", "k", "null", 0),
            false,
            cfg,
            ShardTargets::local(vec![0, 1, 2, 3], &drives),
        )
        .unwrap();
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        w.write(Bytes::from(body)).await.unwrap();
        (w.finish().await.unwrap().segment, drives)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn missing_and_corrupt_shards_are_rebuilt_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, drives) = written(dir.path()).await;
        let stores = local_stores(&seg, &drives).unwrap();
        let id = DataId([3; 16]);
        let original: Vec<Vec<u8>> = (0..4)
            .map(|s| std::fs::read(drives[s].shard_path(id, s)).unwrap())
            .collect();

        // Whole: nothing to do.
        let h = check_and_heal(&seg, &stores, true).await.unwrap();
        assert!(h.bad.is_empty() && h.is_whole(), "{h:?}");

        // One shard gone, one with a flipped bit deep inside a block.
        std::fs::remove_file(drives[1].shard_path(id, 1)).unwrap();
        let mut bytes = original[3].clone();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x10;
        std::fs::write(drives[3].shard_path(id, 3), &bytes).unwrap();

        // A shallow pass sees the missing file only; a deep pass also the corrupt block.
        let h = check_and_heal(&seg, &stores, false).await.unwrap();
        assert_eq!(
            (h.bad.clone(), h.healed.clone()),
            (vec![1], vec![1]),
            "{h:?}"
        );
        let h = check_and_heal(&seg, &stores, true).await.unwrap();
        assert_eq!(
            (h.bad.clone(), h.healed.clone()),
            (vec![3], vec![3]),
            "{h:?}"
        );
        for (s, want) in original.iter().enumerate() {
            let got = std::fs::read(drives[s].shard_path(id, s)).unwrap();
            assert!(got == *want, "shard {s} differs after healing");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn too_few_good_shards_is_an_error_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, drives) = written(dir.path()).await;
        let stores = local_stores(&seg, &drives).unwrap();
        let id = DataId([3; 16]);
        for s in [0, 1, 2] {
            std::fs::remove_file(drives[s].shard_path(id, s)).unwrap();
        }
        let err = check_and_heal(&seg, &stores, false).await.unwrap_err();
        assert!(err.contains("needed to rebuild"), "{err}");
        for s in [0, 1, 2] {
            assert!(!drives[s].shard_path(id, s).exists());
        }
    }
}
