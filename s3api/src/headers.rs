//! Parsing of SSE request headers and object metadata, and the SSE headers echoed back.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use md5::{Digest as _, Md5};
use s3s::dto::{Metadata, ServerSideEncryption, Timestamp, TimestampFormat};
use s3s::{S3Error, S3ErrorCode, S3Result};
use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize as _, Zeroizing};

use crate::backend::{KmsContext, ObjectMeta, SseCustomerKey, SseInfo, SseKind, SseRequest};
use crate::error::invalid_argument;

/// AWS caps user-defined metadata (names plus values) at 2 KiB.
const MAX_USER_METADATA_BYTES: usize = 2048;

/// The raw SSE-C header triple of a request (or of a copy source).
#[derive(Default)]
pub(crate) struct SseCustomerHeaders {
    /// `...-customer-algorithm`.
    pub algorithm: Option<String>,
    /// `...-customer-key` (base64); zeroized once parsed.
    pub key: Option<String>,
    /// `...-customer-key-MD5` (base64).
    pub key_md5: Option<String>,
}

impl Drop for SseCustomerHeaders {
    fn drop(&mut self) {
        if let Some(key) = self.key.as_mut() {
            key.zeroize();
        }
    }
}

/// Parses the SSE-C header triple; `Ok(None)` when none of the three was sent.
pub(crate) fn parse_sse_customer(mut h: SseCustomerHeaders) -> S3Result<Option<SseCustomerKey>> {
    if h.algorithm.is_none() && h.key.is_none() && h.key_md5.is_none() {
        return Ok(None);
    }
    let Some(algorithm) = h.algorithm.as_deref() else {
        return Err(invalid_argument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.",
        ));
    };
    if algorithm != "AES256" {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidEncryptionAlgorithmError,
            "The encryption request you specified is not valid. The valid value is AES256.",
        ));
    }
    let (Some(key_b64), Some(md5_b64)) = (h.key.take().map(Zeroizing::new), h.key_md5.take())
    else {
        return Err(invalid_argument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key and its MD5.",
        ));
    };
    let decoded = Zeroizing::new(B64.decode(key_b64.trim().as_bytes()).unwrap_or_default());
    if decoded.len() != 32 {
        return Err(invalid_argument(
            "The secret key was invalid for the specified algorithm.",
        ));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&decoded);
    let given_md5 = B64.decode(md5_b64.trim().as_bytes()).unwrap_or_default();
    let actual_md5 = Md5::digest(key.as_slice());
    if given_md5.len() != actual_md5.len()
        || !bool::from(given_md5.as_slice().ct_eq(actual_md5.as_slice()))
    {
        return Err(invalid_argument(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
        ));
    }
    Ok(Some(SseCustomerKey {
        key,
        key_md5: B64.encode(actual_md5),
    }))
}

/// The SSE-KMS options of a request besides the key id.
#[derive(Default)]
pub(crate) struct KmsHeaders {
    /// `x-amz-server-side-encryption-context` (base64 of a JSON object of strings).
    pub context: Option<String>,
    /// `x-amz-server-side-encryption-bucket-key-enabled`.
    pub bucket_key: Option<bool>,
}

/// KMS limits an encryption context to 8 KiB; S3 to 4 KiB of header.
const MAX_KMS_CONTEXT_BYTES: usize = 4096;

/// Decodes `x-amz-server-side-encryption-context`.
pub(crate) fn parse_kms_context(header: &str) -> S3Result<KmsContext> {
    let bad = || {
        invalid_argument(
            "The header 'x-amz-server-side-encryption-context' shall be Base64-encoded UTF-8 string holding JSON which represents a string-string map",
        )
    };
    if header.len() > MAX_KMS_CONTEXT_BYTES {
        return Err(bad());
    }
    let raw = B64.decode(header.trim().as_bytes()).map_err(|_| bad())?;
    let value: serde_json::Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let serde_json::Value::Object(map) = value else {
        return Err(bad());
    };
    let mut pairs = std::collections::BTreeMap::new();
    for (k, v) in map {
        let serde_json::Value::String(v) = v else {
            return Err(bad());
        };
        if k.is_empty() || k.starts_with("coffer:") || k.starts_with("aws:") {
            // Reserved: the node binds its own pairs under these prefixes.
            return Err(invalid_argument(format!(
                "Encryption context key {k:?} is empty or uses a reserved prefix"
            )));
        }
        pairs.insert(k, v);
    }
    Ok(KmsContext {
        pairs,
        header: header.trim().to_owned(),
    })
}

const KMS_ONLY: &str = "x-amz-server-side-encryption-aws-kms-key-id and x-amz-server-side-encryption-context are only valid with x-amz-server-side-encryption: aws:kms";

/// Decides the requested encryption of a new object from its SSE headers.
pub(crate) fn parse_sse_request(
    sse: Option<&ServerSideEncryption>,
    kms_key_id: Option<String>,
    kms: KmsHeaders,
    customer: SseCustomerHeaders,
) -> S3Result<SseRequest> {
    let customer = parse_sse_customer(customer)?;
    let kms_only = kms_key_id.is_some() || kms.context.is_some();
    match (sse.map(ServerSideEncryption::as_str), customer) {
        (Some(_), Some(_)) => Err(invalid_argument(
            "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
        )),
        (None, Some(key)) => {
            if kms_only {
                return Err(invalid_argument(KMS_ONLY));
            }
            Ok(SseRequest::Customer(key))
        }
        (None, None) => {
            if kms_only {
                return Err(invalid_argument(KMS_ONLY));
            }
            Ok(SseRequest::Default)
        }
        (Some(ServerSideEncryption::AES256), None) => {
            if kms_only {
                return Err(invalid_argument(KMS_ONLY));
            }
            Ok(SseRequest::S3)
        }
        (Some(ServerSideEncryption::AWS_KMS), None) => Ok(SseRequest::Kms {
            key_id: kms_key_id.filter(|k| !k.is_empty()),
            context: kms.context.as_deref().map(parse_kms_context).transpose()?,
            bucket_key: kms.bucket_key,
        }),
        (Some(other), None) => Err(invalid_argument(format!(
            "The encryption method specified is not supported: {other:?} (use AES256 or aws:kms)"
        ))),
    }
}

/// SSE response headers derived from [`SseInfo`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SseEcho {
    /// `x-amz-server-side-encryption`.
    pub server_side_encryption: Option<ServerSideEncryption>,
    /// `x-amz-server-side-encryption-aws-kms-key-id`.
    pub kms_key_id: Option<String>,
    /// `x-amz-server-side-encryption-customer-algorithm`.
    pub customer_algorithm: Option<String>,
    /// `x-amz-server-side-encryption-customer-key-MD5`.
    pub customer_key_md5: Option<String>,
    /// `x-amz-server-side-encryption-context`.
    pub kms_context: Option<String>,
    /// `x-amz-server-side-encryption-bucket-key-enabled`.
    pub bucket_key_enabled: Option<bool>,
}

/// The SSE headers S3 sends for an object stored under `info`.
pub(crate) fn sse_echo(info: &SseInfo) -> SseEcho {
    match info.kind {
        SseKind::S3 => SseEcho {
            server_side_encryption: Some(ServerSideEncryption::from_static(
                ServerSideEncryption::AES256,
            )),
            ..SseEcho::default()
        },
        SseKind::Kms => SseEcho {
            server_side_encryption: Some(ServerSideEncryption::from_static(
                ServerSideEncryption::AWS_KMS,
            )),
            kms_key_id: info.kms_key_id.clone(),
            kms_context: info.kms_context.clone(),
            bucket_key_enabled: info.bucket_key_enabled.then_some(true),
            ..SseEcho::default()
        },
        SseKind::Customer => SseEcho {
            customer_algorithm: Some("AES256".to_owned()),
            customer_key_md5: info.customer_key_md5.clone(),
            ..SseEcho::default()
        },
    }
}

/// Formats a timestamp as an HTTP date, or `None` if it cannot be.
pub(crate) fn http_date(ts: &Timestamp) -> Option<String> {
    let mut buf = Vec::new();
    ts.format(TimestampFormat::HttpDate, &mut buf).ok()?;
    String::from_utf8(buf).ok()
}

/// Parses a stored HTTP date back into a timestamp; unparseable values are dropped.
pub(crate) fn parse_http_date(s: &str) -> Option<Timestamp> {
    Timestamp::parse(TimestampFormat::HttpDate, s).ok()
}

/// The standard headers of a new object, as the client sent them.
#[derive(Default)]
pub(crate) struct MetaHeaders {
    /// Content-Type.
    pub content_type: Option<String>,
    /// Content-Encoding.
    pub content_encoding: Option<String>,
    /// Content-Disposition.
    pub content_disposition: Option<String>,
    /// Content-Language.
    pub content_language: Option<String>,
    /// Cache-Control.
    pub cache_control: Option<String>,
    /// Expires.
    pub expires: Option<Timestamp>,
    /// `x-amz-meta-*`.
    pub metadata: Option<Metadata>,
}

/// Builds the [`ObjectMeta`] to store, enforcing the user-metadata size limit.
pub(crate) fn object_meta(h: MetaHeaders) -> S3Result<ObjectMeta> {
    let user_metadata: std::collections::BTreeMap<String, String> = h
        .metadata
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let size: usize = user_metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_USER_METADATA_BYTES {
        return Err(S3Error::with_message(
            S3ErrorCode::MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size.",
        ));
    }
    Ok(ObjectMeta {
        content_type: h.content_type,
        content_encoding: h.content_encoding,
        content_disposition: h.content_disposition,
        content_language: h.content_language,
        cache_control: h.cache_control,
        expires: h.expires.as_ref().and_then(http_date),
        user_metadata,
    })
}

/// User metadata for a response, `None` when empty.
pub(crate) fn response_metadata(meta: &ObjectMeta) -> Option<Metadata> {
    if meta.user_metadata.is_empty() {
        return None;
    }
    Some(
        meta.user_metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_headers(key: &[u8]) -> SseCustomerHeaders {
        SseCustomerHeaders {
            algorithm: Some("AES256".into()),
            key: Some(B64.encode(key)),
            key_md5: Some(B64.encode(Md5::digest(key))),
        }
    }

    #[test]
    fn sse_c_valid() {
        let k = parse_sse_customer(key_headers(&[7u8; 32]))
            .unwrap()
            .unwrap();
        assert_eq!(*k.key, [7u8; 32]);
        assert_eq!(k.key_md5, B64.encode(Md5::digest([7u8; 32])));
        assert!(
            !format!("{k:?}").contains("BwcH"),
            "Debug must not print the key"
        );
    }

    #[test]
    fn sse_c_absent() {
        assert!(parse_sse_customer(SseCustomerHeaders::default())
            .unwrap()
            .is_none());
    }

    #[test]
    fn sse_c_bad_base64() {
        let mut h = key_headers(&[1u8; 32]);
        h.key = Some("!!!not base64!!!".into());
        assert_eq!(
            parse_sse_customer(h).unwrap_err().code(),
            &S3ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn sse_c_short_key() {
        let h = key_headers(&[1u8; 16]);
        assert_eq!(
            parse_sse_customer(h).unwrap_err().code(),
            &S3ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn sse_c_wrong_md5() {
        let mut h = key_headers(&[1u8; 32]);
        h.key_md5 = Some(B64.encode(Md5::digest([2u8; 32])));
        assert_eq!(
            parse_sse_customer(h).unwrap_err().code(),
            &S3ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn sse_c_wrong_algorithm() {
        let mut h = key_headers(&[1u8; 32]);
        h.algorithm = Some("AES128".into());
        assert_eq!(
            parse_sse_customer(h).unwrap_err().code(),
            &S3ErrorCode::InvalidEncryptionAlgorithmError
        );
    }

    #[test]
    fn sse_c_missing_key() {
        let mut h = key_headers(&[1u8; 32]);
        h.key = None;
        assert_eq!(
            parse_sse_customer(h).unwrap_err().code(),
            &S3ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn sse_modes() {
        let aes = ServerSideEncryption::from_static("AES256");
        let kms = ServerSideEncryption::from_static("aws:kms");
        let bad = ServerSideEncryption::from_static("aws:kms:dsse");
        let none = SseCustomerHeaders::default;
        assert!(matches!(
            parse_sse_request(None, None, KmsHeaders::default(), none()),
            Ok(SseRequest::Default)
        ));
        assert!(matches!(
            parse_sse_request(Some(&aes), None, KmsHeaders::default(), none()),
            Ok(SseRequest::S3)
        ));
        assert!(matches!(
            parse_sse_request(Some(&kms), Some("k1".into()), KmsHeaders::default(), none()),
            Ok(SseRequest::Kms { key_id: Some(ref k), .. }) if k == "k1"
        ));
        assert!(matches!(
            parse_sse_request(Some(&kms), None, KmsHeaders::default(), none()),
            Ok(SseRequest::Kms { key_id: None, .. })
        ));
        assert!(parse_sse_request(Some(&bad), None, KmsHeaders::default(), none()).is_err());
        assert!(
            parse_sse_request(Some(&aes), Some("k".into()), KmsHeaders::default(), none()).is_err()
        );
        assert!(parse_sse_request(None, Some("k".into()), KmsHeaders::default(), none()).is_err());
        let both = parse_sse_request(
            Some(&aes),
            None,
            KmsHeaders::default(),
            key_headers(&[3u8; 32]),
        )
        .unwrap_err();
        assert_eq!(both.code(), &S3ErrorCode::InvalidArgument);
        assert!(matches!(
            parse_sse_request(None, None, KmsHeaders::default(), key_headers(&[3u8; 32])),
            Ok(SseRequest::Customer(_))
        ));
    }

    #[test]
    fn echo_headers() {
        let e = sse_echo(&SseInfo {
            kms_key_id: Some("k".into()),
            bucket_key_enabled: true,
            ..SseInfo::of(SseKind::Kms)
        });
        assert_eq!(e.bucket_key_enabled, Some(true));
        assert_eq!(
            e.server_side_encryption.as_ref().map(|s| s.as_str()),
            Some("aws:kms")
        );
        assert_eq!(e.kms_key_id.as_deref(), Some("k"));
        let c = sse_echo(&SseInfo {
            customer_key_md5: Some("m".into()),
            ..SseInfo::of(SseKind::Customer)
        });
        assert!(c.server_side_encryption.is_none());
        assert_eq!(c.customer_algorithm.as_deref(), Some("AES256"));
    }

    #[test]
    fn kms_context() {
        let kms = ServerSideEncryption::from_static("aws:kms");
        let header = B64.encode(br#"{"project":"x","team":"y"}"#);
        let r = parse_sse_request(
            Some(&kms),
            None,
            KmsHeaders {
                context: Some(header.clone()),
                bucket_key: Some(true),
            },
            SseCustomerHeaders::default(),
        )
        .unwrap();
        let SseRequest::Kms {
            context: Some(c),
            bucket_key: Some(true),
            ..
        } = r
        else {
            panic!("context not parsed");
        };
        assert_eq!(c.pairs.get("project").map(String::as_str), Some("x"));
        assert_eq!(c.header, header);
        for bad in [
            "not base64!".to_owned(),
            B64.encode(b"[1,2]"),
            B64.encode(br#"{"a":1}"#),
            B64.encode(br#"{"coffer:bucket":"b"}"#),
            B64.encode(b"not json"),
        ] {
            let err = parse_kms_context(&bad).unwrap_err();
            assert_eq!(err.code(), &S3ErrorCode::InvalidArgument, "{bad}");
        }
        let aes = ServerSideEncryption::from_static("AES256");
        let err = parse_sse_request(
            Some(&aes),
            None,
            KmsHeaders {
                context: Some(header),
                bucket_key: None,
            },
            SseCustomerHeaders::default(),
        )
        .unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::InvalidArgument);
    }

    #[test]
    fn metadata_limit() {
        let mut m = Metadata::default();
        m.insert("big".into(), "x".repeat(3000));
        let err = object_meta(MetaHeaders {
            metadata: Some(m),
            ..MetaHeaders::default()
        })
        .unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::MetadataTooLarge);
    }
}
