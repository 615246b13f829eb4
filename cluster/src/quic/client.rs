//! The calling side: the peer address book, one reused connection per peer (reconnected when
//! it closes), and the `Transport` implementation with a deadline on every call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use quinn::{Connection, Endpoint};
use rustls::crypto::CryptoProvider;

use super::config::NodeTls;
use super::frame::{self, FrameError, Status};
use crate::identity::NodeId;
use crate::transport::{Transport, TransportError};

/// One slot per peer; the async mutex makes concurrent callers share one connection attempt.
type Slot = Arc<tokio::sync::Mutex<Option<Connection>>>;

pub(crate) struct ClientInner {
    pub(crate) endpoint: Endpoint,
    pub(crate) tls: NodeTls,
    pub(crate) provider: Arc<CryptoProvider>,
    pub(crate) transport_cfg: Arc<quinn::TransportConfig>,
    pub(crate) default_deadline: Duration,
    pub(crate) max_frame: usize,
    pub(crate) peers: RwLock<HashMap<NodeId, String>>,
    pub(crate) conns: Mutex<HashMap<NodeId, Slot>>,
    pub(crate) closed: AtomicBool,
}

/// The production [`Transport`]: RPCs over QUIC with mutual TLS. Cheap to clone.
#[derive(Clone)]
pub struct QuicTransport {
    pub(crate) inner: Arc<ClientInner>,
}

impl std::fmt::Debug for QuicTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicTransport")
            .field("node_id", &self.inner.tls.node_id())
            .finish_non_exhaustive()
    }
}

fn unreachable(node: NodeId, reason: impl std::fmt::Display) -> TransportError {
    TransportError::Unreachable {
        node,
        reason: reason.to_string(),
    }
}

fn network(node: NodeId, reason: impl std::fmt::Display) -> TransportError {
    TransportError::Network {
        node,
        reason: reason.to_string(),
    }
}

impl QuicTransport {
    /// Sets (or changes) where `node` is reached (`host:port`); a changed address drops the
    /// connection to the old one.
    pub fn set_peer(&self, node: NodeId, addr: impl Into<String>) {
        let addr = addr.into();
        let changed = {
            let mut peers = self.inner.peers.write().unwrap_or_else(|p| p.into_inner());
            peers
                .insert(node, addr.clone())
                .is_some_and(|old| old != addr)
        };
        if changed {
            self.drop_connection(node);
        }
    }

    /// Forgets `node` and closes the connection to it.
    pub fn remove_peer(&self, node: NodeId) {
        self.inner
            .peers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&node);
        self.drop_connection(node);
    }

    /// Where `node` is reached, if known.
    pub fn peer_addr(&self, node: NodeId) -> Option<String> {
        self.inner
            .peers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node)
            .cloned()
    }

    fn slot(&self, node: NodeId) -> Slot {
        let mut conns = self.inner.conns.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(conns.entry(node).or_default())
    }

    fn drop_connection(&self, node: NodeId) {
        let slot = self
            .inner
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&node);
        if let Some(slot) = slot {
            if let Ok(mut guard) = slot.try_lock() {
                if let Some(c) = guard.take() {
                    c.close(0u32.into(), b"peer changed");
                }
            }
        }
    }

    /// A live connection to `node`: the cached one, or a new one.
    ///
    /// The handshake runs in its own task, which holds the peer's slot: a caller whose deadline
    /// passes (openraft gives heartbeats one heartbeat interval) abandons only its wait, not the
    /// handshake, so a slow first connect still completes and serves the next call.
    async fn connection(&self, node: NodeId) -> Result<Connection, TransportError> {
        let mut guard = self.slot(node).lock_owned().await;
        if let Some(c) = guard.as_ref() {
            if c.close_reason().is_none() {
                return Ok(c.clone());
            }
        }
        *guard = None;
        let this = self.clone();
        let handshake = tokio::spawn(async move {
            let conn = this.connect(node).await?;
            *guard = Some(conn.clone());
            Ok(conn)
        });
        handshake
            .await
            .map_err(|e| unreachable(node, format!("connect task: {e}")))?
    }

    /// Forgets `conn` as the connection to `node` if it still is.
    async fn evict(&self, node: NodeId, conn: &Connection) {
        let slot = self.slot(node);
        let mut guard = slot.lock().await;
        if guard
            .as_ref()
            .is_some_and(|c| c.stable_id() == conn.stable_id())
        {
            *guard = None;
        }
    }

    async fn connect(&self, node: NodeId) -> Result<Connection, TransportError> {
        let addr = self
            .peer_addr(node)
            .ok_or_else(|| unreachable(node, "no address known"))?;
        let sock = tokio::net::lookup_host(addr.as_str())
            .await
            .map_err(|e| unreachable(node, format!("resolve {addr}: {e}")))?
            .next()
            .ok_or_else(|| unreachable(node, format!("{addr} resolves to nothing")))?;
        let crypto = self
            .inner
            .tls
            .client_config(Arc::clone(&self.inner.provider), node)
            .map_err(|e| unreachable(node, e))?;
        let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
        cfg.transport_config(Arc::clone(&self.inner.transport_cfg));
        // The name is only SNI; the verifier checks the node id in the certificate instead.
        let server_name = format!("node-{node}.coffer");
        let connecting = self
            .inner
            .endpoint
            .connect_with(cfg, sock, &server_name)
            .map_err(|e| unreachable(node, e))?;
        connecting
            .await
            .map_err(|e| unreachable(node, format!("connect to {sock}: {e}")))
    }

    async fn call_once(
        &self,
        node: NodeId,
        channel: &str,
        payload: Bytes,
    ) -> Result<Bytes, TransportError> {
        let max = self.inner.max_frame;
        // Refuse an oversized or malformed request before touching the network.
        frame::request_header(channel, payload.len(), max).map_err(|e| frame_err(node, e))?;
        let len = payload.len() as u64;
        let mut attempt = 0;
        let (conn, mut send, mut recv) = loop {
            let conn = self.connection(node).await?;
            match conn.open_bi().await {
                Ok((send, recv)) => break (conn, send, recv),
                // Nothing was sent on a connection that turned out closed: retrying on a new
                // one cannot run the call twice.
                Err(e) if attempt == 0 => {
                    tracing::debug!(node, error = %e, "cached connection closed; reconnecting");
                    self.evict(node, &conn).await;
                    attempt += 1;
                }
                Err(e) => return Err(network(node, e)),
            }
        };
        let written = frame::write_request(&mut send, channel, payload, max).await;
        // A server that refuses a request early stops our stream: its reply still says why.
        let reply = frame::read_reply(&mut recv, max).await;
        let (status, body) = match reply {
            Ok(r) => r,
            Err(read_error) => {
                self.after_failure(node, &conn).await;
                // The write's failure, if any, is the first cause.
                return Err(frame_err(node, written.err().unwrap_or(read_error)));
            }
        };
        match status {
            Status::Ok => Ok(body),
            Status::HandlerError => Err(TransportError::Remote {
                node,
                message: String::from_utf8_lossy(&body).into_owned(),
            }),
            Status::UnknownChannel => Err(TransportError::UnknownChannel {
                node,
                channel: channel.to_owned(),
            }),
            // The server's limit is its reply body.
            Status::TooLarge => Err(TransportError::FrameTooLarge {
                len,
                max: String::from_utf8_lossy(&body).parse().unwrap_or(0),
            }),
            Status::BadRequest => Err(network(node, String::from_utf8_lossy(&body))),
        }
    }

    async fn after_failure(&self, node: NodeId, conn: &Connection) {
        if conn.close_reason().is_some() {
            self.evict(node, conn).await;
        }
    }
}

fn frame_err(node: NodeId, e: FrameError) -> TransportError {
    match e {
        FrameError::TooLarge { len, max } => TransportError::FrameTooLarge { len, max },
        other => network(node, other),
    }
}

#[async_trait::async_trait]
impl Transport for QuicTransport {
    async fn call_with_deadline(
        &self,
        node: NodeId,
        channel: &str,
        payload: Bytes,
        deadline: Duration,
    ) -> Result<Bytes, TransportError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(TransportError::Closed);
        }
        match tokio::time::timeout(deadline, self.call_once(node, channel, payload)).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout { node, deadline }),
        }
    }

    fn default_deadline(&self) -> Duration {
        self.inner.default_deadline
    }

    fn learn_peer(&self, node: NodeId, addr: &str) {
        if self.peer_addr(node).as_deref() != Some(addr) {
            self.set_peer(node, addr);
        }
    }
}
