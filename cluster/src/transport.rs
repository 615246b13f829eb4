//! The `Transport` seam: RPCs to a peer, each bounded by a deadline.

use std::time::Duration;

use bytes::Bytes;

use crate::identity::NodeId;

/// The deadline of a call that names none.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// Failures to reach a peer or to get its answer. The variant says what a caller may do:
/// `Unreachable` and `Timeout` are worth retrying later, `Remote`/`UnknownChannel` are the
/// peer's own refusal, `Network` means the call's fate is unknown (it may have run).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The peer is not known, or no connection to it could be made (including a refused
    /// handshake); the request was not delivered.
    #[error("node {node} is unreachable: {reason}")]
    Unreachable {
        /// The peer.
        node: NodeId,
        /// Why (for logs).
        reason: String,
    },
    /// No reply within the call's deadline.
    #[error("call to node {node} timed out after {deadline:?}")]
    Timeout {
        /// The peer.
        node: NodeId,
        /// The deadline that passed.
        deadline: Duration,
    },
    /// The connection failed during the call, or the reply was malformed.
    #[error("network error talking to node {node}: {reason}")]
    Network {
        /// The peer.
        node: NodeId,
        /// Why (for logs).
        reason: String,
    },
    /// The peer has no handler for the channel.
    #[error("node {node} serves no channel {channel:?}")]
    UnknownChannel {
        /// The peer.
        node: NodeId,
        /// The channel asked for.
        channel: String,
    },
    /// A request or reply is larger than the frame limit (on either side).
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// Size of the frame.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The peer's handler answered with an error.
    #[error("remote error from node {node}: {message}")]
    Remote {
        /// The peer.
        node: NodeId,
        /// What it said.
        message: String,
    },
    /// This node's transport is shutting down.
    #[error("transport is shut down")]
    Closed,
}

/// Sends one request to a peer and waits for its answer. Production: QUIC with mutual TLS;
/// simulation: an in-memory network driven by the seed.
#[async_trait::async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Sends `payload` on `channel` (e.g. "raft") to `node` and returns its reply, or
    /// [`TransportError::Timeout`] once `deadline` has passed.
    async fn call_with_deadline(
        &self,
        node: NodeId,
        channel: &str,
        payload: Bytes,
        deadline: Duration,
    ) -> Result<Bytes, TransportError>;

    /// [`Transport::call_with_deadline`] with the transport's default deadline.
    async fn call(
        &self,
        node: NodeId,
        channel: &str,
        payload: Bytes,
    ) -> Result<Bytes, TransportError> {
        let deadline = self.default_deadline();
        self.call_with_deadline(node, channel, payload, deadline)
            .await
    }

    /// The deadline of [`Transport::call`].
    fn default_deadline(&self) -> Duration {
        DEFAULT_DEADLINE
    }

    /// Tells the transport where `node` can be reached (`host:port`), as Raft's membership
    /// records it. Transports that route by other means ignore it.
    fn learn_peer(&self, _node: NodeId, _addr: &str) {}
}

/// The transport of a node that runs alone: every peer is unreachable.
#[derive(Debug, Default, Clone)]
pub struct LocalOnlyTransport;

#[async_trait::async_trait]
impl Transport for LocalOnlyTransport {
    async fn call_with_deadline(
        &self,
        node: NodeId,
        _channel: &str,
        _payload: Bytes,
        _deadline: Duration,
    ) -> Result<Bytes, TransportError> {
        Err(TransportError::Unreachable {
            node,
            reason: "this node runs alone".to_owned(),
        })
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
        assert!(matches!(err, TransportError::Unreachable { node: 2, .. }));
    }
}
