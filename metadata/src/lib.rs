//! Coffer's cluster metadata: one openraft group whose log and state machine live in sled, and
//! the typed [`MetaStore`] API the node uses (buckets, bucket encryption, object manifests,
//! multipart uploads). See `docs/metadata.md` for the persisted layout and durability points.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod codec;
mod command;
mod error;
mod forward;
mod keys;
pub mod kv;
mod log_store;
mod membership;
mod network;
mod reads;
mod records;
mod remote;
mod requests;
pub mod runtime;
mod snapshot;
mod state_machine;
mod store;
mod types;

use std::io::Cursor;
use std::sync::Arc;

pub use command::{Command, RecordExpect, Response};
pub use error::{DomainError, MetaError};
pub use network::{
    serve_rpc, NetworkFactory, NoPeersTransport, PeerClient, RaftRpc, RaftRpcReply, RaftTransport,
    TransportError,
};
pub use remote::{ClusterRaftTransport, FORWARD_CHANNEL, RAFT_CHANNEL, READ_INDEX_CHANNEL};
pub use store::{MetaOptions, MetaStore};
pub use types::{
    manifest_digest, BucketEncryptionRecord, BucketRecord, CompleteOutcome, MemberStatus,
    MetaStatus, ObjectPrecondition, ObjectRecord, PartRecord, UploadRecord,
};

/// The async runtime openraft runs on: tokio with a `thread_rng` the simulation can seed
/// ([`runtime::seed_thread_rng`]); OS randomness otherwise.
pub type MetaRuntime = runtime::SeedableRuntime;

/// Raft node id (stable per node; persisted by the node, not by this crate).
pub type NodeId = u64;

/// What Raft knows about a peer: its address for the transport.
pub type Node = openraft::BasicNode;

openraft::declare_raft_types!(
    /// openraft type configuration for Coffer's metadata group.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = NodeId,
        Node = Node,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = MetaRuntime,
);

/// The Raft handle type for this group.
pub type MetaRaft = openraft::Raft<TypeConfig>;

/// Held by every storage object openraft owns; when the last clone drops, the receiver in
/// `MetaStore` sees the channel close. `shutdown` waits for that so sled's directory lock is free
/// for a reopen in the same process.
pub(crate) type OpenGuard = Arc<tokio::sync::watch::Sender<()>>;
