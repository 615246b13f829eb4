//! Admin API tests and real-socket tests of the serve loops.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use coffer_s3api::*;
use common::*;
use http_body_util::{BodyExt as _, Full};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "admin-token-123";

struct Admin {
    backend: Arc<MemBackend>,
    recorder: Arc<Recorder>,
    router: axum::Router,
}

fn admin() -> Admin {
    let backend = Arc::new(MemBackend::default());
    let recorder = Arc::new(Recorder::default());
    let metrics: MetricsFn = Arc::new(|| "coffer_up 1\n".to_owned());
    let router = admin_router(
        Arc::clone(&backend),
        AdminToken::new(TOKEN),
        metrics,
        recorder.clone(),
    );
    Admin {
        backend,
        recorder,
        router,
    }
}

async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    use tower::ServiceExt as _;
    let mut b = http::Request::builder().method(method).uri(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let req = b.body(axum::body::Body::from(body.to_owned())).unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn admin_health_and_metrics() {
    let a = admin();
    let (s, b) = call(&a.router, "GET", "/api/v1/health", None, "").await;
    assert_eq!((s, b.contains("ok")), (200, true));
    a.backend.unhealthy.store(true, Ordering::SeqCst);
    let (s, _) = call(&a.router, "GET", "/api/v1/health", None, "").await;
    assert_eq!(s, 503);
    let (s, b) = call(&a.router, "GET", "/metrics", None, "").await;
    assert_eq!((s, b.as_str()), (200, "coffer_up 1\n"));
    let recs = a.recorder.take();
    let ops: Vec<&str> = recs.iter().map(|r| r.operation.as_str()).collect();
    assert_eq!(ops, ["admin:Health", "admin:Health", "admin:Metrics"]);
}

#[tokio::test]
async fn admin_encryption_routes() {
    let a = admin();
    a.backend.create_bucket("b1").await.unwrap();
    let path = "/api/v1/buckets/b1/encryption";
    let body = r#"{"enabled":true,"algorithm":"aws:kms","kms_key_id":"k1"}"#;
    let (s, b) = call(&a.router, "PUT", path, None, body).await;
    assert_eq!(s, 401, "{b}");
    assert!(b.contains("Unauthorized"));
    let (s, _) = call(&a.router, "PUT", path, Some("wrong"), body).await;
    assert_eq!(s, 401);
    let (s, b) = call(&a.router, "GET", path, Some(TOKEN), "").await;
    assert_eq!((s, b.as_str()), (200, r#"{"enabled":false}"#));
    let (s, b) = call(&a.router, "PUT", path, Some(TOKEN), body).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = call(&a.router, "GET", path, Some(TOKEN), "").await;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"enabled": true, "algorithm": "aws:kms", "kms_key_id": "k1",
                           "cipher": "AES256", "bucket_key_enabled": false})
    );
    // Same setting the S3 API reads.
    let enc = a
        .backend
        .get_bucket_encryption("b1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (enc.algorithm, enc.kms_key_id.as_deref()),
        (SseAlgorithm::AwsKms, Some("k1"))
    );

    let (s, _) = call(&a.router, "PUT", path, Some(TOKEN), "{not json").await;
    assert_eq!(s, 400);
    let (s, _) = call(
        &a.router,
        "PUT",
        path,
        Some(TOKEN),
        r#"{"enabled":true,"algorithm":"DES"}"#,
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = call(
        &a.router,
        "PUT",
        "/api/v1/buckets/nope/encryption",
        Some(TOKEN),
        body,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = call(&a.router, "PUT", path, Some(TOKEN), r#"{"enabled":false}"#).await;
    assert_eq!(s, 200);
    assert!(a
        .backend
        .get_bucket_encryption("b1")
        .await
        .unwrap()
        .is_none());
    let (s, _) = call(&a.router, "DELETE", path, Some(TOKEN), "").await;
    assert_eq!(s, 204);
    let recs = a.recorder.take();
    assert!(recs
        .iter()
        .any(|r| r.operation == "admin:PutBucketEncryption" && r.bucket.as_deref() == Some("b1")));
    assert!(recs.iter().all(|r| r.operation.starts_with("admin:")));
}

async fn raw_request(
    addr: std::net::SocketAddr,
    req: http::Request<Full<Bytes>>,
) -> (u16, http::HeaderMap, Bytes) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

#[tokio::test]
async fn serve_over_tcp_and_shut_down() {
    let h = harness();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let opts = ServeOptions {
        grace_period: Duration::from_secs(2),
        ..ServeOptions::default()
    };
    let server = tokio::spawn(serve_s3_with(
        listener,
        h.svc.clone(),
        async {
            let _ = rx.await;
        },
        opts,
    ));

    let (status, headers, body) = raw_request(addr, Req::new("GET", "/").build()).await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(headers.contains_key("x-amz-request-id"));
    let (status, _, _) = raw_request(addr, Req::new("PUT", "/bkt").sign().build()).await;
    assert_eq!(status, 200);
    let (status, _, _) = raw_request(
        addr,
        Req::new("PUT", "/bkt/o")
            .body(&b"over tcp"[..])
            .sign()
            .build(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, body) = raw_request(addr, Req::new("GET", "/bkt/o").sign().build()).await;
    assert_eq!((status, &body[..]), (200, &b"over tcp"[..]));

    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener must be closed after shutdown"
    );
    assert_eq!(h.recorder.take().len(), 4);
}

#[tokio::test]
async fn serve_admin_over_tcp() {
    let a = admin();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_admin(listener, a.router.clone(), async {
        let _ = rx.await;
    }));
    let req = http::Request::get("/api/v1/health")
        .header("host", "x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, _, body) = raw_request(addr, req).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let req = http::Request::get("/api/v1/buckets/b/encryption")
        .header("host", "x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, _, _) = raw_request(addr, req).await;
    assert_eq!(status, 401);
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn graceful_shutdown_is_bounded() {
    // A client that opens a connection and never sends a request must not hold shutdown past the grace period.
    let h = harness();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let opts = ServeOptions {
        grace_period: Duration::from_millis(300),
        ..ServeOptions::default()
    };
    let server = tokio::spawn(serve_s3_with(
        listener,
        h.svc.clone(),
        async {
            let _ = rx.await;
        },
        opts,
    ));
    let _idle = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn service_config_errors() {
    let backend = Arc::new(MemBackend::default());
    let rec: Arc<dyn RequestObserver> = Arc::new(Recorder::default());
    assert!(matches!(
        s3_service(Arc::clone(&backend), vec![], Arc::clone(&rec), None),
        Err(ServiceConfigError::NoCredentials)
    ));
    assert!(s3_service(
        backend,
        vec![Credentials::new(AK, SK)],
        rec,
        Some("s3.example.com".into())
    )
    .is_ok());
}

#[tokio::test]
async fn admin_kms_routes() {
    let a = admin();
    let r = &a.router;
    // Every KMS route wants the token.
    for (m, p) in [
        ("GET", "/api/v1/kms/status"),
        ("GET", "/api/v1/kms/keys"),
        ("POST", "/api/v1/kms/keys"),
        ("GET", "/api/v1/kms/keys/k1"),
        ("POST", "/api/v1/kms/keys/k1/rotate"),
    ] {
        assert_eq!(call(r, m, p, None, "").await.0, 401, "{m} {p}");
    }
    let t = Some(TOKEN);
    let (s, body) = call(r, "GET", "/api/v1/kms/status", t, "").await;
    assert_eq!((s, body.contains("\"mem\"")), (200, true), "{body}");
    assert_eq!(call(r, "GET", "/api/v1/kms/keys", t, "").await.0, 200);
    let (s, body) = call(r, "POST", "/api/v1/kms/keys", t, r#"{"key_id":"k2"}"#).await;
    assert_eq!((s, body.contains("k2")), (201, true), "{body}");
    assert_eq!(
        call(r, "POST", "/api/v1/kms/keys", t, r#"{"key_id":"k1"}"#)
            .await
            .0,
        409
    );
    for bad in ["", "{}", r#"{"key_id":"k","extra":1}"#, "not json"] {
        assert_eq!(
            call(r, "POST", "/api/v1/kms/keys", t, bad).await.0,
            400,
            "{bad:?}"
        );
    }
    assert_eq!(call(r, "GET", "/api/v1/kms/keys/k1", t, "").await.0, 200);
    // Key ids with slashes (aliases) reach the backend whole.
    let (s, body) = call(r, "GET", "/api/v1/kms/keys/alias/x", t, "").await;
    assert_eq!(s, 404);
    assert!(body.contains("alias/x"), "{body}");
    let (s, body) = call(r, "POST", "/api/v1/kms/keys/k1/rotate", t, "").await;
    assert_eq!((s, body.contains("NotImplemented")), (501, true), "{body}");
    assert_eq!(call(r, "POST", "/api/v1/kms/keys/k1", t, "").await.0, 404);
    let ops: Vec<String> = a.recorder.take().into_iter().map(|x| x.operation).collect();
    assert!(ops.iter().any(|o| o == "admin:KmsRotateKey"), "{ops:?}");
    let _ = &a.backend;
}

#[tokio::test]
async fn admin_rewrap_routes() {
    let a = admin();
    let r = &a.router;
    for m in ["GET", "POST"] {
        assert_eq!(
            call(r, m, "/api/v1/buckets/b/rewrap", None, "").await.0,
            401,
            "{m}"
        );
    }
    let t = Some(TOKEN);
    for bad in [
        "not json",
        r#"{"to_key":"k","extra":1}"#,
        r#"{"max_per_second":0}"#,
        r#"{"to_key":""}"#,
        r#"{"max_per_second":-1}"#,
    ] {
        let (s, body) = call(r, "POST", "/api/v1/buckets/b/rewrap", t, bad).await;
        assert_eq!(s, 400, "{bad:?}: {body}");
    }
    // A backend without a job (the in-memory one) says so with a typed 501, never a 500.
    for (m, body) in [("POST", ""), ("POST", r#"{"to_key":"k1"}"#), ("GET", "")] {
        let (s, text) = call(r, m, "/api/v1/buckets/b/rewrap", t, body).await;
        assert_eq!(
            (s, text.contains("NotImplemented")),
            (501, true),
            "{m} {body}: {text}"
        );
    }
    let ops: Vec<String> = a.recorder.take().into_iter().map(|x| x.operation).collect();
    assert!(ops.iter().any(|o| o == "admin:StartRewrap"), "{ops:?}");
    assert!(ops.iter().any(|o| o == "admin:GetRewrap"), "{ops:?}");
}
