//! Helpers shared by the integration tests.
#![allow(dead_code)]

use coffer_metadata::{MetaStore, ObjectRecord, PartRecord, UploadRecord};

/// Opens a fresh single-node store in a new temporary directory.
pub async fn fresh() -> (tempfile::TempDir, MetaStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = MetaStore::open(dir.path(), 1).await.expect("open");
    (dir, store)
}

/// An object record whose fields are derived from `n`.
pub fn obj(n: u64) -> ObjectRecord {
    ObjectRecord {
        size: n,
        etag: format!("etag-{n}"),
        last_modified_ms: 1_700_000_000_000 + n as i64,
        manifest: vec![n as u8, 0, 255, 7],
    }
}

/// An upload record.
pub fn upload(bucket: &str, key: &str, id: &str) -> UploadRecord {
    UploadRecord {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        upload_id: id.to_owned(),
        initiated_ms: 42,
        manifest: b"upload-manifest".to_vec(),
    }
}

/// A part record whose fields are derived from its number and a version tag.
pub fn part(number: u32, version: u8) -> PartRecord {
    PartRecord {
        part_number: number,
        size: u64::from(number) * 1000 + u64::from(version),
        etag: format!("part-{number}-v{version}"),
        last_modified_ms: 7,
        manifest: vec![version; 3],
    }
}
