//! Data helpers: deterministic bodies, digests, and thin wrappers over the S3 SDK calls.
#![allow(dead_code)]

use aws_sdk_s3::Client;
use base64::Engine as _;

/// The SDK's error type for one operation.
pub type SdkErr<E> = aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>;

/// Deterministic pseudo-random bytes (xorshift64*), so every run uploads the same bodies.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

pub fn md5_b64(data: &[u8]) -> String {
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(data))
}

/// Asserts byte equality without printing megabytes on failure.
#[track_caller]
pub fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first_diff = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes (md5 {}), want {} bytes (md5 {}); first difference at {:?}",
            got.len(),
            md5_hex(got),
            want.len(),
            md5_hex(want),
            first_diff
        );
    }
}

/// A bucket name unique within this process run.
pub fn bucket_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Reads a whole object.
pub async fn get_bytes(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {bucket}/{key}: {}", err_text(&e)));
    out.body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("GET {bucket}/{key} body: {e}"))
        .into_bytes()
        .to_vec()
}

/// Reads a byte range ("bytes=a-b").
pub async fn get_range(client: &Client, bucket: &str, key: &str, range: &str) -> Vec<u8> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(range)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {bucket}/{key} {range}: {}", err_text(&e)));
    out.body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("GET {bucket}/{key} {range} body: {e}"))
        .into_bytes()
        .to_vec()
}

pub async fn put_bytes(client: &Client, bucket: &str, key: &str, body: &[u8]) -> String {
    let out = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {bucket}/{key} ({} B): {}", body.len(), err_text(&e)));
    out.e_tag.unwrap_or_default()
}

pub async fn create_bucket(client: &Client, bucket: &str) {
    client
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateBucket {bucket}: {}", err_text(&e)));
}

/// A multipart upload of the given parts; returns the completed ETag.
pub async fn multipart_put(client: &Client, bucket: &str, key: &str, parts: &[&[u8]]) -> String {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let created = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateMultipartUpload: {}", err_text(&e)));
    let upload_id = created.upload_id.expect("upload id");
    let mut done = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .part_number(n)
            .body(aws_sdk_s3::primitives::ByteStream::from(part.to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("UploadPart {n}: {}", err_text(&e)));
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag.expect("part etag"))
                .build(),
        );
    }
    let out = client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("CompleteMultipartUpload: {}", err_text(&e)));
    out.e_tag.unwrap_or_default()
}

/// HTTP status of an SDK error (if a response came back).
pub fn err_status<E>(e: &SdkErr<E>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// S3 error code of an SDK error ("NoSuchKey", "SignatureDoesNotMatch", ...).
pub fn err_code<E>(e: &SdkErr<E>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    use aws_sdk_s3::error::ProvideErrorMetadata;
    e.code().unwrap_or("").to_string()
}

/// Readable description of an SDK error, with status and body when there was a response.
pub fn err_text<E>(e: &SdkErr<E>) -> String
where
    E: std::error::Error + 'static,
{
    let mut s = format!("{}", aws_sdk_s3::error::DisplayErrorContext(e));
    if let Some(r) = e.raw_response() {
        s.push_str(&format!(" [HTTP {}]", r.status().as_u16()));
        if let Some(b) = r.body().bytes() {
            s.push_str(&format!(
                " body: {}",
                String::from_utf8_lossy(&b[..b.len().min(2000)])
            ));
        }
    }
    s
}

/// Panics if a failed call's response was a 5xx.
#[track_caller]
pub fn assert_not_5xx<E>(e: &SdkErr<E>, what: &str)
where
    E: std::error::Error + 'static,
{
    if let Some(s) = err_status(e) {
        assert!(s < 500, "{what}: server error {s}: {}", err_text(e));
    }
}
