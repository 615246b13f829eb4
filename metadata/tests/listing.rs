//! Object and upload listings: order, prefix, start-after, limit, bucket isolation.

mod common;

use coffer_metadata::MetaError;
use common::{fresh, obj, upload};

/// ~1,500 keys: nested paths, unicode, keys that are prefixes of each other, a NUL.
fn keys() -> Vec<String> {
    let mut keys = Vec::new();
    for d in 0..30 {
        for f in 0..45 {
            keys.push(format!("dir{d}/file{f}"));
        }
    }
    for extra in [
        "a",
        "a/",
        "a/b",
        "a/b/c",
        "ab",
        "a b",
        "a\0",
        "a\0b",
        "é",
        "é/ü",
        "日本/語",
        "🦀",
        "z",
        "zz",
        "Z",
        "dir1",
        "dir1/",
        "dir10",
        "",
    ] {
        keys.push(extra.to_owned());
    }
    for n in 0..150 {
        keys.push(format!("flat-{n:04}"));
    }
    keys
}

#[tokio::test]
async fn list_objects_order_prefix_start_after_limit() {
    let (_dir, store) = fresh().await;
    store.create_bucket("a", 1).await.unwrap();
    // Neighbouring bucket names whose keys must never leak into "a"'s listing.
    store.create_bucket("a-b", 1).await.unwrap();
    store.create_bucket("ab", 1).await.unwrap();
    store.create_bucket("b", 1).await.unwrap();
    store.put_object("a-b", "dir1/x", obj(9)).await.unwrap();
    store.put_object("ab", "a", obj(9)).await.unwrap();
    store.put_object("b", "", obj(9)).await.unwrap();

    let keys = keys();
    let puts = keys.iter().enumerate().map(|(n, k)| {
        let store = store.clone();
        async move { store.put_object("a", k, obj(n as u64)).await }
    });
    for r in futures::future::join_all(puts).await {
        r.unwrap();
    }
    let mut sorted = keys.clone();
    sorted.sort_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
    assert!(sorted.len() >= 1500);

    let all = store.list_objects("a", "", None, usize::MAX).await.unwrap();
    let got: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(got, sorted);
    for (k, rec) in &all {
        let n = keys.iter().position(|x| x == k).unwrap();
        assert_eq!(rec, &obj(n as u64));
    }

    // Paging with start_after and a limit walks the same sequence.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_objects("a", "", after.as_deref(), 97)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 97);
        after = Some(page.last().unwrap().0.clone());
        paged.extend(page.into_iter().map(|(k, _)| k));
    }
    assert_eq!(paged, sorted);

    // Prefix filters, including a prefix that is itself a key, and unicode.
    for prefix in [
        "a", "a/", "dir1", "dir1/", "é", "日本", "flat-00", "nothing",
    ] {
        let want: Vec<&String> = sorted.iter().filter(|k| k.starts_with(prefix)).collect();
        let got = store
            .list_objects("a", prefix, None, usize::MAX)
            .await
            .unwrap();
        let got: Vec<&String> = got.iter().map(|(k, _)| k).collect();
        assert_eq!(got, want, "prefix {prefix:?}");
    }

    // start_after inside, before and after the prefix range.
    let list = |prefix: &'static str, after: &'static str, limit: usize| {
        let store = store.clone();
        async move {
            store
                .list_objects("a", prefix, Some(after), limit)
                .await
                .unwrap()
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list("a", "a/b", 10).await,
        expected_after(&sorted, "a", "a/b", 10)
    );
    assert_eq!(list("a", "a/b", 10).await, ["a/b/c", "ab"]);
    assert_eq!(
        list("dir1/", "0", 3).await,
        ["dir1/", "dir1/file0", "dir1/file1"]
    );
    assert_eq!(
        list("dir1/", "dir1/", 2).await,
        ["dir1/file0", "dir1/file1"]
    );
    assert_eq!(list("dir1/", "zzz", 3).await, Vec::<String>::new());
    assert_eq!(list("", "🦀", 10).await, Vec::<String>::new());
    assert_eq!(list("a", "a", 2).await, ["a\0", "a\0b"]);
    assert_eq!(list("", "a", 0).await, Vec::<String>::new());

    // Other buckets are untouched and isolated.
    let ab = store.list_objects("ab", "", None, 10).await.unwrap();
    assert_eq!(ab.len(), 1);
    assert_eq!(ab[0].0, "a");
    assert_eq!(
        store.list_objects("a-b", "", None, 10).await.unwrap().len(),
        1
    );
    assert_eq!(
        store.list_objects("missing", "", None, 10).await,
        Err(MetaError::NoSuchBucket)
    );
    store.shutdown().await.unwrap();
}

fn expected_after(sorted: &[String], prefix: &str, after: &str, limit: usize) -> Vec<String> {
    sorted
        .iter()
        .filter(|k| k.starts_with(prefix) && k.as_bytes() > after.as_bytes())
        .take(limit)
        .cloned()
        .collect()
}

#[tokio::test]
async fn list_uploads_by_key_then_id() {
    let (_dir, store) = fresh().await;
    store.create_bucket("b", 1).await.unwrap();
    store.create_bucket("b2", 1).await.unwrap();
    for (key, id) in [
        ("photos/2", "u3"),
        ("photos/1", "u9"),
        ("photos/1", "u1"),
        ("docs/x", "u5"),
        ("photos", "u7"),
        ("photos\0", "u8"),
    ] {
        store.create_upload(upload("b", key, id)).await.unwrap();
    }
    store
        .create_upload(upload("b2", "photos/1", "u0"))
        .await
        .unwrap();

    let ids = |v: Vec<coffer_metadata::UploadRecord>| -> Vec<String> {
        v.into_iter().map(|u| u.upload_id).collect()
    };
    assert_eq!(
        ids(store.list_uploads("b", "", 100).await.unwrap()),
        ["u5", "u7", "u8", "u1", "u9", "u3"]
    );
    assert_eq!(
        ids(store.list_uploads("b", "photos/", 100).await.unwrap()),
        ["u1", "u9", "u3"]
    );
    assert_eq!(
        ids(store.list_uploads("b", "photos", 2).await.unwrap()),
        ["u7", "u8"]
    );
    assert_eq!(
        ids(store.list_uploads("b2", "", 100).await.unwrap()),
        ["u0"]
    );
    // Markers: after a key (all its uploads), after a (key, id), and inside a prefix.
    let after = |prefix: &'static str, m: (&'static str, Option<&'static str>), limit| {
        let store = &store;
        async move {
            ids(store
                .list_uploads_after("b", prefix, Some(m), limit)
                .await
                .unwrap())
        }
    };
    assert_eq!(
        after("", ("photos", None), 100).await,
        ["u8", "u1", "u9", "u3"]
    );
    assert_eq!(after("", ("photos/1", Some("u1")), 100).await, ["u9", "u3"]);
    assert_eq!(after("", ("photos/1", Some("u9")), 1).await, ["u3"]);
    assert_eq!(after("", ("a", None), 2).await, ["u5", "u7"]);
    assert_eq!(after("", ("zzz", None), 100).await, Vec::<String>::new());
    assert_eq!(
        after("photos/", ("docs", None), 100).await,
        ["u1", "u9", "u3"]
    );
    assert_eq!(after("photos/", ("photos/1", None), 100).await, ["u3"]);
    assert_eq!(
        store.list_uploads("nope", "", 100).await,
        Err(MetaError::NoSuchBucket)
    );
    assert!(matches!(
        store.create_upload(upload("b", "k", "u1")).await,
        Err(MetaError::InvalidArgument(_))
    ));
    assert_eq!(
        store.create_upload(upload("nope", "k", "u100")).await,
        Err(MetaError::NoSuchBucket)
    );
    store.shutdown().await.unwrap();
}
