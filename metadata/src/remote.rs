//! Metadata traffic over the cluster `Transport`: Raft RPCs (channel [`RAFT_CHANNEL`]), writes
//! forwarded to the leader ([`FORWARD_CHANNEL`]) and read-index requests
//! ([`READ_INDEX_CHANNEL`]). Every message is JSON (serde_json), like everything else this
//! crate persists or replicates. The receiving handlers hold a weak reference to the store, so
//! a transport that outlives a store never keeps its sled database open.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use coffer_cluster::{HandlerError, Handlers, RpcHandler, Transport};
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::LogIdOptionExt;
use serde::{Deserialize, Serialize};

use crate::command::{Command, Response};
use crate::network::{serve_rpc, RaftRpc, RaftRpcReply, RaftTransport, TransportError};
use crate::store::Inner;
use crate::{Node, NodeId};

/// Channel of Raft RPCs.
pub const RAFT_CHANNEL: &str = "raft";
/// Channel of writes a follower forwards to the leader.
pub const FORWARD_CHANNEL: &str = "meta-write";
/// Channel of read-index requests a follower sends to the leader.
pub const READ_INDEX_CHANNEL: &str = "meta-read-index";

/// A [`RaftTransport`] over the cluster transport: JSON-encoded [`RaftRpc`]s on
/// [`RAFT_CHANNEL`]. It also tells the transport each target's address from the membership.
#[derive(Clone)]
pub struct ClusterRaftTransport {
    inner: Arc<dyn Transport>,
}

impl ClusterRaftTransport {
    /// Carries Raft over `transport`.
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        Self { inner: transport }
    }
}

fn map_err(target: NodeId, e: coffer_cluster::TransportError) -> TransportError {
    use coffer_cluster::TransportError as C;
    match e {
        C::Unreachable { reason, .. } => TransportError::Unreachable { target, reason },
        C::Closed => TransportError::Unreachable {
            target,
            reason: "transport closed".to_owned(),
        },
        C::Timeout { .. } => TransportError::Timeout { target },
        other => TransportError::Network {
            target,
            reason: other.to_string(),
        },
    }
}

#[async_trait::async_trait]
impl RaftTransport for ClusterRaftTransport {
    async fn call(
        &self,
        target: NodeId,
        node: &Node,
        rpc: RaftRpc,
        deadline: Duration,
    ) -> Result<RaftRpcReply, TransportError> {
        let network = |reason: String| TransportError::Network { target, reason };
        let body = serde_json::to_vec(&rpc).map_err(|e| network(e.to_string()))?;
        self.inner.learn_peer(target, &node.addr);
        let reply = self
            .inner
            .call_with_deadline(target, RAFT_CHANNEL, Bytes::from(body), deadline)
            .await
            .map_err(|e| map_err(target, e))?;
        serde_json::from_slice(&reply).map_err(|e| network(e.to_string()))
    }
}

/// The leader's answer to a forwarded write.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ForwardReply {
    /// Committed and applied; the state machine's response (a rejection included).
    Applied(Response),
    /// The receiver is not the leader (it did not propose); the leader it knows of.
    NotLeader(Option<NodeId>),
    /// Raft could not serve it (quorum lost, shutting down); the write was not acknowledged.
    Unavailable(String),
}

/// The leader's answer to a read-index request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ReadIndexReply {
    /// The log index a linearizable read must have applied before it reads.
    Index(Option<u64>),
    /// See [`ForwardReply::NotLeader`].
    NotLeader(Option<NodeId>),
    /// See [`ForwardReply::Unavailable`].
    Unavailable(String),
}

fn codec(e: serde_json::Error) -> HandlerError {
    HandlerError::new(format!("metadata codec: {e}"))
}

/// The store behind a handler, if it still exists.
fn live(store: &Weak<Inner>) -> Result<Arc<Inner>, HandlerError> {
    store
        .upgrade()
        .ok_or_else(|| HandlerError::new("metadata store is closed"))
}

/// Whether `from` is in the membership this node has applied: only members may propose or
/// ask for read indexes (Raft RPCs themselves are accepted from any authenticated node,
/// because a node being added is not a member yet when the leader first contacts it).
fn is_member(inner: &Inner, from: NodeId) -> bool {
    let m = inner.raft.metrics().borrow().membership_config.clone();
    let found = m.membership().get_node(&from).is_some();
    found
}

struct RaftHandler(Weak<Inner>);

#[async_trait::async_trait]
impl RpcHandler for RaftHandler {
    async fn handle(&self, _from: NodeId, payload: Bytes) -> Result<Bytes, HandlerError> {
        let inner = live(&self.0)?;
        let rpc: RaftRpc = serde_json::from_slice(&payload).map_err(codec)?;
        let reply = serve_rpc(&inner.raft, rpc).await;
        Ok(Bytes::from(serde_json::to_vec(&reply).map_err(codec)?))
    }
}

struct ForwardHandler(Weak<Inner>);

#[async_trait::async_trait]
impl RpcHandler for ForwardHandler {
    async fn handle(&self, from: NodeId, payload: Bytes) -> Result<Bytes, HandlerError> {
        let inner = live(&self.0)?;
        if !is_member(&inner, from) {
            return Err(HandlerError::new(format!("node {from} is not a member")));
        }
        let cmd: Command = serde_json::from_slice(&payload).map_err(codec)?;
        // Never forwarded again from here: a stale follower would otherwise bounce writes.
        let reply = match inner.raft.client_write(cmd).await {
            Ok(r) => ForwardReply::Applied(r.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                ForwardReply::NotLeader(f.leader_id)
            }
            Err(e) => ForwardReply::Unavailable(e.to_string()),
        };
        Ok(Bytes::from(serde_json::to_vec(&reply).map_err(codec)?))
    }
}

struct ReadIndexHandler(Weak<Inner>);

#[async_trait::async_trait]
impl RpcHandler for ReadIndexHandler {
    async fn handle(&self, from: NodeId, _payload: Bytes) -> Result<Bytes, HandlerError> {
        let inner = live(&self.0)?;
        if !is_member(&inner, from) {
            return Err(HandlerError::new(format!("node {from} is not a member")));
        }
        // Only the leadership check (a heartbeat round to a quorum); the follower itself waits
        // until it has applied up to the index.
        let reply = match inner.raft.get_read_log_id().await {
            Ok((read, _applied)) => {
                ReadIndexReply::Index(read.index().max(inner.restored_read_floor()))
            }
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                ReadIndexReply::NotLeader(f.leader_id)
            }
            Err(e) => ReadIndexReply::Unavailable(e.to_string()),
        };
        Ok(Bytes::from(serde_json::to_vec(&reply).map_err(codec)?))
    }
}

/// Installs the three metadata channels for the store behind `inner`.
pub(crate) fn register(inner: &Arc<Inner>, handlers: &Handlers) {
    let weak = Arc::downgrade(inner);
    handlers.register(RAFT_CHANNEL, Arc::new(RaftHandler(weak.clone())));
    handlers.register(FORWARD_CHANNEL, Arc::new(ForwardHandler(weak.clone())));
    handlers.register(READ_INDEX_CHANNEL, Arc::new(ReadIndexHandler(weak)));
}
