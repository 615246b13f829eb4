//! The simulated disk under the node's real drive, segment writer and segment reader: what a
//! crash keeps, and that lost, misdirected and bit-flipped writes never make a read return
//! wrong bytes (parity repairs them, or the read fails cleanly).

use std::sync::Arc;

use bytes::Bytes;
use coffer_crypto::{CipherSuite, SecretKey, StreamBinding};
use coffer_erasure::ErasureConfig;
use coffer_node::drive::{DataId, Drive};
use coffer_node::manifest::Segment;
use coffer_node::pipeline::{SegmentReader, SegmentWriter};
use coffer_node::seams::DriveIo;
use coffer_node::shards::{local_stores, ShardTargets};
use coffer_s3api::backend::StoreError;
use coffer_simulation::disk::{DiskEvent, DiskFaults, SimDisk};

const CFG: ErasureConfig = ErasureConfig {
    data: 2,
    parity: 2,
    block_size: 256 * 1024,
};

fn disks(seed: u64, faults: &[DiskFaults]) -> Vec<SimDisk> {
    faults
        .iter()
        .enumerate()
        .map(|(i, f)| SimDisk::new(i as u64, seed * 100 + i as u64, *f))
        .collect()
}

fn drives(disks: &[SimDisk]) -> Vec<Arc<Drive>> {
    disks
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let io: Arc<dyn DriveIo> = Arc::new(d.clone());
            Arc::new(Drive::open(i, std::path::Path::new(&format!("/d{i}")), io).unwrap())
        })
        .collect()
}

fn body(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn binding(key: &str) -> StreamBinding {
    StreamBinding::new("sim", key, "null", 0)
}

async fn write(drives: &[Arc<Drive>], id: u8, data: &[u8]) -> Segment {
    let oek = SecretKey::from_bytes([id; 32]);
    let mut w = SegmentWriter::start(
        DataId([id; 16]),
        [id; 32],
        &oek,
        CipherSuite::Aes256Gcm,
        &binding(&format!("k{id}")),
        false,
        CFG,
        ShardTargets::local((0..CFG.width()).collect(), drives),
    )
    .unwrap();
    for c in data.chunks(100_000) {
        w.write(Bytes::copy_from_slice(c)).await.unwrap();
    }
    w.finish().await.unwrap().segment
}

async fn read(drives: &[Arc<Drive>], id: u8, seg: &Segment) -> Result<Vec<u8>, StoreError> {
    let oek = SecretKey::from_bytes([id; 32]);
    let key = coffer_crypto::derive_stream_key(
        &oek,
        CipherSuite::Aes256Gcm,
        &[id; 32],
        &binding(&format!("k{id}")),
    );
    let reader = SegmentReader::new(seg.clone(), key, &local_stores(seg, drives).unwrap())?;
    let last = reader.package_count() - 1;
    let mut s = reader.packages(0, last);
    let mut out = Vec::new();
    while let Some(p) = s.next().await? {
        out.extend_from_slice(&p);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_keeps_committed_shards_and_drops_partial_ones() {
    let d = disks(1, &[DiskFaults::default(); 4]);
    let all = drives(&d);
    let data = body(1, 700_000);
    let seg = write(&all, 1, &data).await;
    // A shard write in progress when the power goes.
    let mut sink = all[0].create(DataId([2; 16]), 0).unwrap();
    sink.write_all(&[7; 5000]).unwrap();
    let before = d[0].files().len();
    for disk in &d {
        disk.crash();
    }
    drop(sink);
    assert_eq!(d[0].files().len(), before - 1, "the temporary file is gone");
    assert!(matches!(
        d[0].events().last(),
        Some(DiskEvent::Crash { lost: 1 })
    ));
    // Restart: the drives open again over what the disks kept.
    let all = drives(&d);
    assert_eq!(read(&all, 1, &seg).await.unwrap(), data);
    assert!(all[0].open_shard(DataId([2; 16]), 0).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_write_shows_after_the_crash_and_parity_covers_it() {
    let lossy = DiskFaults {
        lost_write: 1.0,
        ..Default::default()
    };
    let d = disks(
        2,
        &[lossy, DiskFaults::default(), DiskFaults::default(), lossy],
    );
    let all = drives(&d);
    let data = body(3, 900_000);
    let seg = write(&all, 3, &data).await;
    assert_eq!(read(&all, 3, &seg).await.unwrap(), data, "still cached");
    for disk in &d {
        disk.crash();
    }
    let all = drives(&d);
    assert!(all[0].open_shard(DataId([3; 16]), 0).is_err(), "lost");
    assert!(all[3].open_shard(DataId([3; 16]), 3).is_err(), "lost");
    assert_eq!(
        read(&all, 3, &seg).await.unwrap(),
        data,
        "two of 2+2 are enough"
    );
    // A third loss is beyond parity: a clean error, never wrong bytes.
    all[1].remove(DataId([3; 16]), 1).unwrap();
    assert!(matches!(
        read(&all, 3, &seg).await,
        Err(StoreError::DataCorrupt)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bits_are_caught_and_repaired_or_refused() {
    let d = disks(3, &[DiskFaults::default(); 4]);
    let all = drives(&d);
    let data = body(4, 1_200_000);
    let seg = write(&all, 4, &data).await;
    let flipped = d[2].flip_random_bit().unwrap();
    assert!(d[2]
        .events()
        .contains(&DiskEvent::BitFlip(flipped.0.clone(), flipped.1)));
    assert_eq!(
        read(&all, 4, &seg).await.unwrap(),
        data,
        "one bad shard: repaired"
    );
    d[0].flip_random_bit().unwrap();
    assert_eq!(read(&all, 4, &seg).await.unwrap(), data, "two: repaired");
    // Every shard damaged in the same place: nothing can rebuild that package.
    for disk in &d {
        let path = disk
            .files()
            .into_iter()
            .find(|p| p.to_string_lossy().contains("/shards/"))
            .unwrap();
        disk.flip_bit(&path, 8 * 4096 + 3);
    }
    match read(&all, 4, &seg).await {
        Err(StoreError::DataCorrupt) => {}
        Ok(bytes) => assert_eq!(bytes, data, "a read that succeeds returns the exact bytes"),
        Err(e) => panic!("{e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misdirected_write_lands_on_another_object_and_the_tag_catches_it() {
    let d = disks(4, &[DiskFaults::default(); 4]);
    let all = drives(&d);
    let first = body(5, 500_000);
    let seg1 = write(&all, 5, &first).await;
    // From now on disk 1 writes somewhere else: object 6's shard 1 overwrites object 5's.
    d[1].set_faults(DiskFaults {
        misdirected_write: 1.0,
        ..Default::default()
    });
    let second = body(6, 500_000);
    let seg2 = write(&all, 6, &second).await;
    assert!(d[1]
        .events()
        .iter()
        .any(|e| matches!(e, DiskEvent::Misdirected(..))));
    // Object 5's shard 1 now holds valid-looking blocks of object 6 (their CRCs pass): only
    // the AEAD tag can tell, and the reader then tries other shards.
    assert_eq!(read(&all, 5, &seg1).await.unwrap(), first);
    assert_eq!(read(&all, 6, &seg2).await.unwrap(), second);
}

#[test]
fn a_full_disk_refuses_writes_with_enospc() {
    let d = SimDisk::new(
        9,
        9,
        DiskFaults {
            capacity: 10_000,
            ..Default::default()
        },
    );
    d.write_file(std::path::Path::new("/small"), &[1; 6000], 0o600)
        .unwrap();
    let err = d
        .write_file(std::path::Path::new("/big"), &[1; 6000], 0o600)
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
    let mut sink = d
        .create(std::path::Path::new("/tmp/x"), std::path::Path::new("/x"))
        .unwrap();
    assert_eq!(
        sink.write_all(&[0; 5000]).unwrap_err().kind(),
        std::io::ErrorKind::StorageFull
    );
    assert!(matches!(d.events().last(), Some(DiskEvent::Full(_))));
}

#[test]
fn the_same_seed_makes_the_same_faults() {
    let run = |seed| {
        let d = SimDisk::new(
            0,
            seed,
            DiskFaults {
                lost_write: 0.3,
                misdirected_write: 0.2,
                ..Default::default()
            },
        );
        for i in 0..40 {
            d.write_file(
                std::path::Path::new(&format!("/f{i}")),
                &[i as u8; 100],
                0o600,
            )
            .unwrap();
        }
        d.flip_random_bit();
        d.crash();
        d.events()
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}
