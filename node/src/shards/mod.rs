//! Where shards live: a drive of this node or a drive of a peer, behind one [`ShardStore`]
//! interface, so the PUT and GET pipelines do not care which.
//!
//! Calls are blocking, like the drive seam they extend: the pipelines run them on the blocking
//! pool. A peer's drive ([`remote::RemoteDrive`]) turns each call into RPCs over the cluster
//! transport (see [`wire`] for the messages and `serve` for the receiving side).

pub mod layout;
pub mod liveness;
pub mod remote;
pub mod serve;
pub mod wire;

use std::io;
use std::sync::Arc;

use coffer_erasure::ErasureConfig;
use coffer_s3api::backend::StoreError;

use crate::drive::{DataId, Drive};
use crate::manifest::Segment;
use crate::seams::{ShardSink, ShardSource};

/// A drive that holds shard files, on this node or another.
pub trait ShardStore: Send + Sync {
    /// Starts writing shard `shard` of `id`; it appears only when the sink commits.
    fn create(&self, id: DataId, shard: usize) -> io::Result<Box<dyn ShardSink>>;
    /// Opens a shard for reading (`NotFound` when it is not there).
    fn open_shard(&self, id: DataId, shard: usize) -> io::Result<Box<dyn ShardSource>>;
    /// Removes a shard if present.
    fn remove(&self, id: DataId, shard: usize) -> io::Result<()>;
    /// The node holding the drive (`None`: this one).
    fn node(&self) -> Option<u64> {
        None
    }
}

impl ShardStore for Drive {
    fn create(&self, id: DataId, shard: usize) -> io::Result<Box<dyn ShardSink>> {
        Drive::create(self, id, shard)
    }

    fn open_shard(&self, id: DataId, shard: usize) -> io::Result<Box<dyn ShardSource>> {
        Drive::open_shard(self, id, shard)
    }

    fn remove(&self, id: DataId, shard: usize) -> io::Result<()> {
        Drive::remove(self, id, shard)
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
            .map(|&d| drives[d].clone() as Arc<dyn ShardStore>)
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
            drives
                .get(d)
                .map(|x| x.clone() as Arc<dyn ShardStore>)
                .ok_or_else(|| {
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
