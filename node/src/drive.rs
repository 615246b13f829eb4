//! One local drive: where its shard files live and how they are written, read and removed.
//!
//! Bulk bytes go straight through a [`Drive`] on the blocking pool; the drive's [`DriveActor`]
//! (see `actors::drive`) owns the control side: deletes, health, and restarts after a crash.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::seams::{DriveIo, ShardSink, ShardSource};

/// A 128-bit id naming one stored data stream (an object or a multipart part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DataId(pub [u8; 16]);

impl DataId {
    /// Lower-case hex.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    /// Parses 32 hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        let v = hex::decode(s).ok()?;
        Some(Self(v.try_into().ok()?))
    }
}

/// A local drive directory.
pub struct Drive {
    index: usize,
    root: PathBuf,
    io: Arc<dyn DriveIo>,
    tmp_seq: AtomicU64,
}

impl Drive {
    /// Opens the drive at `root`, creating its layout and dropping partial writes left by a crash.
    pub fn open(index: usize, root: &Path, io: Arc<dyn DriveIo>) -> io::Result<Self> {
        io.create_dir_all(&root.join("shards"))?;
        io.create_dir_all(&root.join("tmp"))?;
        let dropped = io.clear_dir(&root.join("tmp"))?;
        if dropped > 0 {
            tracing::info!(drive = index, dropped, "removed partial shard writes");
        }
        Ok(Self {
            index,
            root: root.to_path_buf(),
            io,
            tmp_seq: AtomicU64::new(0),
        })
    }

    /// Position of this drive in the node's drive list.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The drive's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where shard `shard` of `id` lives.
    pub fn shard_path(&self, id: DataId, shard: usize) -> PathBuf {
        let hex = id.to_hex();
        self.root
            .join("shards")
            .join(&hex[..2])
            .join(format!("{hex}.{shard}"))
    }

    /// Starts writing a shard file; it appears only when the sink commits.
    pub fn create(&self, id: DataId, shard: usize) -> io::Result<Box<dyn ShardSink>> {
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .root
            .join("tmp")
            .join(format!("{}.{shard}.{seq}", id.to_hex()));
        self.io.create(&tmp, &self.shard_path(id, shard))
    }

    /// Opens a shard file.
    pub fn open_shard(&self, id: DataId, shard: usize) -> io::Result<Box<dyn ShardSource>> {
        self.io.open(&self.shard_path(id, shard))
    }

    /// Removes a shard file if present.
    pub fn remove(&self, id: DataId, shard: usize) -> io::Result<()> {
        self.io.remove(&self.shard_path(id, shard))
    }
}
