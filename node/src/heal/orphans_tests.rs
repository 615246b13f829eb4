use std::collections::BTreeSet;
use std::sync::Arc;

use coffer_metadata::{MetaStore, ObjectRecord, PartRecord, UploadRecord};

use super::{OrphanSweep, Suspects, MIN_AGE, SWEEP_EVERY};
use crate::drive::{DataId, Drive};
use crate::manifest::{
    self, ObjectManifest, PartManifest, Segment, SseMode, SseRecord, StoredMeta,
};
use crate::metrics::Metrics;
use crate::seams::FsDriveIo;

struct Fixture {
    meta: Arc<MetaStore>,
    drives: Vec<Arc<Drive>>,
    sweep: OrphanSweep,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(MetaStore::open(&dir.path().join("meta"), 1).await.unwrap());
    let drives: Vec<Arc<Drive>> = (0..2)
        .map(|i| {
            let root = dir.path().join(format!("d{i}"));
            Arc::new(Drive::open(i, &root, Arc::new(FsDriveIo)).unwrap())
        })
        .collect();
    let sweep = OrphanSweep::new(
        meta.clone(),
        drives.clone(),
        Arc::new(Metrics::default()),
        SWEEP_EVERY,
        MIN_AGE,
    );
    meta.create_bucket("b", 0).await.unwrap();
    Fixture {
        meta,
        drives,
        sweep,
        _dir: dir,
    }
}

fn start() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

/// `n` times the minimum age after `t0`.
fn later(t0: tokio::time::Instant, n: u32) -> tokio::time::Instant {
    t0 + MIN_AGE * n
}

fn id(n: u8) -> DataId {
    DataId([n; 16])
}

/// Shard 0 of `id` on drive 0 and shard 1 on drive 1, as a 1+1 segment places them.
fn write_shards(f: &Fixture, id: DataId) {
    for (shard, d) in f.drives.iter().enumerate() {
        let mut sink = d.create(id, shard).unwrap();
        sink.write_all(b"sealed bytes").unwrap();
        sink.commit().unwrap();
    }
}

fn suspected(s: &Suspects) -> BTreeSet<DataId> {
    s.keys().map(|f| f.1).collect()
}

fn on_disk(f: &Fixture) -> BTreeSet<DataId> {
    f.drives
        .iter()
        .flat_map(|d| d.list_shards().unwrap())
        .map(|(id, _)| id)
        .collect()
}

fn segment(id: DataId) -> Segment {
    Segment {
        data_id: id.to_hex(),
        plain_len: 1,
        sealed_len: 17,
        salt: vec![0; 32],
        codec: "rs-vandermonde".into(),
        data: 1,
        parity: 1,
        block_size: 1 << 20,
        drives: vec![0, 1],
        nodes: vec![],
        stream_version: 2,
        part: 0,
    }
}

fn sse() -> SseRecord {
    SseRecord {
        mode: SseMode::S3,
        cipher: 1,
        kms_key_id: None,
        wrapped_data_key: None,
        sealed_oek: vec![0; 62],
        ssec_salt: None,
        ssec_fingerprint: None,
        customer_key_md5: None,
        kms_context: None,
        bucket_key: false,
    }
}

fn object(ids: &[DataId]) -> ObjectRecord {
    let m = ObjectManifest {
        version: manifest::MANIFEST_VERSION,
        meta: StoredMeta::default(),
        sse: sse(),
        segments: ids.iter().map(|&i| segment(i)).collect(),
        parts_count: None,
    };
    ObjectRecord {
        size: 1,
        etag: "e".into(),
        last_modified_ms: 0,
        manifest: manifest::encode(&m),
    }
}

#[tokio::test]
async fn unreferenced_files_go_after_two_passes_and_referenced_ones_stay() {
    let f = fixture().await;
    // An object, a part of an upload in progress, and two orphans.
    for n in 1..=4 {
        write_shards(&f, id(n));
    }
    f.meta.put_object("b", "k", object(&[id(1)])).await.unwrap();
    let upload = manifest::encode(&manifest::UploadManifest {
        version: manifest::MANIFEST_VERSION,
        meta: StoredMeta::default(),
        sse: sse(),
    });
    f.meta
        .create_upload(UploadRecord {
            bucket: "b".into(),
            key: "big".into(),
            upload_id: "u1".into(),
            initiated_ms: 0,
            manifest: upload,
        })
        .await
        .unwrap();
    let part = PartManifest {
        version: manifest::MANIFEST_VERSION,
        md5: "00".into(),
        segment: segment(id(2)),
    };
    f.meta
        .put_part(
            "u1",
            PartRecord {
                part_number: 1,
                size: 1,
                etag: "p".into(),
                last_modified_ms: 0,
                manifest: manifest::encode(&part),
            },
        )
        .await
        .unwrap();

    // First pass: the orphans are only suspects.
    let t0 = start();
    let first = f.sweep.pass(&Suspects::new(), t0).await.unwrap();
    assert_eq!(first.files, 8);
    assert_eq!(first.removed, 0);
    assert_eq!(suspected(&first.suspects), BTreeSet::from([id(3), id(4)]));
    assert_eq!(on_disk(&f).len(), 4, "nothing removed by the first pass");
    // Another pass before they are old enough removes nothing either, and keeps their age.
    let young = f
        .sweep
        .pass(&first.suspects, t0 + MIN_AGE / 2)
        .await
        .unwrap();
    assert_eq!(young.removed, 0);
    assert_eq!(young.suspects, first.suspects);
    assert_eq!(on_disk(&f).len(), 4);

    // Meanwhile orphan 4 became an object's data (a write whose manifest committed late), and
    // a new orphan 5 appeared: neither goes in the second pass.
    f.meta
        .put_object("b", "late", object(&[id(4)]))
        .await
        .unwrap();
    write_shards(&f, id(5));
    let second = f.sweep.pass(&young.suspects, later(t0, 1)).await.unwrap();
    assert_eq!(second.removed, 2, "both shards of orphan 3");
    assert_eq!(on_disk(&f), BTreeSet::from([id(1), id(2), id(4), id(5)]));
    assert_eq!(suspected(&second.suspects), BTreeSet::from([id(5)]));

    // The upload completes: its part moves into an object and stays.
    let done = f.meta.abort_upload("u1").await.unwrap();
    assert_eq!(done.len(), 1);
    f.meta
        .put_object("b", "big", object(&[id(2)]))
        .await
        .unwrap();
    let third = f.sweep.pass(&second.suspects, later(t0, 2)).await.unwrap();
    assert_eq!(third.removed, 2, "orphan 5");
    assert_eq!(on_disk(&f), BTreeSet::from([id(1), id(2), id(4)]));
    assert!(third.suspects.is_empty());
}

#[tokio::test]
async fn a_sweep_that_would_remove_most_files_removes_none() {
    // The node's drives hold data its metadata has never heard of: the wrong data directory.
    let f = fixture().await;
    for n in 1..=3 {
        write_shards(&f, id(n));
    }
    f.meta.put_object("b", "k", object(&[id(1)])).await.unwrap();
    let t0 = start();
    let first = f.sweep.pass(&Suspects::new(), t0).await.unwrap();
    assert_eq!(first.suspects.len(), 4);
    let second = f.sweep.pass(&first.suspects, later(t0, 1)).await.unwrap();
    assert!(second.refused);
    assert_eq!(second.removed, 0);
    assert_eq!(second.suspects, first.suspects, "kept for a later pass");
    assert_eq!(on_disk(&f).len(), 3);
}

#[tokio::test]
async fn an_unreadable_manifest_stops_the_pass_before_any_removal() {
    let f = fixture().await;
    write_shards(&f, id(7));
    let t0 = start();
    let first = f.sweep.pass(&Suspects::new(), t0).await.unwrap();
    assert_eq!(first.suspects.len(), 2);
    let mut bad = object(&[]);
    bad.manifest = b"not a manifest".to_vec();
    f.meta.put_object("b", "odd", bad).await.unwrap();
    let err = f
        .sweep
        .pass(&first.suspects, later(t0, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, super::SweepError::Manifest(_)), "{err}");
    assert_eq!(on_disk(&f), BTreeSet::from([id(7)]));
}
