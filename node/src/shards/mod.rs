//! Where shards live: a drive of this node or a drive of a peer, behind one [`ShardStore`]
//! interface, so the PUT and GET pipelines and the healer do not care which.
//!
//! Calls are async. A local drive ([`local::LocalStore`]) runs its blocking file I/O as a
//! data-path stage (the blocking pool, or inline in the simulation); a peer's drive
//! ([`remote::RemoteDrive`]) turns each call into RPCs over the cluster transport (see [`wire`]
//! for the messages and `serve` for the receiving side) and never holds a thread while it
//! waits — which is what lets the simulation run several whole nodes on one thread.

pub mod layout;
pub mod liveness;
pub mod local;
pub mod remote;
pub mod serve;
pub mod wire;

use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use coffer_erasure::ErasureConfig;
use coffer_s3api::backend::StoreError;

use crate::drive::{DataId, Drive};
use crate::manifest::Segment;
pub use local::LocalStore;

/// A drive that holds shard files, on this node or another.
#[async_trait]
pub trait ShardStore: Send + Sync {
    /// Starts writing shard `shard` of `id`; it appears only when the writer commits.
    async fn create(&self, id: DataId, shard: usize) -> io::Result<Box<dyn ShardWriter>>;
    /// Opens a shard for reading (`NotFound` when it is not there).
    async fn open_shard(&self, id: DataId, shard: usize) -> io::Result<Arc<dyn ShardReader>>;
    /// Removes a shard if present.
    async fn remove(&self, id: DataId, shard: usize) -> io::Result<()>;
    /// The node holding the drive (`None`: this one).
    fn node(&self) -> Option<u64> {
        None
    }
}

/// A shard being written. Dropping it without `commit` discards what was written.
#[async_trait]
pub trait ShardWriter: Send {
    /// Appends bytes.
    async fn append(&mut self, data: Vec<u8>) -> io::Result<()>;
    /// Overwrites bytes at `offset`, already appended (the header, once the length is known).
    async fn write_at(&mut self, offset: u64, data: Vec<u8>) -> io::Result<()>;
    /// Makes the shard durable and visible under its name.
    async fn commit(self: Box<Self>) -> io::Result<()>;
}

/// A shard open for reading.
#[async_trait]
pub trait ShardReader: Send + Sync {
    /// Exactly `len` bytes at `offset`.
    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// Length of the shard file in bytes.
    fn len(&self) -> u64;
    /// True when the shard file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The drives a segment's shards go to: shard `i` to `stores[i]`, recorded in the manifest as
/// drive `drives[i]` of node `nodes[i]` (`nodes` empty on a single node).
pub struct ShardTargets {
    /// Drive index on its node, per shard.
    pub drives: Vec<usize>,
    /// Node id per shard; empty when every shard is on this (single) node.
    pub nodes: Vec<u64>,
    /// Where each shard is written.
    pub stores: Vec<Arc<dyn ShardStore>>,
}

impl ShardTargets {
    /// Shard `i` on local drive `placement[i]`.
    pub fn local(placement: Vec<usize>, drives: &[Arc<Drive>]) -> Self {
        let stores = placement
            .iter()
            .map(|&d| LocalStore::shared(&drives[d]))
            .collect();
        Self {
            drives: placement,
            nodes: Vec::new(),
            stores,
        }
    }
}

/// The local drives holding the shards of `seg` (a segment without node ids).
pub fn local_stores(
    seg: &Segment,
    drives: &[Arc<Drive>],
) -> Result<Vec<Arc<dyn ShardStore>>, StoreError> {
    seg.drives
        .iter()
        .map(|&d| {
            drives.get(d).map(LocalStore::shared).ok_or_else(|| {
                StoreError::Internal("segment placement names unknown drives".into())
            })
        })
        .collect()
}

/// This node's view of all shard storage: its own drives, and in a cluster the peers' drives
/// by the layout held in Raft.
pub struct ShardMap {
    local: Vec<Arc<Drive>>,
    /// Erasure layout of a node without peers.
    single: ErasureConfig,
    cluster: Option<remote::ClusterShards>,
}

impl ShardMap {
    /// A node without peers: every shard on `local`, coded with `erasure`.
    pub fn single(local: Vec<Arc<Drive>>, erasure: ErasureConfig) -> Self {
        Self {
            local,
            single: erasure,
            cluster: None,
        }
    }

    /// A cluster member.
    pub fn cluster(local: Vec<Arc<Drive>>, cluster: remote::ClusterShards) -> Self {
        let single = ErasureConfig::for_drives(local.len()).unwrap_or(ErasureConfig {
            data: 1,
            parity: 0,
            block_size: coffer_erasure::DEFAULT_BLOCK_SIZE,
        });
        Self {
            local,
            single,
            cluster: Some(cluster),
        }
    }

    /// This node's drives.
    pub fn local(&self) -> &[Arc<Drive>] {
        &self.local
    }

    /// The cluster side, if this node has peers.
    pub fn cluster_side(&self) -> Option<&remote::ClusterShards> {
        self.cluster.as_ref()
    }

    /// The erasure layout new objects get now.
    pub fn erasure(&self) -> ErasureConfig {
        match &self.cluster {
            Some(c) => c.erasure().unwrap_or(self.single),
            None => self.single,
        }
    }

    /// Where the shards of a new segment of the object hashed to `hash` go, and how it is coded.
    pub fn place(&self, hash: u64) -> Result<(ErasureConfig, ShardTargets), StoreError> {
        match &self.cluster {
            Some(c) => c.place(hash, &self.local),
            None => {
                let placement = coffer_erasure::place(hash, self.local.len(), self.single.width())
                    .map_err(|e| StoreError::Internal(e.to_string()))?;
                Ok((self.single, ShardTargets::local(placement, &self.local)))
            }
        }
    }

    /// The stores holding the shards of `seg`, in shard order.
    pub fn resolve(&self, seg: &Segment) -> Result<Vec<Arc<dyn ShardStore>>, StoreError> {
        match &self.cluster {
            Some(c) if !seg.nodes.is_empty() => c.resolve(seg, &self.local),
            _ => local_stores(seg, &self.local),
        }
    }
}
