//! The Raft state machine in sled, and its snapshots.
//!
//! All state is in the `state` tree (layout in `keys.rs`). Each log entry is applied as one
//! `crate::kv::Batch` holding its data writes AND its `last_applied` (and membership, if it changed
//! it), so after a crash an entry is either fully applied with its index recorded or not at all:
//! openraft re-applies exactly the entries after `last_applied`, never one twice.

use std::io::Cursor;

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, Entry, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};

use crate::codec::encode;
use crate::command::{execute, get, Command, Response};
use crate::error::StoreError;
use crate::snapshot::{dump, encode_dump, stage_install, RawDump};
use crate::{keys, Node, NodeId, OpenGuard, TypeConfig};

/// The sled-backed state machine openraft drives.
pub(crate) struct StateMachineStore {
    db: crate::kv::Db,
    tree: crate::kv::Tree,
    /// Cached copy of the persisted `last_applied`.
    last_applied: Option<LogId<NodeId>>,
    /// Cached copy of the persisted membership.
    membership: StoredMembership<NodeId, Node>,
    /// Distinguishes snapshots built at the same log id (ids need only be unique per node).
    snapshot_seq: u64,
    guard: OpenGuard,
}

fn sm_read_err(e: StoreError) -> StorageError<NodeId> {
    StorageIOError::read_state_machine(AnyError::new(&e)).into()
}

fn sm_write_err(e: StoreError) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(AnyError::new(&e)).into()
}

fn snapshot_err(e: StoreError) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, AnyError::new(&e)).into()
}

impl StateMachineStore {
    /// Opens (or creates) the state tree in `db` and loads the applied state.
    pub(crate) fn open(db: &crate::kv::Db, guard: OpenGuard) -> Result<Self, StoreError> {
        let tree = db.open_tree("state")?;
        let last_applied = get(&tree, keys::META_LAST_APPLIED)?;
        let membership = get(&tree, keys::META_MEMBERSHIP)?.unwrap_or_default();
        Ok(Self {
            db: db.clone(),
            tree,
            last_applied,
            membership,
            snapshot_seq: 0,
            guard,
        })
    }

    /// Applies one entry as one atomic batch.
    fn apply_one(&mut self, entry: &Entry<TypeConfig>) -> Result<Response, StoreError> {
        let mut batch = crate::kv::Batch::default();
        let mut membership = None;
        let response = match &entry.payload {
            EntryPayload::Blank => Response::Done,
            EntryPayload::Normal(Command::Once { request, command }) => {
                crate::requests::apply_once(
                    &self.tree,
                    request,
                    command,
                    entry.log_id.index,
                    &mut batch,
                )?
            }
            EntryPayload::Normal(cmd) => execute(&self.tree, cmd, &mut batch)?,
            EntryPayload::Membership(m) => {
                let stored = StoredMembership::new(Some(entry.log_id), m.clone());
                batch.insert(keys::META_MEMBERSHIP, encode(&stored)?);
                membership = Some(stored);
                Response::Done
            }
        };
        batch.insert(keys::META_LAST_APPLIED, encode(&entry.log_id)?);
        self.tree.apply_batch(batch)?;
        self.last_applied = Some(entry.log_id);
        if let Some(m) = membership {
            self.membership = m;
        }
        Ok(response)
    }

    /// Reads the stored current snapshot, if any.
    fn read_snapshot(&self) -> Result<Option<Snapshot<TypeConfig>>, StoreError> {
        let Some(meta) = get::<SnapshotMeta<NodeId, Node>>(&self.tree, keys::META_SNAPSHOT_META)?
        else {
            return Ok(None);
        };
        let data = self
            .tree
            .get(keys::META_SNAPSHOT_DATA)?
            .map(|v| v.to_vec())
            .unwrap_or_default();
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }

    /// Replaces the whole state with a snapshot's, atomically, and makes it the current one.
    fn install(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        data: &[u8],
    ) -> Result<(), StoreError> {
        let mut batch = crate::kv::Batch::default();
        for key in self.tree.iter().keys() {
            batch.remove(key?);
        }
        // Inserts staged after the removals win for the same key (Batch keeps the last write).
        stage_install(data, &mut batch)?;
        batch.insert(keys::META_LAST_APPLIED, encode(&meta.last_log_id)?);
        batch.insert(keys::META_MEMBERSHIP, encode(&meta.last_membership)?);
        batch.insert(keys::META_SNAPSHOT_META, encode(meta)?);
        batch.insert(keys::META_SNAPSHOT_DATA, data);
        self.tree.apply_batch(batch)?;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Node>), StorageError<NodeId>> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        for entry in entries {
            let response = self.apply_one(&entry).map_err(|e| {
                StorageError::from(StorageIOError::apply(entry.log_id, AnyError::new(&e)))
            })?;
            out.push(response);
        }
        // No flush: the log is durable, and a lost apply is redone from it on restart.
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshot_seq += 1;
        // Copy now, while no apply can run (we hold `&mut self`); the builder then encodes in
        // its own task without blocking applies.
        SnapshotBuilder {
            db: self.db.clone(),
            tree: self.tree.clone(),
            raw: dump(&self.tree),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            seq: self.snapshot_seq,
            _guard: self.guard.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        self.install(meta, &data).map_err(snapshot_err)?;
        // The log below the snapshot may be purged next; the state replacing it must be durable.
        self.db.flush().await.map_err(|e| snapshot_err(e.into()))?;
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        self.read_snapshot().map_err(sm_read_err)
    }
}

/// Builds a snapshot from a copy taken between applies.
pub(crate) struct SnapshotBuilder {
    db: crate::kv::Db,
    tree: crate::kv::Tree,
    raw: Result<RawDump, StoreError>,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Node>,
    seq: u64,
    _guard: OpenGuard,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let raw = std::mem::replace(&mut self.raw, Ok(Vec::new())).map_err(sm_read_err)?;
        let data = encode_dump(&raw).map_err(snapshot_err)?;
        let snapshot_id = match self.last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, self.seq),
            None => format!("none-{}", self.seq),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        // Meta and data in one batch so a reader never pairs one snapshot's meta with another's
        // data.
        let mut batch = crate::kv::Batch::default();
        batch.insert(
            keys::META_SNAPSHOT_META,
            encode(&meta).map_err(sm_write_err)?,
        );
        batch.insert(keys::META_SNAPSHOT_DATA, data.as_slice());
        self.tree
            .apply_batch(batch)
            .map_err(|e| snapshot_err(e.into()))?;
        // openraft purges the log up to the snapshot next: the snapshot must be on disk first.
        self.db.flush().await.map_err(|e| snapshot_err(e.into()))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use openraft::{CommittedLeaderId, Membership};

    use super::*;
    use crate::command::Command;
    use crate::error::DomainError;
    use crate::types::{ObjectRecord, PartRecord, UploadRecord};

    fn open(dir: &std::path::Path) -> (crate::kv::Db, StateMachineStore) {
        let db = crate::store::open_db(dir).unwrap();
        let (tx, _rx) = tokio::sync::watch::channel(());
        let sm = StateMachineStore::open(&db, std::sync::Arc::new(tx)).unwrap();
        (db, sm)
    }

    fn entry(index: u64, payload: EntryPayload<TypeConfig>) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload,
        }
    }

    fn obj(n: u8) -> ObjectRecord {
        ObjectRecord {
            size: n.into(),
            etag: format!("e{n}"),
            last_modified_ms: 0,
            manifest: vec![n],
        }
    }

    fn history() -> Vec<Entry<TypeConfig>> {
        let membership = Membership::new(vec![std::collections::BTreeSet::from([1])], None);
        let cmds = [
            Command::CreateBucket {
                name: "b".into(),
                created_ms: 1,
            },
            Command::PutObject {
                bucket: "b".into(),
                key: "k\0x".into(),
                record: obj(1),
                precondition: None,
            },
            Command::CreateUpload {
                record: UploadRecord {
                    bucket: "b".into(),
                    key: "m\0p".into(),
                    upload_id: "u".into(),
                    initiated_ms: 2,
                    manifest: vec![],
                },
            },
            Command::PutPart {
                upload_id: "u".into(),
                part: PartRecord {
                    part_number: 3,
                    size: 3,
                    etag: "p3".into(),
                    last_modified_ms: 3,
                    manifest: vec![3],
                },
            },
            // Rejected: only last_applied moves.
            Command::DeleteBucket { name: "b".into() },
        ];
        let mut entries = vec![
            entry(1, EntryPayload::Blank),
            entry(2, EntryPayload::Membership(membership)),
        ];
        for (i, cmd) in cmds.into_iter().enumerate() {
            entries.push(entry(3 + i as u64, EntryPayload::Normal(cmd)));
        }
        entries
    }

    fn contents(sm: &StateMachineStore) -> BTreeMap<Vec<u8>, Vec<u8>> {
        dump(&sm.tree)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect()
    }

    #[tokio::test]
    async fn applied_state_is_persisted_with_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let (db, mut sm) = open(dir.path());
        let responses = sm.apply(history()).await.unwrap();
        assert_eq!(responses.len(), 7);
        assert_eq!(
            responses[6],
            Response::Rejected(DomainError::BucketNotEmpty)
        );
        let (applied, membership) = sm.applied_state().await.unwrap();
        let before = contents(&sm);
        drop((sm, db));

        let (_db, mut sm) = open(dir.path());
        let (applied2, membership2) = sm.applied_state().await.unwrap();
        assert_eq!(applied2.map(|l| l.index), Some(7));
        assert_eq!(applied2, applied);
        assert_eq!(membership2, membership);
        assert_eq!(membership2.log_id().map(|l| l.index), Some(2));
        assert_eq!(contents(&sm), before);
    }

    #[tokio::test]
    async fn snapshot_installs_identically_elsewhere() {
        let src_dir = tempfile::tempdir().unwrap();
        let (_src_db, mut src) = open(src_dir.path());
        src.apply(history()).await.unwrap();
        let snap = src
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(snap.meta.last_log_id.map(|l| l.index), Some(7));
        // Writes after the builder was taken are not in the snapshot.
        src.apply([entry(
            8,
            EntryPayload::Normal(Command::CreateBucket {
                name: "later".into(),
                created_ms: 9,
            }),
        )])
        .await
        .unwrap();

        let dst_dir = tempfile::tempdir().unwrap();
        let (dst_db, mut dst) = open(dst_dir.path());
        // Pre-existing state in the target must disappear.
        dst.apply([entry(
            1,
            EntryPayload::Normal(Command::CreateBucket {
                name: "stale".into(),
                created_ms: 0,
            }),
        )])
        .await
        .unwrap();
        let data = snap.snapshot.get_ref().clone();
        dst.install_snapshot(&snap.meta, Box::new(Cursor::new(data.clone())))
            .await
            .unwrap();

        let mut src_contents = contents(&src);
        src_contents.remove(&crate::keys::bucket("later"));
        assert_eq!(contents(&dst), src_contents);
        assert_eq!(
            dst.applied_state().await.unwrap(),
            (snap.meta.last_log_id, snap.meta.last_membership.clone())
        );
        drop((dst, dst_db));

        // The installed snapshot is the current one after a restart.
        let (_db, mut dst) = open(dst_dir.path());
        let current = dst.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, snap.meta);
        assert_eq!(current.snapshot.into_inner(), data);
    }
}
