//! The Raft log in sled: entries, vote, committed and last-purged log ids.
//!
//! Trees: `raft_log` (key = log index as u64 big-endian, so byte order is index order; value =
//! JSON `Entry`) and `raft_state` (keys `vote`, `committed`, `last_purged`; JSON values).
//! Durability: `append` reports the entries flushed only after `flush_async`, and `save_vote`
//! returns only after it; everything else rides on the next flush (see `docs/metadata.md`).

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, LogState, RaftLogReader, StorageError, StorageIOError, Vote,
};

use crate::codec::{decode, encode};
use crate::error::StoreError;
use crate::{NodeId, OpenGuard, TypeConfig};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

/// The sled-backed Raft log; cloning it is cheap and yields a reader over the same trees.
#[derive(Clone)]
pub(crate) struct LogStore {
    db: crate::kv::Db,
    log: crate::kv::Tree,
    state: crate::kv::Tree,
    /// The last committed index + 1 (0: none), for `MetaStore::status`; openraft reports the
    /// commit point only through `save_committed`, on leaders and followers alike.
    committed: Arc<AtomicU64>,
    _guard: OpenGuard,
}

impl LogStore {
    /// Opens (or creates) the log trees in `db`.
    pub(crate) fn open(db: &crate::kv::Db, guard: OpenGuard) -> Result<Self, StoreError> {
        let store = Self {
            db: db.clone(),
            log: db.open_tree("raft_log")?,
            state: db.open_tree("raft_state")?,
            committed: Arc::default(),
            _guard: guard,
        };
        let committed = store
            .read_state::<Option<LogId<NodeId>>>(COMMITTED)?
            .flatten();
        store.note_committed(committed.as_ref());
        Ok(store)
    }

    /// The shared commit-index cell (see the field).
    pub(crate) fn committed_cell(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.committed)
    }

    fn note_committed(&self, committed: Option<&LogId<NodeId>>) {
        let v = committed.map_or(0, |l| l.index.saturating_add(1));
        self.committed.fetch_max(v, Ordering::Relaxed);
    }

    fn read_state<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self.state.get(key)? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().await?;
        Ok(())
    }
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn io_err(e: &StoreError) -> AnyError {
    AnyError::new(e)
}

fn read_logs_err(e: StoreError) -> StorageError<NodeId> {
    StorageIOError::read_logs(io_err(&e)).into()
}

fn write_logs_err(e: StoreError) -> StorageError<NodeId> {
    StorageIOError::write_logs(io_err(&e)).into()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(i) => Bound::Included(index_key(*i)),
            Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(index_key(*i)),
            Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let entries: Result<Vec<_>, StoreError> = self
            .log
            .range::<[u8; 8], _>((start, end))
            .values()
            .map(|v| decode(&v?))
            .collect();
        entries.map_err(read_logs_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged: Option<LogId<NodeId>> =
            self.read_state(LAST_PURGED).map_err(read_logs_err)?;
        let last = match self.log.last().map_err(|e| read_logs_err(e.into()))? {
            Some((_, v)) => Some(
                decode::<Entry<TypeConfig>>(&v)
                    .map_err(read_logs_err)?
                    .log_id,
            ),
            None => None,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last.or(last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let to_err = |e: StoreError| -> StorageError<NodeId> {
            StorageIOError::write_vote(io_err(&e)).into()
        };
        let bytes = encode(vote).map_err(to_err)?;
        self.state
            .insert(VOTE, bytes)
            .map_err(|e| to_err(e.into()))?;
        // A vote must be durable before it is acted on, or a restart could vote twice in a term.
        self.flush().await.map_err(to_err)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.read_state(VOTE)
            .map_err(|e| StorageIOError::read_vote(io_err(&e)).into())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        // Not flushed: losing it only means a restart re-learns the commit point from a leader
        // (or, alone, re-commits by electing itself). It lets a restart re-apply committed
        // entries without waiting for an election.
        let bytes = encode(&committed).map_err(write_logs_err)?;
        self.state
            .insert(COMMITTED, bytes)
            .map_err(|e| write_logs_err(e.into()))?;
        self.note_committed(committed.as_ref());
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self
            .read_state::<Option<LogId<NodeId>>>(COMMITTED)
            .map_err(read_logs_err)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut batch = crate::kv::Batch::default();
        for entry in entries {
            batch.insert(
                index_key(entry.log_id.index),
                encode(&entry).map_err(write_logs_err)?,
            );
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| write_logs_err(e.into()))?;
        // openraft counts an entry toward the quorum once the callback fires, so it must fire
        // only after the entries are on disk.
        // The simulation's planted bug: acknowledge before (and without) the flush. Only on
        // the in-memory database; `MetaStore::open_with` refuses sled in such a build.
        #[cfg(feature = "planted-bug")]
        if self.db.is_mem() {
            callback.log_io_completed(Ok(()));
            return Ok(());
        }
        match self.flush().await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::other(e.to_string())));
                Err(write_logs_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.remove_range(index_key(log_id.index)..)
            .map_err(write_logs_err)?;
        // Flushed so a conflicting suffix cannot reappear after a crash next to a newer vote.
        self.flush().await.map_err(write_logs_err)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        // last_purged first: sled recovers writes in order, so after a crash either both
        // happened, only the marker did (stale entries below it are never read), or neither.
        let bytes = encode(&log_id).map_err(write_logs_err)?;
        self.state
            .insert(LAST_PURGED, bytes)
            .map_err(|e| write_logs_err(e.into()))?;
        self.remove_range(..=index_key(log_id.index))
            .map_err(write_logs_err)
    }
}

impl LogStore {
    /// Atomically removes the entries whose keys fall in `range`.
    fn remove_range<R: RangeBounds<[u8; 8]>>(&self, range: R) -> Result<(), StoreError> {
        let mut batch = crate::kv::Batch::default();
        for key in self.log.range(range).keys() {
            batch.remove(key?);
        }
        self.log.apply_batch(batch)?;
        Ok(())
    }
}
