//! In-process HTTP tests of the S3 surface against an in-memory backend.

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
async fn put_get_round_trip_with_metadata() {
    let h = setup().await;
    let r = send(
        &h.svc,
        Req::new("PUT", "/bkt/dir/file.txt")
            .h("content-type", "text/plain")
            .h("cache-control", "max-age=60")
            .h("x-amz-meta-color", "blue")
            .body(&b"hello world"[..])
            .sign(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let etag = format!("\"{}\"", hex::encode(Md5::digest(b"hello world")));
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(r.header("x-amz-server-side-encryption"), Some("AES256"));
    let r = send(&h.svc, Req::new("GET", "/bkt/dir/file.txt").sign()).await;
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], b"hello world");
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("cache-control"), Some("max-age=60"));
    assert_eq!(r.header("x-amz-meta-color"), Some("blue"));
    assert_eq!(r.header("content-length"), Some("11"));
    let r = send(&h.svc, Req::new("HEAD", "/bkt/dir/file.txt").sign()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("11"));
    assert_eq!(r.header("x-amz-meta-color"), Some("blue"));
    let r = send(&h.svc, Req::new("GET", "/bkt/missing").sign()).await;
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchKey"));
    assert!(r.text().contains("<RequestId>"), "{}", r.text());
}

#[tokio::test]
async fn ranges() {
    let h = setup().await;
    put(&h, "r", b"0123456789").await;
    let get = |range: &'static str| Req::new("GET", "/bkt/r").h("range", range).sign();
    let r = send(&h.svc, get("bytes=0-0")).await;
    assert_eq!((r.status, &r.body[..]), (206, &b"0"[..]));
    assert_eq!(r.header("content-range"), Some("bytes 0-0/10"));
    assert_eq!(r.header("content-length"), Some("1"));
    let r = send(&h.svc, get("bytes=-1")).await;
    assert_eq!((r.status, &r.body[..]), (206, &b"9"[..]));
    assert_eq!(r.header("content-range"), Some("bytes 9-9/10"));
    let r = send(&h.svc, get("bytes=5-")).await;
    assert_eq!((r.status, &r.body[..]), (206, &b"56789"[..]));
    let r = send(&h.svc, get("bytes=8-100")).await;
    assert_eq!((r.status, &r.body[..]), (206, &b"89"[..]));
    let r = send(&h.svc, get("bytes=100-")).await;
    assert_eq!((r.status, r.code().as_str()), (416, "InvalidRange"));
    let r = send(&h.svc, get("bytes=-0")).await;
    assert_eq!((r.status, r.code().as_str()), (416, "InvalidRange"));
    // Malformed: s3s answers 400 before we run (AWS would ignore the header).
    let r = send(&h.svc, get("bytes=abc")).await;
    assert_eq!(r.status, 400);
    let r = send(
        &h.svc,
        Req::new("HEAD", "/bkt/r").h("range", "bytes=2-4").sign(),
    )
    .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 2-4/10"));
    assert_eq!(r.header("content-length"), Some("3"));
}

#[tokio::test]
async fn conditional_reads() {
    let h = setup().await;
    let r = put(&h, "c", b"abc").await;
    let etag = r.header("etag").unwrap().to_owned();
    let r = send(
        &h.svc,
        Req::new("GET", "/bkt/c").h("if-none-match", &etag).sign(),
    )
    .await;
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let r = send(
        &h.svc,
        Req::new("HEAD", "/bkt/c").h("if-none-match", &etag).sign(),
    )
    .await;
    assert_eq!(r.status, 304);
    let r = send(
        &h.svc,
        Req::new("GET", "/bkt/c").h("if-match", "\"nope\"").sign(),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (412, "PreconditionFailed"));
    let r = send(
        &h.svc,
        Req::new("GET", "/bkt/c").h("if-match", &etag).sign(),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(
        &h.svc,
        Req::new("GET", "/bkt/c")
            .h("if-modified-since", "Fri, 01 Jan 2100 00:00:00 GMT")
            .sign(),
    )
    .await;
    assert_eq!(r.status, 304);
    let r = send(
        &h.svc,
        Req::new("GET", "/bkt/c")
            .h("if-unmodified-since", "Mon, 01 Jan 2001 00:00:00 GMT")
            .sign(),
    )
    .await;
    assert_eq!(r.status, 412);
}

#[tokio::test]
async fn digests_and_checksums() {
    let h = setup().await;
    let wrong_md5 = B64.encode(Md5::digest(b"other"));
    let r = send(
        &h.svc,
        Req::new("PUT", "/bkt/m")
            .h("content-md5", &wrong_md5)
            .body(&b"data"[..])
            .sign(),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (400, "BadDigest"));
    let r = send(&h.svc, Req::new("GET", "/bkt/m").sign()).await;
    assert_eq!(r.status, 404, "nothing may be stored after a bad digest");
    let r = send(
        &h.svc,
        Req::new("PUT", "/bkt/m")
            .h("content-md5", "***")
            .body(&b"data"[..])
            .sign(),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidDigest"));
    let good_md5 = B64.encode(Md5::digest(b"data"));
    let r = send(
        &h.svc,
        Req::new("PUT", "/bkt/m")
            .h("content-md5", &good_md5)
            .body(&b"data"[..])
            .sign(),
    )
    .await;
    assert_eq!(r.status, 200);

    let crc = B64.encode(crc32fast::hash(b"data").to_be_bytes());
    let r = send(
        &h.svc,
        Req::new("PUT", "/bkt/c")
            .h("x-amz-checksum-crc32", &crc)
            .body(&b"data"[..])
            .sign(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-checksum-crc32"), Some(crc.as_str()));
    let bad = B64.encode(crc32fast::hash(b"nope").to_be_bytes());
    let r = send(
        &h.svc,
        Req::new("PUT", "/bkt/c2")
            .h("x-amz-checksum-crc32", &bad)
            .body(&b"data"[..])
            .sign(),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (400, "BadDigest"));
    assert!(r.text().contains("CRC32"));
    let r = send(&h.svc, Req::new("GET", "/bkt/c2").sign()).await;
    assert_eq!(r.status, 404);
}

fn chunked_trailer_body(data: &[u8], trailer_crc: u32) -> Vec<u8> {
    let mut body = Vec::new();
    for chunk in data.chunks(7) {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n");
    body.extend_from_slice(
        format!(
            "x-amz-checksum-crc32:{}\r\n\r\n",
            B64.encode(trailer_crc.to_be_bytes())
        )
        .as_bytes(),
    );
    body
}

fn chunked_put(path: &str, data: &[u8], crc: u32) -> Req {
    Req::new("PUT", path)
        .h("content-encoding", "aws-chunked")
        .h("x-amz-decoded-content-length", &data.len().to_string())
        .h("x-amz-trailer", "x-amz-checksum-crc32")
        .h("x-amz-sdk-checksum-algorithm", "CRC32")
        .body(chunked_trailer_body(data, crc))
        .sign_with(AK, SK, Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER"))
}

#[tokio::test]
async fn aws_chunked_unsigned_trailer_like_the_sdks() {
    let h = setup().await;
    let data = b"the quick brown fox jumps over the lazy dog";
    let r = send(
        &h.svc,
        chunked_put("/bkt/chunked", data, crc32fast::hash(data)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(&h.svc, Req::new("GET", "/bkt/chunked").sign()).await;
    assert_eq!(&r.body[..], data);

    let r = send(
        &h.svc,
        chunked_put("/bkt/chunked-bad", data, crc32fast::hash(b"x")),
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "BadDigest"),
        "{}",
        r.text()
    );
    let r = send(&h.svc, Req::new("GET", "/bkt/chunked-bad").sign()).await;
    assert_eq!(r.status, 404);
}

fn ssec_headers(req: Req, key: &[u8; 32]) -> Req {
    req.h("x-amz-server-side-encryption-customer-algorithm", "AES256")
        .h(
            "x-amz-server-side-encryption-customer-key",
            &B64.encode(key),
        )
        .h(
            "x-amz-server-side-encryption-customer-key-md5",
            &B64.encode(Md5::digest(key)),
        )
}

#[tokio::test]
async fn sse_c_and_sse_headers() {
    let h = setup().await;
    let key = [9u8; 32];
    let r = send(
        &h.svc,
        ssec_headers(Req::new("PUT", "/bkt/secret").body(&b"s3cr3t"[..]), &key).sign(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("x-amz-server-side-encryption-customer-algorithm"),
        Some("AES256")
    );
    assert!(r.header("x-amz-server-side-encryption").is_none());
    let r = send(&h.svc, Req::new("GET", "/bkt/secret").sign()).await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidRequest"));
    let r = send(
        &h.svc,
        ssec_headers(Req::new("GET", "/bkt/secret"), &[1u8; 32]).sign(),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (403, "AccessDenied"));
    let r = send(
        &h.svc,
        ssec_headers(Req::new("GET", "/bkt/secret"), &key).sign(),
    )
    .await;
    assert_eq!((r.status, &r.body[..]), (200, &b"s3cr3t"[..]));

    let bad_md5 = Req::new("PUT", "/bkt/x")
        .h("x-amz-server-side-encryption-customer-algorithm", "AES256")
        .h(
            "x-amz-server-side-encryption-customer-key",
            &B64.encode(key),
        )
        .h(
            "x-amz-server-side-encryption-customer-key-md5",
            &B64.encode(Md5::digest(b"nope")),
        )
        .sign();
    let r = send(&h.svc, bad_md5).await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidArgument"));
    let both = ssec_headers(
        Req::new("PUT", "/bkt/x").h("x-amz-server-side-encryption", "AES256"),
        &key,
    )
    .sign();
    assert_eq!(send(&h.svc, both).await.code(), "InvalidArgument");
    let r = send(
        &h.svc,
        Req::new("PUT", "/bkt/x")
            .h("x-amz-server-side-encryption", "rot13")
            .sign(),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidArgument"));
    let r = send(
        &h.svc,
        Req::new("PUT", "/bkt/k")
            .h("x-amz-server-side-encryption", "aws:kms")
            .h("x-amz-server-side-encryption-aws-kms-key-id", "key-1")
            .sign(),
    )
    .await;
    assert_eq!(r.header("x-amz-server-side-encryption"), Some("aws:kms"));
    assert_eq!(
        r.header("x-amz-server-side-encryption-aws-kms-key-id"),
        Some("key-1")
    );
    let r = send(
        &h.svc,
        Req::new("PUT", "/bkt/k")
            .h("x-amz-server-side-encryption", "aws:kms")
            .h("x-amz-server-side-encryption-aws-kms-key-id", "missing")
            .sign(),
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "KMS.NotFoundException")
    );
    assert_eq!(h.backend.writes.load(Ordering::SeqCst), 3);
}

/// A body that cannot be read now fails before the status line: 503, not a 200 that breaks off.
#[tokio::test]
async fn get_of_unreachable_data_is_503_before_any_byte() {
    let h = setup().await;
    assert_eq!(put(&h, "k", b"some bytes").await.status, 200);
    h.backend.unreachable_data.store(true, Ordering::SeqCst);
    let r = send(&h.svc, Req::new("GET", "/bkt/k").sign()).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.text().contains("<Code>ServiceUnavailable</Code>"),
        "{}",
        r.text()
    );
    // A HEAD reads no data and still answers.
    assert_eq!(
        send(&h.svc, Req::new("HEAD", "/bkt/k").sign()).await.status,
        200
    );
    h.backend.unreachable_data.store(false, Ordering::SeqCst);
    let r = send(&h.svc, Req::new("GET", "/bkt/k").sign()).await;
    assert_eq!((r.status, &r.body[..]), (200, &b"some bytes"[..]));
}

#[tokio::test]
async fn copy_object_with_encoded_source() {
    let h = setup().await;
    let r = send(
        &h.svc,
        Req::new("PUT", "/bkt/dir/a%20b.txt")
            .h("x-amz-meta-k", "v")
            .body(&b"copy me"[..])
            .sign(),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(
        &h.svc,
        Req::new("PUT", "/bkt/c1")
            .h("x-amz-copy-source", "/bkt/dir/a%20b.txt")
            .sign(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<ETag>"));
    let r = send(&h.svc, Req::new("GET", "/bkt/c1").sign()).await;
    assert_eq!(
        (&r.body[..], r.header("x-amz-meta-k")),
        (&b"copy me"[..], Some("v"))
    );
    let r = send(
        &h.svc,
        Req::new("PUT", "/bkt/c2")
            .h("x-amz-copy-source", "bkt/dir/a%20b.txt")
            .h("x-amz-metadata-directive", "REPLACE")
            .h("x-amz-meta-new", "1")
            .sign(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(&h.svc, Req::new("HEAD", "/bkt/c2").sign()).await;
    assert_eq!(
        (r.header("x-amz-meta-k"), r.header("x-amz-meta-new")),
        (None, Some("1"))
    );
    let r = send(
        &h.svc,
        Req::new("PUT", "/bkt/c1")
            .h("x-amz-copy-source", "/bkt/c1")
            .sign(),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidRequest"));
    let r = send(
        &h.svc,
        Req::new("PUT", "/bkt/c3")
            .h("x-amz-copy-source", "/bkt/c1")
            .h("x-amz-copy-source-if-match", "\"zz\"")
            .sign(),
    )
    .await;
    assert_eq!(r.status, 412);
    let r = send(
        &h.svc,
        Req::new("PUT", "/bkt/c3")
            .h("x-amz-copy-source", "/bkt/none")
            .sign(),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchKey"));
}

#[tokio::test]
async fn payload_hash_mismatch_is_a_client_error() {
    let h = setup().await;
    // Signed for other bytes than sent: s3s's SHA-256 check fails mid-stream → 400, nothing stored.
    let other = sha256_hex(b"other");
    let r = send(
        &h.svc,
        Req::new("PUT", "/bkt/p")
            .body(&b"data"[..])
            .sign_with(AK, SK, Some(&other)),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = send(&h.svc, Req::new("GET", "/bkt/p").sign()).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn aws_chunked_signed_payload_with_checksum_header() {
    let h = setup().await;
    let data = b"signed chunked payload body";
    let crc = B64.encode(crc32fast::hash(data).to_be_bytes());
    let req = Req::new("PUT", "/bkt/signed")
        .h("content-encoding", "aws-chunked")
        .h("x-amz-decoded-content-length", &data.len().to_string())
        .h("x-amz-checksum-crc32", &crc);
    let r = send(&h.svc, req.sign_chunked(data, 10)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-checksum-crc32"), Some(crc.as_str()));
    let r = send(&h.svc, Req::new("GET", "/bkt/signed").sign()).await;
    assert_eq!(&r.body[..], data);

    let bad = B64.encode(crc32fast::hash(b"nope").to_be_bytes());
    let req = Req::new("PUT", "/bkt/signed2")
        .h("content-encoding", "aws-chunked")
        .h("x-amz-decoded-content-length", &data.len().to_string())
        .h("x-amz-checksum-crc32", &bad);
    let r = send(&h.svc, req.sign_chunked(data, 10)).await;
    assert_eq!((r.status, r.code().as_str()), (400, "BadDigest"));
}
