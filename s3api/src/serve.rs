//! Building the S3 service and serving it (and the admin router) on a listener with
//! `TCP_NODELAY` and bounded graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use s3s::host::SingleDomain;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::audit::S3HttpService;
use crate::auth::{CofferAccess, CofferAuth, Credentials};
use crate::backend::{Backend, RequestObserver};
use crate::s3::CofferS3;

/// Why the S3 service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ServiceConfigError {
    /// The virtual-host base domain is not a valid domain name.
    #[error("invalid virtual-host domain {0:?}")]
    InvalidDomain(String),
    /// No credentials were given: every request would be refused.
    #[error("no S3 credentials configured")]
    NoCredentials,
}

/// Builds the S3 HTTP service: SigV4 auth over `creds`, anonymous requests refused, path-style
/// addressing always and virtual-host style under `domain` when given, audited to `observer`.
pub fn s3_service<B: Backend>(
    backend: Arc<B>,
    creds: Vec<Credentials>,
    observer: Arc<dyn RequestObserver>,
    domain: Option<String>,
) -> Result<S3HttpService, ServiceConfigError> {
    if creds.is_empty() {
        return Err(ServiceConfigError::NoCredentials);
    }
    let mut builder = S3ServiceBuilder::new(CofferS3::new(backend));
    builder.set_auth(CofferAuth::new(creds));
    builder.set_access(CofferAccess);
    if let Some(domain) = domain {
        // Requests to an IP address or to the bare domain stay path-style (s3s handles both).
        let host = SingleDomain::new(&domain)
            .map_err(|_| ServiceConfigError::InvalidDomain(domain.clone()))?;
        builder.set_host(host);
    }
    Ok(S3HttpService::new(builder.build(), observer))
}

/// Called after each completed TLS handshake with the negotiated key-exchange group's name
/// (for metrics).
pub type HandshakeHook = Arc<dyn Fn(&str) + Send + Sync>;

/// Knobs of the accept loop.
#[derive(Clone)]
pub struct ServeOptions {
    /// How long in-flight requests may run after shutdown begins before connections are cut.
    pub grace_period: Duration,
    /// How long a client may take to send request headers (slow-loris guard); also bounds the
    /// TLS handshake.
    pub header_read_timeout: Duration,
    /// Serve HTTPS with this acceptor instead of plain HTTP. Requests on such connections carry
    /// `ConnectionInfo { secure: true }`.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Told the key-exchange group of every TLS handshake.
    pub on_handshake: Option<HandshakeHook>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("grace_period", &self.grace_period)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("tls", &self.tls.is_some())
            .field("on_handshake", &self.on_handshake.is_some())
            .finish()
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            grace_period: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(30),
            tls: None,
            on_handshake: None,
        }
    }
}

/// Serves the S3 service until `shutdown` resolves, then drains for up to 30 s.
pub async fn serve_s3(
    listener: TcpListener,
    svc: S3HttpService,
    shutdown: impl Future<Output = ()>,
) {
    serve_s3_with(listener, svc, shutdown, ServeOptions::default()).await;
}

/// [`serve_s3`] with explicit options.
pub async fn serve_s3_with(
    listener: TcpListener,
    svc: S3HttpService,
    shutdown: impl Future<Output = ()>,
    opts: ServeOptions,
) {
    serve_loop(listener, svc, shutdown, opts, "s3").await;
}

/// Serves the admin router until `shutdown` resolves, then drains for up to 30 s.
pub async fn serve_admin(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()>,
) {
    serve_admin_with(listener, router, shutdown, ServeOptions::default()).await;
}

/// [`serve_admin`] with explicit options.
pub async fn serve_admin_with(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()>,
    opts: ServeOptions,
) {
    serve_loop(
        listener,
        TowerToHyperService::new(router),
        shutdown,
        opts,
        "admin",
    )
    .await;
}

async fn serve_loop<S, B>(
    listener: TcpListener,
    svc: S,
    shutdown: impl Future<Output = ()>,
    opts: ServeOptions,
    name: &'static str,
) where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Small responses written in pieces must not wait for delayed ACKs (anchors.md).
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::warn!(server = name, %peer, error = %e, "could not set TCP_NODELAY");
                    }
                    let inner = svc.clone();
                    let secure = opts.tls.is_some();
                    let info = crate::s3::ConnectionInfo { peer, secure };
                    let per_conn = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                        req.extensions_mut().insert(info);
                        inner.call(req)
                    });
                    let watcher = graceful.watcher();
                    let http = http.clone();
                    let tls = opts.tls.clone();
                    let hook = opts.on_handshake.clone();
                    let handshake_timeout = opts.header_read_timeout;
                    conns.spawn(async move {
                        let result = match tls {
                            None => {
                                let conn = http.serve_connection(TokioIo::new(stream), per_conn);
                                watcher.watch(conn).await
                            }
                            Some(acceptor) => {
                                let stream = match tokio::time::timeout(
                                    handshake_timeout,
                                    acceptor.accept(stream),
                                )
                                .await
                                {
                                    Ok(Ok(s)) => s,
                                    Ok(Err(e)) => {
                                        tracing::debug!(server = name, %peer, error = %e, "TLS handshake failed");
                                        return;
                                    }
                                    Err(_) => {
                                        tracing::debug!(server = name, %peer, "TLS handshake timed out");
                                        return;
                                    }
                                };
                                let (_, session) = stream.get_ref();
                                let group = session
                                    .negotiated_key_exchange_group()
                                    .map(|g| format!("{:?}", g.name()))
                                    .unwrap_or_else(|| "none".into());
                                tracing::debug!(
                                    server = name,
                                    %peer,
                                    version = ?session.protocol_version(),
                                    suite = ?session.negotiated_cipher_suite().map(|s| s.suite()),
                                    group = %group,
                                    sni = session.server_name().unwrap_or(""),
                                    "TLS handshake"
                                );
                                if let Some(hook) = hook {
                                    hook(&group);
                                }
                                let conn = http.serve_connection(TokioIo::new(stream), per_conn);
                                watcher.watch(conn).await
                            }
                        };
                        if let Err(e) = result {
                            tracing::debug!(server = name, %peer, error = %e, "connection ended with error");
                        }
                    });
                }
                Err(e) => {
                    // Usually fd exhaustion: back off instead of spinning.
                    tracing::warn!(server = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    tracing::info!(
        server = name,
        open = conns.len(),
        "shutting down: draining connections"
    );
    let drained = {
        let conns = &mut conns;
        let drain = async move {
            graceful.shutdown().await;
            while conns.join_next().await.is_some() {}
        };
        tokio::time::timeout(opts.grace_period, drain).await.is_ok()
    };
    if !drained {
        tracing::warn!(
            server = name,
            "grace period over: closing remaining connections"
        );
    }
    conns.shutdown().await;
}
