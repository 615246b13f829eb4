//! Raft RPCs between nodes, behind a seam.
//!
//! openraft calls [`NetworkFactory`] → [`PeerClient`], which turns each RPC into a [`RaftRpc`] and
//! hands it to a [`RaftTransport`]. The transport moves it to the target node (the QUIC transport
//! in `cluster` later, an in-memory bus in the simulation), where the receiver calls
//! [`serve_rpc`] with its local Raft and sends the [`RaftRpcReply`] back. Both message types are
//! serde, so any transport can frame them. Until a transport exists, [`NoPeersTransport`]
//! refuses every peer: a one-voter cluster never needs to send an RPC.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::RPCTypes;
use serde::{Deserialize, Serialize};

use crate::{MetaRaft, Node, NodeId, TypeConfig};

/// A Raft RPC request, as it travels between nodes.
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftRpc {
    /// Log replication and heartbeats.
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Leader election.
    Vote(VoteRequest<NodeId>),
    /// One chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
}

/// The receiver's answer to a [`RaftRpc`]; a `RaftError` is the remote Raft's own refusal.
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftRpcReply {
    /// Answer to [`RaftRpc::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// Answer to [`RaftRpc::Vote`].
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// Answer to [`RaftRpc::InstallSnapshot`].
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
}

/// Why a transport could not deliver an RPC or bring back its reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The peer cannot be reached now; openraft backs off before retrying.
    #[error("peer {target} unreachable: {reason}")]
    Unreachable {
        /// The target node.
        target: NodeId,
        /// Why (for logs).
        reason: String,
    },
    /// No reply within the deadline.
    #[error("rpc to peer {target} timed out")]
    Timeout {
        /// The target node.
        target: NodeId,
    },
    /// A transient failure; openraft retries at once.
    #[error("network error to peer {target}: {reason}")]
    Network {
        /// The target node.
        target: NodeId,
        /// Why (for logs).
        reason: String,
    },
    /// The reply does not answer the request that was sent (a transport bug).
    #[error("reply to peer {target} does not match the request")]
    MismatchedReply {
        /// The target node.
        target: NodeId,
    },
}

/// Carries Raft RPCs to other nodes; the seam the QUIC transport and the simulation plug into.
#[async_trait::async_trait]
pub trait RaftTransport: Send + Sync + 'static {
    /// Delivers `rpc` to `target` (reachable at `node`) and returns its reply, within `deadline`.
    async fn call(
        &self,
        target: NodeId,
        node: &Node,
        rpc: RaftRpc,
        deadline: Duration,
    ) -> Result<RaftRpcReply, TransportError>;
}

/// The transport of a single-node cluster: every peer is unreachable.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPeersTransport;

#[async_trait::async_trait]
impl RaftTransport for NoPeersTransport {
    async fn call(
        &self,
        target: NodeId,
        _node: &Node,
        _rpc: RaftRpc,
        _deadline: Duration,
    ) -> Result<RaftRpcReply, TransportError> {
        Err(TransportError::Unreachable {
            target,
            reason: "no inter-node transport configured".to_owned(),
        })
    }
}

/// Dispatches an incoming RPC to the local Raft; the receiving side of a transport calls this.
pub async fn serve_rpc(raft: &MetaRaft, rpc: RaftRpc) -> RaftRpcReply {
    match rpc {
        RaftRpc::AppendEntries(req) => RaftRpcReply::AppendEntries(raft.append_entries(req).await),
        RaftRpc::Vote(req) => RaftRpcReply::Vote(raft.vote(req).await),
        RaftRpc::InstallSnapshot(req) => {
            RaftRpcReply::InstallSnapshot(raft.install_snapshot(req).await)
        }
    }
}

/// openraft's network factory: one [`PeerClient`] per target over a shared transport.
#[derive(Clone)]
pub struct NetworkFactory {
    local: NodeId,
    transport: Arc<dyn RaftTransport>,
}

impl NetworkFactory {
    /// A factory for node `local` sending over `transport`.
    pub fn new(local: NodeId, transport: Arc<dyn RaftTransport>) -> Self {
        Self { local, transport }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Self::Network {
        PeerClient {
            local: self.local,
            target,
            node: node.clone(),
            transport: Arc::clone(&self.transport),
        }
    }
}

/// openraft's connection to one peer.
pub struct PeerClient {
    local: NodeId,
    target: NodeId,
    node: Node,
    transport: Arc<dyn RaftTransport>,
}

impl PeerClient {
    /// Sends one RPC and maps transport failures to openraft's retry semantics.
    async fn send<E: std::error::Error>(
        &self,
        action: RPCTypes,
        rpc: RaftRpc,
        option: &RPCOption,
    ) -> Result<RaftRpcReply, RPCError<NodeId, Node, E>> {
        let timeout = option.hard_ttl();
        self.transport
            .call(self.target, &self.node, rpc, timeout)
            .await
            .map_err(|e| match e {
                TransportError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                TransportError::Timeout { .. } => RPCError::Timeout(Timeout {
                    action,
                    id: self.local,
                    target: self.target,
                    timeout,
                }),
                TransportError::Network { .. } | TransportError::MismatchedReply { .. } => {
                    RPCError::Network(NetworkError::new(&e))
                }
            })
    }

    fn mismatched<E: std::error::Error>(&self) -> RPCError<NodeId, Node, E> {
        RPCError::Network(NetworkError::new(&TransportError::MismatchedReply {
            target: self.target,
        }))
    }

    fn remote<E: std::error::Error>(&self, e: E) -> RPCError<NodeId, Node, E> {
        RPCError::RemoteError(RemoteError::new_with_node(
            self.target,
            self.node.clone(),
            e,
        ))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let reply = self
            .send(
                RPCTypes::AppendEntries,
                RaftRpc::AppendEntries(rpc),
                &option,
            )
            .await?;
        match reply {
            RaftRpcReply::AppendEntries(r) => r.map_err(|e| self.remote(e)),
            _ => Err(self.mismatched()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let reply = self
            .send(
                RPCTypes::InstallSnapshot,
                RaftRpc::InstallSnapshot(rpc),
                &option,
            )
            .await?;
        match reply {
            RaftRpcReply::InstallSnapshot(r) => r.map_err(|e| self.remote(e)),
            _ => Err(self.mismatched()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let reply = self
            .send(RPCTypes::Vote, RaftRpc::Vote(rpc), &option)
            .await?;
        match reply {
            RaftRpcReply::Vote(r) => r.map_err(|e| self.remote(e)),
            _ => Err(self.mismatched()),
        }
    }
}
