//! The production inter-node transport: QUIC (quinn) with mutual TLS under the cluster CA.
//!
//! One [`QuicNode`] per node owns one UDP endpoint that both accepts peers (server side, with
//! the handler table) and dials them ([`QuicTransport`], the `Transport` implementation).
//! Identity: a peer's node id is read from its verified certificate (see [`crate::identity`]);
//! the handshake fails for a peer without a CA-signed certificate carrying a node id, so no RPC
//! byte from it is ever read. Framing: see [`frame`]. Key exchange: the aws-lc-rs provider with
//! X25519MLKEM768 preferred, as on the HTTPS side.

mod client;
mod config;
pub mod frame;
mod reset;
mod server;
mod verify;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

pub use client::QuicTransport;
pub use config::{NodeTls, QuicConfig, ALPN, DEFAULT_MAX_FRAME};
pub use verify::WrongNode;

use crate::identity::{CertIdError, NodeId};
use crate::rpc::{Handlers, RpcHandler};

/// Why a QUIC endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// PEM input without a usable item of the named kind.
    #[error("no usable PEM {0}")]
    BadPem(&'static str),
    /// This node's own certificate carries no usable node id.
    #[error("node certificate: {0}")]
    NodeId(#[from] CertIdError),
    /// rustls refused the certificates or settings.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built (e.g. no CA).
    #[error("client verifier: {0}")]
    Verifier(String),
    /// The provider lacks TLS_AES_128_GCM_SHA256, which QUIC's initial packets need.
    #[error("crypto provider has no QUIC initial cipher suite")]
    NoInitialSuite,
    /// A setting is out of range.
    #[error("invalid QUIC setting {0}")]
    Setting(&'static str),
    /// The UDP socket could not be bound.
    #[error("bind {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// One node's QUIC endpoint: the listener with its handler table and the outgoing transport.
pub struct QuicNode {
    endpoint: quinn::Endpoint,
    transport: QuicTransport,
    handlers: Handlers,
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    /// Dropped at shutdown; the receiver then waits for every task still answering.
    inflight_tx: Mutex<Option<mpsc::Sender<()>>>,
    inflight_rx: tokio::sync::Mutex<mpsc::Receiver<()>>,
    accept_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    grace: Duration,
}

impl std::fmt::Debug for QuicNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicNode")
            .field("node_id", &self.node_id())
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl QuicNode {
    /// Binds the endpoint and starts accepting peers (inside a tokio runtime).
    pub fn bind(config: QuicConfig) -> Result<Self, QuicError> {
        let provider = config.provider();
        let transport_cfg = config.transport()?;
        let server_crypto = config.tls.server_config(Arc::clone(&provider))?;
        let mut server_cfg = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
        server_cfg.transport_config(Arc::clone(&transport_cfg));
        let bind_err = |source| QuicError::Bind {
            addr: config.listen,
            source,
        };
        let socket = std::net::UdpSocket::bind(config.listen).map_err(bind_err)?;
        let endpoint_cfg =
            quinn::EndpointConfig::new(Arc::new(reset::ResetKey::derive(config.tls.key_der())));
        let endpoint = quinn::Endpoint::new(
            endpoint_cfg,
            Some(server_cfg),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(bind_err)?;
        let local_addr = endpoint.local_addr().map_err(|source| QuicError::Bind {
            addr: config.listen,
            source,
        })?;
        let handlers = Handlers::default();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (inflight_tx, inflight_rx) = mpsc::channel(1);
        let ctx = server::ServeCtx {
            handlers: handlers.clone(),
            max_frame: config.max_frame,
            shutdown: shutdown_rx,
            inflight: inflight_tx.clone(),
        };
        let accept_task = tokio::spawn(server::accept_loop(endpoint.clone(), ctx));
        let transport = QuicTransport {
            inner: Arc::new(client::ClientInner {
                endpoint: endpoint.clone(),
                tls: config.tls,
                provider,
                transport_cfg,
                default_deadline: config.default_deadline,
                max_frame: config.max_frame,
                peers: RwLock::default(),
                conns: Mutex::default(),
                closed: AtomicBool::new(false),
            }),
        };
        Ok(Self {
            endpoint,
            transport,
            handlers,
            local_addr,
            shutdown,
            inflight_tx: Mutex::new(Some(inflight_tx)),
            inflight_rx: tokio::sync::Mutex::new(inflight_rx),
            accept_task: Mutex::new(Some(accept_task)),
            grace: config.shutdown_grace,
        })
    }

    /// The bound UDP address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This node's id, from its own certificate.
    pub fn node_id(&self) -> NodeId {
        self.transport.inner.tls.node_id()
    }

    /// The outgoing transport (shares this endpoint).
    pub fn transport(&self) -> QuicTransport {
        self.transport.clone()
    }

    /// The handler table.
    pub fn handlers(&self) -> &Handlers {
        &self.handlers
    }

    /// Installs the handler of `channel`.
    pub fn register(&self, channel: impl Into<String>, handler: Arc<dyn RpcHandler>) {
        self.handlers.register(channel, handler);
    }

    /// Stops accepting peers and calls, lets calls in flight finish (bounded by the grace
    /// period), then closes every connection and waits for the endpoint to go idle.
    pub async fn shutdown(&self) {
        self.transport.inner.closed.store(true, Ordering::Release);
        let _ = self.shutdown.send(true);
        let task = self
            .accept_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
        drop(
            self.inflight_tx
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        let mut rx = self.inflight_rx.lock().await;
        if tokio::time::timeout(self.grace, rx.recv()).await.is_err() {
            tracing::warn!("inter-node calls still running at shutdown; closing anyway");
        }
        self.endpoint.close(0u32.into(), b"shutdown");
        // Long enough for the close frames to go out; not the full draining period, which for
        // a handshake to a dead peer can be seconds of backed-off probe timeouts.
        let drain = self.grace.min(Duration::from_millis(500));
        let _ = tokio::time::timeout(drain, self.endpoint.wait_idle()).await;
    }
}
