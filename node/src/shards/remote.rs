//! Shards on peers: [`ClusterShards`] (the layout, peer liveness, placement across nodes) and
//! [`RemoteDrive`], a peer's drive behind the [`ShardStore`] interface.
//!
//! Every call is an async RPC with a deadline, and a peer that failed to answer is skipped at
//! once until a heartbeat reaches it again.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use coffer_cluster::{Transport, TransportError};
use coffer_erasure::ErasureConfig;
use coffer_s3api::backend::StoreError;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::layout::NodeRecord;
use super::liveness::Liveness;
use super::wire::{self, Reply, Request, Status};
use super::{LocalStore, ShardReader, ShardStore, ShardTargets, ShardWriter};
use crate::drive::{DataId, Drive};
use crate::manifest::Segment;

/// Deadline of one shard call (a block of at most a few MiB).
const CALL_DEADLINE: Duration = Duration::from_secs(5);
/// Deadline of a heartbeat.
const PING_DEADLINE: Duration = Duration::from_secs(1);
/// Heartbeat period.
const PING_EVERY: Duration = Duration::from_millis(500);
/// A remote write sends its bytes in calls of about this size.
const APPEND_CHUNK: usize = 1 << 20;
/// ... or at least this often, so a slow upload keeps its session on the peer alive.
const APPEND_EVERY: Duration = Duration::from_secs(10);

/// What every remote store of this node shares.
pub struct ClusterInner {
    self_id: u64,
    transport: Arc<dyn Transport>,
    nodes: RwLock<Vec<NodeRecord>>,
    /// The layout has been read from Raft at least once (until then only this node is known,
    /// and placing shards would give new objects no redundancy).
    loaded: std::sync::atomic::AtomicBool,
    liveness: Liveness,
    parity: Option<usize>,
    sessions: AtomicU64,
    rt: Handle,
}

/// The cluster side of a node's shard map. Cheap to clone.
#[derive(Clone)]
pub struct ClusterShards {
    inner: Arc<ClusterInner>,
}

impl ClusterShards {
    /// Shards of node `self_id` (whose own record is `me`) and its peers over `transport`;
    /// `parity` overrides the parity chosen by drive count. Call inside a tokio runtime.
    pub fn new(
        me: NodeRecord,
        transport: Arc<dyn Transport>,
        parity: Option<usize>,
        session_seed: u64,
    ) -> Self {
        Self {
            inner: Arc::new(ClusterInner {
                self_id: me.id,
                transport,
                nodes: RwLock::new(vec![me]),
                loaded: std::sync::atomic::AtomicBool::new(false),
                liveness: Liveness::default(),
                parity,
                sessions: AtomicU64::new(session_seed),
                rt: Handle::current(),
            }),
        }
    }

    /// This node's id.
    pub fn self_id(&self) -> u64 {
        self.inner.self_id
    }

    /// The nodes of the layout, by id.
    pub fn nodes(&self) -> Vec<NodeRecord> {
        self.inner
            .nodes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the layout (from the Raft records of the current members); this node's own
    /// record is kept even before it appears there.
    pub fn set_nodes(&self, mut nodes: Vec<NodeRecord>) {
        let me = self.inner.self_id;
        let mut cur = self.inner.nodes.write().unwrap_or_else(|p| p.into_inner());
        if !nodes.iter().any(|n| n.id == me) {
            if let Some(own) = cur.iter().find(|n| n.id == me).cloned() {
                nodes.push(own);
            }
        }
        nodes.sort_unstable_by_key(|n| n.id);
        for n in &nodes {
            if n.id != me {
                self.inner.transport.learn_peer(n.id, &n.quic);
            }
        }
        *cur = nodes;
        self.inner.loaded.store(true, Ordering::Release);
    }

    /// True once the layout has been read from Raft.
    pub fn is_loaded(&self) -> bool {
        self.inner.loaded.load(Ordering::Acquire)
    }

    /// Peer health.
    pub fn liveness(&self) -> &Liveness {
        &self.inner.liveness
    }

    /// The erasure layout over all drives of the layout.
    pub fn erasure(&self) -> Option<ErasureConfig> {
        let total: usize = self.nodes().iter().map(|n| n.drives).sum();
        erasure_for(total, self.inner.parity)
    }

    /// Placement of a new segment (see [`coffer_erasure::place_on_nodes`]).
    pub fn place(
        &self,
        hash: u64,
        local: &[Arc<Drive>],
    ) -> Result<(ErasureConfig, ShardTargets), StoreError> {
        if !self.is_loaded() {
            return Err(StoreError::Unavailable);
        }
        let nodes = self.nodes();
        let total: usize = nodes.iter().map(|n| n.drives).sum();
        // Too few drives for the configured parity (nodes still joining): not serving writes
        // yet is the answer, not an internal error.
        let cfg = erasure_for(total, self.inner.parity).ok_or(StoreError::Unavailable)?;
        let pairs: Vec<(u64, usize)> = nodes.iter().map(|n| (n.id, n.drives)).collect();
        let placed = coffer_erasure::place_on_nodes(hash, &pairs, cfg.width())
            .ok_or(StoreError::Unavailable)?;
        let mut targets = ShardTargets {
            drives: Vec::with_capacity(placed.len()),
            nodes: Vec::with_capacity(placed.len()),
            stores: Vec::with_capacity(placed.len()),
        };
        for (node, drive) in placed {
            targets.stores.push(self.store(node, drive, local)?);
            targets.nodes.push(node);
            targets.drives.push(drive);
        }
        Ok((cfg, targets))
    }

    /// The stores of `seg`'s shards.
    pub fn resolve(
        &self,
        seg: &Segment,
        local: &[Arc<Drive>],
    ) -> Result<Vec<Arc<dyn ShardStore>>, StoreError> {
        if seg.nodes.len() != seg.drives.len() {
            return Err(StoreError::Internal(
                "segment names a node for some shards only".into(),
            ));
        }
        seg.nodes
            .iter()
            .zip(&seg.drives)
            .map(|(&n, &d)| self.store(n, d, local))
            .collect()
    }

    fn store(
        &self,
        node: u64,
        drive: usize,
        local: &[Arc<Drive>],
    ) -> Result<Arc<dyn ShardStore>, StoreError> {
        if node == self.inner.self_id {
            return local
                .get(drive)
                .map(LocalStore::shared)
                .ok_or_else(|| StoreError::Internal(format!("no local drive {drive}")));
        }
        Ok(Arc::new(RemoteDrive {
            node,
            drive,
            inner: self.inner.clone(),
        }))
    }

    /// Probes every peer of the layout until `stop`, marking them up or down.
    pub async fn heartbeats(self, stop: CancellationToken) {
        loop {
            let peers: Vec<u64> = self
                .nodes()
                .iter()
                .map(|n| n.id)
                .filter(|&id| id != self.inner.self_id)
                .collect();
            let probes = peers.into_iter().map(|id| {
                let inner = self.inner.clone();
                async move {
                    // A peer that answers, even with a refusal, is up.
                    let ok = match inner
                        .call(id, &Request::Ping, Bytes::new(), PING_DEADLINE, true)
                        .await
                    {
                        Ok(_) => true,
                        Err(e) => !super::liveness::is_unreachable(&e),
                    };
                    if inner.liveness.report(id, ok) {
                        if ok {
                            tracing::info!(node = id, "peer is reachable again");
                        } else {
                            tracing::warn!(node = id, "peer is unreachable");
                        }
                    }
                }
            });
            futures::future::join_all(probes).await;
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(PING_EVERY) => {}
            }
        }
    }
}

/// k+m over `total` drives: by drive count, or with the configured parity.
fn erasure_for(total: usize, parity: Option<usize>) -> Option<ErasureConfig> {
    match parity {
        None => ErasureConfig::for_drives(total).ok(),
        Some(m) => {
            let width = total.min(coffer_erasure::MAX_DEFAULT_WIDTH);
            let k = width.checked_sub(m).filter(|k| *k > 0)?;
            ErasureConfig::new(k, m, coffer_erasure::DEFAULT_BLOCK_SIZE).ok()
        }
    }
}

fn io_err(kind: io::ErrorKind, msg: impl Into<String>) -> io::Error {
    io::Error::new(kind, msg.into())
}

impl ClusterInner {
    /// One shard call; `probe` lets heartbeats reach a peer marked down.
    async fn call(
        &self,
        node: u64,
        req: &Request,
        body: Bytes,
        deadline: Duration,
        probe: bool,
    ) -> io::Result<(Reply, Bytes)> {
        if !probe && self.liveness.is_down(node) {
            return Err(io_err(
                io::ErrorKind::ConnectionRefused,
                format!("node {node} is down"),
            ));
        }
        let msg = wire::encode(req, &body);
        let started = tokio::time::Instant::now();
        match self
            .transport
            .call_with_deadline(node, wire::CHANNEL, msg, deadline)
            .await
        {
            Ok(reply) => {
                self.liveness.heard_from(node);
                let (reply, body): (Reply, Bytes) = wire::decode(&reply)
                    .map_err(|e| io_err(io::ErrorKind::InvalidData, e.to_string()))?;
                match reply.status {
                    Status::Ok => Ok((reply, body)),
                    Status::NotFound => Err(io_err(io::ErrorKind::NotFound, "no such shard")),
                    Status::Failed => Err(io::Error::other(format!(
                        "node {node}: {}",
                        reply.message.unwrap_or_default()
                    ))),
                }
            }
            Err(e) => {
                let kind = match &e {
                    TransportError::Unreachable { .. } => io::ErrorKind::ConnectionRefused,
                    TransportError::Timeout { .. } => io::ErrorKind::TimedOut,
                    // The connection broke during the call: worth retrying, not a refusal.
                    TransportError::Network { .. } => io::ErrorKind::ConnectionReset,
                    _ => io::ErrorKind::Other,
                };
                if matches!(
                    e,
                    TransportError::Unreachable { .. } | TransportError::Timeout { .. }
                ) && self.liveness.report_failure(node, started)
                {
                    tracing::warn!(node, error = %e, "peer is unreachable");
                }
                Err(io_err(kind, e.to_string()))
            }
        }
    }

    /// One shard call with the usual deadline.
    async fn shard_call(
        &self,
        node: u64,
        req: &Request,
        body: Bytes,
    ) -> io::Result<(Reply, Bytes)> {
        self.call(node, req, body, CALL_DEADLINE, false).await
    }
}

/// A drive of a peer.
pub struct RemoteDrive {
    node: u64,
    drive: usize,
    inner: Arc<ClusterInner>,
}

#[async_trait]
impl ShardStore for RemoteDrive {
    async fn create(&self, id: DataId, shard: usize) -> io::Result<Box<dyn ShardWriter>> {
        let session = self.inner.sessions.fetch_add(1, Ordering::Relaxed);
        let req = Request::Open {
            drive: self.drive,
            id: id.to_hex(),
            shard,
            session,
        };
        self.inner.shard_call(self.node, &req, Bytes::new()).await?;
        Ok(Box::new(RemoteSink {
            node: self.node,
            session,
            sent: 0,
            buf: Vec::with_capacity(APPEND_CHUNK + (64 << 10)),
            last_call: tokio::time::Instant::now(),
            patch: None,
            done: false,
            inner: self.inner.clone(),
        }))
    }

    async fn open_shard(&self, id: DataId, shard: usize) -> io::Result<Arc<dyn ShardReader>> {
        let req = Request::Stat {
            drive: self.drive,
            id: id.to_hex(),
            shard,
        };
        let (reply, _) = self.inner.shard_call(self.node, &req, Bytes::new()).await?;
        Ok(Arc::new(RemoteSource {
            node: self.node,
            drive: self.drive,
            id,
            shard,
            len: reply.len.unwrap_or(0),
            inner: self.inner.clone(),
        }))
    }

    async fn remove(&self, id: DataId, shard: usize) -> io::Result<()> {
        let req = Request::Delete {
            drive: self.drive,
            id: id.to_hex(),
            shard,
        };
        self.inner
            .shard_call(self.node, &req, Bytes::new())
            .await
            .map(|_| ())
    }

    fn node(&self) -> Option<u64> {
        Some(self.node)
    }
}

/// A shard being written on a peer: buffered into calls of about [`APPEND_CHUNK`].
struct RemoteSink {
    node: u64,
    session: u64,
    /// Bytes the peer has acknowledged.
    sent: u64,
    buf: Vec<u8>,
    last_call: tokio::time::Instant,
    /// Bytes to write at an offset already sent (the header), sent with the commit.
    patch: Option<(u64, Vec<u8>)>,
    done: bool,
    inner: Arc<ClusterInner>,
}

impl RemoteSink {
    async fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let body = Bytes::from(std::mem::take(&mut self.buf));
        let len = body.len() as u64;
        let req = Request::Append {
            session: self.session,
            offset: self.sent,
        };
        self.inner.shard_call(self.node, &req, body).await?;
        self.sent += len;
        self.last_call = tokio::time::Instant::now();
        Ok(())
    }
}

#[async_trait]
impl ShardWriter for RemoteSink {
    async fn append(&mut self, data: Vec<u8>) -> io::Result<()> {
        if self.buf.is_empty() && data.len() >= APPEND_CHUNK {
            self.buf = data;
        } else {
            self.buf.extend_from_slice(&data);
        }
        if self.buf.len() >= APPEND_CHUNK || self.last_call.elapsed() >= APPEND_EVERY {
            self.flush().await?;
        }
        Ok(())
    }

    async fn write_at(&mut self, offset: u64, data: Vec<u8>) -> io::Result<()> {
        let end = offset + data.len() as u64;
        if offset >= self.sent && end <= self.sent + self.buf.len() as u64 {
            let at = (offset - self.sent) as usize;
            self.buf[at..at + data.len()].copy_from_slice(&data);
            return Ok(());
        }
        if end > self.sent {
            return Err(io_err(
                io::ErrorKind::InvalidInput,
                "remote shard patch straddles sent and buffered bytes",
            ));
        }
        self.patch = Some((offset, data));
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> io::Result<()> {
        self.flush().await?;
        let (at, body) = self.patch.take().unwrap_or((0, Vec::new()));
        let req = Request::Commit {
            session: self.session,
            len: self.sent,
            at,
        };
        self.done = true;
        self.inner
            .shard_call(self.node, &req, Bytes::from(body))
            .await
            .map(|_| ())
    }
}

impl Drop for RemoteSink {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Abandoned: tell the peer to drop the partial file now rather than at its idle reap.
        let inner = self.inner.clone();
        let (node, session) = (self.node, self.session);
        self.inner.rt.spawn(async move {
            let _ = inner
                .call(
                    node,
                    &Request::Abort { session },
                    Bytes::new(),
                    PING_DEADLINE,
                    false,
                )
                .await;
        });
    }
}

/// A shard file on a peer; each read is one call.
struct RemoteSource {
    node: u64,
    drive: usize,
    id: DataId,
    shard: usize,
    len: u64,
    inner: Arc<ClusterInner>,
}

#[async_trait]
impl ShardReader for RemoteSource {
    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let req = Request::Read {
            drive: self.drive,
            id: self.id.to_hex(),
            shard: self.shard,
            offset,
            len: len as u64,
        };
        let (_, body) = self.inner.shard_call(self.node, &req, Bytes::new()).await?;
        if body.len() != len {
            return Err(io_err(
                io::ErrorKind::UnexpectedEof,
                format!("node {} sent {} of {} bytes", self.node, body.len(), len),
            ));
        }
        Ok(Vec::from(body))
    }

    fn len(&self) -> u64 {
        self.len
    }
}
