//! Buckets, bucket encryption and objects on a fresh single-node store.

mod common;

use coffer_metadata::{BucketEncryptionRecord, MetaError};
use common::{fresh, obj};

#[tokio::test]
async fn fresh_store_is_leader() {
    let (_dir, store) = fresh().await;
    let status = store.status();
    assert!(status.is_leader);
    assert_eq!(status.node_id, 1);
    assert_eq!(status.current_leader, Some(1));
    assert!(status.current_term >= 1);
    assert_eq!(status.last_applied, status.last_log_index);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn bucket_crud_and_errors() {
    let (_dir, store) = fresh().await;
    store.create_bucket("photos", 10).await.unwrap();
    store.create_bucket("alpha", 11).await.unwrap();
    assert_eq!(
        store.create_bucket("photos", 12).await,
        Err(MetaError::BucketExists)
    );

    let b = store.get_bucket("photos").await.unwrap().unwrap();
    assert_eq!(
        (b.name.as_str(), b.created_ms, b.encryption),
        ("photos", 10, None)
    );
    assert_eq!(store.get_bucket("nope").await.unwrap(), None);

    let names: Vec<String> = store
        .list_buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["alpha", "photos"]);

    assert_eq!(
        store.delete_bucket("nope").await,
        Err(MetaError::NoSuchBucket)
    );
    store.delete_bucket("alpha").await.unwrap();
    assert_eq!(store.get_bucket("alpha").await.unwrap(), None);

    // NUL would break the bucket ‖ 0x00 ‖ key layout, so the state machine refuses it.
    assert!(matches!(
        store.create_bucket("a\0b", 1).await,
        Err(MetaError::InvalidArgument(_))
    ));
    assert!(matches!(
        store.create_bucket("", 1).await,
        Err(MetaError::InvalidArgument(_))
    ));
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn bucket_encryption_set_and_clear() {
    let (_dir, store) = fresh().await;
    store.create_bucket("b", 1).await.unwrap();
    let kms = BucketEncryptionRecord {
        algorithm: "aws:kms".to_owned(),
        kms_key_id: Some("key-1".to_owned()),
        cipher: None,
        bucket_key_enabled: true,
    };
    store
        .set_bucket_encryption("b", Some(kms.clone()))
        .await
        .unwrap();
    assert_eq!(
        store.get_bucket("b").await.unwrap().unwrap().encryption,
        Some(kms)
    );
    store.set_bucket_encryption("b", None).await.unwrap();
    assert_eq!(
        store.get_bucket("b").await.unwrap().unwrap().encryption,
        None
    );
    assert_eq!(
        store.set_bucket_encryption("missing", None).await,
        Err(MetaError::NoSuchBucket)
    );
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn object_crud_and_errors() {
    let (_dir, store) = fresh().await;
    assert_eq!(
        store.put_object("b", "k", obj(1)).await,
        Err(MetaError::NoSuchBucket)
    );
    store.create_bucket("b", 1).await.unwrap();

    assert_eq!(store.put_object("b", "k", obj(1)).await.unwrap(), None);
    assert_eq!(store.get_object("b", "k").await.unwrap(), Some(obj(1)));
    // Replacing returns the old record so the node can delete its shards.
    assert_eq!(
        store.put_object("b", "k", obj(2)).await.unwrap(),
        Some(obj(1))
    );
    assert_eq!(store.get_object("b", "k").await.unwrap(), Some(obj(2)));

    assert_eq!(
        store.delete_bucket("b").await,
        Err(MetaError::BucketNotEmpty)
    );

    assert_eq!(store.delete_object("b", "k").await.unwrap(), Some(obj(2)));
    assert_eq!(store.delete_object("b", "k").await.unwrap(), None);
    assert_eq!(store.get_object("b", "k").await.unwrap(), None);
    assert_eq!(
        store.delete_object("missing", "k").await,
        Err(MetaError::NoSuchBucket)
    );
    assert_eq!(store.get_object("missing", "k").await.unwrap(), None);

    store.delete_bucket("b").await.unwrap();
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn calls_after_shutdown_are_unavailable() {
    let (_dir, store) = fresh().await;
    store.create_bucket("b", 1).await.unwrap();
    store.shutdown().await.unwrap();
    assert!(matches!(
        store.create_bucket("c", 1).await,
        Err(MetaError::Unavailable(_))
    ));
    assert!(matches!(
        store.get_bucket("b").await,
        Err(MetaError::Unavailable(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_all_land() {
    let (_dir, store) = fresh().await;
    store.create_bucket("b", 1).await.unwrap();
    let tasks: Vec<_> = (0..50u64)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.put_object("b", &format!("key-{n:02}"), obj(n)).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), None);
    }
    let listed = store.list_objects("b", "", None, 1000).await.unwrap();
    assert_eq!(listed.len(), 50);
    for (n, (key, rec)) in listed.into_iter().enumerate() {
        assert_eq!(key, format!("key-{n:02}"));
        assert_eq!(rec, obj(n as u64));
    }
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn conditional_put_applies_only_when_its_precondition_holds() {
    use coffer_metadata::ObjectPrecondition as P;
    let (_dir, store) = fresh().await;
    store.create_bucket("b", 1).await.unwrap();
    // Absent: the first writer wins, the second is refused and changes nothing.
    assert_eq!(
        store
            .put_object_if("b", "k", obj(1), Some(P::Absent))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.put_object_if("b", "k", obj(2), Some(P::Absent)).await,
        Err(MetaError::PreconditionFailed)
    );
    assert_eq!(store.get_object("b", "k").await.unwrap(), Some(obj(1)));
    // ManifestIs: a read-modify-write that lost a race does not overwrite the winner.
    let read = store.get_object("b", "k").await.unwrap().unwrap();
    store.put_object("b", "k", obj(3)).await.unwrap();
    assert_eq!(
        store
            .put_object_if("b", "k", obj(4), Some(P::unchanged(&read)))
            .await,
        Err(MetaError::PreconditionFailed)
    );
    let current = store.get_object("b", "k").await.unwrap().unwrap();
    assert_eq!(current, obj(3));
    assert_eq!(
        store
            .put_object_if("b", "k", obj(4), Some(P::unchanged(&current)))
            .await
            .unwrap(),
        Some(obj(3))
    );
    // EtagIs compares the ETag only.
    let etag = store.get_object("b", "k").await.unwrap().unwrap().etag;
    assert_eq!(
        store
            .put_object_if("b", "k", obj(5), Some(P::EtagIs("nope".into())))
            .await,
        Err(MetaError::PreconditionFailed)
    );
    assert!(store
        .put_object_if("b", "k", obj(5), Some(P::EtagIs(etag)))
        .await
        .is_ok());
    assert_eq!(
        store
            .put_object_if("b", "gone", obj(6), Some(P::EtagIs("x".into())))
            .await,
        Err(MetaError::PreconditionFailed)
    );
}
