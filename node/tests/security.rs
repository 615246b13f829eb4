//! Acceptance 3 through the Rust SDK and raw HTTP: presigned GET/PUT, expired presigned URLs,
//! wrong secret, unknown key, anonymous requests, Content-MD5 mismatches; and never a 5xx.
//! (Malformed CompleteMultipartUpload XML is sent by tests/python/test_errors.py with a raw
//! signed request.)

mod common;

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use common::*;

async fn send_presigned(p: &aws_sdk_s3::presigning::PresignedRequest, body: &[u8]) -> RawResponse {
    let (addr, path) = split_url(p.uri());
    let headers: Vec<(String, String)> = p
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    http_request(&addr, p.method(), &path, &refs, body)
        .await
        .unwrap_or_else(|e| panic!("presigned {} {path}: {e}", p.method()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_get_and_put() {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let signer = server.presign_client();
    let bucket = bucket_name("presign");
    create_bucket(&s3, &bucket).await;
    let body = pseudo_random(2 * PACKAGE + 10, 1);
    put_bytes(&s3, &bucket, "get-me", &body).await;

    let ten_min = PresigningConfig::expires_in(Duration::from_secs(600)).unwrap();
    let get = signer
        .get_object()
        .bucket(&bucket)
        .key("get-me")
        .presigned(ten_min.clone())
        .await
        .expect("presign GET");
    let r = send_presigned(&get, b"").await;
    assert_eq!(r.status, 200, "presigned GET: {}", r.brief());
    assert_same_bytes(&r.body, &body, "presigned GET body");

    let put_body = pseudo_random(PACKAGE + 3, 2);
    let put = signer
        .put_object()
        .bucket(&bucket)
        .key("put-me")
        .presigned(ten_min.clone())
        .await
        .expect("presign PUT");
    let r = send_presigned(&put, &put_body).await;
    assert_eq!(r.status, 200, "presigned PUT: {}", r.brief());
    assert_same_bytes(
        &get_bytes(&s3, &bucket, "put-me").await,
        &put_body,
        "presigned PUT",
    );

    // A tampered signature is refused.
    let (addr, path) = split_url(get.uri());
    let sig_at = path.find("X-Amz-Signature=").expect("signature in query") + 16;
    let mut tampered = path.clone();
    let flip = if &path[sig_at..sig_at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    tampered.replace_range(sig_at..sig_at + 1, flip);
    let r = http_request(&addr, "GET", &tampered, &[], b"")
        .await
        .unwrap();
    assert_eq!(r.status, 403, "tampered presigned URL: {}", r.brief());
    assert_eq!(r.s3_error_code().as_deref(), Some("SignatureDoesNotMatch"));

    // A presigned GET cannot be used as a PUT.
    let r = http_request(&addr, "PUT", &path, &[], b"sneaky")
        .await
        .unwrap();
    assert_eq!(r.status, 403, "presigned GET used for PUT: {}", r.brief());
    assert_same_bytes(
        &get_bytes(&s3, &bucket, "get-me").await,
        &body,
        "object after misuse",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_presigned_url_is_forbidden() {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let bucket = bucket_name("expired");
    create_bucket(&s3, &bucket).await;
    put_bytes(&s3, &bucket, "k", b"secret contents").await;
    let one_sec = PresigningConfig::expires_in(Duration::from_secs(1)).unwrap();
    let get = server
        .presign_client()
        .get_object()
        .bucket(&bucket)
        .key("k")
        .presigned(one_sec.clone())
        .await
        .unwrap();
    let put = server
        .presign_client()
        .put_object()
        .bucket(&bucket)
        .key("k")
        .presigned(one_sec)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = send_presigned(&get, b"").await;
    assert_eq!(r.status, 403, "expired presigned GET: {}", r.brief());
    assert_eq!(
        r.s3_error_code().as_deref(),
        Some("AccessDenied"),
        "{}",
        r.brief()
    );
    assert!(!r.text().contains("secret contents"));
    let r = send_presigned(&put, b"overwritten").await;
    assert_eq!(r.status, 403, "expired presigned PUT: {}", r.brief());
    assert_eq!(get_bytes(&s3, &bucket, "k").await, b"secret contents");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_and_unknown_key() {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let bucket = bucket_name("auth");
    create_bucket(&s3, &bucket).await;
    put_bytes(&s3, &bucket, "k", b"v").await;

    let wrong_secret = server.client_with(ACCESS_KEY, "not-the-secret-at-all-0000000000");
    let err = wrong_secret
        .get_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .expect_err("wrong secret");
    assert_eq!(
        err_code(&err),
        "SignatureDoesNotMatch",
        "{}",
        err_text(&err)
    );
    assert_eq!(err_status(&err), Some(403));
    let err = wrong_secret
        .put_object()
        .bucket(&bucket)
        .key("k")
        .body(ByteStream::from_static(b"evil"))
        .send()
        .await
        .expect_err("PUT with wrong secret");
    assert_eq!(
        err_code(&err),
        "SignatureDoesNotMatch",
        "{}",
        err_text(&err)
    );
    let err = wrong_secret
        .list_buckets()
        .send()
        .await
        .expect_err("ListBuckets with wrong secret");
    assert_eq!(
        err_code(&err),
        "SignatureDoesNotMatch",
        "{}",
        err_text(&err)
    );

    let unknown = server.client_with("NOSUCHACCESSKEY00000", SECRET_KEY);
    let err = unknown
        .get_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .expect_err("unknown key");
    assert_eq!(err_code(&err), "InvalidAccessKeyId", "{}", err_text(&err));
    assert_eq!(err_status(&err), Some(403));
    let err = unknown
        .list_buckets()
        .send()
        .await
        .expect_err("ListBuckets with unknown key");
    assert_eq!(err_code(&err), "InvalidAccessKeyId", "{}", err_text(&err));

    assert_eq!(
        get_bytes(&s3, &bucket, "k").await,
        b"v",
        "nothing was overwritten"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_are_denied() {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let bucket = bucket_name("anon");
    create_bucket(&s3, &bucket).await;
    put_bytes(&s3, &bucket, "k", b"private").await;
    let addr = server.s3_addr();

    let none: &[u8] = b"";
    let cases: [(&str, String, &[u8]); 6] = [
        ("GET", "/".to_string(), none),
        ("GET", format!("/{bucket}"), none),
        ("GET", format!("/{bucket}?list-type=2"), none),
        ("GET", format!("/{bucket}/k"), none),
        ("PUT", format!("/{bucket}/anon-put"), &b"anonymous data"[..]),
        ("DELETE", format!("/{bucket}/k"), none),
    ];
    for (method, path, body) in cases {
        let r = http_request(&addr, method, &path, &[], body).await.unwrap();
        assert_eq!(r.status, 403, "anonymous {method} {path}: {}", r.brief());
        assert_eq!(
            r.s3_error_code().as_deref(),
            Some("AccessDenied"),
            "anonymous {method} {path}: {}",
            r.brief()
        );
    }
    let r = http_request(&addr, "HEAD", &format!("/{bucket}/k"), &[], b"")
        .await
        .unwrap();
    assert_eq!(r.status, 403, "anonymous HEAD");
    assert_eq!(get_bytes(&s3, &bucket, "k").await, b"private");
    let err = s3
        .head_object()
        .bucket(&bucket)
        .key("anon-put")
        .send()
        .await
        .expect_err("no anon put");
    assert_eq!(err_status(&err), Some(404));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_md5_is_checked() {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let bucket = bucket_name("md5");
    create_bucket(&s3, &bucket).await;
    let body = pseudo_random(PACKAGE + 1, 5);

    // Right MD5: stored.
    s3.put_object()
        .bucket(&bucket)
        .key("good")
        .content_md5(md5_b64(&body))
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT with the right Content-MD5: {}", err_text(&e)));
    assert_same_bytes(&get_bytes(&s3, &bucket, "good").await, &body, "good");

    // Wrong MD5 (well-formed): BadDigest, nothing stored.
    let err = s3
        .put_object()
        .bucket(&bucket)
        .key("bad")
        .content_md5(md5_b64(b"some other body"))
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .expect_err("wrong Content-MD5");
    assert_eq!(err_code(&err), "BadDigest", "{}", err_text(&err));
    assert_eq!(err_status(&err), Some(400));
    let err = s3
        .head_object()
        .bucket(&bucket)
        .key("bad")
        .send()
        .await
        .expect_err("nothing stored");
    assert_eq!(err_status(&err), Some(404), "{}", err_text(&err));

    // Wrong MD5 over an existing object: the old one stays.
    let err = s3
        .put_object()
        .bucket(&bucket)
        .key("good")
        .content_md5(md5_b64(b"another body"))
        .body(ByteStream::from(pseudo_random(100, 6)))
        .send()
        .await
        .expect_err("wrong Content-MD5 over an existing object");
    assert_eq!(err_code(&err), "BadDigest", "{}", err_text(&err));
    assert_same_bytes(
        &get_bytes(&s3, &bucket, "good").await,
        &body,
        "good after bad overwrite",
    );

    // Not base64 / wrong length: InvalidDigest (400), nothing stored.
    let err = s3
        .put_object()
        .bucket(&bucket)
        .key("invalid")
        .content_md5("this is not an md5!")
        .body(ByteStream::from_static(b"data"))
        .send()
        .await
        .expect_err("malformed Content-MD5");
    assert_eq!(err_status(&err), Some(400), "{}", err_text(&err));
    let code = err_code(&err);
    assert!(
        code == "InvalidDigest" || code == "BadDigest",
        "{}",
        err_text(&err)
    );
    let err = s3
        .head_object()
        .bucket(&bucket)
        .key("invalid")
        .send()
        .await
        .expect_err("nothing");
    assert_eq!(err_status(&err), Some(404));

    // Wrong MD5 on a multipart part: BadDigest, and the upload has no such part.
    let up = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key("mp")
        .send()
        .await
        .unwrap();
    let id = up.upload_id.unwrap();
    let err = s3
        .upload_part()
        .bucket(&bucket)
        .key("mp")
        .upload_id(&id)
        .part_number(1)
        .content_md5(md5_b64(b"nope"))
        .body(ByteStream::from(pseudo_random(1000, 7)))
        .send()
        .await
        .expect_err("part with wrong Content-MD5");
    assert_eq!(err_code(&err), "BadDigest", "{}", err_text(&err));
    let parts = s3
        .list_parts()
        .bucket(&bucket)
        .key("mp")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert!(
        parts.parts().is_empty(),
        "a part with a bad digest was kept"
    );
    s3.abort_multipart_upload()
        .bucket(&bucket)
        .key("mp")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_requests_never_get_a_5xx() {
    // A grab bag of unusual but not malicious requests: each must get a 2xx/3xx/4xx.
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let bucket = bucket_name("odd");
    create_bucket(&s3, &bucket).await;
    put_bytes(&s3, &bucket, "k", b"value").await;

    let e = s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect_err("bucket exists");
    assert_not_5xx(&e, "CreateBucket twice");
    let e = s3
        .create_bucket()
        .bucket("Bad_Bucket_Name")
        .send()
        .await
        .expect_err("bad name");
    assert_not_5xx(&e, "CreateBucket with an invalid name");
    let e = s3
        .delete_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect_err("not empty");
    assert_eq!(err_code(&e), "BucketNotEmpty", "{}", err_text(&e));
    let e = s3
        .delete_bucket()
        .bucket("never-made-this-one")
        .send()
        .await
        .expect_err("missing");
    assert_eq!(err_code(&e), "NoSuchBucket", "{}", err_text(&e));
    let e = s3
        .upload_part()
        .bucket(&bucket)
        .key("k")
        .upload_id("no-such-upload-id")
        .part_number(1)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect_err("unknown upload id");
    assert_eq!(err_code(&e), "NoSuchUpload", "{}", err_text(&e));
    let e = s3
        .copy_object()
        .bucket(&bucket)
        .key("dst")
        .copy_source(format!("{bucket}/missing"))
        .send()
        .await
        .expect_err("copy from a missing key");
    assert_not_5xx(&e, "CopyObject from a missing key");
    let e = s3
        .get_object()
        .bucket(&bucket)
        .key("k")
        .range("bytes=abc")
        .send()
        .await;
    if let Err(e) = e {
        assert_not_5xx(&e, "GET with a nonsense Range");
    }

    // Raw, signed-looking garbage.
    let addr = server.s3_addr();
    let junk_auth = [("Authorization", "AWS4-HMAC-SHA256 Credential=garbage")];
    let r = http_request(&addr, "GET", &format!("/{bucket}/k"), &junk_auth, b"")
        .await
        .unwrap();
    assert!(
        (400..500).contains(&r.status),
        "junk Authorization: {} {}",
        r.status,
        r.brief()
    );
    // The HTTP layer may also just close the connection on a request line it cannot parse.
    if let Ok(r) = http_request(&addr, "GET", "/%ZZ/%%", &[], b"").await {
        assert!(
            r.status < 500,
            "bad percent-encoding: {} {}",
            r.status,
            r.brief()
        );
    }
    let r = http_request(&addr, "POST", &format!("/{bucket}/k?uploads"), &[], b"")
        .await
        .unwrap();
    assert!(
        (400..500).contains(&r.status),
        "anonymous CreateMultipartUpload: {}",
        r.status
    );
    assert_eq!(get_bytes(&s3, &bucket, "k").await, b"value");
}
