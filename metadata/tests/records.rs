//! Admin records: compare-and-set semantics, namespaces, and survival across restarts and
//! snapshots (a purged log leaves only the snapshot to carry them).

use coffer_metadata::{MetaError, MetaOptions, MetaStore, RecordExpect};

#[tokio::test]
async fn compare_and_set_rules() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetaStore::open(dir.path(), 1).await.unwrap();
    store
        .put_record("jobs", "a", Some("1".into()), RecordExpect::Absent)
        .await
        .unwrap();
    // Absent when present, or Is with a stale value: refused, nothing changes.
    for expect in [RecordExpect::Absent, RecordExpect::Is("0".into())] {
        let err = store
            .put_record("jobs", "a", Some("2".into()), expect)
            .await
            .unwrap_err();
        assert!(matches!(err, MetaError::PreconditionFailed), "{err:?}");
    }
    assert_eq!(
        store.get_record("jobs", "a").await.unwrap().as_deref(),
        Some("1")
    );
    store
        .put_record("jobs", "a", Some("2".into()), RecordExpect::Is("1".into()))
        .await
        .unwrap();
    store
        .put_record("jobs", "b", Some("x".into()), RecordExpect::Any)
        .await
        .unwrap();
    store
        .put_record("jobsx", "c", Some("y".into()), RecordExpect::Any)
        .await
        .unwrap();
    assert_eq!(
        store.list_records("jobs").await.unwrap(),
        [("a".into(), "2".into()), ("b".into(), "x".into())]
    );
    store
        .put_record("jobs", "b", None, RecordExpect::Is("x".into()))
        .await
        .unwrap();
    assert_eq!(store.get_record("jobs", "b").await.unwrap(), None);
    let err = store
        .put_record("bad\0ns", "a", None, RecordExpect::Any)
        .await
        .unwrap_err();
    assert!(matches!(err, MetaError::InvalidArgument(_)), "{err:?}");
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn records_survive_a_snapshot_and_a_purged_log() {
    let dir = tempfile::tempdir().unwrap();
    let options = || MetaOptions {
        keep_logs_after_snapshot: 0,
        ..MetaOptions::default()
    };
    {
        let store = MetaStore::open_with(dir.path(), 1, options())
            .await
            .unwrap();
        for i in 0..5 {
            store
                .put_record(
                    "kms-local",
                    &format!("key-{i}"),
                    Some(format!("{{\"v\":{i}}}")),
                    RecordExpect::Any,
                )
                .await
                .unwrap();
        }
        store.snapshot_now().await.unwrap().unwrap();
        store.shutdown().await.unwrap();
    }
    let store = MetaStore::open_with(dir.path(), 1, options())
        .await
        .unwrap();
    let all = store.list_records("kms-local").await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[3], ("key-3".into(), "{\"v\":3}".into()));
    #[derive(serde::Deserialize)]
    struct V {
        v: u32,
    }
    let v: V = store
        .get_record_json("kms-local", "key-4")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.v, 4);
    store.shutdown().await.unwrap();
}
