//! UploadPartCopy across SSE modes and ciphers (SSE-S3 and SSE-C sources into SSE-C and SSE-KMS
//! uploads), its error answers (which add no part), fresh part keys for re-uploaded parts, and
//! ciphertext swapped between objects or parts on disk: an integrity error, never wrong bytes.

mod common;

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_s3::operation::upload_part_copy::builders::UploadPartCopyFluentBuilder;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use common::*;
use serde_json::Value;

/// Shard file header length (docs/format/shards.md).
const SHARD_HEADER: usize = 48;

async fn create_upload(s3: &Client, bucket: &str, key: &str, sse: &Sse) -> String {
    let out = sse
        .create(s3.create_multipart_upload().bucket(bucket).key(key))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "CreateMultipartUpload {bucket}/{key} ({sse}): {}",
                err_text(&e)
            )
        });
    sse.check(
        &SseHeaders::from(&out),
        true,
        &format!("CreateMultipartUpload {bucket}/{key}"),
    );
    out.upload_id.expect("upload id")
}

async fn upload_part(
    s3: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    n: i32,
    sse: &Sse,
    body: &[u8],
) -> String {
    let out = sse
        .part(
            s3.upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(n),
        )
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("UploadPart {n} of {bucket}/{key} ({sse}): {}", err_text(&e)));
    out.e_tag.expect("part ETag")
}

async fn complete(s3: &Client, bucket: &str, key: &str, upload_id: &str, etags: &[String]) {
    let parts: Vec<CompletedPart> = etags
        .iter()
        .enumerate()
        .map(|(i, e)| {
            CompletedPart::builder()
                .part_number(i as i32 + 1)
                .e_tag(e)
                .build()
        })
        .collect();
    s3.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("CompleteMultipartUpload {bucket}/{key}: {}", err_text(&e)));
}

/// (part number, size, ETag) of every part of the upload.
async fn list_parts(
    s3: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Vec<(i32, i64, String)> {
    let out = s3
        .list_parts()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListParts {bucket}/{key}: {}", err_text(&e)));
    out.parts()
        .iter()
        .map(|p| {
            (
                p.part_number.unwrap_or(-1),
                p.size.unwrap_or(-1),
                p.e_tag.clone().unwrap_or_default(),
            )
        })
        .collect()
}

async fn put_with(s3: &Client, bucket: &str, key: &str, sse: &Sse, body: &[u8]) {
    sse.put(s3.put_object().bucket(bucket).key(key))
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {bucket}/{key} ({sse}): {}", err_text(&e)));
}

async fn get_with(s3: &Client, bucket: &str, key: &str, sse: &Sse, what: &str) -> Vec<u8> {
    let out = sse
        .get(s3.get_object().bucket(bucket).key(key))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: GET {bucket}/{key}: {}", err_text(&e)));
    out.body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{what}: GET {bucket}/{key} body: {e}"))
        .into_bytes()
        .to_vec()
}

/// An UploadPartCopy request: `src_sse` gives the copy-source SSE-C headers, `dst_sse` the
/// destination upload's.
#[allow(clippy::too_many_arguments)]
fn part_copy(
    s3: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    n: i32,
    source: &str,
    range: Option<&str>,
    src_sse: &Sse,
    dst_sse: &Sse,
) -> UploadPartCopyFluentBuilder {
    let mut req = s3
        .upload_part_copy()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .part_number(n)
        .copy_source(source);
    if let Some(r) = range {
        req = req.copy_source_range(r);
    }
    dst_sse.part_copy_dst(src_sse.part_copy_src(req))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_copy_from_sse_s3_and_sse_c_into_sse_c_and_kms_uploads() {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let aes = bucket_name("cp-aes");
    let chacha = bucket_name("cp-chacha");
    create_cipher_bucket(&server, &s3, &aes, AES256).await;
    create_cipher_bucket(&server, &s3, &chacha, CHACHA).await;

    let src_size = 6 * MIB + 12_345;
    let src_body = pseudo_random(src_size, 77);
    let sources = [
        ("src/sse-s3", Sse::S3),
        ("src/sse-c", Sse::Customer(CustomerKey::from_seed(901))),
    ];
    for (key, sse) in &sources {
        put_with(&s3, &aes, key, sse, &src_body).await;
    }
    let destinations = [
        (&aes, AES256, Sse::Customer(CustomerKey::from_seed(902))),
        (&chacha, CHACHA, Sse::Kms),
    ];
    // Part 1: a range that starts and ends inside packages, just over 5 MiB; part 2: the rest.
    let first = 4097;
    let last = first + 5 * MIB + 70_000 - 1;
    let want = &src_body[first..];

    for (src_key, src_sse) in &sources {
        for (dst_bucket, cipher, dst_sse) in &destinations {
            let label = format!("{src_sse} source -> {dst_sse} upload in the {cipher} bucket");
            let key = format!("dst/{}-to-{}", src_sse, dst_sse).to_ascii_lowercase();
            let id = create_upload(&s3, dst_bucket, &key, dst_sse).await;
            let range = format!("bytes={first}-{last}");
            let out = part_copy(
                &s3,
                dst_bucket,
                &key,
                &id,
                1,
                &format!("{aes}/{src_key}"),
                Some(&range),
                src_sse,
                dst_sse,
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("{label}: UploadPartCopy {range}: {}", err_text(&e)));
            if dst_sse.customer().is_some() {
                dst_sse.check(
                    &SseHeaders::from(&out),
                    true,
                    &format!("{label}: UploadPartCopy"),
                );
            }
            let etag1 = out
                .copy_part_result
                .and_then(|r| r.e_tag)
                .unwrap_or_else(|| panic!("{label}: UploadPartCopy without an ETag"));
            let etag2 = upload_part(
                &s3,
                dst_bucket,
                &key,
                &id,
                2,
                dst_sse,
                &src_body[last + 1..],
            )
            .await;
            let parts = list_parts(&s3, dst_bucket, &key, &id).await;
            assert_eq!(
                parts,
                vec![
                    (1, (last + 1 - first) as i64, etag1.clone()),
                    (2, (src_size - last - 1) as i64, etag2.clone())
                ],
                "{label}: ListParts"
            );
            complete(&s3, dst_bucket, &key, &id, &[etag1, etag2]).await;

            let got = get_with(&s3, dst_bucket, &key, dst_sse, &label).await;
            assert_same_bytes(
                &got,
                want,
                &format!("{label}: GET with the destination key"),
            );
            let head = dst_sse
                .head(s3.head_object().bucket(*dst_bucket).key(&key))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{label}: HEAD: {}", err_text(&e)));
            assert_eq!(
                head.content_length,
                Some(want.len() as i64),
                "{label}: HEAD length"
            );
            dst_sse.check(&SseHeaders::from(&head), true, &format!("{label}: HEAD"));
            if let Sse::Customer(_) = dst_sse {
                // The copy is under the destination key only.
                let src_as_dst = match src_sse {
                    Sse::Customer(k) => Sse::Customer(k.clone()),
                    _ => Sse::Customer(CustomerKey::from_seed(903)),
                };
                let err = src_as_dst
                    .get(s3.get_object().bucket(*dst_bucket).key(&key))
                    .send()
                    .await
                    .expect_err("GET with another SSE-C key");
                assert_eq!(err_status(&err), Some(403), "{label}: {}", err_text(&err));
            }

            let v = object_view(&server, dst_bucket, &key).await;
            assert_eq!(json_str(&v, "sse"), dst_sse.admin_label(), "{label}: {v}");
            assert_eq!(json_str(&v, "cipher"), *cipher, "{label}: {v}");
            let parts: Vec<u64> = v["segments"]
                .as_array()
                .map(|s| s.iter().filter_map(|s| s["part"].as_u64()).collect())
                .unwrap_or_default();
            assert_eq!(parts, vec![1, 2], "{label}: segments: {v}");
        }
    }
}

/// Runs a request that must fail with `status` (and `code`, if given).
async fn expect_copy_error(
    req: UploadPartCopyFluentBuilder,
    status: u16,
    code: Option<&str>,
    what: &str,
) {
    let err = match req.send().await {
        Ok(out) => panic!("{what}: UploadPartCopy succeeded: {out:?}"),
        Err(e) => e,
    };
    assert_eq!(err_status(&err), Some(status), "{what}: {}", err_text(&err));
    if let Some(code) = code {
        assert_eq!(err_code(&err), code, "{what}: {}", err_text(&err));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_copy_errors_add_no_part() {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let bucket = bucket_name("cp-err");
    create_cipher_bucket(&server, &s3, &bucket, AES256).await;
    let src_size = 300 * KIB;
    let src_body = pseudo_random(src_size, 78);
    let src_sse = Sse::Customer(CustomerKey::from_seed(911));
    put_with(&s3, &bucket, "src", &src_sse, &src_body).await;
    let source = format!("{bucket}/src");

    let dst_sse = Sse::Customer(CustomerKey::from_seed(912));
    let wrong = Sse::Customer(CustomerKey::from_seed(913));
    let key = "dst";
    let id = create_upload(&s3, &bucket, key, &dst_sse).await;
    let ok_range = "bytes=0-102399".to_string();
    let past_end = format!("bytes=100-{src_size}");

    // (what, request builder for part n, status, code)
    let cases = |n: i32| {
        let pc = |range: &str, src: &Sse, dst: &Sse| {
            part_copy(&s3, &bucket, key, &id, n, &source, Some(range), src, dst)
        };
        vec![
            (
                "SSE-C source without the copy-source key",
                pc(&ok_range, &Sse::S3, &dst_sse),
                400,
                Some("InvalidRequest"),
            ),
            (
                "SSE-C source with a wrong copy-source key",
                pc(&ok_range, &wrong, &dst_sse),
                403,
                Some("AccessDenied"),
            ),
            (
                "SSE-C destination upload without its key",
                pc(&ok_range, &src_sse, &Sse::S3),
                400,
                None,
            ),
            (
                "SSE-C destination upload with a wrong key",
                pc(&ok_range, &src_sse, &wrong),
                403,
                None,
            ),
            (
                "copy-source range past the end of the source",
                pc(&past_end, &src_sse, &dst_sse),
                400,
                Some("InvalidArgument"),
            ),
            (
                "copy-source range with first > last",
                pc("bytes=500-100", &src_sse, &dst_sse),
                400,
                Some("InvalidArgument"),
            ),
        ]
    };

    for (what, req, status, code) in cases(1) {
        expect_copy_error(req, status, code, &format!("part 1, no parts yet: {what}")).await;
    }
    assert_eq!(
        list_parts(&s3, &bucket, key, &id).await,
        vec![],
        "failed UploadPartCopy calls must add no part"
    );

    let out = part_copy(
        &s3,
        &bucket,
        key,
        &id,
        1,
        &source,
        Some(&ok_range),
        &src_sse,
        &dst_sse,
    )
    .send()
    .await
    .unwrap_or_else(|e| panic!("UploadPartCopy {ok_range}: {}", err_text(&e)));
    let etag1 = out
        .copy_part_result
        .and_then(|r| r.e_tag)
        .expect("part ETag");
    let want_parts = vec![(1, 102_400i64, etag1.clone())];
    assert_eq!(list_parts(&s3, &bucket, key, &id).await, want_parts);

    // Failures neither add part 2 nor replace part 1.
    for n in [2, 1] {
        for (what, req, status, code) in cases(n) {
            expect_copy_error(req, status, code, &format!("part {n} after part 1: {what}")).await;
        }
    }
    assert_eq!(
        list_parts(&s3, &bucket, key, &id).await,
        want_parts,
        "failed UploadPartCopy calls leave the parts as they were"
    );
    complete(&s3, &bucket, key, &id, &[etag1]).await;
    let got = get_with(&s3, &bucket, key, &dst_sse, "completed after failures").await;
    assert_same_bytes(
        &got,
        &src_body[..102_400],
        "part 1 survives the failed attempts",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuploaded_part_gets_a_new_key_nonce_prefix_and_data_id() {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    for (sse, cipher) in [(Sse::S3, AES256), (Sse::Kms, CHACHA)] {
        let label = format!("{sse} upload in the {cipher} bucket");
        let bucket = bucket_name("reupload");
        create_cipher_bucket(&server, &s3, &bucket, cipher).await;
        let key = "reupload/obj";
        let id = create_upload(&s3, &bucket, key, &sse).await;
        let size = 256 * KIB + 1;
        let first = pseudo_random(size, 61);
        let second = pseudo_random(size, 62);
        // Different data, then the same data again: every attempt gets a fresh key.
        let mut seen: Vec<(String, Value)> = Vec::new();
        for (attempt, body) in [&first, &second, &second].into_iter().enumerate() {
            let etag = upload_part(&s3, &bucket, key, &id, 1, &sse, body).await;
            let v = upload_view(&server, &bucket, &id).await;
            assert_eq!(
                (
                    json_str(&v, "bucket"),
                    json_str(&v, "key"),
                    json_str(&v, "upload_id")
                ),
                (bucket.as_str(), key, id.as_str()),
                "{label}: upload view names the upload: {v}"
            );
            assert_eq!(json_str(&v, "sse"), sse.admin_label(), "{label}: {v}");
            assert_eq!(json_str(&v, "cipher"), cipher, "{label}: {v}");
            let parts = v["parts"].as_array().cloned().unwrap_or_default();
            assert_eq!(
                parts.len(),
                1,
                "{label}: attempt {attempt}: one part 1: {v}"
            );
            let p = parts[0].clone();
            assert_eq!(p["part"].as_u64(), Some(1), "{label}: {p}");
            assert_eq!(p["size"].as_u64(), Some(size as u64), "{label}: {p}");
            assert_eq!(
                json_str(&p, "etag").trim_matches('"'),
                etag.trim_matches('"'),
                "{label}: attempt {attempt}: the view shows the latest part: {p}"
            );
            for field in ["data_id", "nonce_prefix", "key_check"] {
                assert!(
                    !json_str(&p, field).is_empty(),
                    "{label}: attempt {attempt}: no {field}: {p}"
                );
                for (earlier, (_, q)) in seen.iter().enumerate() {
                    assert_ne!(
                        json_str(&p, field),
                        json_str(q, field),
                        "{label}: re-upload {attempt} of part 1 reuses the {field} of attempt \
                         {earlier}"
                    );
                }
            }
            seen.push((etag, p));
        }

        // The replaced part cannot be completed; the latest can, and reads back.
        let stale = seen[0].0.clone();
        let err = s3
            .complete_multipart_upload()
            .bucket(&bucket)
            .key(key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(CompletedPart::builder().part_number(1).e_tag(stale).build())
                    .build(),
            )
            .send()
            .await
            .expect_err("completing with the replaced part's ETag");
        assert_eq!(err_code(&err), "InvalidPart", "{label}: {}", err_text(&err));
        complete(&s3, &bucket, key, &id, &[seen[2].0.clone()]).await;
        let got = get_with(&s3, &bucket, key, &sse, &label).await;
        assert_same_bytes(&got, &second, &format!("{label}: the latest part 1"));
    }
}

// ---- ciphertext swapped on disk -------------------------------------------------------------

/// The single shard file of each segment of `key` (1 drive: k = 1, m = 0, shard 0 only).
async fn shard_paths(server: &TestServer, bucket: &str, key: &str) -> Vec<PathBuf> {
    let v = object_view(server, bucket, key).await;
    let segs = v["segments"].as_array().cloned().unwrap_or_default();
    assert!(!segs.is_empty(), "{bucket}/{key}: no segments: {v}");
    segs.iter()
        .map(|s| {
            assert_eq!(json_str(s, "erasure"), "1+0", "one drive, no parity: {s}");
            let id = json_str(s, "data_id");
            assert!(id.len() >= 2, "data id {id:?}");
            let path = server.drive_dirs[0]
                .join("shards")
                .join(&id[..2])
                .join(format!("{id}.0"));
            assert!(
                path.is_file(),
                "{bucket}/{key}: no shard file {}",
                path.display()
            );
            path
        })
        .collect()
}

/// `dst`'s own header (so it still names its object) followed by `src`'s frames (each with a
/// valid CRC32C): only the AEAD layer can tell the ciphertext belongs elsewhere.
fn splice_frames(header_of: &[u8], frames_of: &[u8]) -> Vec<u8> {
    assert_eq!(
        header_of.len(),
        frames_of.len(),
        "same layout needed for a splice"
    );
    let mut out = header_of[..SHARD_HEADER].to_vec();
    out.extend_from_slice(&frames_of[SHARD_HEADER..]);
    out
}

enum Outcome {
    /// An error status, or the connection failed before a response.
    Refused(String),
    /// The response began but its body broke off; the bytes received before that.
    BrokeOff(Vec<u8>, String),
    /// The body arrived in full.
    Completed(Vec<u8>),
}

/// GETs a tampered object (or a range of it): the answer must be an error — an error status or
/// a body that breaks off — and whatever bytes did arrive must be a prefix of the object's true
/// bytes `truth`. A complete body fails the test, saying whether it was `other`'s bytes.
async fn assert_integrity_error(
    s3: &Client,
    bucket: &str,
    key: &str,
    range: Option<&str>,
    truth: &[u8],
    other: (&str, &[u8]),
    what: &str,
) {
    let attempt = async {
        let mut req = s3.get_object().bucket(bucket).key(key);
        if let Some(r) = range {
            req = req.range(r);
        }
        let mut out = match req.send().await {
            Err(e) => {
                if let Some(s) = err_status(&e) {
                    assert!(s >= 400, "{what}: failed with status {s}: {}", err_text(&e));
                }
                return Outcome::Refused(err_text(&e));
            }
            Ok(out) => out,
        };
        let mut got = Vec::new();
        // At most one chunk per byte; the overall timeout bounds the time.
        for _ in 0..=truth.len().max(other.1.len()) + 1 {
            match out.body.next().await {
                None => return Outcome::Completed(got),
                Some(Ok(chunk)) => got.extend_from_slice(&chunk),
                Some(Err(e)) => return Outcome::BrokeOff(got, e.to_string()),
            }
        }
        Outcome::Completed(got)
    };
    let outcome = tokio::time::timeout(Duration::from_secs(30), attempt)
        .await
        .unwrap_or_else(|_| panic!("{what}: GET neither failed nor finished within 30 s"));
    match outcome {
        Outcome::Refused(e) => eprintln!("{what}: refused as it must be: {e}"),
        Outcome::BrokeOff(got, e) => {
            assert!(
                truth.starts_with(&got),
                "{what}: {} bytes (md5 {}) arrived before the body broke off, and they are \
                 not the object's own bytes",
                got.len(),
                md5_hex(&got)
            );
            eprintln!(
                "{what}: body broke off after {} correct bytes as it must: {e}",
                got.len()
            );
        }
        Outcome::Completed(got) => {
            let (other_name, other_bytes) = other;
            assert_ne!(
                md5_hex(&got),
                md5_hex(other_bytes),
                "{what}: GET returned {other_name}'s bytes"
            );
            if got == truth {
                panic!(
                    "{what}: GET returned the original bytes although the ciphertext was \
                     replaced: the tamper did not hit the file the server reads"
                );
            }
            panic!(
                "{what}: GET completed with {} wrong bytes (md5 {}) instead of failing",
                got.len(),
                md5_hex(&got)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_ciphertext_is_an_integrity_error_never_wrong_bytes() {
    let mut server = TestServer::start(ServerOpts::with_drives(1)).await;
    let s3 = server.client();
    let bucket = bucket_name("swap");
    create_bucket(&s3, &bucket).await;
    let sse = Sse::S3;

    // Single-part objects of the same size (same shard layout): A*'s ciphertext is replaced by
    // B*'s — "file" as a whole file (B's header too), "frames" keeping A's header.
    let size = 200 * KIB;
    let bodies: Vec<(&str, Vec<u8>)> = ["a-file", "b-file", "a-frames", "b-frames"]
        .into_iter()
        .enumerate()
        .map(|(i, k)| (k, pseudo_random(size, 500 + i as u64)))
        .collect();
    for (k, b) in &bodies {
        put_with(&s3, &bucket, k, &sse, b).await;
    }
    // Two-part objects with equal parts: part 1 and part 2 swap their ciphertext.
    let part = 5 * MIB;
    let mut multis: Vec<(&str, Vec<u8>, Vec<u8>)> = Vec::new();
    for (i, k) in ["m-file", "m-frames"].into_iter().enumerate() {
        let p1 = pseudo_random(part, 600 + 2 * i as u64);
        let p2 = pseudo_random(part, 601 + 2 * i as u64);
        multipart_put(&s3, &bucket, k, &[&p1, &p2]).await;
        multis.push((k, p1, p2));
    }

    // Locate the shard files while the server runs, and check the positive control: every
    // object reads back before the tamper.
    let mut single_paths = Vec::new();
    for (k, b) in &bodies {
        let paths = shard_paths(&server, &bucket, k).await;
        assert_eq!(paths.len(), 1, "{k}: one segment");
        single_paths.push(paths[0].clone());
        assert_same_bytes(&get_bytes(&s3, &bucket, k).await, b, &format!("{k} before"));
    }
    let mut multi_paths = Vec::new();
    for (k, p1, p2) in &multis {
        let paths = shard_paths(&server, &bucket, k).await;
        assert_eq!(paths.len(), 2, "{k}: two segments");
        multi_paths.push(paths);
        let want = [p1.as_slice(), p2.as_slice()].concat();
        assert_same_bytes(
            &get_bytes(&s3, &bucket, k).await,
            &want,
            &format!("{k} before"),
        );
    }

    assert!(server.stop().await, "graceful stop before the tamper");
    let read = |p: &PathBuf| fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    let write = |p: &PathBuf, data: &[u8]| {
        fs::write(p, data).unwrap_or_else(|e| panic!("write {}: {e}", p.display()))
    };
    // a-file := b-file (whole file); a-frames := a-frames header + b-frames frames.
    let files: Vec<Vec<u8>> = single_paths.iter().map(read).collect();
    assert!(
        files
            .iter()
            .all(|f| f.len() == files[0].len() && f.len() > SHARD_HEADER),
        "equal-size objects have equal shard files: {:?}",
        files.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert_ne!(
        files[0], files[1],
        "different objects, different ciphertext"
    );
    write(&single_paths[0], &files[1]);
    write(&single_paths[2], &splice_frames(&files[2], &files[3]));
    // m-file: part files swapped whole; m-frames: frames swapped, headers kept.
    let (m1, m2) = (&multi_paths[0], &multi_paths[1]);
    let (f1, f2) = (read(&m1[0]), read(&m1[1]));
    assert_eq!(f1.len(), f2.len(), "equal parts have equal shard files");
    write(&m1[0], &f2);
    write(&m1[1], &f1);
    let (f1, f2) = (read(&m2[0]), read(&m2[1]));
    write(&m2[0], &splice_frames(&f1, &f2));
    write(&m2[1], &splice_frames(&f2, &f1));

    // The data ids whose ciphertext was replaced under their own header: only the AEAD tags
    // can catch those, and the server logs each such package.
    let spliced_ids: Vec<String> = [&single_paths[2], &m2[0], &m2[1]]
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.trim_end_matches(".0").to_string()
        })
        .collect();

    server.restart().await;
    let s3 = server.client();

    for (a, b) in [(0, 1), (2, 3)] {
        let (ka, body_a) = (&bodies[a].0, &bodies[a].1);
        let (kb, body_b) = (&bodies[b].0, &bodies[b].1);
        let what = format!("{ka} carrying {kb}'s ciphertext");
        assert_integrity_error(&s3, &bucket, ka, None, body_a, (kb, body_b), &what).await;
        let (x, y) = (70_000, 140_000);
        assert_integrity_error(
            &s3,
            &bucket,
            ka,
            Some(&format!("bytes={x}-{y}")),
            &body_a[x..=y],
            (kb, &body_b[x..=y]),
            &format!("{what}, range {x}-{y}"),
        )
        .await;
        // The untouched source still reads: the failure is A's alone.
        assert_same_bytes(
            &get_bytes(&s3, &bucket, kb).await,
            body_b,
            &format!("{kb} after the tamper"),
        );
    }
    for (k, p1, p2) in &multis {
        let what = format!("{k} with part 1 and part 2 ciphertext swapped");
        let truth = [p1.as_slice(), p2.as_slice()].concat();
        let swapped = [p2.as_slice(), p1.as_slice()].concat();
        assert_integrity_error(
            &s3,
            &bucket,
            k,
            None,
            &truth,
            ("the swapped parts", &swapped),
            &what,
        )
        .await;
        for (name, off, mine, theirs) in [("part 1", 0, p1, p2), ("part 2", part, p2, p1)] {
            let (x, y) = (100_000, 100_000 + PACKAGE + 10);
            assert_integrity_error(
                &s3,
                &bucket,
                k,
                Some(&format!("bytes={}-{}", off + x, off + y)),
                &mine[x..=y],
                ("the other part", &theirs[x..=y]),
                &format!("{what}, range inside {name}"),
            )
            .await;
        }
    }

    let log: String = TestServer::files_under(server.root_dir())
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("stderr."))
        })
        .map(|p| fs::read_to_string(p).unwrap_or_default())
        .collect();
    for id in &spliced_ids {
        assert!(
            log.lines()
                .any(|l| l.contains("failed authentication") && l.contains(id.as_str())),
            "the AEAD tag should have caught the spliced ciphertext of data id {id}; log:\n{log}"
        );
    }
}
