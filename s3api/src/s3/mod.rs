//! `CofferS3`: the `s3s::S3` implementation that turns S3 operations into [`Backend`] calls.

mod bucket;
mod bucket_config;
mod encryption;
mod list;
mod multipart;
mod object;

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use s3s::dto::*;
use s3s::stream::{ByteStream as S3ByteStream, RemainingLength};
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, StdError, S3};

use crate::audit::RequestId;
use crate::backend::{Backend, ByteStream};

pub(crate) use encryption::encryption_from_parts;

/// The S3 operations of Coffer over a [`Backend`].
pub struct CofferS3<B: Backend> {
    backend: Arc<B>,
}

impl<B: Backend> CofferS3<B> {
    /// Wraps a backend.
    pub fn new(backend: Arc<B>) -> Self {
        Self { backend }
    }
}

/// The owner reported in listings: Coffer has one tenant.
pub(crate) fn owner() -> Owner {
    Owner {
        display_name: Some("coffer".to_owned()),
        id: Some("coffer".to_owned()),
    }
}

/// Milliseconds since the epoch as an s3s timestamp (clamped to the epoch if out of range).
pub(crate) fn timestamp(ms: i64) -> Timestamp {
    let nanos = i128::from(ms).saturating_mul(1_000_000);
    Timestamp::from(
        time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    )
}

/// An ETag for a response: s3s adds the quotes.
pub(crate) fn etag(unquoted: &str) -> ETag {
    ETag::Strong(unquoted.to_owned())
}

/// A 501 for request features we cannot honour (refusing beats silently ignoring them).
pub(crate) fn not_implemented(what: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NotImplemented,
        format!("{what} is not implemented"),
    )
}

/// A backend body as an s3s response body of known length.
///
/// s3s needs `Sync`; the backend stream is only `Send`. `Mutex::get_mut` through `&mut self`
/// gives access without ever locking, which makes the wrapper `Sync` for free.
struct ResponseStream {
    inner: Mutex<ByteStream>,
    remaining: u64,
}

impl Stream for ResponseStream {
    type Item = Result<Bytes, StdError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let inner = this.inner.get_mut().unwrap_or_else(PoisonError::into_inner);
        match inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                this.remaining = this.remaining.saturating_sub(b.len() as u64);
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(Err(e))) => {
                // The headers are gone already; the only honest signal left is to abort the body.
                tracing::error!(error = %e, "object stream failed mid-response");
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl S3ByteStream for ResponseStream {
    fn remaining_length(&self) -> RemainingLength {
        RemainingLength::new_exact(usize::try_from(self.remaining).unwrap_or(usize::MAX))
    }
}

/// Wraps a backend body of `len` bytes for s3s.
pub(crate) fn response_body(body: ByteStream, len: u64) -> StreamingBlob {
    StreamingBlob::new(ResponseStream {
        inner: Mutex::new(body),
        remaining: len,
    })
}

/// How a request reached the server; the accept loop puts it into every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The client's address.
    pub peer: std::net::SocketAddr,
    /// Whether the connection is TLS.
    pub secure: bool,
}

/// SSE-C keys travel in headers: as AWS does, refuse them over plain HTTP unless the client is
/// on loopback. Requests without connection info come from in-process callers, not a network.
fn ssec_transport_allowed(headers: &http::HeaderMap, conn: Option<&ConnectionInfo>) -> bool {
    let carries_key = headers.contains_key("x-amz-server-side-encryption-customer-key")
        || headers.contains_key("x-amz-copy-source-server-side-encryption-customer-key");
    match conn {
        Some(c) if carries_key => c.secure || c.peer.ip().is_loopback(),
        _ => true,
    }
}

/// Runs an operation: refuses unauthenticated requests (s3s's access check already does; this
/// keeps the backend safe even if the service is ever built without it) and stamps errors with
/// the request id.
async fn run<I, O, F>(
    req: S3Request<I>,
    f: impl FnOnce(S3Request<I>) -> F,
) -> S3Result<S3Response<O>>
where
    F: std::future::Future<Output = S3Result<S3Response<O>>>,
{
    let rid = req.extensions.get::<RequestId>().map(|r| r.0.clone());
    let result = if req.credentials.is_none() {
        Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "Anonymous access is not allowed",
        ))
    } else if !ssec_transport_allowed(&req.headers, req.extensions.get::<ConnectionInfo>()) {
        Err(crate::error::invalid_request(
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.",
        ))
    } else {
        f(req).await
    };
    result.map_err(|mut e| {
        if let Some(rid) = rid {
            e.set_request_id(rid.to_string());
        }
        e
    })
}

macro_rules! ops {
    ($( $name:ident($input:ty) -> $output:ty => $module:ident; )*) => {
        #[async_trait::async_trait]
        impl<B: Backend> S3 for CofferS3<B> {
            $(
                async fn $name(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    run(req, |req| $module::$name(self.backend.as_ref(), req)).await
                }
            )*
        }
    };
}

ops! {
    list_buckets(ListBucketsInput) -> ListBucketsOutput => bucket;
    create_bucket(CreateBucketInput) -> CreateBucketOutput => bucket;
    head_bucket(HeadBucketInput) -> HeadBucketOutput => bucket;
    delete_bucket(DeleteBucketInput) -> DeleteBucketOutput => bucket;
    get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput => bucket;
    get_bucket_versioning(GetBucketVersioningInput) -> GetBucketVersioningOutput => bucket;
    get_bucket_tagging(GetBucketTaggingInput) -> GetBucketTaggingOutput => bucket_config;
    get_bucket_policy(GetBucketPolicyInput) -> GetBucketPolicyOutput => bucket_config;
    get_bucket_cors(GetBucketCorsInput) -> GetBucketCorsOutput => bucket_config;
    get_bucket_website(GetBucketWebsiteInput) -> GetBucketWebsiteOutput => bucket_config;
    get_bucket_lifecycle_configuration(GetBucketLifecycleConfigurationInput) -> GetBucketLifecycleConfigurationOutput => bucket_config;
    get_bucket_replication(GetBucketReplicationInput) -> GetBucketReplicationOutput => bucket_config;
    get_object_lock_configuration(GetObjectLockConfigurationInput) -> GetObjectLockConfigurationOutput => bucket_config;
    get_bucket_logging(GetBucketLoggingInput) -> GetBucketLoggingOutput => bucket_config;
    get_bucket_accelerate_configuration(GetBucketAccelerateConfigurationInput) -> GetBucketAccelerateConfigurationOutput => bucket_config;
    get_bucket_request_payment(GetBucketRequestPaymentInput) -> GetBucketRequestPaymentOutput => bucket_config;
    get_bucket_acl(GetBucketAclInput) -> GetBucketAclOutput => bucket_config;
    get_bucket_encryption(GetBucketEncryptionInput) -> GetBucketEncryptionOutput => encryption;
    put_bucket_encryption(PutBucketEncryptionInput) -> PutBucketEncryptionOutput => encryption;
    delete_bucket_encryption(DeleteBucketEncryptionInput) -> DeleteBucketEncryptionOutput => encryption;
    put_object(PutObjectInput) -> PutObjectOutput => object;
    get_object(GetObjectInput) -> GetObjectOutput => object;
    head_object(HeadObjectInput) -> HeadObjectOutput => object;
    delete_object(DeleteObjectInput) -> DeleteObjectOutput => object;
    delete_objects(DeleteObjectsInput) -> DeleteObjectsOutput => object;
    copy_object(CopyObjectInput) -> CopyObjectOutput => object;
    list_objects_v2(ListObjectsV2Input) -> ListObjectsV2Output => list;
    list_objects(ListObjectsInput) -> ListObjectsOutput => list;
    list_object_versions(ListObjectVersionsInput) -> ListObjectVersionsOutput => list;
    create_multipart_upload(CreateMultipartUploadInput) -> CreateMultipartUploadOutput => multipart;
    upload_part(UploadPartInput) -> UploadPartOutput => multipart;
    upload_part_copy(UploadPartCopyInput) -> UploadPartCopyOutput => multipart;
    complete_multipart_upload(CompleteMultipartUploadInput) -> CompleteMultipartUploadOutput => multipart;
    abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput => multipart;
    list_parts(ListPartsInput) -> ListPartsOutput => multipart;
    list_multipart_uploads(ListMultipartUploadsInput) -> ListMultipartUploadsOutput => multipart;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssec_needs_tls_off_loopback() {
        let mut h = http::HeaderMap::new();
        let conn = |ip: &str, secure| ConnectionInfo {
            peer: std::net::SocketAddr::new(ip.parse().unwrap(), 5000),
            secure,
        };
        let remote = conn("192.0.2.7", false);
        assert!(ssec_transport_allowed(&h, Some(&remote)), "no key, no rule");
        h.insert(
            "x-amz-server-side-encryption-customer-key",
            http::HeaderValue::from_static("a2V5"),
        );
        assert!(!ssec_transport_allowed(&h, Some(&remote)));
        assert!(ssec_transport_allowed(&h, Some(&conn("192.0.2.7", true))));
        assert!(ssec_transport_allowed(&h, Some(&conn("127.0.0.1", false))));
        assert!(ssec_transport_allowed(&h, Some(&conn("::1", false))));
        let mut copy = http::HeaderMap::new();
        copy.insert(
            "x-amz-copy-source-server-side-encryption-customer-key",
            http::HeaderValue::from_static("a2V5"),
        );
        assert!(!ssec_transport_allowed(&copy, Some(&remote)));
    }
}
