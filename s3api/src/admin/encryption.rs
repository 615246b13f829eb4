//! `PUT|GET|DELETE /api/v1/buckets/{bucket}/encryption`: a bucket's default encryption and the
//! data cipher of its new objects.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{authorize, error_response, store_error, AdminState};
use crate::backend::{Backend, BucketEncryption, DataCipher, SseAlgorithm};
use crate::s3::encryption_from_parts;

/// `"algorithm"` value that means SSE-S3 sealed with ChaCha20-Poly1305.
const CHACHA_ALGORITHM: &str = "CHACHA20-POLY1305";

fn encryption_json(cfg: Option<&BucketEncryption>) -> serde_json::Value {
    match cfg {
        None => json!({ "enabled": false }),
        Some(c) => {
            let algorithm = match c.algorithm {
                SseAlgorithm::Aes256 => "AES256",
                SseAlgorithm::AwsKms => "aws:kms",
            };
            json!({
                "enabled": true,
                "algorithm": algorithm,
                "cipher": c.cipher.name(),
                "kms_key_id": c.kms_key_id,
                "bucket_key_enabled": c.bucket_key_enabled,
            })
        }
    }
}

pub(super) async fn get_encryption<B: Backend>(
    State(st): State<Arc<AdminState<B>>>,
    Path(bucket): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(resp) = authorize(&st.token, &headers) {
        return *resp;
    }
    match st.backend.get_bucket_encryption(&bucket).await {
        Ok(cfg) => Json(encryption_json(cfg.as_ref())).into_response(),
        Err(e) => store_error(e),
    }
}

/// The PUT body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EncryptionBody {
    enabled: bool,
    #[serde(default)]
    algorithm: Option<String>,
    #[serde(default)]
    kms_key_id: Option<String>,
    #[serde(default)]
    cipher: Option<String>,
    #[serde(default)]
    bucket_key_enabled: Option<bool>,
}

/// Validates an enabled body into a configuration.
fn parse_body(body: EncryptionBody) -> Result<BucketEncryption, String> {
    let algorithm = body
        .algorithm
        .as_deref()
        .ok_or("algorithm is required when enabled")?;
    let cipher =
        match body.cipher.as_deref() {
            None => None,
            Some(name) => Some(DataCipher::from_name(name).ok_or_else(|| {
                format!("unknown cipher {name:?}: use AES256 or {CHACHA_ALGORITHM}")
            })?),
        };
    let (algorithm, cipher) = if algorithm == CHACHA_ALGORITHM {
        if cipher == Some(DataCipher::Aes256Gcm) {
            return Err(format!(
                "algorithm {CHACHA_ALGORITHM} contradicts cipher AES256"
            ));
        }
        ("AES256", DataCipher::ChaCha20Poly1305)
    } else {
        (algorithm, cipher.unwrap_or_default())
    };
    let mut cfg = encryption_from_parts(algorithm, body.kms_key_id)?;
    cfg.cipher = cipher;
    cfg.bucket_key_enabled = body.bucket_key_enabled.unwrap_or(false);
    Ok(cfg)
}

pub(super) async fn put_encryption<B: Backend>(
    State(st): State<Arc<AdminState<B>>>,
    Path(bucket): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(resp) = authorize(&st.token, &headers) {
        return *resp;
    }
    let parsed: EncryptionBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, "MalformedJSON", &e.to_string()),
    };
    let cfg = if parsed.enabled {
        match parse_body(parsed) {
            Ok(cfg) => Some(cfg),
            Err(msg) => return error_response(StatusCode::BAD_REQUEST, "InvalidArgument", &msg),
        }
    } else {
        None
    };
    match st.backend.put_bucket_encryption(&bucket, cfg.clone()).await {
        Ok(()) => Json(encryption_json(cfg.as_ref())).into_response(),
        Err(e) => store_error(e),
    }
}

pub(super) async fn delete_encryption<B: Backend>(
    State(st): State<Arc<AdminState<B>>>,
    Path(bucket): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(resp) = authorize(&st.token, &headers) {
        return *resp;
    }
    match st.backend.put_bucket_encryption(&bucket, None).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => store_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(algorithm: &str, cipher: Option<&str>) -> EncryptionBody {
        EncryptionBody {
            enabled: true,
            algorithm: Some(algorithm.into()),
            kms_key_id: None,
            cipher: cipher.map(Into::into),
            bucket_key_enabled: None,
        }
    }

    #[test]
    fn cipher_choices() {
        let c = parse_body(body("CHACHA20-POLY1305", None)).unwrap();
        assert_eq!(
            (c.algorithm, c.cipher),
            (SseAlgorithm::Aes256, DataCipher::ChaCha20Poly1305)
        );
        let c = parse_body(body("aws:kms", Some("CHACHA20-POLY1305"))).unwrap();
        assert_eq!(
            (c.algorithm, c.cipher),
            (SseAlgorithm::AwsKms, DataCipher::ChaCha20Poly1305)
        );
        let c = parse_body(body("AES256", None)).unwrap();
        assert_eq!(c.cipher, DataCipher::Aes256Gcm);
        assert!(parse_body(body("CHACHA20-POLY1305", Some("AES256"))).is_err());
        assert!(parse_body(body("AES256", Some("DES"))).is_err());
        assert!(parse_body(body("aws:kms:dsse", None)).is_err());
    }
}
