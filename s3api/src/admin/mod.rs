//! The admin HTTP API (axum): health, Prometheus metrics, and bucket default encryption.
//!
//! Routes (JSON unless noted):
//! - `GET /api/v1/health` — no auth; 200 with the backend's health JSON, 503 if it fails.
//! - `GET /metrics` — no auth; Prometheus text from the callback.
//! - `PUT|GET|DELETE /api/v1/buckets/{bucket}/encryption` — `Authorization: Bearer <token>`.
//! - `GET /api/v1/buckets/{bucket}/objects/{key}` and `.../uploads/{upload_id}` — Bearer; how an
//!   object or upload is stored (encryption facts and segments, never a secret).
//! - `GET /api/v1/kms/status`, `GET|POST /api/v1/kms/keys`, `GET /api/v1/kms/keys/{id}`,
//!   `POST /api/v1/kms/keys/{id}/rotate` — Bearer; see `kms.rs`.
//! - `POST|GET /api/v1/buckets/{bucket}/rewrap` — Bearer; the re-wrap job, see `rewrap.rs`.
//! - `GET /api/v1/cluster`, `POST /api/v1/cluster/nodes`, `DELETE /api/v1/cluster/nodes/{id}`
//!   — Bearer; cluster status and membership, see `cluster.rs`.

mod cluster;
mod encryption;
mod inspect;
mod kms;
mod rewrap;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::audit::{new_request_id, now_ms};
use crate::backend::{Backend, RequestObserver, RequestRecord, StoreError};
use crate::error::to_s3_error;

/// The admin bearer token; zeroized on drop and deliberately without `Debug`.
pub struct AdminToken(Zeroizing<String>);

impl AdminToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(Zeroizing::new(token.into()))
    }

    /// Constant-time check of a presented token (hashing first hides the length too).
    fn verify(&self, presented: &str) -> bool {
        let want = Sha256::digest(self.0.as_bytes());
        let got = Sha256::digest(presented.as_bytes());
        !self.0.is_empty() && bool::from(want.ct_eq(&got))
    }
}

/// Produces the Prometheus exposition text.
pub type MetricsFn = Arc<dyn Fn() -> String + Send + Sync>;

pub(crate) struct AdminState<B> {
    pub(crate) backend: Arc<B>,
    pub(crate) token: AdminToken,
    metrics: MetricsFn,
}

/// Builds the admin router; every request is also reported to `observer`.
pub fn admin_router<B: Backend>(
    backend: Arc<B>,
    token: AdminToken,
    metrics: MetricsFn,
    observer: Arc<dyn RequestObserver>,
) -> Router {
    let state = Arc::new(AdminState {
        backend,
        token,
        metrics,
    });
    Router::new()
        .route("/api/v1/health", get(health::<B>))
        .route("/metrics", get(metrics_text::<B>))
        .route(
            "/api/v1/buckets/{bucket}/encryption",
            get(encryption::get_encryption::<B>)
                .put(encryption::put_encryption::<B>)
                .delete(encryption::delete_encryption::<B>),
        )
        .route(
            "/api/v1/buckets/{bucket}/rewrap",
            get(rewrap::status::<B>).post(rewrap::start::<B>),
        )
        .route(
            "/api/v1/buckets/{bucket}/objects/{*key}",
            get(inspect::object::<B>),
        )
        .route(
            "/api/v1/buckets/{bucket}/uploads/{upload_id}",
            get(inspect::upload::<B>),
        )
        .route("/api/v1/cluster", get(cluster::status::<B>))
        .route("/api/v1/cluster/nodes", post(cluster::add_node::<B>))
        .route(
            "/api/v1/cluster/nodes/{id}",
            axum::routing::delete(cluster::remove_node::<B>),
        )
        .route("/api/v1/kms/status", get(kms::status::<B>))
        .route(
            "/api/v1/kms/keys",
            get(kms::list_keys::<B>).post(kms::create_key::<B>),
        )
        .route(
            "/api/v1/kms/keys/{*id}",
            get(kms::get_key::<B>).post(kms::post_key::<B>),
        )
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "NotFound", "no such route") })
        .with_state(state)
        .layer(middleware::from_fn_with_state(observer, audit))
}

pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

pub(crate) fn store_error(err: StoreError) -> Response {
    let s3 = to_s3_error(err);
    let status = s3
        .status_code()
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error_response(status, s3.code().as_str(), s3.message().unwrap_or_default())
}

/// Checks `Authorization: Bearer <token>`; the token is never logged.
pub(crate) fn authorize(token: &AdminToken, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(t) if token.verify(t) => Ok(()),
        _ => {
            let mut resp = error_response(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "missing or invalid bearer token",
            );
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Err(Box::new(resp))
        }
    }
}

async fn health<B: Backend>(State(st): State<Arc<AdminState<B>>>) -> Response {
    match st.backend.health().await {
        Ok(v) => (StatusCode::OK, Json(v)).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            let msg = to_s3_error(e).message().unwrap_or_default().to_owned();
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "message": msg })),
            )
                .into_response()
        }
    }
}

async fn metrics_text<B: Backend>(State(st): State<Arc<AdminState<B>>>) -> Response {
    let body = (st.metrics)();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Names an admin request for the audit log: (operation, bucket).
fn classify(method: &Method, path: &str) -> (&'static str, Option<String>) {
    if path == "/api/v1/health" {
        return ("admin:Health", None);
    }
    if path == "/metrics" {
        return ("admin:Metrics", None);
    }
    if path == "/api/v1/cluster" || path.starts_with("/api/v1/cluster/") {
        let op = match method.as_str() {
            "GET" => "admin:ClusterStatus",
            "POST" => "admin:ClusterAddNode",
            "DELETE" => "admin:ClusterRemoveNode",
            _ => "admin:Unknown",
        };
        return (op, None);
    }
    if let Some(rest) = path.strip_prefix("/api/v1/kms/") {
        let op = match (rest, method.as_str()) {
            ("status", "GET") => "admin:KmsStatus",
            ("keys", "GET") => "admin:KmsListKeys",
            ("keys", "POST") => "admin:KmsCreateKey",
            (r, "POST") if r.starts_with("keys/") && r.ends_with("/rotate") => "admin:KmsRotateKey",
            (r, "GET") if r.starts_with("keys/") => "admin:KmsDescribeKey",
            _ => "admin:Unknown",
        };
        return (op, None);
    }
    let Some(rest) = path.strip_prefix("/api/v1/buckets/") else {
        return ("admin:Unknown", None);
    };
    let (bucket, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return ("admin:Unknown", None);
    }
    let op = match (tail, method.as_str()) {
        ("encryption", "GET") => "admin:GetBucketEncryption",
        ("encryption", "PUT") => "admin:PutBucketEncryption",
        ("encryption", "DELETE") => "admin:DeleteBucketEncryption",
        ("rewrap", "POST") => "admin:StartRewrap",
        ("rewrap", "GET") => "admin:GetRewrap",
        (t, "GET") if t.starts_with("objects/") => "admin:InspectObject",
        (t, "GET") if t.starts_with("uploads/") => "admin:InspectUpload",
        _ => return ("admin:Unknown", None),
    };
    (op, Some(bucket.to_owned()))
}

fn content_length(headers: &HeaderMap) -> u64 {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// One record per admin request; byte counts come from Content-Length (admin bodies are small).
async fn audit(
    State(observer): State<Arc<dyn RequestObserver>>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let start = Instant::now();
    let time_ms = now_ms();
    let request_id = new_request_id();
    let (operation, bucket) = classify(req.method(), req.uri().path());
    let bytes_in = content_length(req.headers());
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let bytes_out = content_length(resp.headers());
    observer.record(RequestRecord {
        time_ms,
        request_id,
        access_key: None,
        operation: operation.to_owned(),
        bucket,
        key: None,
        status: resp.status().as_u16(),
        bytes_in,
        bytes_out,
        duration_secs: start.elapsed().as_secs_f64(),
    });
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_check() {
        let t = AdminToken::new("s3cr3t");
        assert!(t.verify("s3cr3t"));
        assert!(!t.verify("s3cr3"));
        assert!(!t.verify(""));
        assert!(!AdminToken::new("").verify(""));
    }

    #[test]
    fn classify_admin() {
        assert_eq!(
            classify(&Method::PUT, "/api/v1/buckets/b/encryption"),
            ("admin:PutBucketEncryption", Some("b".into()))
        );
        assert_eq!(classify(&Method::GET, "/api/v1/health").0, "admin:Health");
        assert_eq!(
            classify(&Method::GET, "/api/v1/buckets/b/objects/a/b.txt"),
            ("admin:InspectObject", Some("b".into()))
        );
        assert_eq!(
            classify(&Method::GET, "/api/v1/buckets/b/uploads/u1").0,
            "admin:InspectUpload"
        );
        assert_eq!(classify(&Method::GET, "/nope").0, "admin:Unknown");
        assert_eq!(
            classify(&Method::POST, "/api/v1/kms/keys/alias/a/rotate").0,
            "admin:KmsRotateKey"
        );
        assert_eq!(
            classify(&Method::GET, "/api/v1/kms/keys/k1").0,
            "admin:KmsDescribeKey"
        );
    }
}
