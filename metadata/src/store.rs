//! `MetaStore`: the typed metadata API the node uses.
//!
//! Writes are Raft `client_write`s of a [`Command`]; the state machine decides the outcome and it
//! comes back in the [`Response`]. Reads first pass a read barrier (read-index on the leader, or
//! from the leader on a follower: see `forward.rs`) and then read the local sled state tree
//! directly: once that returns, every write acknowledged before the read began has been applied
//! here. With a peer transport (`MetaOptions::over`), followers forward writes to the leader.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, Fatal, RaftError};
use openraft::{Config, LogIdOptionExt, SnapshotPolicy};

use crate::command::{Command, Response};
use crate::error::MetaError;
use crate::log_store::LogStore;
use crate::network::{NetworkFactory, NoPeersTransport, RaftTransport};
use crate::remote::ClusterRaftTransport;
use crate::state_machine::StateMachineStore;
use crate::types::{
    BucketEncryptionRecord, CompleteOutcome, ObjectPrecondition, ObjectRecord, PartRecord,
    UploadRecord,
};
use crate::{MetaRaft, Node, NodeId};

/// How to open a [`MetaStore`].
#[derive(Clone)]
pub struct MetaOptions {
    /// This node's address as peers reach it (stored in the membership; opaque here).
    pub advertise_addr: String,
    /// Carries Raft RPCs to peers.
    pub transport: Arc<dyn RaftTransport>,
    /// Build a snapshot after this many applied entries since the last one.
    pub snapshot_every: u64,
    /// Log entries kept behind a snapshot (so lagging followers catch up without one).
    pub keep_logs_after_snapshot: u64,
    /// How long `open` waits to become leader with everything applied.
    pub ready_timeout: Duration,
    /// If the store is fresh, initialize a one-voter cluster of this node, and in any case wait
    /// until this node leads. `false` for a node that joins an existing cluster (the leader
    /// adds it with [`MetaStore::add_learner`] and [`MetaStore::promote`]) or that restarts as a
    /// member of one; `open` then returns once Raft runs.
    pub bootstrap: bool,
    /// Carries writes a follower forwards to the leader and its read-index requests; `None`:
    /// a follower answers `NotLeader` instead.
    pub peers: Option<Arc<dyn coffer_cluster::Transport>>,
    /// Bound on one forwarded write or remote read barrier, retries across a leader change
    /// included.
    pub forward_timeout: Duration,
    /// Leader heartbeat period (also the deadline openraft gives each AppendEntries).
    pub heartbeat_interval: Duration,
    /// A follower that hears no leader for a random time in this range starts an election.
    pub election_timeout: (Duration, Duration),
}

impl MetaOptions {
    /// Options for a node of a multi-node cluster: Raft, forwarded writes and read indexes all
    /// over `transport` (see `remote.rs` for the channels). Bootstrapping stays on; clear it
    /// for nodes that join.
    ///
    /// Timings are wider than openraft's in-process defaults: a heartbeat must survive a TLS
    /// handshake on a busy machine, and an election should not start on one late heartbeat.
    pub fn over(transport: Arc<dyn coffer_cluster::Transport>) -> Self {
        Self {
            transport: Arc::new(ClusterRaftTransport::new(Arc::clone(&transport))),
            peers: Some(transport),
            heartbeat_interval: Duration::from_millis(100),
            election_timeout: (Duration::from_millis(500), Duration::from_millis(1000)),
            ..Self::default()
        }
    }
}

impl Default for MetaOptions {
    fn default() -> Self {
        Self {
            advertise_addr: String::new(),
            transport: Arc::new(NoPeersTransport),
            snapshot_every: 10_000,
            keep_logs_after_snapshot: 1_000,
            ready_timeout: Duration::from_secs(10),
            bootstrap: true,
            peers: None,
            forward_timeout: Duration::from_secs(10),
            // openraft's defaults.
            heartbeat_interval: Duration::from_millis(50),
            election_timeout: (Duration::from_millis(150), Duration::from_millis(300)),
        }
    }
}

impl fmt::Debug for MetaOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaOptions")
            .field("advertise_addr", &self.advertise_addr)
            .field("snapshot_every", &self.snapshot_every)
            .field("keep_logs_after_snapshot", &self.keep_logs_after_snapshot)
            .field("ready_timeout", &self.ready_timeout)
            .field("bootstrap", &self.bootstrap)
            .field("forwarding", &self.peers.is_some())
            .field("forward_timeout", &self.forward_timeout)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("election_timeout", &self.election_timeout)
            .finish_non_exhaustive()
    }
}

/// The metadata store of one node: a Raft member plus typed reads and writes.
#[derive(Clone)]
pub struct MetaStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) node_id: NodeId,
    pub(crate) raft: MetaRaft,
    pub(crate) db: crate::kv::Db,
    pub(crate) state: crate::kv::Tree,
    pub(crate) ready_timeout: Duration,
    /// Forwarding to the leader (see `forward.rs`).
    pub(crate) peers: Option<Arc<dyn coffer_cluster::Transport>>,
    pub(crate) forward_timeout: Duration,
    /// The commit index + 1 (0: none), kept by the log store.
    pub(crate) committed: Arc<AtomicU64>,
    /// Closes when openraft has dropped every storage object (see `OpenGuard`).
    pub(crate) storage_closed: tokio::sync::watch::Receiver<()>,
    /// (term, last log index) if this node restarted holding a committed vote for itself: see
    /// [`restored_leadership`].
    pub(crate) restored: Option<(u64, u64)>,
}

/// openraft 0.9 restores a node whose stored vote is a committed vote for itself straight to
/// leader of that term, without a new election and without the blank entry a new leader
/// commits first. Its read index is then `max(committed, noop)`, and the committed index may
/// be older than before the crash (it is not flushed on its own, `log_store.rs`): a read
/// could miss a write acknowledged before the crash. Every acknowledged write of that term is
/// in this node's flushed log, so reads served while it leads that term wait until the whole
/// log it restarted with is applied (found by the simulation, seed 452).
async fn restored_leadership(
    log_store: &mut LogStore,
    node_id: NodeId,
) -> Result<Option<(u64, u64)>, MetaError> {
    use openraft::storage::RaftLogStorage;
    let storage = |e: openraft::StorageError<NodeId>| MetaError::Storage(e.to_string());
    let vote = log_store.read_vote().await.map_err(storage)?;
    let last = log_store
        .get_log_state()
        .await
        .map_err(storage)?
        .last_log_id;
    Ok(match (vote, last) {
        (Some(v), Some(last)) if v.is_committed() && v.leader_id().voted_for() == Some(node_id) => {
            Some((v.leader_id().term, last.index))
        }
        _ => None,
    })
}

impl Inner {
    /// The log index a read on this leader must wait for beyond openraft's read index (see
    /// [`restored_leadership`]); `None` once this node leads a later term.
    pub(crate) fn restored_read_floor(&self) -> Option<u64> {
        let (term, index) = self.restored?;
        (self.raft.metrics().borrow().current_term == term).then_some(index)
    }
}

impl fmt::Debug for MetaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaStore")
            .field("node_id", &self.inner.node_id)
            .finish_non_exhaustive()
    }
}

pub(crate) fn sled_err(e: sled::Error) -> MetaError {
    MetaError::Storage(e.to_string())
}

impl MetaStore {
    /// Opens (or creates) the store at `dir`; a fresh store becomes a one-voter cluster of this
    /// node. Waits (bounded) until this node leads with everything applied.
    pub async fn open(dir: &Path, node_id: u64) -> Result<MetaStore, MetaError> {
        Self::open_with(dir, node_id, MetaOptions::default()).await
    }

    /// [`MetaStore::open`] with explicit options.
    pub async fn open_with(
        dir: &Path,
        node_id: u64,
        options: MetaOptions,
    ) -> Result<MetaStore, MetaError> {
        if cfg!(feature = "planted-bug") {
            // A build for the simulation's checkers must never hold real data.
            return Err(MetaError::Storage(
                "built with the test-only feature planted-bug: refusing to open a disk store"
                    .into(),
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| MetaError::Storage(e.to_string()))?;
        let db = open_db(dir).map_err(sled_err)?;
        Self::open_on(db, node_id, options).await
    }

    /// [`MetaStore::open_with`] on an already open database (the simulation's [`crate::kv::MemDb`]).
    pub async fn open_on(
        db: crate::kv::Db,
        node_id: u64,
        options: MetaOptions,
    ) -> Result<MetaStore, MetaError> {
        let (closed_tx, storage_closed) = tokio::sync::watch::channel(());
        let guard = Arc::new(closed_tx);
        let mut log_store = LogStore::open(&db, Arc::clone(&guard))?;
        let restored = restored_leadership(&mut log_store, node_id).await?;
        let committed = log_store.committed_cell();
        let state_machine = StateMachineStore::open(&db, Arc::clone(&guard))?;
        drop(guard);
        let state = db.open_tree("state").map_err(sled_err)?;

        let config = Config {
            cluster_name: "coffer-meta".to_owned(),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(options.snapshot_every),
            max_in_snapshot_log_to_keep: options.keep_logs_after_snapshot,
            heartbeat_interval: millis(options.heartbeat_interval),
            election_timeout_min: millis(options.election_timeout.0),
            election_timeout_max: millis(options.election_timeout.1),
            ..Config::default()
        }
        .validate()
        .map_err(|e| MetaError::Raft(e.to_string()))?;
        let network = NetworkFactory::new(node_id, Arc::clone(&options.transport));
        let raft = MetaRaft::new(node_id, Arc::new(config), network, log_store, state_machine)
            .await
            .map_err(|e| MetaError::Raft(e.to_string()))?;

        let store = MetaStore {
            inner: Arc::new(Inner {
                node_id,
                raft,
                db,
                state,
                ready_timeout: options.ready_timeout,
                peers: options.peers.clone(),
                forward_timeout: options.forward_timeout,
                committed,
                storage_closed,
                restored,
            }),
        };
        if !options.bootstrap {
            return Ok(store);
        }
        let raft = &store.inner.raft;
        if !raft.is_initialized().await.map_err(fatal)? {
            let members = BTreeMap::from([(node_id, Node::new(options.advertise_addr))]);
            raft.initialize(members)
                .await
                .map_err(|e| MetaError::Raft(e.to_string()))?;
        }
        store.wait_ready().await?;
        Ok(store)
    }

    /// Waits until this node leads and has applied its whole log (including the blank entry a
    /// new leader appends, so reads see every earlier write).
    async fn wait_ready(&self) -> Result<(), MetaError> {
        let id = self.inner.node_id;
        self.inner
            .raft
            .wait(Some(self.inner.ready_timeout))
            .metrics(
                |m| {
                    m.current_leader == Some(id)
                        && m.last_log_index.is_some()
                        && m.last_applied.index() == m.last_log_index
                },
                "metadata leader ready",
            )
            .await
            .map_err(|e| MetaError::Unavailable(e.to_string()))?;
        Ok(())
    }

    /// Stops Raft, waits for it to release the storage, and flushes sled.
    pub async fn shutdown(&self) -> Result<(), MetaError> {
        self.inner
            .raft
            .shutdown()
            .await
            .map_err(|e| MetaError::Raft(e.to_string()))?;
        // openraft's state-machine worker (and a snapshot build) can outlive the core task by a
        // moment; wait until they dropped their storage handles, bounded in case one is stuck.
        let mut closed = self.inner.storage_closed.clone();
        let wait = async { while closed.changed().await.is_ok() {} };
        if tokio::time::timeout(self.inner.ready_timeout, wait)
            .await
            .is_err()
        {
            tracing::warn!("metadata storage still held after raft shutdown");
        }
        self.inner.db.flush().await.map_err(sled_err)?;
        Ok(())
    }

    /// Builds a snapshot of everything applied so far, purges the log it covers, and returns the
    /// snapshot's last index. An operations and test hook; snapshots also happen by policy.
    pub async fn snapshot_now(&self) -> Result<Option<u64>, MetaError> {
        let raft = &self.inner.raft;
        let target = raft.metrics().borrow().last_applied.index();
        raft.trigger().snapshot().await.map_err(fatal)?;
        let m = raft
            .wait(Some(self.inner.ready_timeout))
            .metrics(|m| m.snapshot.index() >= target, "snapshot built")
            .await
            .map_err(|e| MetaError::Unavailable(e.to_string()))?;
        let Some(index) = m.snapshot.index() else {
            return Ok(None);
        };
        raft.trigger().purge_log(index).await.map_err(fatal)?;
        raft.wait(Some(self.inner.ready_timeout))
            .metrics(|m| m.purged.index() >= Some(index), "log purged")
            .await
            .map_err(|e| MetaError::Unavailable(e.to_string()))?;
        Ok(Some(index))
    }

    /// The underlying Raft handle, for the transport's receiving side ([`crate::serve_rpc`]) and
    /// membership changes.
    pub fn raft(&self) -> &MetaRaft {
        &self.inner.raft
    }

    // ---- writes ----

    /// Creates an empty bucket; `BucketExists` if the name is taken.
    pub async fn create_bucket(&self, name: &str, created_ms: i64) -> Result<(), MetaError> {
        let cmd = Command::CreateBucket {
            name: name.to_owned(),
            created_ms,
        };
        expect_done(self.propose(cmd).await?, "create_bucket")
    }

    /// Deletes a bucket; `NoSuchBucket`, or `BucketNotEmpty` while it has objects or uploads.
    pub async fn delete_bucket(&self, name: &str) -> Result<(), MetaError> {
        let cmd = Command::DeleteBucket {
            name: name.to_owned(),
        };
        expect_done(self.propose(cmd).await?, "delete_bucket")
    }

    /// Sets (or with `None` clears) a bucket's default encryption; `NoSuchBucket`.
    pub async fn set_bucket_encryption(
        &self,
        bucket: &str,
        enc: Option<BucketEncryptionRecord>,
    ) -> Result<(), MetaError> {
        let cmd = Command::SetBucketEncryption {
            bucket: bucket.to_owned(),
            encryption: enc,
        };
        expect_done(self.propose(cmd).await?, "set_bucket_encryption")
    }

    /// Creates or replaces an object record; returns the replaced one; `NoSuchBucket`.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        rec: ObjectRecord,
    ) -> Result<Option<ObjectRecord>, MetaError> {
        self.put_object_if(bucket, key, rec, None).await
    }

    /// Like [`Self::put_object`], applied only if `precondition` holds for the current record;
    /// otherwise `PreconditionFailed` and nothing changes.
    pub async fn put_object_if(
        &self,
        bucket: &str,
        key: &str,
        rec: ObjectRecord,
        precondition: Option<ObjectPrecondition>,
    ) -> Result<Option<ObjectRecord>, MetaError> {
        let cmd = Command::PutObject {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            record: rec,
            precondition,
        };
        match self.propose(cmd).await? {
            Response::Object(prev) => Ok(prev),
            _ => Err(MetaError::UnexpectedResponse {
                command: "put_object",
            }),
        }
    }

    /// Deletes an object record; returns it, or `None` if it was absent; `NoSuchBucket`.
    pub async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectRecord>, MetaError> {
        let cmd = Command::DeleteObject {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        };
        match self.propose(cmd).await? {
            Response::Object(prev) => Ok(prev),
            _ => Err(MetaError::UnexpectedResponse {
                command: "delete_object",
            }),
        }
    }

    /// Starts a multipart upload; `NoSuchBucket`, `InvalidArgument` for a reused upload id.
    pub async fn create_upload(&self, rec: UploadRecord) -> Result<(), MetaError> {
        let cmd = Command::CreateUpload { record: rec };
        expect_done(self.propose(cmd).await?, "create_upload")
    }

    /// Adds or replaces a part; returns the replaced part; `NoSuchUpload`.
    pub async fn put_part(
        &self,
        upload_id: &str,
        part: PartRecord,
    ) -> Result<Option<PartRecord>, MetaError> {
        let cmd = Command::PutPart {
            upload_id: upload_id.to_owned(),
            part,
        };
        match self.propose(cmd).await? {
            Response::Part(prev) => Ok(prev),
            _ => Err(MetaError::UnexpectedResponse {
                command: "put_part",
            }),
        }
    }

    /// Atomically turns an upload into an object and drops the upload and all its parts;
    /// `NoSuchUpload`, `InvalidPart` if a used part was never uploaded.
    pub async fn complete_upload(
        &self,
        upload_id: &str,
        object: ObjectRecord,
        used_parts: Vec<u32>,
    ) -> Result<CompleteOutcome, MetaError> {
        self.complete_upload_if(upload_id, object, used_parts, None)
            .await
    }

    /// [`Self::complete_upload`], applied only if the object it replaces meets `precondition`
    /// (`PreconditionFailed` otherwise, and the upload is kept).
    pub async fn complete_upload_if(
        &self,
        upload_id: &str,
        object: ObjectRecord,
        used_parts: Vec<u32>,
        precondition: Option<ObjectPrecondition>,
    ) -> Result<CompleteOutcome, MetaError> {
        let cmd = Command::CompleteUpload {
            upload_id: upload_id.to_owned(),
            object,
            used_parts,
            precondition,
        };
        match self.propose(cmd).await? {
            Response::Completed(outcome) => Ok(outcome),
            _ => Err(MetaError::UnexpectedResponse {
                command: "complete_upload",
            }),
        }
    }

    /// Drops an upload and returns its parts (by part number); `NoSuchUpload`.
    pub async fn abort_upload(&self, upload_id: &str) -> Result<Vec<PartRecord>, MetaError> {
        let cmd = Command::AbortUpload {
            upload_id: upload_id.to_owned(),
        };
        match self.propose(cmd).await? {
            Response::Parts(parts) => Ok(parts),
            _ => Err(MetaError::UnexpectedResponse {
                command: "abort_upload",
            }),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn expect_done(resp: Response, command: &'static str) -> Result<(), MetaError> {
    match resp {
        Response::Done => Ok(()),
        _ => Err(MetaError::UnexpectedResponse { command }),
    }
}

pub(crate) fn fatal(e: Fatal<NodeId>) -> MetaError {
    match e {
        Fatal::Stopped => MetaError::Unavailable("metadata raft is stopped".to_owned()),
        other => MetaError::Raft(other.to_string()),
    }
}

pub(crate) fn write_err(e: RaftError<NodeId, ClientWriteError<NodeId, Node>>) -> MetaError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => MetaError::NotLeader {
            leader: f.leader_id,
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            MetaError::Raft(e.to_string())
        }
        RaftError::Fatal(f) => fatal(f),
    }
}

/// Opens the sled database, waiting briefly for a previous owner in this process to release its
/// file lock: sled's background flusher holds the database for a moment after the last handle
/// is dropped, so an immediate reopen (a restart in place) can otherwise fail.
/// Blocking, like the rest of `open`: it runs once at start-up.
pub(crate) fn open_db(dir: &Path) -> Result<crate::kv::Db, sled::Error> {
    let mut delay = std::time::Duration::from_millis(10);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::Config::new().path(dir).open() {
            Err(sled::Error::Io(e)) if std::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, "metadata database busy; retrying");
                std::thread::sleep(delay);
                delay = (delay * 2).min(std::time::Duration::from_millis(200));
            }
            other => return other.map(crate::kv::Db::sled),
        }
    }
}
