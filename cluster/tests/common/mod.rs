//! Shared helpers: an in-memory CA, node certificates, bound nodes, counting handlers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use coffer_cluster::certs::{self, Issued};
use coffer_cluster::{HandlerError, NodeId, NodeTls, QuicConfig, QuicNode, RpcHandler};

/// A cluster CA held in memory.
pub struct Ca(pub Issued);

impl Ca {
    pub fn generate() -> Self {
        Ca(certs::new_ca("test CA").unwrap())
    }

    /// A node certificate for `id` (localhost, 127.0.0.1).
    pub fn node(&self, id: NodeId) -> Issued {
        certs::issue_node(
            &self.0.cert_pem,
            &self.0.key_pem,
            &format!("node{id}"),
            Some(id),
            &["localhost".into()],
            &["127.0.0.1".parse().unwrap()],
        )
        .unwrap()
    }

    /// TLS material for node `id`, trusting this CA.
    pub fn tls(&self, id: NodeId) -> NodeTls {
        let n = self.node(id);
        NodeTls::from_pem(&n.cert_pem, &n.key_pem, &self.0.cert_pem).unwrap()
    }
}

pub fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A node on a free loopback port.
pub fn node(ca: &Ca, id: NodeId) -> QuicNode {
    QuicNode::bind(QuicConfig::new(any_port(), ca.tls(id))).unwrap()
}

/// Binds `config`, retrying while the port is still held by a node that just shut down.
pub async fn bind_retry(config: QuicConfig) -> QuicNode {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match QuicNode::bind(config.clone()) {
            Ok(n) => return n,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("bind: {e}"),
        }
    }
}

/// Answers `<from>:<payload>` and counts its invocations.
#[derive(Default)]
pub struct Echo {
    pub calls: AtomicUsize,
}

impl Echo {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl RpcHandler for Echo {
    async fn handle(&self, from: NodeId, payload: Bytes) -> Result<Bytes, HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut out = format!("{from}:").into_bytes();
        out.extend_from_slice(&payload);
        Ok(Bytes::from(out))
    }
}

/// Sleeps before answering.
pub struct Sleepy(pub Duration);

#[async_trait::async_trait]
impl RpcHandler for Sleepy {
    async fn handle(&self, _from: NodeId, payload: Bytes) -> Result<Bytes, HandlerError> {
        tokio::time::sleep(self.0).await;
        Ok(payload)
    }
}

/// Always refuses.
pub struct Refuse;

#[async_trait::async_trait]
impl RpcHandler for Refuse {
    async fn handle(&self, _from: NodeId, _payload: Bytes) -> Result<Bytes, HandlerError> {
        Err(HandlerError::new("no thanks"))
    }
}

/// `node` with an `Echo` on channel "echo".
pub fn with_echo(node: &QuicNode) -> Arc<Echo> {
    let echo = Arc::new(Echo::default());
    node.register("echo", echo.clone());
    echo
}
