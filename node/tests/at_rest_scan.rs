//! Acceptance 4: after uploads whose bodies are full of a random 32-byte marker, no file the
//! server wrote (drives, metadata, logs) contains the marker, nor the local KMS root key (raw,
//! base64, base64url or hex).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use base64::Engine as _;
use common::*;

/// Every way a secret may show up in a file.
fn needles(secret: &[u8]) -> Vec<(String, Vec<u8>)> {
    let e = base64::engine::general_purpose::STANDARD;
    let u = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let s = base64::engine::general_purpose::STANDARD_NO_PAD;
    vec![
        ("raw".into(), secret.to_vec()),
        ("base64".into(), e.encode(secret).into_bytes()),
        ("base64-nopad".into(), s.encode(secret).into_bytes()),
        ("base64url".into(), u.encode(secret).into_bytes()),
        ("hex".into(), hex::encode(secret).into_bytes()),
        ("HEX".into(), hex::encode_upper(secret).into_bytes()),
    ]
}

/// Whether `needle` occurs in `hay` (a plain scan; `needle` is at least a few bytes long).
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let mut from = 0;
    while let Some(i) = hay[from..].iter().position(|&b| b == first) {
        let at = from + i;
        if hay.len() - at < needle.len() {
            return false;
        }
        if &hay[at + 1..at + needle.len()] == rest {
            return true;
        }
        from = at + 1;
    }
    false
}

/// (file, needle name) for every hit under `dir`.
fn scan(dir: &Path, named: &[(String, Vec<u8>)]) -> Vec<(PathBuf, String)> {
    let mut hits = Vec::new();
    for file in TestServer::files_under(dir) {
        let Ok(data) = fs::read(&file) else { continue };
        for (name, needle) in named {
            if contains(&data, needle) {
                hits.push((file.clone(), name.clone()));
            }
        }
    }
    hits
}

/// A body of `len` bytes with the marker every `stride` bytes (and at the very start).
fn marked_body(len: usize, marker: &[u8], stride: usize, seed: u64) -> Vec<u8> {
    let mut body = pseudo_random(len, seed);
    let mut at = 0;
    while at + marker.len() <= len {
        body[at..at + marker.len()].copy_from_slice(marker);
        at += stride;
    }
    body
}

async fn upload_marked(s3: &Client, bucket: &str, marker: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut objects = Vec::new();
    // Sizes around the package size and the multipart minimum.
    for (i, (len, stride)) in [
        (32usize, 32usize),
        (100, 40),
        (PACKAGE - 1, 1000),
        (PACKAGE + 1, 4096),
        (5 * PACKAGE + 17, 333),
        (5 * MIB + 1, 65_537),
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("marked/single-{i}");
        let body = marked_body(len, marker, stride, 300 + i as u64);
        put_bytes(s3, bucket, &key, &body).await;
        objects.push((key, body));
    }
    // A multipart upload; every part is full of markers.
    let p1 = marked_body(5 * MIB, marker, 8192, 401);
    let p2 = marked_body(5 * MIB, marker, 100_003, 402);
    let p3 = marked_body(40, marker, 40, 403);
    multipart_put(s3, bucket, "marked/multipart", &[&p1, &p2, &p3]).await;
    objects.push(("marked/multipart".into(), [p1, p2, p3].concat()));
    // User metadata carrying the marker (as hex: header values are text) is sealed too, on a
    // single PUT, an SSE-C PUT, a pending upload and a copy that replaces the metadata.
    let meta_value = hex::encode(marker);
    let small = marked_body(1000, marker, 100, 406);
    s3.put_object()
        .bucket(bucket)
        .key("marked/with-metadata")
        .metadata("tag", &meta_value)
        .body(ByteStream::from(small.clone()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutObject with metadata: {}", err_text(&e)));
    objects.push(("marked/with-metadata".into(), small.clone()));
    let ssec_key = [0x5au8; 32];
    s3.put_object()
        .bucket(bucket)
        .key("marked/ssec-metadata")
        .metadata("tag", &meta_value)
        .sse_customer_algorithm("AES256")
        .sse_customer_key(base64::engine::general_purpose::STANDARD.encode(ssec_key))
        .sse_customer_key_md5(md5_b64(&ssec_key))
        .body(ByteStream::from(small))
        .send()
        .await
        .unwrap_or_else(|e| panic!("SSE-C PutObject with metadata: {}", err_text(&e)));
    s3.copy_object()
        .bucket(bucket)
        .key("marked/copy-metadata")
        .copy_source(format!("{bucket}/marked/single-0"))
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .metadata("tag", &meta_value)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CopyObject with metadata: {}", err_text(&e)));
    // A server-side copy (the copy is re-encrypted, maybe under another key).
    s3.copy_object()
        .bucket(bucket)
        .key("marked/copy")
        .copy_source(format!("{bucket}/marked/single-4"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("CopyObject: {}", err_text(&e)));
    let copied = objects[4].1.clone();
    objects.push(("marked/copy".into(), copied));
    // An aborted multipart upload leaves nothing readable either.
    let up = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key("marked/aborted")
        .send()
        .await
        .unwrap();
    let id = up.upload_id.unwrap();
    s3.upload_part()
        .bucket(bucket)
        .key("marked/aborted")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(marked_body(MIB, marker, 512, 404)))
        .send()
        .await
        .unwrap_or_else(|e| panic!("UploadPart: {}", err_text(&e)));
    s3.abort_multipart_upload()
        .bucket(bucket)
        .key("marked/aborted")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    // An in-progress multipart upload (never completed) must be encrypted too.
    let up = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key("marked/pending")
        .metadata("tag", &meta_value)
        .send()
        .await
        .unwrap();
    s3.upload_part()
        .bucket(bucket)
        .key("marked/pending")
        .upload_id(up.upload_id.unwrap())
        .part_number(1)
        .body(ByteStream::from(marked_body(MIB, marker, 1024, 405)))
        .send()
        .await
        .unwrap_or_else(|e| panic!("UploadPart: {}", err_text(&e)));
    objects
}

async fn scan_after_uploads(opts: ServerOpts) {
    let mut server = TestServer::start(opts).await;
    let marker = os_random(32);
    let s3 = server.client();
    let bucket = bucket_name("atrest");
    create_bucket(&s3, &bucket).await;
    let objects = upload_marked(&s3, &bucket, &marker).await;
    // The bytes did go in and come out.
    for (key, body) in &objects {
        assert!(contains(body, &marker), "{key} carries the marker");
        let got = get_bytes(&s3, &bucket, key).await;
        assert_same_bytes(&got, body, key);
    }

    // The scanner finds what it should (no false "all clear").
    let canary_dir = tempfile::tempdir().unwrap();
    let mut canary = pseudo_random(10_000, 9);
    canary[7777..7809].copy_from_slice(&marker);
    fs::write(canary_dir.path().join("canary"), &canary).unwrap();
    assert_eq!(
        scan(canary_dir.path(), &needles(&marker)).len(),
        1,
        "scanner self-check"
    );

    let mut secrets = needles(&marker);
    secrets.extend(
        needles(&server.kms_key)
            .into_iter()
            .map(|(n, v)| (format!("KMS root key ({n})"), v)),
    );

    // Scan while running (what is on disk now) and after a graceful stop (everything flushed).
    // The whole test directory is scanned: data dir, drive dirs, audit log and server logs.
    let hits = scan(server.root_dir(), &secrets);
    assert!(
        hits.is_empty(),
        "secrets found at rest while running: {hits:#?}"
    );
    server.stop().await;
    let files = TestServer::files_under(server.root_dir());
    let total: u64 = files
        .iter()
        .filter_map(|f| fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let plaintext: usize = objects.iter().map(|(_, b)| b.len()).sum();
    assert!(
        total as usize >= plaintext,
        "the server stored {total} bytes for {plaintext} bytes of objects: is it writing where \
         the test looks? files: {files:?}"
    );
    let hits = scan(server.root_dir(), &secrets);
    assert!(
        hits.is_empty(),
        "secrets found at rest after stop: {hits:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_or_root_key_at_rest_single_dir() {
    scan_after_uploads(ServerOpts::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_or_root_key_at_rest_four_drives() {
    scan_after_uploads(ServerOpts::with_drives(4)).await;
}
