//! The metadata store's disk: sled in production, an in-memory store in the simulation.
//!
//! Only what the Raft log and the state machine need: named trees, point reads, ordered range
//! and prefix scans, atomic batches and a flush that makes everything before it durable. The
//! in-memory [`MemDb`] models sled's crash behaviour (see its docs) so the simulation can crash
//! a node between a write and its flush; it runs no thread of its own, which sled does (its
//! `flush_async` completes on sled's flusher threads, at a real-time moment a simulation cannot
//! replay).

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard};

/// A stored key or value.
pub type Value = sled::IVec;

/// The error of a KV operation (the in-memory store never fails).
pub type KvError = sled::Error;

/// An open database: sled or [`MemDb`].
#[derive(Clone)]
pub struct Db(DbKind);

#[derive(Clone)]
enum DbKind {
    Sled(sled::Db),
    Mem(MemDb),
}

impl Db {
    /// A sled database.
    pub fn sled(db: sled::Db) -> Self {
        Self(DbKind::Sled(db))
    }

    /// An in-memory database (shares state with `mem`).
    pub fn mem(mem: &MemDb) -> Self {
        Self(DbKind::Mem(mem.clone()))
    }

    /// Whether this is the in-memory database (the simulation's).
    pub fn is_mem(&self) -> bool {
        matches!(self.0, DbKind::Mem(_))
    }

    /// Opens (or creates) the tree `name`.
    pub fn open_tree(&self, name: &str) -> Result<Tree, KvError> {
        Ok(Tree(match &self.0 {
            DbKind::Sled(db) => TreeKind::Sled(db.open_tree(name)?),
            DbKind::Mem(m) => TreeKind::Mem(m.clone(), name.to_owned()),
        }))
    }

    /// Returns once every write before the call is durable.
    pub async fn flush(&self) -> Result<(), KvError> {
        match &self.0 {
            DbKind::Sled(db) => db.flush_async().await.map(drop),
            DbKind::Mem(m) => {
                m.flush();
                Ok(())
            }
        }
    }
}

/// One named, ordered tree of a [`Db`].
#[derive(Clone)]
pub struct Tree(TreeKind);

#[derive(Clone)]
enum TreeKind {
    Sled(sled::Tree),
    Mem(MemDb, String),
}

impl Tree {
    /// The value at `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>, KvError> {
        match &self.0 {
            TreeKind::Sled(t) => t.get(key),
            TreeKind::Mem(m, name) => Ok(m
                .lock()
                .visible
                .get(name)
                .and_then(|t| t.get(key.as_ref()).cloned())),
        }
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool, KvError> {
        Ok(self.get(key)?.is_some())
    }

    /// Sets one key.
    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl Into<Value>) -> Result<(), KvError> {
        match &self.0 {
            // A plain insert: a batch would take sled's database-wide write lock.
            TreeKind::Sled(t) => t.insert(key.as_ref(), value.into()).map(drop),
            TreeKind::Mem(..) => {
                let mut batch = Batch::default();
                batch.insert(key, value);
                self.apply_batch(batch)
            }
        }
    }

    /// Applies every write of `batch` atomically.
    pub fn apply_batch(&self, batch: Batch) -> Result<(), KvError> {
        match &self.0 {
            TreeKind::Sled(t) => {
                let mut b = sled::Batch::default();
                for (k, v) in batch.ops {
                    match v {
                        Some(v) => b.insert(k, v),
                        None => b.remove(k),
                    }
                }
                t.apply_batch(b)
            }
            TreeKind::Mem(m, name) => {
                m.apply(name, batch.ops);
                Ok(())
            }
        }
    }

    /// The entries whose keys fall in `range`, in key order.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        match &self.0 {
            TreeKind::Sled(t) => Iter(IterKind::Sled(Box::new(t.range(range)))),
            TreeKind::Mem(m, name) => {
                let bound = |b: Bound<&K>| match b {
                    Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
                    Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
                    Bound::Unbounded => Bound::Unbounded,
                };
                let bounds = (bound(range.start_bound()), bound(range.end_bound()));
                if is_empty(&bounds) {
                    // sled answers an inverted range with nothing; BTreeMap would panic.
                    return Iter(IterKind::Mem(Vec::new().into_iter()));
                }
                Iter(IterKind::Mem(m.collect(name, |t| {
                    t.range::<Vec<u8>, _>(bounds)
                        .map(|(k, v)| (Value::from(k.as_slice()), v.clone()))
                        .collect()
                })))
            }
        }
    }

    /// The entries whose keys start with `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        match &self.0 {
            TreeKind::Sled(t) => Iter(IterKind::Sled(Box::new(t.scan_prefix(prefix)))),
            TreeKind::Mem(m, name) => {
                let p = prefix.as_ref().to_vec();
                Iter(IterKind::Mem(m.collect(name, |t| {
                    t.range::<Vec<u8>, _>((Bound::Included(p.clone()), Bound::Unbounded))
                        .take_while(|(k, _)| k.starts_with(&p))
                        .map(|(k, v)| (Value::from(k.as_slice()), v.clone()))
                        .collect()
                })))
            }
        }
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }

    /// The entry with the greatest key.
    pub fn last(&self) -> Result<Option<(Value, Value)>, KvError> {
        self.iter().next_back().transpose()
    }
}

fn is_empty(bounds: &(Bound<Vec<u8>>, Bound<Vec<u8>>)) -> bool {
    match bounds {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
        _ => false,
    }
}

/// Writes applied together by [`Tree::apply_batch`]; a later write to a key wins.
#[derive(Default, Debug, Clone)]
pub struct Batch {
    ops: Vec<(Vec<u8>, Option<Value>)>,
}

impl Batch {
    /// Stages setting `key`.
    pub fn insert(&mut self, key: impl AsRef<[u8]>, value: impl Into<Value>) {
        self.ops.push((key.as_ref().to_vec(), Some(value.into())));
    }

    /// Stages removing `key`.
    pub fn remove(&mut self, key: impl AsRef<[u8]>) {
        self.ops.push((key.as_ref().to_vec(), None));
    }
}

/// Entries of a scan, in key order (also from the back).
pub struct Iter(IterKind);

enum IterKind {
    Sled(Box<sled::Iter>),
    Mem(std::vec::IntoIter<(Value, Value)>),
}

impl Iter {
    /// Only the keys.
    pub fn keys(self) -> impl DoubleEndedIterator<Item = Result<Value, KvError>> {
        self.map(|r| r.map(|(k, _)| k))
    }

    /// Only the values.
    pub fn values(self) -> impl DoubleEndedIterator<Item = Result<Value, KvError>> {
        self.map(|r| r.map(|(_, v)| v))
    }
}

impl Iterator for Iter {
    type Item = Result<(Value, Value), KvError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterKind::Sled(i) => i.next(),
            IterKind::Mem(i) => i.next().map(Ok),
        }
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterKind::Sled(i) => i.next_back(),
            IterKind::Mem(i) => i.next_back().map(Ok),
        }
    }
}

type TreeMap = BTreeMap<Vec<u8>, Value>;
type Op = (String, Vec<(Vec<u8>, Option<Value>)>);

/// An in-memory database with sled's crash model, for the simulation.
///
/// Writes are visible at once and durable at the next [`Db::flush`]. A crash keeps the durable
/// state plus a prefix of the batches written since the last flush (sled recovers its log in
/// order and applies a batch whole or not at all); the caller chooses how long a prefix, from
/// its seed. It outlives the node that uses it, like a disk.
#[derive(Clone, Default)]
pub struct MemDb {
    inner: Arc<Mutex<MemState>>,
}

#[derive(Default)]
struct MemState {
    visible: BTreeMap<String, TreeMap>,
    durable: BTreeMap<String, TreeMap>,
    /// Batches since the last flush, in order.
    pending: Vec<Op>,
}

fn apply_ops(trees: &mut BTreeMap<String, TreeMap>, tree: &str, ops: &[(Vec<u8>, Option<Value>)]) {
    let t = trees.entry(tree.to_owned()).or_default();
    for (k, v) in ops {
        match v {
            Some(v) => t.insert(k.clone(), v.clone()),
            None => t.remove(k),
        };
    }
}

impl MemDb {
    /// An empty database.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemState> {
        // A panic while holding the lock leaves consistent maps (every write is one insert).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn apply(&self, tree: &str, ops: Vec<(Vec<u8>, Option<Value>)>) {
        let mut s = self.lock();
        apply_ops(&mut s.visible, tree, &ops);
        s.pending.push((tree.to_owned(), ops));
    }

    fn collect(
        &self,
        tree: &str,
        f: impl FnOnce(&TreeMap) -> Vec<(Value, Value)>,
    ) -> std::vec::IntoIter<(Value, Value)> {
        let s = self.lock();
        s.visible.get(tree).map(f).unwrap_or_default().into_iter()
    }

    fn flush(&self) {
        let mut s = self.lock();
        let pending = std::mem::take(&mut s.pending);
        for (tree, ops) in &pending {
            apply_ops(&mut s.durable, tree, ops);
        }
    }

    /// Batches written since the last flush (what a crash may lose).
    pub fn unflushed(&self) -> usize {
        self.lock().pending.len()
    }

    /// A crash: keeps the durable state and the first `keep` unflushed batches (fewer if there
    /// are fewer), drops the rest. The caller must have stopped every user of the database.
    pub fn crash(&self, keep: usize) {
        let mut s = self.lock();
        let pending = std::mem::take(&mut s.pending);
        for (tree, ops) in pending.iter().take(keep) {
            apply_ops(&mut s.durable, tree, ops);
        }
        s.visible = s.durable.clone();
    }

    /// Every stored key and value of every tree (visible state), for plaintext scans.
    pub fn contents(&self) -> Vec<(String, Vec<u8>, Vec<u8>)> {
        let s = self.lock();
        s.visible
            .iter()
            .flat_map(|(name, t)| {
                t.iter()
                    .map(move |(k, v)| (name.clone(), k.clone(), v.to_vec()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both() -> Vec<(Db, Option<MemDb>)> {
        let sled = sled::Config::new().temporary(true).open().unwrap();
        let mem = MemDb::new();
        vec![(Db::sled(sled), None), (Db::mem(&mem), Some(mem))]
    }

    #[test]
    fn sled_and_mem_agree_on_reads_and_scans() {
        let mut results = Vec::new();
        for (db, _) in both() {
            let t = db.open_tree("t").unwrap();
            let mut b = Batch::default();
            for k in [b"b2".as_slice(), b"a1", b"b1", b"c", b"b3"] {
                b.insert(k, k);
            }
            b.remove(b"b3");
            t.apply_batch(b).unwrap();
            t.insert(b"d", b"x".as_slice()).unwrap();
            let keys =
                |i: Iter| -> Vec<Vec<u8>> { i.keys().map(|k| k.unwrap().to_vec()).collect() };
            results.push((
                keys(t.scan_prefix(b"b")),
                keys(t.range(b"b1".as_slice()..b"c")),
                t.range::<&[u8], _>((Bound::Excluded(b"a1".as_slice()), Bound::Unbounded))
                    .rev()
                    .map(|kv| kv.unwrap().0.to_vec())
                    .collect::<Vec<_>>(),
                keys(t.range(b"c".as_slice()..b"b")),
                keys(t.range(b"c".as_slice()..b"c")),
                keys(t.range::<&[u8], _>((
                    Bound::Excluded(b"c".as_slice()),
                    Bound::Included(b"c".as_slice()),
                ))),
                t.last().unwrap().map(|(k, _)| k.to_vec()),
                t.get(b"b3").unwrap(),
                t.contains_key(b"a1").unwrap(),
                db.open_tree("other").unwrap().iter().count(),
            ));
        }
        assert_eq!(results[0], results[1]);
        assert_eq!(results[0].0, vec![b"b1".to_vec(), b"b2".to_vec()]);
    }

    #[tokio::test]
    async fn a_mem_crash_keeps_flushed_writes_and_a_prefix_of_the_rest() {
        let mem = MemDb::new();
        let db = Db::mem(&mem);
        let t = db.open_tree("t").unwrap();
        t.insert(b"a", b"1".as_slice()).unwrap();
        db.flush().await.unwrap();
        t.insert(b"b", b"2".as_slice()).unwrap();
        let mut batch = Batch::default();
        batch.insert(b"c", b"3".as_slice());
        batch.insert(b"d", b"4".as_slice());
        t.apply_batch(batch).unwrap();
        assert_eq!(mem.unflushed(), 2);
        mem.crash(1);
        let keys: Vec<_> = t.iter().keys().map(|k| k.unwrap().to_vec()).collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec()]);
        // The kept batch is durable now: a second crash keeps it too.
        mem.crash(0);
        assert_eq!(t.iter().count(), 2);
        mem.crash(0);
        t.insert(b"e", b"5".as_slice()).unwrap();
        mem.crash(0);
        assert!(t.get(b"e").unwrap().is_none());
    }
}
