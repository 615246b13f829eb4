//! The cluster layout: which nodes hold how many drives, as each node registers itself in Raft
//! (records namespace [`NAMESPACE`]), and where a new object's shards go.
//!
//! Placement is `coffer_erasure::place_on_nodes` (rendezvous over the nodes). Each segment
//! records where its shards went (manifest `nodes`/`drives`), so placement is not a stored
//! format: reads never recompute it.

use serde::{Deserialize, Serialize};

/// Records namespace of the node entries.
pub const NAMESPACE: &str = "cluster-nodes";

/// One node as the layout knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Raft node id (the id in its certificate).
    pub id: u64,
    /// Where its QUIC listener is reached.
    pub quic: String,
    /// Where clients reach its S3 API.
    pub s3: String,
    /// Where its admin API listens.
    pub admin: String,
    /// Number of drives.
    pub drives: usize,
}
