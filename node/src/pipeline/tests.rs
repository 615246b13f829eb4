//! Segment write → read round trips over real drive directories, through both the inline and
//! the threaded sealing stage, and what an abandoned or failed write leaves behind.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use coffer_crypto::{CipherSuite, CryptoError, SecretKey, StreamBinding, PACKAGE_SIZE, TAG_LEN};
use coffer_erasure::ErasureConfig;
use coffer_s3api::backend::StoreError;
use md5::Digest;

use super::{SegmentReader, SegmentWriter, StreamSealer};
use crate::drive::{DataId, Drive};
use crate::seams::FsDriveIo;

const MIB: usize = 1 << 20;

fn drives(dir: &std::path::Path, n: usize) -> Vec<Arc<Drive>> {
    (0..n)
        .map(|i| Arc::new(Drive::open(i, &dir.join(format!("d{i}")), Arc::new(FsDriveIo)).unwrap()))
        .collect()
}

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 % 251) as u8).collect()
}

fn binding() -> StreamBinding {
    StreamBinding::new("bucket", "key", "null", 0)
}

/// Files under `sub` ("shards" or "tmp") of every drive.
fn files(dir: &std::path::Path, sub: &str) -> usize {
    fn walk(p: &std::path::Path) -> usize {
        let Ok(rd) = std::fs::read_dir(p) else {
            return 0;
        };
        rd.flatten()
            .map(|e| {
                let p = e.path();
                if p.is_dir() {
                    walk(&p)
                } else {
                    1
                }
            })
            .sum()
    }
    (0..4)
        .map(|i| walk(&dir.join(format!("d{i}")).join(sub)))
        .sum()
}

async fn write(
    all: &[Arc<Drive>],
    cfg: ErasureConfig,
    oek: &SecretKey,
    data: &[u8],
    chunk: usize,
) -> super::WrittenSegment {
    let placement: Vec<usize> = (0..cfg.width()).collect();
    let mut w = SegmentWriter::start(
        DataId([7; 16]),
        [9; 32],
        oek,
        CipherSuite::ChaCha20Poly1305,
        &binding(),
        true,
        cfg,
        crate::shards::ShardTargets::local(placement, all),
    )
    .unwrap();
    for c in data.chunks(chunk.max(1)) {
        w.write(Bytes::copy_from_slice(c)).await.unwrap();
    }
    w.finish().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_round_trip_inline_and_threaded() {
    let cfg = ErasureConfig {
        data: 2,
        parity: 2,
        block_size: MIB,
    };
    let oek = SecretKey::from_bytes([5; 32]);
    // 0 B and sub-block sizes stay inline; the rest cross into the sealing thread, at a block
    // boundary or not, in chunks smaller and larger than a package.
    for (len, chunk) in [
        (0, 1),
        (1000, 333),
        (MIB - 1, 70_000),
        (MIB, MIB),
        (3 * MIB + 12_345, 65_536),
        (4 * MIB, 3 * MIB),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let all = drives(dir.path(), 4);
        let data = body(len);
        let written = write(&all, cfg, &oek, &data, chunk).await;
        let packages = len.div_ceil(PACKAGE_SIZE).max(1);
        assert_eq!(written.segment.plain_len, len as u64);
        assert_eq!(
            written.segment.sealed_len,
            (len + packages * TAG_LEN) as u64,
            "len {len}"
        );
        let md5: [u8; 16] = md5::Md5::digest(&data).into();
        assert_eq!(written.md5, Some(md5));
        assert!(written.failed_shards.is_empty());
        let key = coffer_crypto::derive_stream_key(
            &oek,
            CipherSuite::ChaCha20Poly1305,
            &[9; 32],
            &binding(),
        );
        let reader = SegmentReader::new(
            written.segment.clone(),
            key,
            &crate::shards::local_stores(&written.segment, &all).unwrap(),
        )
        .unwrap();
        let last = reader.package_count() - 1;
        let mut stream = reader.packages(0, last);
        let mut back = Vec::new();
        while let Some(p) = stream.next().await.unwrap() {
            back.extend_from_slice(&p);
        }
        assert_eq!(back, data, "len {len}");
        assert_eq!(files(dir.path(), "tmp"), 0);
        assert_eq!(files(dir.path(), "shards"), 4);
    }
}

/// Waits (bounded) until no temporary shard file is left.
async fn tmp_drains(dir: &std::path::Path) -> bool {
    for _ in 0..100 {
        if files(dir, "tmp") == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_write_leaves_no_files() {
    let cfg = ErasureConfig {
        data: 2,
        parity: 2,
        block_size: MIB,
    };
    let oek = SecretKey::from_bytes([5; 32]);
    for len in [1000, 3 * MIB] {
        let dir = tempfile::tempdir().unwrap();
        let all = drives(dir.path(), 4);
        let mut w = SegmentWriter::start(
            DataId([8; 16]),
            [9; 32],
            &oek,
            CipherSuite::Aes256Gcm,
            &binding(),
            false,
            cfg,
            crate::shards::ShardTargets::local(vec![0, 1, 2, 3], &all),
        )
        .unwrap();
        w.write(Bytes::from(body(len))).await.unwrap();
        drop(w);
        assert!(tmp_drains(dir.path()).await, "len {len}: temp files left");
        assert_eq!(files(dir.path(), "shards"), 0, "len {len}");
    }
}

/// Fails once it has sealed `limit` bytes, as a stream past its package limit does.
struct FailingSealer {
    seen: usize,
    limit: usize,
}

impl StreamSealer for FailingSealer {
    fn push(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.seen += plaintext.len();
        if self.seen > self.limit {
            return Err(CryptoError::TooManyPackages);
        }
        out.extend_from_slice(plaintext);
        Ok(())
    }

    fn finish(self, _: &mut Vec<u8>) -> Result<(), CryptoError> {
        Ok(())
    }

    fn finish_boxed(self: Box<Self>, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        (*self).finish(out)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealer_error_on_the_thread_fails_the_write_and_leaves_no_files() {
    let cfg = ErasureConfig {
        data: 2,
        parity: 2,
        block_size: MIB,
    };
    let dir = tempfile::tempdir().unwrap();
    let all = drives(dir.path(), 4);
    let mut w = SegmentWriter::start_with(
        DataId([9; 16]),
        [9; 32],
        FailingSealer {
            seen: 0,
            limit: 2 * MIB,
        },
        2,
        0,
        false,
        cfg,
        crate::shards::ShardTargets::local(vec![0, 1, 2, 3], &all),
    )
    .unwrap();
    let chunk = Bytes::from(vec![1u8; 256 * 1024]);
    let mut failed = None;
    // The error surfaces on a later write or at finish, never as success.
    for _ in 0..16 {
        if let Err(e) = w.write(chunk.clone()).await {
            failed = Some(e);
            break;
        }
    }
    let err = match failed {
        Some(e) => e,
        None => w.finish().await.err().expect("finish must fail"),
    };
    assert!(matches!(err, StoreError::EntityTooLarge), "{err:?}");
    assert!(tmp_drains(dir.path()).await);
    assert_eq!(files(dir.path(), "shards"), 0);
}

/// The one shard file under drive `i` of `dir`.
fn shard_file(dir: &std::path::Path, i: usize) -> std::path::PathBuf {
    fn walk(p: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut found = Vec::new();
    walk(&dir.join(format!("d{i}")).join("shards"), &mut found);
    assert_eq!(found.len(), 1, "drive {i}: {found:?}");
    found.pop().unwrap()
}

/// One segment written with `cfg` over fresh drives, with its shard files at hand, for the
/// tests that take shards away or corrupt them.
struct Fixture {
    _dir: tempfile::TempDir,
    all: Vec<Arc<Drive>>,
    oek: SecretKey,
    data: Vec<u8>,
    written: super::WrittenSegment,
    files: Vec<std::path::PathBuf>,
}

impl Fixture {
    async fn new(cfg: ErasureConfig, len: usize) -> Fixture {
        let oek = SecretKey::from_bytes([5; 32]);
        let dir = tempfile::tempdir().unwrap();
        let all = drives(dir.path(), cfg.width());
        let data = body(len);
        let written = write(&all, cfg, &oek, &data, 100_000).await;
        let files = (0..cfg.width())
            .map(|i| shard_file(dir.path(), i))
            .collect();
        Fixture {
            _dir: dir,
            all,
            oek,
            data,
            written,
            files,
        }
    }

    /// The whole segment read back through a `SegmentReader`, as a GET reads it.
    async fn read(&self) -> Result<Vec<u8>, StoreError> {
        let (segment, all, oek) = (&self.written.segment, &self.all, &self.oek);
        let key = coffer_crypto::derive_stream_key(
            oek,
            CipherSuite::ChaCha20Poly1305,
            &[9; 32],
            &binding(),
        );
        let reader = SegmentReader::new(
            segment.clone(),
            key,
            &crate::shards::local_stores(segment, all).unwrap(),
        )?;
        let last = reader.package_count() - 1;
        let mut stream = reader.packages(0, last);
        let mut back = Vec::new();
        while let Some(p) = stream.next().await? {
            back.extend_from_slice(&p);
        }
        Ok(back)
    }
}

/// With 4+4, every set of up to four lost shards reads back byte for byte, also when the data
/// shards are the ones lost (the combination search must not spend its attempts on the 35
/// combinations that hold a lost shard 0); a fifth loss is a clean DataCorrupt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_parity_many_lost_shards_still_read() {
    let cfg = ErasureConfig {
        data: 4,
        parity: 4,
        block_size: MIB,
    };
    let fx = Fixture::new(cfg, 2 * MIB + 4321).await;
    let (files, data) = (&fx.files, &fx.data);
    let mut sets = 0;
    for mask in 0u32..256 {
        let lost: Vec<usize> = (0..8).filter(|i| mask & (1 << i) != 0).collect();
        if lost.len() > 5 {
            continue;
        }
        for &i in &lost {
            std::fs::rename(&files[i], files[i].with_extension("gone")).unwrap();
        }
        let got = fx.read().await;
        if lost.len() <= 4 {
            assert_eq!(&got.unwrap(), data, "lost {lost:?}");
            sets += 1;
        } else {
            assert!(matches!(got, Err(StoreError::DataCorrupt)), "lost {lost:?}");
        }
        for &i in &lost {
            std::fs::rename(files[i].with_extension("gone"), &files[i]).unwrap();
        }
    }
    assert_eq!(sets, 1 + 8 + 28 + 56 + 70);

    // Corrupt blocks count as lost for their package only: shard 0 flipped in its first
    // block plus shards 1, 2 and 4 gone still reads.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let at = bytes.len() / 4;
    bytes[at] ^= 0x01;
    std::fs::write(&files[0], &bytes).unwrap();
    for i in [1, 2, 4] {
        std::fs::rename(&files[i], files[i].with_extension("gone")).unwrap();
    }
    assert_eq!(&fx.read().await.unwrap(), data);
}

/// A block read ahead by the prefetch task that fails its checksum is judged like one read in
/// line: that shard is set aside for that block only and the parity fills in, for every block
/// of a multi-block segment (first, middle, last) and both data shards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_blocks_met_by_the_prefetch_read_from_parity() {
    let cfg = ErasureConfig {
        data: 2,
        parity: 1,
        block_size: MIB,
    };
    let fx = Fixture::new(cfg, 3 * MIB + 777).await;
    let files = &fx.files;
    let pristine: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    for shard in 0..2 {
        let len = pristine[shard].len();
        // Near the end of the file (last block) and in the middle (second or third block).
        for at in [len - 10, len / 2] {
            let mut bytes = pristine[shard].clone();
            bytes[at] ^= 0x40;
            std::fs::write(&files[shard], &bytes).unwrap();
            let got = fx.read().await.unwrap();
            assert!(got == fx.data, "shard {shard} flipped at {at}");
        }
        std::fs::write(&files[shard], &pristine[shard]).unwrap();
    }
    // Two data shards corrupt in the same block are more than one parity shard can cover.
    for (shard, bytes) in pristine.iter().enumerate().take(2) {
        let mut bytes = bytes.clone();
        let at = bytes.len() - 10;
        bytes[at] ^= 0x40;
        std::fs::write(&files[shard], &bytes).unwrap();
    }
    assert!(matches!(fx.read().await, Err(StoreError::DataCorrupt)));
}
