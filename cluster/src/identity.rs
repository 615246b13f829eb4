//! Who this node is.

use serde::{Deserialize, Serialize};

/// A node's numeric id, as Raft knows it.
pub type NodeId = u64;

/// The identity a node presents to its peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// Raft node id.
    pub id: NodeId,
    /// Address peers dial (QUIC, default port 9002).
    pub cluster_addr: String,
}

impl NodeIdentity {
    /// The identity of a node that runs alone.
    pub fn single(cluster_addr: impl Into<String>) -> Self {
        Self {
            id: 1,
            cluster_addr: cluster_addr.into(),
        }
    }
}
