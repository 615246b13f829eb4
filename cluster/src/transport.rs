//! The `Transport` seam: RPCs and shard streams to a peer.

use bytes::Bytes;

use crate::identity::NodeId;

/// Failures to reach a peer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The peer is not known or cannot be reached.
    #[error("node {0} is unreachable")]
    Unreachable(NodeId),
    /// The peer answered with an error.
    #[error("remote error from node {node}: {message}")]
    Remote {
        /// The peer.
        node: NodeId,
        /// What it said.
        message: String,
    },
}

/// Sends one request to a peer and waits for its answer. Production: QUIC with mutual TLS;
/// simulation: an in-memory network driven by the seed.
#[async_trait::async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Sends `payload` on `channel` (e.g. "raft", "shard") to `node` and returns its reply.
    async fn call(
        &self,
        node: NodeId,
        channel: &str,
        payload: Bytes,
    ) -> Result<Bytes, TransportError>;
}

/// The transport of a node that runs alone: every peer is unreachable.
#[derive(Debug, Default, Clone)]
pub struct LocalOnlyTransport;

#[async_trait::async_trait]
impl Transport for LocalOnlyTransport {
    async fn call(
        &self,
        node: NodeId,
        _channel: &str,
        _payload: Bytes,
    ) -> Result<Bytes, TransportError> {
        Err(TransportError::Unreachable(node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_only_refuses_every_peer() {
        let t = LocalOnlyTransport;
        let err = t
            .call(2, "raft", Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::Unreachable(2)));
    }
}
