//! Restarts: state survives, Raft resumes where it stopped, snapshots and purged logs reload.

mod common;

use coffer_metadata::{BucketEncryptionRecord, MetaError, MetaOptions, MetaStore};
use common::{obj, part, upload};

/// Writes a bit of everything.
async fn populate(store: &MetaStore) {
    store.create_bucket("b", 5).await.unwrap();
    store.create_bucket("c", 6).await.unwrap();
    store
        .set_bucket_encryption(
            "b",
            Some(BucketEncryptionRecord {
                algorithm: "AES256".to_owned(),
                kms_key_id: None,
                cipher: Some("CHACHA20-POLY1305".to_owned()),
                bucket_key_enabled: false,
            }),
        )
        .await
        .unwrap();
    for n in 0..20 {
        store
            .put_object("b", &format!("k{n:02}"), obj(n))
            .await
            .unwrap();
    }
    store.delete_object("b", "k05").await.unwrap();
    store
        .create_upload(upload("c", "mp", "up-1"))
        .await
        .unwrap();
    store.put_part("up-1", part(1, 0)).await.unwrap();
    store.put_part("up-1", part(2, 0)).await.unwrap();
}

/// Checks what `populate` wrote.
async fn verify(store: &MetaStore) {
    let b = store.get_bucket("b").await.unwrap().unwrap();
    assert_eq!(b.created_ms, 5);
    assert_eq!(b.encryption.unwrap().algorithm, "AES256");
    assert_eq!(store.list_buckets().await.unwrap().len(), 2);
    let objects = store.list_objects("b", "", None, 100).await.unwrap();
    assert_eq!(objects.len(), 19);
    assert!(objects.iter().all(|(k, _)| k != "k05"));
    assert_eq!(store.get_object("b", "k07").await.unwrap(), Some(obj(7)));
    assert_eq!(
        store.get_upload("up-1").await.unwrap(),
        Some(upload("c", "mp", "up-1"))
    );
    assert_eq!(
        store.list_parts("up-1", 0, 10).await.unwrap(),
        [part(1, 0), part(2, 0)]
    );
    assert_eq!(
        store.list_uploads("c", "", 10).await.unwrap(),
        [upload("c", "mp", "up-1")]
    );
}

#[tokio::test]
async fn restart_keeps_state_and_accepts_writes() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = MetaStore::open(dir.path(), 7).await.unwrap();
        populate(&store).await;
        let status = store.status();
        store.shutdown().await.unwrap();
        status
    };

    let store = MetaStore::open(dir.path(), 7).await.unwrap();
    let after = store.status();
    assert!(after.is_leader);
    assert!(after.current_term >= before.current_term);
    // The persisted last_applied is where the state stopped: nothing was re-applied or lost.
    // (A sole voter whose vote was committed resumes leadership in its term without a new
    // blank entry; a new election would add exactly one.)
    let before_applied = before.last_applied.unwrap();
    let after_applied = after.last_applied.unwrap();
    assert!(after_applied == before_applied || after_applied == before_applied + 1);
    verify(&store).await;

    // A replayed create would have been rejected; a fresh one still is, new names still work.
    assert_eq!(
        store.create_bucket("b", 1).await,
        Err(MetaError::BucketExists)
    );
    store.create_bucket("d", 1).await.unwrap();
    assert_eq!(
        store.put_object("b", "k00", obj(99)).await.unwrap(),
        Some(obj(0))
    );
    store.shutdown().await.unwrap();
    drop(store);

    let store = MetaStore::open(dir.path(), 7).await.unwrap();
    assert!(store.get_bucket("d").await.unwrap().is_some());
    assert_eq!(store.get_object("b", "k00").await.unwrap(), Some(obj(99)));
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn snapshot_purge_then_restart() {
    let dir = tempfile::tempdir().unwrap();
    let options = MetaOptions {
        keep_logs_after_snapshot: 0,
        ..MetaOptions::default()
    };
    let snapshot_index = {
        let store = MetaStore::open_with(dir.path(), 3, options.clone())
            .await
            .unwrap();
        populate(&store).await;
        let index = store.snapshot_now().await.unwrap().unwrap();
        let status = store.status();
        assert_eq!(status.snapshot_index, Some(index));
        assert_eq!(status.purged_index, Some(index));
        assert_eq!(status.last_applied, Some(index));
        // Writes after the snapshot live only in the log until the next one.
        store.put_object("c", "after", obj(50)).await.unwrap();
        store.shutdown().await.unwrap();
        index
    };

    let store = MetaStore::open_with(dir.path(), 3, options).await.unwrap();
    let status = store.status();
    assert_eq!(status.snapshot_index, Some(snapshot_index));
    assert_eq!(status.purged_index, Some(snapshot_index));
    verify(&store).await;
    assert_eq!(store.get_object("c", "after").await.unwrap(), Some(obj(50)));
    store.put_object("b", "again", obj(51)).await.unwrap();

    // A second snapshot supersedes the first.
    let second = store.snapshot_now().await.unwrap().unwrap();
    assert!(second > snapshot_index);
    assert_eq!(store.status().purged_index, Some(second));
    store.shutdown().await.unwrap();
}
