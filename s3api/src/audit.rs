//! The audit/metrics layer around the s3s service: one [`RequestRecord`] per request, a request
//! id in `x-amz-request-id`, and byte counts in both directions.
//!
//! The record is emitted when the response body is dropped (fully sent or abandoned), so
//! `bytes_out` is exact for streamed bodies; a request whose future is dropped before a response
//! exists (client went away) is recorded with status 499.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use s3s::service::S3Service;
use s3s::StdError;

use crate::backend::{RequestObserver, RequestRecord};

/// Set by an operation in its response extensions when s3s would not send its status
/// (s3s 0.14's HeadObject ignores `S3Response::status`, but a ranged HEAD must be 206).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ForceStatus(pub StatusCode);

/// The request id of the current request, available to operations via request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

#[derive(Default)]
struct Resolved {
    operation: Option<String>,
    bucket: Option<String>,
    key: Option<String>,
    access_key: Option<String>,
}

/// Filled by the access check with what s3s resolved (operation, bucket, key, signer).
#[derive(Clone, Default)]
pub(crate) struct AuditSlot(Arc<Mutex<Resolved>>);

impl AuditSlot {
    pub(crate) fn set_resolved(
        &self,
        op: String,
        bucket: Option<String>,
        key: Option<String>,
        access_key: Option<String>,
    ) {
        let mut r = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        r.operation = Some(op);
        r.bucket = bucket;
        r.key = key;
        r.access_key = access_key;
    }
}

/// A fresh request id in the style of S3 (16 upper-case hex digits).
#[must_use]
pub fn new_request_id() -> String {
    let id = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    id[..16].to_owned()
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Names the operation from method, path and query when s3s never got as far as routing it
/// (bad signature, malformed request). Path-style only; best effort.
pub(crate) fn classify(
    method: &Method,
    path: &str,
    query: Option<&str>,
) -> (&'static str, Option<String>, Option<String>) {
    let has = |name: &str| {
        query.is_some_and(|q| q.split('&').any(|kv| kv.split('=').next() == Some(name)))
    };
    let trimmed = path.trim_start_matches('/');
    let (bucket, key) = match trimmed.split_once('/') {
        Some((b, k)) if !k.is_empty() => (Some(b.to_owned()), Some(k.to_owned())),
        Some((b, _)) => (Some(b.to_owned()), None),
        None if !trimmed.is_empty() => (Some(trimmed.to_owned()), None),
        None => (None, None),
    };
    let op = match (bucket.is_some(), key.is_some(), method.as_str()) {
        (false, _, "GET") => "ListBuckets",
        (true, true, "GET") => "GetObject",
        (true, true, "HEAD") => "HeadObject",
        (true, true, "PUT") if has("partNumber") => "UploadPart",
        (true, true, "PUT") => "PutObject",
        (true, true, "DELETE") if has("uploadId") => "AbortMultipartUpload",
        (true, true, "DELETE") => "DeleteObject",
        (true, true, "POST") if has("uploads") => "CreateMultipartUpload",
        (true, true, "POST") if has("uploadId") => "CompleteMultipartUpload",
        (true, false, "GET") if has("list-type") => "ListObjectsV2",
        (true, false, "GET") => "ListObjects",
        (true, false, "PUT") => "CreateBucket",
        (true, false, "HEAD") => "HeadBucket",
        (true, false, "DELETE") => "DeleteBucket",
        (true, false, "POST") if has("delete") => "DeleteObjects",
        _ => "Unknown",
    };
    (op, bucket, key)
}

/// Everything needed to emit the record; emitted exactly once, on drop.
struct RecordGuard {
    observer: Arc<dyn RequestObserver>,
    time_ms: i64,
    request_id: String,
    slot: AuditSlot,
    fallback: (&'static str, Option<String>, Option<String>),
    start: Instant,
    duration_secs: Option<f64>,
    status: u16,
    bytes_in: Arc<AtomicU64>,
    bytes_out: u64,
}

impl Drop for RecordGuard {
    fn drop(&mut self) {
        let resolved =
            std::mem::take(&mut *self.slot.0.lock().unwrap_or_else(PoisonError::into_inner));
        let (fb_op, fb_bucket, fb_key) = std::mem::take(&mut self.fallback);
        let (operation, bucket, key) = match resolved.operation {
            Some(op) => (op, resolved.bucket, resolved.key),
            None => (fb_op.to_owned(), fb_bucket, fb_key),
        };
        let rec = RequestRecord {
            time_ms: self.time_ms,
            request_id: std::mem::take(&mut self.request_id),
            access_key: resolved.access_key,
            operation,
            bucket,
            key,
            status: self.status,
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out,
            duration_secs: self
                .duration_secs
                .unwrap_or_else(|| self.start.elapsed().as_secs_f64()),
        };
        self.observer.record(rec);
    }
}

/// A request body that counts the bytes read from the client.
struct CountingBody<B> {
    inner: B,
    count: Arc<AtomicU64>,
}

impl<B> HttpBody for CountingBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.count.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The response body of the S3 service: s3s's body, counted, with the audit record attached.
pub struct AuditedBody {
    inner: Pin<Box<s3s::Body>>,
    guard: RecordGuard,
}

impl HttpBody for AuditedBody {
    type Data = Bytes;
    type Error = StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StdError>>> {
        let polled = self.inner.as_mut().poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.guard.bytes_out += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The S3 HTTP service: s3s plus the audit layer. Cheap to clone.
#[derive(Clone)]
pub struct S3HttpService {
    inner: S3Service,
    observer: Arc<dyn RequestObserver>,
}

impl S3HttpService {
    pub(crate) fn new(inner: S3Service, observer: Arc<dyn RequestObserver>) -> Self {
        Self { inner, observer }
    }

    /// Handles one request with any body type (used by the server and by in-process tests).
    pub async fn handle<B>(&self, req: Request<B>) -> Response<AuditedBody>
    where
        B: HttpBody<Data = Bytes> + Send + Sync + Unpin + 'static,
        StdError: From<B::Error>,
    {
        let request_id = new_request_id();
        let slot = AuditSlot::default();
        let bytes_in = Arc::new(AtomicU64::new(0));
        let fallback = classify(req.method(), req.uri().path(), req.uri().query());
        let mut guard = RecordGuard {
            observer: Arc::clone(&self.observer),
            time_ms: now_ms(),
            request_id: request_id.clone(),
            slot: slot.clone(),
            fallback,
            start: Instant::now(),
            duration_secs: None,
            // Replaced below; stays 499 only if the client goes away before we answer.
            status: 499,
            bytes_in: Arc::clone(&bytes_in),
            bytes_out: 0,
        };

        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(slot);
        parts
            .extensions
            .insert(RequestId(Arc::from(request_id.as_str())));
        let body = s3s::Body::http_body(CountingBody {
            inner: body,
            count: bytes_in,
        });
        let req = Request::from_parts(parts, body);

        let mut resp = match self.inner.call(req).await {
            Ok(resp) => resp,
            Err(err) => {
                tracing::error!(error = ?err, %request_id, "s3s service failed");
                internal_error_response()
            }
        };
        if let Some(ForceStatus(status)) = resp.extensions().get::<ForceStatus>().copied() {
            *resp.status_mut() = status;
        }
        guard.status = resp.status().as_u16();
        guard.duration_secs = Some(guard.start.elapsed().as_secs_f64());
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            resp.headers_mut().insert("x-amz-request-id", v);
        }
        resp.map(|b| AuditedBody {
            inner: Box::pin(b),
            guard,
        })
    }
}

fn internal_error_response() -> Response<s3s::Body> {
    let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code>\
               <Message>We encountered an internal error. Please try again.</Message></Error>";
    let mut resp = Response::new(s3s::Body::from(xml.to_owned()));
    *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    resp
}

impl hyper::service::Service<Request<Incoming>> for S3HttpService {
    type Response = Response<AuditedBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_common_requests() {
        let c = |m: Method, p: &str, q: Option<&str>| classify(&m, p, q).0;
        assert_eq!(c(Method::GET, "/", None), "ListBuckets");
        assert_eq!(c(Method::PUT, "/b", None), "CreateBucket");
        assert_eq!(c(Method::GET, "/b", Some("list-type=2")), "ListObjectsV2");
        assert_eq!(c(Method::PUT, "/b/k/x", None), "PutObject");
        assert_eq!(
            c(Method::PUT, "/b/k", Some("partNumber=1&uploadId=u")),
            "UploadPart"
        );
        assert_eq!(c(Method::POST, "/b", Some("delete")), "DeleteObjects");
        let (_, b, k) = classify(&Method::GET, "/b/k/x", None);
        assert_eq!((b.as_deref(), k.as_deref()), (Some("b"), Some("k/x")));
    }

    #[test]
    fn request_ids_are_unique() {
        let a = new_request_id();
        assert_eq!(a.len(), 16);
        assert_ne!(a, new_request_id());
    }
}
