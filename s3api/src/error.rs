//! The one mapping from [`StoreError`] to S3 error codes and HTTP statuses.
//!
//! Every backend failure reaches the client through [`wire_code`]; nothing here (or anywhere in
//! this crate) inspects error *messages* — RustFS turned client errors into 500s that way.

use std::borrow::Cow;

use http::StatusCode;
use s3s::{S3Error, S3ErrorCode};

use crate::backend::{BodyError, StoreError};

/// The S3 error code and HTTP status a [`StoreError`] is sent as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireCode {
    /// S3 `<Code>` value.
    pub code: S3ErrorCode,
    /// HTTP status.
    pub status: StatusCode,
}

fn custom_code(name: &'static str) -> S3ErrorCode {
    match name.parse::<S3ErrorCode>() {
        Ok(code) => code,
        Err(never) => match never {},
    }
}

/// The wire code of a store error: the single source of truth for the mapping.
#[must_use]
pub fn wire_code(err: &StoreError) -> WireCode {
    use S3ErrorCode as C;
    let (code, status) = match err {
        StoreError::NoSuchBucket => (C::NoSuchBucket, StatusCode::NOT_FOUND),
        StoreError::NoSuchKey => (C::NoSuchKey, StatusCode::NOT_FOUND),
        StoreError::NoSuchUpload => (C::NoSuchUpload, StatusCode::NOT_FOUND),
        StoreError::BucketAlreadyOwnedByYou => (C::BucketAlreadyOwnedByYou, StatusCode::CONFLICT),
        StoreError::BucketNotEmpty => (C::BucketNotEmpty, StatusCode::CONFLICT),
        StoreError::InvalidRange { .. } => (C::InvalidRange, StatusCode::RANGE_NOT_SATISFIABLE),
        StoreError::InvalidPart => (C::InvalidPart, StatusCode::BAD_REQUEST),
        StoreError::InvalidPartOrder => (C::InvalidPartOrder, StatusCode::BAD_REQUEST),
        StoreError::EntityTooSmall => (C::EntityTooSmall, StatusCode::BAD_REQUEST),
        StoreError::EntityTooLarge => (C::EntityTooLarge, StatusCode::BAD_REQUEST),
        StoreError::Body(body) => match body {
            // AWS answers both Content-MD5 and x-amz-checksum-* mismatches with BadDigest.
            BodyError::BadDigest | BodyError::ChecksumMismatch(_) => {
                (C::BadDigest, StatusCode::BAD_REQUEST)
            }
            // A broken or short upload is the client's problem, never a 500.
            BodyError::IncompleteBody | BodyError::Io(_) => {
                (C::IncompleteBody, StatusCode::BAD_REQUEST)
            }
            BodyError::Storage => (C::InternalError, StatusCode::INTERNAL_SERVER_ERROR),
            BodyError::Unavailable => (C::ServiceUnavailable, StatusCode::SERVICE_UNAVAILABLE),
        },
        StoreError::SseCustomerKeyMissing => (C::InvalidRequest, StatusCode::BAD_REQUEST),
        StoreError::SseCustomerKeyMismatch => (C::AccessDenied, StatusCode::FORBIDDEN),
        StoreError::SseNotApplicable => (C::InvalidArgument, StatusCode::BAD_REQUEST),
        StoreError::KmsKeyNotFound(_) => (
            custom_code("KMS.NotFoundException"),
            StatusCode::BAD_REQUEST,
        ),
        StoreError::KmsUnavailable(_) => (C::ServiceUnavailable, StatusCode::SERVICE_UNAVAILABLE),
        StoreError::Unavailable => (C::ServiceUnavailable, StatusCode::SERVICE_UNAVAILABLE),
        StoreError::InvalidArgument(_) => (C::InvalidArgument, StatusCode::BAD_REQUEST),
        StoreError::NotImplemented(_) => (C::NotImplemented, StatusCode::NOT_IMPLEMENTED),
        StoreError::NoSuchJob => (custom_code("NoSuchJob"), StatusCode::NOT_FOUND),
        StoreError::InvalidPartNumber => (
            custom_code("InvalidPartNumber"),
            StatusCode::RANGE_NOT_SATISFIABLE,
        ),
        StoreError::PreconditionFailed => (C::PreconditionFailed, StatusCode::PRECONDITION_FAILED),
        StoreError::Conflict => (C::OperationAborted, StatusCode::CONFLICT),
        StoreError::DataCorrupt => (C::InternalError, StatusCode::INTERNAL_SERVER_ERROR),
        StoreError::Internal(_) => (C::InternalError, StatusCode::INTERNAL_SERVER_ERROR),
    };
    WireCode { code, status }
}

/// The message the client sees; server-side detail stays in the log.
fn client_message(err: &StoreError) -> Cow<'static, str> {
    match err {
        StoreError::Internal(_)
        | StoreError::DataCorrupt
        | StoreError::Body(BodyError::Storage) => {
            Cow::Borrowed("We encountered an internal error. Please try again.")
        }
        StoreError::InvalidRange { size } => Cow::Owned(format!(
            "The requested range is not satisfiable (object size {size} bytes)"
        )),
        StoreError::Body(BodyError::ChecksumMismatch(alg)) => Cow::Owned(format!(
            "The {alg} you specified did not match the calculated checksum."
        )),
        // Io detail may name internal plumbing; the client only needs to know the body broke.
        StoreError::Body(BodyError::Io(_)) => {
            Cow::Borrowed("The request body terminated unexpectedly or could not be read.")
        }
        other => Cow::Owned(other.to_string()),
    }
}

/// Converts a store error to the S3 error sent to the client, logging server-side faults.
#[must_use]
pub fn to_s3_error(err: StoreError) -> S3Error {
    let wire = wire_code(&err);
    match &err {
        StoreError::Internal(detail) => tracing::error!(%detail, "internal error"),
        StoreError::DataCorrupt => tracing::error!("stored data unreadable (DataCorrupt)"),
        StoreError::Body(BodyError::Storage) => {
            tracing::error!("stored data unreadable while streaming")
        }
        StoreError::Unavailable
        | StoreError::KmsUnavailable(_)
        | StoreError::Body(BodyError::Unavailable) => {
            tracing::warn!(error = %err, "service unavailable")
        }
        _ => {}
    }
    let mut s3 = S3Error::with_message(wire.code, client_message(&err));
    s3.set_status_code(wire.status);
    s3
}

impl From<StoreError> for S3Error {
    fn from(err: StoreError) -> Self {
        to_s3_error(err)
    }
}

/// A 400 InvalidArgument with a message.
pub(crate) fn invalid_argument(msg: impl Into<Cow<'static, str>>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, msg)
}

/// A 400 InvalidRequest with a message.
pub(crate) fn invalid_request(msg: impl Into<Cow<'static, str>>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidRequest, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ChecksumAlgorithm;

    /// Pins every variant's wire name and status: changing one must be a deliberate edit here.
    #[test]
    fn store_error_wire_snapshot() {
        let cases: Vec<(StoreError, &str, u16)> = vec![
            (StoreError::NoSuchBucket, "NoSuchBucket", 404),
            (StoreError::NoSuchKey, "NoSuchKey", 404),
            (StoreError::NoSuchUpload, "NoSuchUpload", 404),
            (
                StoreError::BucketAlreadyOwnedByYou,
                "BucketAlreadyOwnedByYou",
                409,
            ),
            (StoreError::BucketNotEmpty, "BucketNotEmpty", 409),
            (StoreError::InvalidRange { size: 10 }, "InvalidRange", 416),
            (StoreError::InvalidPart, "InvalidPart", 400),
            (StoreError::InvalidPartOrder, "InvalidPartOrder", 400),
            (StoreError::EntityTooSmall, "EntityTooSmall", 400),
            (StoreError::EntityTooLarge, "EntityTooLarge", 400),
            (StoreError::Body(BodyError::BadDigest), "BadDigest", 400),
            (
                StoreError::Body(BodyError::ChecksumMismatch(ChecksumAlgorithm::Crc32)),
                "BadDigest",
                400,
            ),
            (
                StoreError::Body(BodyError::IncompleteBody),
                "IncompleteBody",
                400,
            ),
            (
                StoreError::Body(BodyError::Io("reset".into())),
                "IncompleteBody",
                400,
            ),
            (StoreError::Body(BodyError::Storage), "InternalError", 500),
            (
                StoreError::Body(BodyError::Unavailable),
                "ServiceUnavailable",
                503,
            ),
            (StoreError::SseCustomerKeyMissing, "InvalidRequest", 400),
            (StoreError::SseCustomerKeyMismatch, "AccessDenied", 403),
            (StoreError::SseNotApplicable, "InvalidArgument", 400),
            (
                StoreError::KmsKeyNotFound("k".into()),
                "KMS.NotFoundException",
                400,
            ),
            (
                StoreError::KmsUnavailable("vault".into()),
                "ServiceUnavailable",
                503,
            ),
            (StoreError::Unavailable, "ServiceUnavailable", 503),
            (
                StoreError::InvalidArgument("x".into()),
                "InvalidArgument",
                400,
            ),
            (StoreError::InvalidPartNumber, "InvalidPartNumber", 416),
            (StoreError::NoSuchJob, "NoSuchJob", 404),
            (
                StoreError::NotImplemented("x".into()),
                "NotImplemented",
                501,
            ),
            (StoreError::PreconditionFailed, "PreconditionFailed", 412),
            (StoreError::Conflict, "OperationAborted", 409),
            (StoreError::DataCorrupt, "InternalError", 500),
            (
                StoreError::Internal("disk on fire".into()),
                "InternalError",
                500,
            ),
        ];
        for (err, code, status) in cases {
            let label = format!("{err:?}");
            let wire = wire_code(&err);
            assert_eq!(wire.code.as_str(), code, "{label}");
            assert_eq!(wire.status.as_u16(), status, "{label}");
            let s3 = to_s3_error(err);
            assert_eq!(s3.code().as_str(), code, "{label}");
            assert_eq!(
                s3.status_code().map(|s| s.as_u16()),
                Some(status),
                "{label}"
            );
        }
    }

    #[test]
    fn internal_detail_is_not_sent() {
        let s3 = to_s3_error(StoreError::Internal("secret path /var/x".into()));
        assert!(!s3.message().unwrap_or_default().contains("/var/x"));
    }

    #[test]
    fn checksum_message_names_algorithm() {
        let s3 = to_s3_error(StoreError::Body(BodyError::ChecksumMismatch(
            ChecksumAlgorithm::Crc32c,
        )));
        assert!(s3.message().unwrap_or_default().contains("CRC32C"));
    }

    #[test]
    fn kms_unavailable_message_names_the_kms() {
        let s3 = to_s3_error(StoreError::KmsUnavailable("vault".into()));
        let msg = s3.message().unwrap_or_default();
        assert!(msg.contains("key management service (vault)"), "{msg}");
    }
}
