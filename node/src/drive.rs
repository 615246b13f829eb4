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

    /// Every shard file on the drive, as (data id, shard index), sorted; files whose names are
    /// not shard names are left out.
    pub fn list_shards(&self) -> io::Result<Vec<(DataId, usize)>> {
        let files = self.io.list_files(&self.root.join("shards"))?;
        let mut out: Vec<(DataId, usize)> = files
            .iter()
            .filter_map(|p| parse_shard_name(p.file_name()?.to_str()?))
            .collect();
        out.sort();
        Ok(out)
    }
}

/// `<32 hex digits>.<shard index>`, as [`Drive::shard_path`] names files.
fn parse_shard_name(name: &str) -> Option<(DataId, usize)> {
    let (hex, shard) = name.split_once('.')?;
    if shard.is_empty() || !shard.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((DataId::from_hex(hex)?, shard.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seams::FsDriveIo;

    #[test]
    fn list_shards_finds_what_create_committed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let drive = Drive::open(0, dir.path(), Arc::new(FsDriveIo)).unwrap();
        let (a, b) = (DataId([0xab; 16]), DataId([0x01; 16]));
        for (id, shard) in [(a, 3), (b, 0), (a, 12)] {
            let mut sink = drive.create(id, shard).unwrap();
            sink.write_all(b"data").unwrap();
            sink.commit().unwrap();
        }
        // Uncommitted writes and foreign files are not shards.
        let _pending = drive.create(DataId([0x02; 16]), 0).unwrap();
        let shards = dir.path().join("shards");
        std::fs::write(shards.join("ab").join("notes.txt"), b"x").unwrap();
        std::fs::write(shards.join("ab").join(format!("{}.x", a.to_hex())), b"x").unwrap();
        assert_eq!(drive.list_shards().unwrap(), vec![(b, 0), (a, 3), (a, 12)]);
        drive.remove(a, 3).unwrap();
        assert_eq!(drive.list_shards().unwrap(), vec![(b, 0), (a, 12)]);
    }
}
