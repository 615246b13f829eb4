//! In-process HTTP tests of auth, buckets, listings, multipart and audit against an in-memory backend.

mod common;

use std::sync::atomic::Ordering;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::*;
use md5::{Digest as _, Md5};

async fn setup() -> Harness {
    let h = harness();
    let r = send(&h.svc, Req::new("PUT", "/bkt").sign()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    h
}

async fn put(h: &Harness, key: &str, data: &'static [u8]) -> Resp {
    send(
        &h.svc,
        Req::new("PUT", &format!("/bkt/{key}")).body(data).sign(),
    )
    .await
}

#[tokio::test]
async fn anonymous_requests_are_refused_before_the_backend() {
    let h = harness();
    for req in [
        Req::new("GET", "/"),
        Req::new("PUT", "/bkt"),
        Req::new("PUT", "/bkt/key").body(&b"data"[..]),
        Req::new("GET", "/bkt/key"),
        Req::new("DELETE", "/bkt/key"),
        Req::new("GET", "/bkt").q("list-type", "2"),
    ] {
        let r = send(&h.svc, req).await;
        assert_eq!(r.status, 403, "{}", r.text());
        assert_eq!(r.code(), "AccessDenied");
        assert!(r.header("x-amz-request-id").is_some());
    }
    assert_eq!(h.backend.writes.load(Ordering::SeqCst), 0);
    let recs = h.recorder.take();
    assert_eq!(recs.len(), 6);
    assert!(recs
        .iter()
        .all(|r| r.status == 403 && r.access_key.is_none()));
    assert_eq!(recs[0].operation, "ListBuckets");
    assert_eq!(recs[2].operation, "PutObject");
}

#[tokio::test]
async fn signature_failures() {
    let h = harness();
    let r = send(
        &h.svc,
        Req::new("GET", "/").sign_with(AK, "wrong-secret", None),
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "SignatureDoesNotMatch")
    );
    let r = send(
        &h.svc,
        Req::new("GET", "/").sign_with("NOSUCHKEY", SK, None),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (403, "InvalidAccessKeyId"));
    let r = send(&h.svc, Req::new("GET", "/").sign()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let recs = h.recorder.take();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[2].access_key.as_deref(), Some(AK));
}

#[tokio::test]
async fn presigned_urls() {
    let h = setup().await;
    put(&h, "obj", b"hello").await;
    let now = time::OffsetDateTime::now_utc();
    let r = send(&h.svc, Req::new("GET", "/bkt/obj").presign(now, 300)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(&r.body[..], b"hello");
    let r = send(
        &h.svc,
        Req::new("GET", "/bkt/obj").presign(now - time::Duration::hours(2), 60),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (403, "AccessDenied"));
    assert!(r.text().contains("Request has expired"), "{}", r.text());
}

#[tokio::test]
async fn bucket_lifecycle() {
    let h = setup().await;
    let r = send(&h.svc, Req::new("PUT", "/bkt").sign()).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "BucketAlreadyOwnedByYou")
    );
    let r = send(&h.svc, Req::new("PUT", "/xn--bad").sign()).await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidBucketName"));
    let r = send(&h.svc, Req::new("HEAD", "/bkt").sign()).await;
    assert_eq!(r.status, 200);
    let r = send(&h.svc, Req::new("HEAD", "/nope").sign()).await;
    assert_eq!(r.status, 404);
    let r = send(&h.svc, Req::new("GET", "/bkt").q("location", "").sign()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("LocationConstraint"));
    let r = send(&h.svc, Req::new("GET", "/bkt").q("versioning", "").sign()).await;
    assert_eq!(r.status, 200);
    assert!(!r.text().contains("<Status>"));
    let r = send(&h.svc, Req::new("GET", "/").sign()).await;
    assert!(r.text().contains("<Name>bkt</Name>"));
    put(&h, "k", b"x").await;
    let r = send(&h.svc, Req::new("DELETE", "/bkt").sign()).await;
    assert_eq!((r.status, r.code().as_str()), (409, "BucketNotEmpty"));
    let r = send(&h.svc, Req::new("DELETE", "/bkt/k").sign()).await;
    assert_eq!(r.status, 204);
    let r = send(&h.svc, Req::new("DELETE", "/bkt").sign()).await;
    assert_eq!(r.status, 204);
    let r = send(&h.svc, Req::new("GET", "/bkt/k").sign()).await;
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchBucket"));
}

#[tokio::test]
async fn list_v2_pagination_and_prefixes() {
    let h = setup().await;
    for k in ["a/1", "a/2", "b", "c d", "e+f"] {
        put(&h, &common::uri_encode(k).replace("%2F", "/"), b"x").await;
    }
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let mut req = Req::new("GET", "/bkt")
            .q("list-type", "2")
            .q("max-keys", "2");
        if let Some(t) = &token {
            req = req.q("continuation-token", t);
        }
        let r = send(&h.svc, req.sign()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let t = r.text();
        for part in t.split("<Key>").skip(1) {
            keys.push(part.split("</Key>").next().unwrap().to_owned());
        }
        token = t.split("<NextContinuationToken>").nth(1).map(|s| {
            s.split("</NextContinuationToken>")
                .next()
                .unwrap()
                .to_owned()
        });
        if token.is_none() {
            assert!(t.contains("<IsTruncated>false</IsTruncated>"));
            break;
        }
        assert!(t.contains("<KeyCount>2</KeyCount>"));
    }
    assert_eq!(keys, ["a/1", "a/2", "b", "c d", "e+f"]);

    let r = send(
        &h.svc,
        Req::new("GET", "/bkt")
            .q("list-type", "2")
            .q("delimiter", "/")
            .sign(),
    )
    .await;
    let t = r.text();
    assert!(
        t.contains("<CommonPrefixes><Prefix>a/</Prefix></CommonPrefixes>"),
        "{t}"
    );
    assert!(t.contains("<KeyCount>4</KeyCount>"), "{t}");
    let r = send(
        &h.svc,
        Req::new("GET", "/bkt")
            .q("list-type", "2")
            .q("encoding-type", "url")
            .sign(),
    )
    .await;
    let t = r.text();
    assert!(
        t.contains("<Key>c+d</Key>") && t.contains("<Key>e%2Bf</Key>"),
        "{t}"
    );
    let r = send(
        &h.svc,
        Req::new("GET", "/bkt")
            .q("list-type", "2")
            .q("continuation-token", "!!")
            .sign(),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidArgument"));
    let r = send(
        &h.svc,
        Req::new("GET", "/bkt")
            .q("list-type", "2")
            .q("start-after", "b")
            .sign(),
    )
    .await;
    assert!(!r.text().contains("<Key>b</Key>") && r.text().contains("<Key>c d</Key>"));

    // v1 with marker and delimiter → NextMarker.
    let r = send(
        &h.svc,
        Req::new("GET", "/bkt")
            .q("delimiter", "/")
            .q("max-keys", "1")
            .sign(),
    )
    .await;
    assert!(
        r.text().contains("<NextMarker>a/</NextMarker>"),
        "{}",
        r.text()
    );
    let r = send(&h.svc, Req::new("GET", "/bkt").q("marker", "b").sign()).await;
    assert!(r.text().contains("<Key>c d</Key>") && !r.text().contains("<Key>b</Key>"));

    let r = send(
        &h.svc,
        Req::new("GET", "/bkt")
            .q("versions", "")
            .q("max-keys", "2")
            .sign(),
    )
    .await;
    let t = r.text();
    assert!(
        t.contains("<VersionId>null</VersionId>") && t.contains("<IsLatest>true</IsLatest>"),
        "{t}"
    );
    assert!(t.contains("<NextKeyMarker>a/2</NextKeyMarker>"), "{t}");
    let r = send(
        &h.svc,
        Req::new("GET", "/bkt")
            .q("versions", "")
            .q("key-marker", "a/2")
            .sign(),
    )
    .await;
    assert!(r.text().contains("<Key>b</Key>") && !r.text().contains("<Key>a/1</Key>"));
}

#[tokio::test]
async fn delete_objects_reports_per_key() {
    let h = setup().await;
    put(&h, "d1", b"x").await;
    let xml = "<Delete><Object><Key>d1</Key></Object><Object><Key>d2</Key></Object></Delete>";
    let md5 = B64.encode(Md5::digest(xml.as_bytes()));
    let r = send(
        &h.svc,
        Req::new("POST", "/bkt")
            .q("delete", "")
            .h("content-md5", &md5)
            .body(xml)
            .sign(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("<Deleted><Key>d1</Key></Deleted>"),
        "{}",
        r.text()
    );
    let quiet = "<Delete><Quiet>true</Quiet><Object><Key>d2</Key></Object></Delete>";
    let md5 = B64.encode(Md5::digest(quiet.as_bytes()));
    let r = send(
        &h.svc,
        Req::new("POST", "/bkt")
            .q("delete", "")
            .h("content-md5", &md5)
            .body(quiet)
            .sign(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(!r.text().contains("<Deleted>"), "{}", r.text());
}

#[tokio::test]
async fn multipart_flow() {
    let h = setup().await;
    let r = send(
        &h.svc,
        Req::new("POST", "/bkt/big")
            .q("uploads", "")
            .h("x-amz-meta-a", "b")
            .sign(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.text();
    let id = t
        .split("<UploadId>")
        .nth(1)
        .unwrap()
        .split("</UploadId>")
        .next()
        .unwrap()
        .to_owned();
    let mut etags = Vec::new();
    for (n, data) in [(1, &b"part-one|"[..]), (2, &b"part-two"[..])] {
        let r = send(
            &h.svc,
            Req::new("PUT", "/bkt/big")
                .q("partNumber", &n.to_string())
                .q("uploadId", &id)
                .body(data)
                .sign(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        etags.push(r.header("etag").unwrap().to_owned());
    }
    let r = send(
        &h.svc,
        Req::new("PUT", "/bkt/big")
            .q("partNumber", "0")
            .q("uploadId", &id)
            .body(&b"x"[..])
            .sign(),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = send(
        &h.svc,
        Req::new("GET", "/bkt/big").q("uploadId", &id).sign(),
    )
    .await;
    assert!(
        r.text().contains("<PartNumber>2</PartNumber>"),
        "{}",
        r.text()
    );
    let r = send(&h.svc, Req::new("GET", "/bkt").q("uploads", "").sign()).await;
    assert!(r.text().contains(&id), "{}", r.text());

    let r = send(
        &h.svc,
        Req::new("POST", "/bkt/big")
            .q("uploadId", &id)
            .body("<CompleteMultipartUpload><Part>")
            .sign(),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (400, "MalformedXML"));
    let r = send(
        &h.svc,
        Req::new("POST", "/bkt/big").q("uploadId", &id).sign(),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (400, "MalformedXML"));

    let xml = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{}</ETag></Part>\
         <Part><PartNumber>2</PartNumber><ETag>{}</ETag></Part></CompleteMultipartUpload>",
        etags[0], etags[1]
    );
    let r = send(
        &h.svc,
        Req::new("POST", "/bkt/big")
            .q("uploadId", &id)
            .body(xml)
            .sign(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("-2&quot;") || r.text().contains("-2\""),
        "{}",
        r.text()
    );
    let r = send(&h.svc, Req::new("GET", "/bkt/big").sign()).await;
    assert_eq!(&r.body[..], b"part-one|part-two");
    assert_eq!(r.header("x-amz-meta-a"), Some("b"));
    let r = send(
        &h.svc,
        Req::new("DELETE", "/bkt/big").q("uploadId", &id).sign(),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchUpload"));
}

#[tokio::test]
async fn bucket_encryption_via_s3() {
    let h = setup().await;
    let r = send(&h.svc, Req::new("GET", "/bkt").q("encryption", "").sign()).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (404, "ServerSideEncryptionConfigurationNotFoundError")
    );
    let xml = "<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault>\
               <SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>k9</KMSMasterKeyID>\
               </ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>";
    let md5 = B64.encode(Md5::digest(xml.as_bytes()));
    let r = send(
        &h.svc,
        Req::new("PUT", "/bkt")
            .q("encryption", "")
            .h("content-md5", &md5)
            .body(xml)
            .sign(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(&h.svc, Req::new("GET", "/bkt").q("encryption", "").sign()).await;
    assert!(
        r.text().contains("<SSEAlgorithm>aws:kms</SSEAlgorithm>") && r.text().contains("k9"),
        "{}",
        r.text()
    );
    let r = put(&h, "o", b"x").await;
    assert_eq!(r.header("x-amz-server-side-encryption"), Some("aws:kms"));
    let bad = xml.replace("aws:kms", "rot13");
    let md5 = B64.encode(Md5::digest(bad.as_bytes()));
    let r = send(
        &h.svc,
        Req::new("PUT", "/bkt")
            .q("encryption", "")
            .h("content-md5", &md5)
            .body(bad)
            .sign(),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = send(
        &h.svc,
        Req::new("DELETE", "/bkt").q("encryption", "").sign(),
    )
    .await;
    assert_eq!(r.status, 204);
    let r = send(&h.svc, Req::new("GET", "/bkt").q("encryption", "").sign()).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn audit_records_one_per_request() {
    let h = setup().await;
    put(&h, "a", b"12345").await;
    let r = send(&h.svc, Req::new("GET", "/bkt/a").sign()).await;
    let rid = r.header("x-amz-request-id").unwrap().to_owned();
    let recs = h.recorder.take();
    assert_eq!(recs.len(), 3);
    let ops: Vec<&str> = recs.iter().map(|r| r.operation.as_str()).collect();
    assert_eq!(ops, ["CreateBucket", "PutObject", "GetObject"]);
    let get = &recs[2];
    assert_eq!(get.request_id, rid);
    assert_eq!(
        (get.bucket.as_deref(), get.key.as_deref()),
        (Some("bkt"), Some("a"))
    );
    assert_eq!((get.status, get.bytes_out), (200, 5));
    assert_eq!(recs[1].bytes_in, 5);
    assert_eq!(recs[1].access_key.as_deref(), Some(AK));
}
