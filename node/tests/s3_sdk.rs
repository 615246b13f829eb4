//! Acceptance 1: the real binary driven by the Rust `aws-sdk-s3` client — object sizes, ranges,
//! HEAD, listing with prefix/delimiter/pagination, copy, delete, multipart (completed and
//! aborted), and the versioning answers of an unversioned bucket.

mod common;

use std::collections::BTreeSet;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::*;
use futures::stream::{self, StreamExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_of_every_size_round_trip() {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let bucket = bucket_name("sizes");
    create_bucket(&s3, &bucket).await;

    let sizes: [(&str, usize); 4] = [
        ("empty", 0),
        ("one-byte", 1),
        ("five-mib-plus-one", 5 * MIB + 1),
        ("sixty-four-mib", 64 * MIB),
    ];
    for (i, (key, size)) in sizes.iter().enumerate() {
        let body = pseudo_random(*size, 100 + i as u64);
        let etag = put_bytes(&s3, &bucket, key, &body).await;
        assert_eq!(
            etag.trim_matches('"'),
            md5_hex(&body),
            "single-part ETag of {key} is the MD5 of the body"
        );
        let got = get_bytes(&s3, &bucket, key).await;
        assert_same_bytes(&got, &body, key);
        let head = s3
            .head_object()
            .bucket(&bucket)
            .key(*key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("HEAD {key}: {}", err_text(&e)));
        assert_eq!(
            head.content_length,
            Some(*size as i64),
            "HEAD length of {key}"
        );
        assert_eq!(
            head.e_tag.as_deref().map(|t| t.trim_matches('"')),
            Some(etag.trim_matches('"'))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_across_package_boundaries() {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let bucket = bucket_name("ranges");
    create_bucket(&s3, &bucket).await;
    let size = 5 * PACKAGE + 777;
    let body = pseudo_random(size, 7);
    put_bytes(&s3, &bucket, "obj", &body).await;

    let last = size - 1;
    let cases: Vec<(String, std::ops::Range<usize>)> = vec![
        ("bytes=0-0".into(), 0..1),
        (format!("bytes={last}-{last}"), last..size),
        ("bytes=-1".into(), last..size),
        ("bytes=65530-65545".into(), 65530..65546),
        (
            format!("bytes={}-{}", PACKAGE, 2 * PACKAGE - 1),
            PACKAGE..2 * PACKAGE,
        ),
        (
            format!("bytes={}-{}", PACKAGE - 1, 3 * PACKAGE),
            PACKAGE - 1..3 * PACKAGE + 1,
        ),
        (format!("bytes={}-", 4 * PACKAGE + 5), 4 * PACKAGE + 5..size),
        ("bytes=-70000".into(), size - 70000..size),
        (format!("bytes=100-{}", size + 1000), 100..size),
    ];
    for (range, want) in cases {
        let got = get_range(&s3, &bucket, "obj", &range).await;
        assert_same_bytes(&got, &body[want], &range);
    }

    // Also on an object whose size is an exact multiple of the package size.
    let exact = pseudo_random(2 * PACKAGE, 8);
    put_bytes(&s3, &bucket, "exact", &exact).await;
    let got = get_range(&s3, &bucket, "exact", &format!("bytes={}-", PACKAGE - 3)).await;
    assert_same_bytes(&got, &exact[PACKAGE - 3..], "tail of exact-multiple object");

    // A range that starts past the end is 416 InvalidRange, not a 500.
    let err = s3
        .get_object()
        .bucket(&bucket)
        .key("obj")
        .range(format!("bytes={}-{}", size + 10, size + 20))
        .send()
        .await
        .expect_err("range past the end");
    assert_eq!(err_status(&err), Some(416), "{}", err_text(&err));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_copy_delete_and_metadata() {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let bucket = bucket_name("copy");
    let other = bucket_name("copy-dst");
    create_bucket(&s3, &bucket).await;
    create_bucket(&s3, &other).await;

    let body = pseudo_random(3 * PACKAGE + 5, 21);
    s3.put_object()
        .bucket(&bucket)
        .key("dir/src.bin")
        .content_type("application/x-test")
        .metadata("colour", "teal")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT with metadata: {}", err_text(&e)));
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("dir/src.bin")
        .send()
        .await
        .unwrap_or_else(|e| panic!("HEAD: {}", err_text(&e)));
    assert_eq!(head.content_length, Some(body.len() as i64));
    assert_eq!(head.content_type.as_deref(), Some("application/x-test"));
    assert_eq!(
        head.metadata
            .as_ref()
            .and_then(|m| m.get("colour"))
            .map(String::as_str),
        Some("teal")
    );
    assert!(head.last_modified.is_some(), "HEAD has Last-Modified");

    // Copy within the bucket and to another bucket.
    for (dst_bucket, dst_key) in [(&bucket, "dir/copy.bin"), (&other, "elsewhere.bin")] {
        s3.copy_object()
            .bucket(dst_bucket)
            .key(dst_key)
            .copy_source(format!("{bucket}/dir/src.bin"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("CopyObject to {dst_bucket}/{dst_key}: {}", err_text(&e)));
        let got = get_bytes(&s3, dst_bucket, dst_key).await;
        assert_same_bytes(&got, &body, "copied object");
        let h = s3
            .head_object()
            .bucket(dst_bucket)
            .key(dst_key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            h.metadata
                .as_ref()
                .and_then(|m| m.get("colour"))
                .map(String::as_str),
            Some("teal"),
            "copy keeps user metadata by default"
        );
    }

    // Delete: gone for GET and HEAD; the copy survives; deleting again is still 204.
    s3.delete_object()
        .bucket(&bucket)
        .key("dir/src.bin")
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteObject: {}", err_text(&e)));
    let err = s3
        .get_object()
        .bucket(&bucket)
        .key("dir/src.bin")
        .send()
        .await
        .expect_err("GET after delete");
    assert_eq!(err_code(&err), "NoSuchKey", "{}", err_text(&err));
    assert_eq!(err_status(&err), Some(404));
    let err = s3
        .head_object()
        .bucket(&bucket)
        .key("dir/src.bin")
        .send()
        .await
        .expect_err("HEAD after delete");
    assert_eq!(err_status(&err), Some(404));
    s3.delete_object()
        .bucket(&bucket)
        .key("dir/src.bin")
        .send()
        .await
        .unwrap_or_else(|e| panic!("second DeleteObject: {}", err_text(&e)));
    let got = get_bytes(&s3, &bucket, "dir/copy.bin").await;
    assert_same_bytes(&got, &body, "copy after source deleted");

    // Missing bucket.
    let err = s3
        .get_object()
        .bucket("no-such-bucket-here")
        .key("x")
        .send()
        .await
        .expect_err("GET from a missing bucket");
    assert_eq!(err_code(&err), "NoSuchBucket", "{}", err_text(&err));

    // ListBuckets shows both.
    let list = s3.list_buckets().send().await.unwrap();
    let names: BTreeSet<String> = list
        .buckets()
        .iter()
        .filter_map(|b| b.name.clone())
        .collect();
    assert!(
        names.contains(&bucket) && names.contains(&other),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_prefix_delimiter_and_pagination() {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let bucket = bucket_name("list");
    create_bucket(&s3, &bucket).await;

    // 1,000 keys under list/a/, 50 under list/b/, and one outside the prefix: 1,051 in all.
    let mut keys: Vec<String> = (0..1000).map(|i| format!("list/a/{i:04}")).collect();
    keys.extend((0..50).map(|i| format!("list/b/{i:04}")));
    keys.push("other/x".to_string());
    let results: Vec<Result<(), String>> = stream::iter(keys.clone())
        .map(|k| {
            let s3 = s3.clone();
            let bucket = bucket.clone();
            async move {
                s3.put_object()
                    .bucket(&bucket)
                    .key(&k)
                    .body(ByteStream::from(k.clone().into_bytes()))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("PUT {k}: {}", err_text(&e)))
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for r in results {
        r.unwrap();
    }
    let mut expected: Vec<String> = keys
        .iter()
        .filter(|k| k.starts_with("list/"))
        .cloned()
        .collect();
    expected.sort();
    assert_eq!(expected.len(), 1050);

    // V2, default page size (1,000): two pages.
    let first = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("list/")
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListObjectsV2: {}", err_text(&e)));
    assert_eq!(first.contents().len(), 1000);
    assert_eq!(first.is_truncated, Some(true));
    let token = first
        .next_continuation_token
        .clone()
        .expect("continuation token");
    let second = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("list/")
        .continuation_token(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListObjectsV2 page 2: {}", err_text(&e)));
    assert_eq!(second.contents().len(), 50);
    assert_ne!(second.is_truncated, Some(true));
    let got: Vec<String> = first
        .contents()
        .iter()
        .chain(second.contents())
        .filter_map(|o| o.key.clone())
        .collect();
    assert_eq!(got, expected, "two pages, in order, no gaps or repeats");

    // V2 with max-keys 100: 11 pages, the same keys.
    let mut got = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    for _ in 0..50 {
        let page = s3
            .list_objects_v2()
            .bucket(&bucket)
            .prefix("list/")
            .max_keys(100)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListObjectsV2 max-keys 100: {}", err_text(&e)));
        pages += 1;
        assert!(page.contents().len() <= 100);
        got.extend(page.contents().iter().filter_map(|o| o.key.clone()));
        if page.is_truncated != Some(true) {
            break;
        }
        token = page.next_continuation_token.clone();
        assert!(token.is_some(), "truncated page without a token");
    }
    assert_eq!(pages, 11);
    assert_eq!(got, expected);

    // start-after.
    let page = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("list/")
        .start_after("list/a/0997")
        .max_keys(5)
        .send()
        .await
        .unwrap();
    let got: Vec<String> = page
        .contents()
        .iter()
        .filter_map(|o| o.key.clone())
        .collect();
    assert_eq!(
        got,
        [
            "list/a/0998",
            "list/a/0999",
            "list/b/0000",
            "list/b/0001",
            "list/b/0002"
        ]
    );

    // Delimiter: common prefixes only.
    let page = s3
        .list_objects_v2()
        .bucket(&bucket)
        .delimiter("/")
        .prefix("list/")
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListObjectsV2 delimiter: {}", err_text(&e)));
    let prefixes: Vec<String> = page
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix.clone())
        .collect();
    assert_eq!(prefixes, ["list/a/", "list/b/"]);
    assert!(page.contents().is_empty());
    let page = s3
        .list_objects_v2()
        .bucket(&bucket)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<String> = page
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix.clone())
        .collect();
    assert_eq!(prefixes, ["list/", "other/"]);

    // Sizes in listings are plaintext sizes.
    let page = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("other/")
        .send()
        .await
        .unwrap();
    assert_eq!(page.contents().len(), 1);
    assert_eq!(page.contents()[0].size, Some("other/x".len() as i64));

    // V1 with markers.
    let mut got = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..50 {
        let page = s3
            .list_objects()
            .bucket(&bucket)
            .prefix("list/")
            .max_keys(400)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListObjects v1: {}", err_text(&e)));
        got.extend(page.contents().iter().filter_map(|o| o.key.clone()));
        if page.is_truncated != Some(true) {
            break;
        }
        marker = page.next_marker.clone().or_else(|| got.last().cloned());
    }
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_complete_and_abort() {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let bucket = bucket_name("mpu");
    create_bucket(&s3, &bucket).await;

    let p1 = pseudo_random(5 * MIB, 31);
    let p2 = pseudo_random(5 * MIB, 32);
    let p3 = pseudo_random(1, 33);
    let etag = multipart_put(&s3, &bucket, "big/mpu.bin", &[&p1, &p2, &p3]).await;
    assert!(
        etag.trim_matches('"').ends_with("-3"),
        "multipart ETag {etag}"
    );
    let whole: Vec<u8> = [p1.as_slice(), &p2, &p3].concat();
    let got = get_bytes(&s3, &bucket, "big/mpu.bin").await;
    assert_same_bytes(&got, &whole, "completed multipart object");
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("big/mpu.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length, Some(whole.len() as i64));
    // Ranges across the part boundaries.
    for (a, b) in [(5 * MIB - 8, 5 * MIB + 8), (10 * MIB - 2, 10 * MIB), (0, 0)] {
        let got = get_range(&s3, &bucket, "big/mpu.bin", &format!("bytes={a}-{b}")).await;
        assert_same_bytes(&got, &whole[a..=b], "range over part boundary");
    }

    // An upload that is aborted: parts go away, no object appears.
    let created = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key("big/aborted.bin")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateMultipartUpload: {}", err_text(&e)));
    let upload_id = created.upload_id.clone().expect("upload id");
    let part = s3
        .upload_part()
        .bucket(&bucket)
        .key("big/aborted.bin")
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from(pseudo_random(5 * MIB, 34)))
        .send()
        .await
        .unwrap_or_else(|e| panic!("UploadPart: {}", err_text(&e)));
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(
        uploads
            .uploads()
            .iter()
            .any(|u| u.upload_id.as_deref() == Some(upload_id.as_str())),
        "in-progress upload is listed"
    );
    let parts = s3
        .list_parts()
        .bucket(&bucket)
        .key("big/aborted.bin")
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListParts: {}", err_text(&e)));
    assert_eq!(parts.parts().len(), 1);
    assert_eq!(parts.parts()[0].size, Some(5 * MIB as i64));
    s3.abort_multipart_upload()
        .bucket(&bucket)
        .key("big/aborted.bin")
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("AbortMultipartUpload: {}", err_text(&e)));
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(
        !uploads
            .uploads()
            .iter()
            .any(|u| u.upload_id.as_deref() == Some(upload_id.as_str())),
        "aborted upload is not listed"
    );
    let err = s3
        .head_object()
        .bucket(&bucket)
        .key("big/aborted.bin")
        .send()
        .await
        .expect_err("no object from an aborted upload");
    assert_eq!(err_status(&err), Some(404));
    let err = s3
        .complete_multipart_upload()
        .bucket(&bucket)
        .key("big/aborted.bin")
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag.unwrap_or_default())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect_err("completing an aborted upload");
    assert_eq!(err_code(&err), "NoSuchUpload", "{}", err_text(&err));
    let err = s3
        .upload_part()
        .bucket(&bucket)
        .key("big/aborted.bin")
        .upload_id(&upload_id)
        .part_number(2)
        .body(ByteStream::from_static(b"late"))
        .send()
        .await
        .expect_err("uploading to an aborted upload");
    assert_eq!(err_code(&err), "NoSuchUpload", "{}", err_text(&err));

    // The completed object is untouched by all of that.
    let got = get_bytes(&s3, &bucket, "big/mpu.bin").await;
    assert_same_bytes(&got, &whole, "completed object after the abort");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unversioned_bucket_answers_versioning_calls() {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let bucket = bucket_name("vers");
    create_bucket(&s3, &bucket).await;
    put_bytes(&s3, &bucket, "a", b"alpha").await;
    put_bytes(&s3, &bucket, "b", b"beta").await;

    let v = s3
        .get_bucket_versioning()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetBucketVersioning: {}", err_text(&e)));
    assert!(
        v.status.is_none(),
        "never-versioned bucket has no status: {:?}",
        v.status
    );

    let out = s3
        .list_object_versions()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListObjectVersions: {}", err_text(&e)));
    let versions = out.versions();
    let keys: Vec<&str> = versions.iter().filter_map(|v| v.key.as_deref()).collect();
    assert_eq!(keys, ["a", "b"]);
    for v in versions {
        assert_eq!(v.version_id.as_deref(), Some("null"), "{v:?}");
        assert_eq!(v.is_latest, Some(true), "{v:?}");
    }
    assert_eq!(versions[0].size, Some(5));
}
