//! Server-side encryption helpers: the three SSE modes applied to SDK request builders, the SSE
//! response headers they must produce, per-cipher buckets and the admin API's inspect views.
#![allow(dead_code)]

use std::fmt;

use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
use aws_sdk_s3::operation::create_multipart_upload::builders::CreateMultipartUploadFluentBuilder;
use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
use aws_sdk_s3::operation::get_object::builders::GetObjectFluentBuilder;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::head_object::builders::HeadObjectFluentBuilder;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::operation::upload_part::builders::UploadPartFluentBuilder;
use aws_sdk_s3::operation::upload_part::UploadPartOutput;
use aws_sdk_s3::operation::upload_part_copy::builders::UploadPartCopyFluentBuilder;
use aws_sdk_s3::operation::upload_part_copy::UploadPartCopyOutput;
use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::Client;
use base64::Engine as _;
use serde_json::Value;

use super::{create_bucket, TestServer};

/// The local KMS key id the server knows.
pub const KMS_KEY_ID: &str = "coffer-default";
pub const AES256: &str = "AES256";
pub const CHACHA: &str = "CHACHA20-POLY1305";
pub const CIPHERS: [&str; 2] = [AES256, CHACHA];

/// A 32-byte SSE-C key as the headers carry it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerKey {
    pub raw: Vec<u8>,
    /// Base64 of the key (x-amz-server-side-encryption-customer-key).
    pub b64: String,
    /// Base64 of the key's MD5 (x-amz-server-side-encryption-customer-key-MD5).
    pub md5: String,
}

impl CustomerKey {
    /// A deterministic key from `seed`.
    pub fn from_seed(seed: u64) -> CustomerKey {
        CustomerKey::from_raw(super::pseudo_random(32, seed))
    }

    pub fn from_raw(raw: Vec<u8>) -> CustomerKey {
        CustomerKey {
            b64: base64::engine::general_purpose::STANDARD.encode(&raw),
            md5: super::md5_b64(&raw),
            raw,
        }
    }
}

/// One SSE mode as a request asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sse {
    /// SSE-S3 (`x-amz-server-side-encryption: AES256`).
    S3,
    /// SSE-KMS with [`KMS_KEY_ID`].
    Kms,
    /// SSE-C with this key.
    Customer(CustomerKey),
}

impl fmt::Display for Sse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sse::S3 => "SSE-S3",
            Sse::Kms => "SSE-KMS",
            Sse::Customer(_) => "SSE-C",
        })
    }
}

impl Sse {
    /// The admin view's `sse` label for objects written in this mode.
    pub fn admin_label(&self) -> &'static str {
        match self {
            Sse::S3 => "AES256",
            Sse::Kms => "aws:kms",
            Sse::Customer(_) => "SSE-C",
        }
    }

    pub fn customer(&self) -> Option<&CustomerKey> {
        match self {
            Sse::Customer(k) => Some(k),
            _ => None,
        }
    }

    pub fn put(&self, b: PutObjectFluentBuilder) -> PutObjectFluentBuilder {
        match self {
            Sse::S3 => b.server_side_encryption(ServerSideEncryption::Aes256),
            Sse::Kms => b
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(KMS_KEY_ID),
            Sse::Customer(k) => b
                .sse_customer_algorithm("AES256")
                .sse_customer_key(&k.b64)
                .sse_customer_key_md5(&k.md5),
        }
    }

    pub fn create(
        &self,
        b: CreateMultipartUploadFluentBuilder,
    ) -> CreateMultipartUploadFluentBuilder {
        match self {
            Sse::S3 => b.server_side_encryption(ServerSideEncryption::Aes256),
            Sse::Kms => b
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(KMS_KEY_ID),
            Sse::Customer(k) => b
                .sse_customer_algorithm("AES256")
                .sse_customer_key(&k.b64)
                .sse_customer_key_md5(&k.md5),
        }
    }

    /// UploadPart carries only the SSE-C headers (the mode is the upload's).
    pub fn part(&self, b: UploadPartFluentBuilder) -> UploadPartFluentBuilder {
        match self {
            Sse::Customer(k) => b
                .sse_customer_algorithm("AES256")
                .sse_customer_key(&k.b64)
                .sse_customer_key_md5(&k.md5),
            _ => b,
        }
    }

    /// The destination upload's SSE-C headers on UploadPartCopy.
    pub fn part_copy_dst(&self, b: UploadPartCopyFluentBuilder) -> UploadPartCopyFluentBuilder {
        match self {
            Sse::Customer(k) => b
                .sse_customer_algorithm("AES256")
                .sse_customer_key(&k.b64)
                .sse_customer_key_md5(&k.md5),
            _ => b,
        }
    }

    /// The copy source's SSE-C headers on UploadPartCopy.
    pub fn part_copy_src(&self, b: UploadPartCopyFluentBuilder) -> UploadPartCopyFluentBuilder {
        match self {
            Sse::Customer(k) => b
                .copy_source_sse_customer_algorithm("AES256")
                .copy_source_sse_customer_key(&k.b64)
                .copy_source_sse_customer_key_md5(&k.md5),
            _ => b,
        }
    }

    /// GET needs the key only for SSE-C.
    pub fn get(&self, b: GetObjectFluentBuilder) -> GetObjectFluentBuilder {
        match self {
            Sse::Customer(k) => b
                .sse_customer_algorithm("AES256")
                .sse_customer_key(&k.b64)
                .sse_customer_key_md5(&k.md5),
            _ => b,
        }
    }

    pub fn head(&self, b: HeadObjectFluentBuilder) -> HeadObjectFluentBuilder {
        match self {
            Sse::Customer(k) => b
                .sse_customer_algorithm("AES256")
                .sse_customer_key(&k.b64)
                .sse_customer_key_md5(&k.md5),
            _ => b,
        }
    }

    /// Asserts the SSE response headers of a PUT/GET/HEAD/... answer for this mode. With
    /// `customer_headers` false, SSE-C answers are only required not to claim SSE-S3/KMS.
    #[track_caller]
    pub fn check(&self, got: &SseHeaders, customer_headers: bool, what: &str) {
        match self {
            Sse::S3 => {
                assert_eq!(
                    got.sse,
                    Some(ServerSideEncryption::Aes256),
                    "{what}: x-amz-server-side-encryption: {got:?}"
                );
                assert!(
                    got.kms_key_id.is_none(),
                    "{what}: SSE-S3 names a KMS key: {got:?}"
                );
                assert!(
                    got.customer_algorithm.is_none() && got.customer_key_md5.is_none(),
                    "{what}: SSE-S3 answer has SSE-C headers: {got:?}"
                );
            }
            Sse::Kms => {
                assert_eq!(
                    got.sse,
                    Some(ServerSideEncryption::AwsKms),
                    "{what}: x-amz-server-side-encryption: {got:?}"
                );
                assert!(
                    got.kms_key_id
                        .as_deref()
                        .is_some_and(|k| k.ends_with(KMS_KEY_ID)),
                    "{what}: x-amz-server-side-encryption-aws-kms-key-id: {got:?}"
                );
                assert!(
                    got.customer_algorithm.is_none() && got.customer_key_md5.is_none(),
                    "{what}: SSE-KMS answer has SSE-C headers: {got:?}"
                );
            }
            Sse::Customer(k) => {
                assert!(
                    got.sse.is_none() && got.kms_key_id.is_none(),
                    "{what}: SSE-C answer claims SSE-S3/KMS: {got:?}"
                );
                if customer_headers {
                    assert_eq!(
                        got.customer_algorithm.as_deref(),
                        Some("AES256"),
                        "{what}: x-amz-server-side-encryption-customer-algorithm: {got:?}"
                    );
                    assert_eq!(
                        got.customer_key_md5.as_deref(),
                        Some(k.md5.as_str()),
                        "{what}: x-amz-server-side-encryption-customer-key-MD5: {got:?}"
                    );
                }
            }
        }
    }
}

/// The SSE response headers of one answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseHeaders {
    pub sse: Option<ServerSideEncryption>,
    pub kms_key_id: Option<String>,
    pub customer_algorithm: Option<String>,
    pub customer_key_md5: Option<String>,
}

macro_rules! sse_headers_from {
    ($($t:ty),*) => {
        $(impl From<&$t> for SseHeaders {
            fn from(o: &$t) -> Self {
                SseHeaders {
                    sse: o.server_side_encryption.clone(),
                    kms_key_id: o.ssekms_key_id.clone(),
                    customer_algorithm: o.sse_customer_algorithm.clone(),
                    customer_key_md5: o.sse_customer_key_md5.clone(),
                }
            }
        })*
    };
}

sse_headers_from!(
    PutObjectOutput,
    GetObjectOutput,
    HeadObjectOutput,
    CreateMultipartUploadOutput,
    UploadPartOutput,
    UploadPartCopyOutput
);

impl From<&CompleteMultipartUploadOutput> for SseHeaders {
    fn from(o: &CompleteMultipartUploadOutput) -> Self {
        SseHeaders {
            sse: o.server_side_encryption.clone(),
            kms_key_id: o.ssekms_key_id.clone(),
            ..Default::default()
        }
    }
}

/// Creates `bucket` and sets its encryption default (SSE-S3) with the data cipher `cipher`
/// through the admin API.
pub async fn create_cipher_bucket(server: &TestServer, s3: &Client, bucket: &str, cipher: &str) {
    create_bucket(s3, bucket).await;
    let body = format!(r#"{{"enabled":true,"algorithm":"AES256","cipher":"{cipher}"}}"#);
    let path = format!("/api/v1/buckets/{bucket}/encryption");
    let r = server.admin("PUT", &path, body.as_bytes()).await;
    assert!(
        r.status == 200 || r.status == 204,
        "admin PUT {path} {body}: {}",
        r.brief()
    );
    let r = server.admin("GET", &path, b"").await;
    assert_eq!(r.status, 200, "admin GET {path}: {}", r.brief());
    let v: Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("admin GET {path}: not JSON ({e}): {}", r.brief()));
    assert_eq!(
        v["cipher"].as_str(),
        Some(cipher),
        "admin GET {path} reports the cipher just set: {v}"
    );
}

/// An admin GET answered with 200 JSON.
pub async fn admin_json(server: &TestServer, path: &str) -> Value {
    let r = server.admin("GET", path, b"").await;
    assert_eq!(r.status, 200, "admin GET {path}: {}", r.brief());
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("admin GET {path}: not JSON ({e}): {}", r.brief()))
}

/// `GET /api/v1/buckets/{bucket}/objects/{key}` (keys here are plain: letters, digits, `/-._`).
pub async fn object_view(server: &TestServer, bucket: &str, key: &str) -> Value {
    assert!(
        key.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._".contains(&b)),
        "object_view: key {key:?} would need percent-encoding"
    );
    admin_json(server, &format!("/api/v1/buckets/{bucket}/objects/{key}")).await
}

/// `GET /api/v1/buckets/{bucket}/uploads/{upload_id}`.
pub async fn upload_view(server: &TestServer, bucket: &str, upload_id: &str) -> Value {
    let id: String = upload_id
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    admin_json(server, &format!("/api/v1/buckets/{bucket}/uploads/{id}")).await
}

/// A string field of a JSON value, or "" (for assertion-friendly comparisons).
pub fn json_str<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or("")
}
