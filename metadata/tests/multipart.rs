//! Multipart uploads: parts, complete (subset, missing part), abort, bucket deletion guard.

mod common;

use coffer_metadata::MetaError;
use common::{fresh, obj, part, upload};

#[tokio::test]
async fn upload_parts_complete_with_subset() {
    let (_dir, store) = fresh().await;
    store.create_bucket("b", 1).await.unwrap();
    store.put_object("b", "big", obj(1)).await.unwrap();
    store
        .create_upload(upload("b", "big", "up-1"))
        .await
        .unwrap();
    assert_eq!(
        store.get_upload("up-1").await.unwrap(),
        Some(upload("b", "big", "up-1"))
    );

    for n in [3, 1, 2, 10] {
        assert_eq!(store.put_part("up-1", part(n, 0)).await.unwrap(), None);
    }
    // Re-uploading a part replaces it and hands back the old one.
    assert_eq!(
        store.put_part("up-1", part(2, 1)).await.unwrap(),
        Some(part(2, 0))
    );

    let listed = store.list_parts("up-1", 0, 100).await.unwrap();
    assert_eq!(listed, [part(1, 0), part(2, 1), part(3, 0), part(10, 0)]);
    assert_eq!(store.list_parts("up-1", 2, 1).await.unwrap(), [part(3, 0)]);
    assert_eq!(store.list_parts("up-1", 10, 100).await.unwrap(), []);

    // The bucket cannot go while the upload exists, even though it would hold no object.
    store.delete_object("b", "big").await.unwrap();
    assert_eq!(
        store.delete_bucket("b").await,
        Err(MetaError::BucketNotEmpty)
    );
    store.put_object("b", "big", obj(1)).await.unwrap();

    let outcome = store
        .complete_upload("up-1", obj(2), vec![1, 2])
        .await
        .unwrap();
    assert_eq!(outcome.previous, Some(obj(1)));
    assert_eq!(outcome.discarded_parts, [part(3, 0), part(10, 0)]);
    assert_eq!(store.get_object("b", "big").await.unwrap(), Some(obj(2)));

    // The upload and all its parts are gone.
    assert_eq!(store.get_upload("up-1").await.unwrap(), None);
    assert_eq!(
        store.list_parts("up-1", 0, 100).await,
        Err(MetaError::NoSuchUpload)
    );
    assert_eq!(store.list_uploads("b", "", 10).await.unwrap(), []);
    assert_eq!(
        store.complete_upload("up-1", obj(3), vec![1]).await,
        Err(MetaError::NoSuchUpload)
    );

    store.delete_object("b", "big").await.unwrap();
    store.delete_bucket("b").await.unwrap();
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn complete_with_missing_part_changes_nothing() {
    let (_dir, store) = fresh().await;
    store.create_bucket("b", 1).await.unwrap();
    store.create_upload(upload("b", "k", "up")).await.unwrap();
    store.put_part("up", part(1, 0)).await.unwrap();
    store.put_part("up", part(2, 0)).await.unwrap();

    assert_eq!(
        store.complete_upload("up", obj(1), vec![1, 4, 5]).await,
        Err(MetaError::InvalidPart { part_number: 4 })
    );
    assert_eq!(store.get_object("b", "k").await.unwrap(), None);
    assert_eq!(
        store.get_upload("up").await.unwrap(),
        Some(upload("b", "k", "up"))
    );
    assert_eq!(
        store.list_parts("up", 0, 10).await.unwrap(),
        [part(1, 0), part(2, 0)]
    );

    // A complete that uses every part discards none.
    let outcome = store
        .complete_upload("up", obj(1), vec![1, 2])
        .await
        .unwrap();
    assert_eq!(outcome.previous, None);
    assert!(outcome.discarded_parts.is_empty());
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn abort_returns_parts_and_frees_bucket() {
    let (_dir, store) = fresh().await;
    store.create_bucket("b", 1).await.unwrap();
    assert_eq!(
        store.put_part("nope", part(1, 0)).await,
        Err(MetaError::NoSuchUpload)
    );
    assert_eq!(
        store.abort_upload("nope").await,
        Err(MetaError::NoSuchUpload)
    );

    store.create_upload(upload("b", "k", "up-a")).await.unwrap();
    store.create_upload(upload("b", "k", "up-b")).await.unwrap();
    store.put_part("up-a", part(2, 0)).await.unwrap();
    store.put_part("up-a", part(1, 0)).await.unwrap();
    store.put_part("up-b", part(1, 9)).await.unwrap();

    assert_eq!(
        store.abort_upload("up-a").await.unwrap(),
        [part(1, 0), part(2, 0)]
    );
    assert_eq!(store.get_upload("up-a").await.unwrap(), None);
    // The other upload of the same key is untouched.
    assert_eq!(store.list_parts("up-b", 0, 10).await.unwrap(), [part(1, 9)]);
    assert_eq!(
        store.delete_bucket("b").await,
        Err(MetaError::BucketNotEmpty)
    );

    assert_eq!(store.abort_upload("up-b").await.unwrap(), [part(1, 9)]);
    assert_eq!(
        store.abort_upload("up-b").await,
        Err(MetaError::NoSuchUpload)
    );
    store.delete_bucket("b").await.unwrap();

    assert!(matches!(
        store.create_upload(upload("b", "k", "x")).await,
        Err(MetaError::NoSuchBucket)
    ));
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn conditional_complete_keeps_the_upload_when_the_condition_fails() {
    use coffer_metadata::ObjectPrecondition;
    let (_dir, store) = fresh().await;
    store.create_bucket("b", 1).await.unwrap();
    store.put_object("b", "k", obj(1)).await.unwrap();
    store.create_upload(upload("b", "k", "up")).await.unwrap();
    store.put_part("up", part(1, 0)).await.unwrap();

    // If-None-Match: * against an existing object, and If-Match with another ETag.
    for p in [
        ObjectPrecondition::Absent,
        ObjectPrecondition::EtagIs("etag-9".into()),
    ] {
        assert_eq!(
            store
                .complete_upload_if("up", obj(2), vec![1], Some(p))
                .await,
            Err(MetaError::PreconditionFailed)
        );
        assert_eq!(store.get_object("b", "k").await.unwrap(), Some(obj(1)));
        assert_eq!(
            store.get_upload("up").await.unwrap(),
            Some(upload("b", "k", "up"))
        );
    }
    let outcome = store
        .complete_upload_if(
            "up",
            obj(2),
            vec![1],
            Some(ObjectPrecondition::EtagIs("etag-1".into())),
        )
        .await
        .unwrap();
    assert_eq!(outcome.previous, Some(obj(1)));
    assert_eq!(store.get_object("b", "k").await.unwrap(), Some(obj(2)));
    store.shutdown().await.unwrap();
}
