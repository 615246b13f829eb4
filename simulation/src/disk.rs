//! The simulated disk: an in-memory `DriveIo` (the node's real drive seam) with a durability
//! model and seeded faults.
//!
//! What a call leaves is visible at once but durable only at a sync point: a shard sink's
//! `commit` and `write_file` (fsync + rename in production). [`SimDisk::crash`] keeps only what
//! is durable: every unsynced temporary file is gone. Faults, each drawn from the disk's own
//! seeded stream at a sync point: a lost write (acknowledged, visible until the next crash,
//! then gone), a misdirected write (lands on another file of the disk, durably), and a full
//! disk (`ENOSPC` once the capacity is reached). [`SimDisk::flip_bit`] corrupts stored data;
//! [`SimDisk::wipe`] swaps the disk for a blank one.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use coffer_node::seams::{DriveIo, ShardSink, ShardSource};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Fault rates of a [`SimDisk`] (probabilities per sync point) and its size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskFaults {
    /// A write is acknowledged but never reaches the platter.
    pub lost_write: f64,
    /// A write lands on another file of the disk.
    pub misdirected_write: f64,
    /// Bytes the disk holds (visible files count).
    pub capacity: u64,
}

impl Default for DiskFaults {
    fn default() -> Self {
        Self {
            lost_write: 0.0,
            misdirected_write: 0.0,
            capacity: u64::MAX,
        }
    }
}

/// What a disk did, for the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskEvent {
    /// A file became durable.
    Synced(PathBuf),
    /// A write was acknowledged and dropped.
    LostWrite(PathBuf),
    /// A write meant for the first path landed on the second.
    Misdirected(PathBuf, PathBuf),
    /// A write was refused: the disk is full.
    Full(PathBuf),
    /// The disk lost power: unsynced data gone.
    Crash {
        /// Files that vanished or went back to their durable content.
        lost: usize,
    },
    /// A bit of a stored file was flipped.
    BitFlip(PathBuf, u64),
    /// The disk was replaced by a blank one.
    Wiped {
        /// Files it held.
        lost: usize,
    },
}

struct DiskState {
    rng: StdRng,
    faults: DiskFaults,
    /// What reads see.
    visible: BTreeMap<PathBuf, Arc<Vec<u8>>>,
    /// What survives a crash.
    durable: BTreeMap<PathBuf, Arc<Vec<u8>>>,
    events: Vec<DiskEvent>,
}

impl DiskState {
    fn used(&self) -> u64 {
        self.visible.values().map(|v| v.len() as u64).sum()
    }

    /// A sync point: `data` becomes `path`'s content (visible and, faults aside, durable).
    fn sync(&mut self, tmp: Option<&Path>, path: &Path, data: Vec<u8>) -> io::Result<()> {
        if let Some(t) = tmp {
            self.visible.remove(t);
        }
        let before = self.visible.get(path).map_or(0, |v| v.len() as u64);
        if self.used() - before + data.len() as u64 > self.faults.capacity {
            self.events.push(DiskEvent::Full(path.to_path_buf()));
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        let data = Arc::new(data);
        let lost = self.rng.gen_bool(self.faults.lost_write.clamp(0.0, 1.0));
        let misdirect = self
            .rng
            .gen_bool(self.faults.misdirected_write.clamp(0.0, 1.0));
        let others: Vec<PathBuf> = self
            .durable
            .keys()
            .filter(|p| *p != path)
            .cloned()
            .collect();
        if misdirect && !others.is_empty() {
            let victim = others[self.rng.gen_range(0..others.len())].clone();
            self.events
                .push(DiskEvent::Misdirected(path.to_path_buf(), victim.clone()));
            self.visible.insert(victim.clone(), data.clone());
            self.durable.insert(victim, data);
            return Ok(());
        }
        self.visible.insert(path.to_path_buf(), data.clone());
        if lost {
            self.events.push(DiskEvent::LostWrite(path.to_path_buf()));
        } else {
            self.durable.insert(path.to_path_buf(), data);
            self.events.push(DiskEvent::Synced(path.to_path_buf()));
        }
        Ok(())
    }
}

/// One simulated disk; cheap to clone (clones share the disk).
#[derive(Clone)]
pub struct SimDisk {
    id: u64,
    state: Arc<Mutex<DiskState>>,
}

impl SimDisk {
    /// An empty disk numbered `id` (its device id) whose faults are drawn from `seed`.
    pub fn new(id: u64, seed: u64, faults: DiskFaults) -> Self {
        Self {
            id,
            state: Arc::new(Mutex::new(DiskState {
                rng: StdRng::seed_from_u64(seed),
                faults,
                visible: BTreeMap::new(),
                durable: BTreeMap::new(),
                events: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, DiskState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Power loss: only durable content remains. Sinks still open write into the void.
    pub fn crash(&self) {
        let mut s = self.lock();
        let lost = s
            .visible
            .iter()
            .filter(|(p, v)| s.durable.get(*p).is_none_or(|d| !Arc::ptr_eq(d, v)))
            .count();
        s.visible = s.durable.clone();
        s.events.push(DiskEvent::Crash { lost });
    }

    /// Flips bit `bit` (counted from the file's first byte) of `path`, durably.
    pub fn flip_bit(&self, path: &Path, bit: u64) -> bool {
        let mut s = self.lock();
        let Some(v) = s.visible.get(path) else {
            return false;
        };
        let mut data = v.as_ref().clone();
        let byte = (bit / 8) as usize;
        if byte >= data.len() {
            return false;
        }
        data[byte] ^= 1 << (bit % 8);
        let data = Arc::new(data);
        s.visible.insert(path.to_path_buf(), data.clone());
        s.durable.insert(path.to_path_buf(), data);
        s.events.push(DiskEvent::BitFlip(path.to_path_buf(), bit));
        true
    }

    /// Flips one bit of one stored file chosen from the disk's stream; returns which.
    pub fn flip_random_bit(&self) -> Option<(PathBuf, u64)> {
        let (path, bit) = {
            let mut s = self.lock();
            let files: Vec<(PathBuf, u64)> = s
                .visible
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(p, v)| (p.clone(), v.len() as u64 * 8))
                .collect();
            if files.is_empty() {
                return None;
            }
            let (path, bits) = files[s.rng.gen_range(0..files.len())].clone();
            let bit = s.rng.gen_range(0..bits);
            (path, bit)
        };
        self.flip_bit(&path, bit).then_some((path, bit))
    }

    /// The disk is swapped for a blank one: every file, durable or not, is gone.
    pub fn wipe(&self) -> usize {
        let mut s = self.lock();
        let lost = s.visible.len();
        s.visible.clear();
        s.durable.clear();
        s.events.push(DiskEvent::Wiped { lost });
        lost
    }

    /// Bytes the visible files hold (what [`DiskFaults::capacity`] counts).
    pub fn used(&self) -> u64 {
        self.lock().used()
    }

    /// Replaces the fault rates from now on.
    pub fn set_faults(&self, faults: DiskFaults) {
        self.lock().faults = faults;
    }

    /// Paths of the files reads see.
    pub fn files(&self) -> Vec<PathBuf> {
        self.lock().visible.keys().cloned().collect()
    }

    /// The content of every visible file (for plaintext scans).
    pub fn contents(&self) -> Vec<(PathBuf, Arc<Vec<u8>>)> {
        let s = self.lock();
        s.visible
            .iter()
            .map(|(p, v)| (p.clone(), v.clone()))
            .collect()
    }

    /// What the disk did so far, in order.
    pub fn events(&self) -> Vec<DiskEvent> {
        self.lock().events.clone()
    }
}

struct SimSink {
    disk: SimDisk,
    tmp: PathBuf,
    path: PathBuf,
    data: Vec<u8>,
}

impl ShardSink for SimSink {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let s = self.disk.lock();
        if s.used() + self.data.len() as u64 + buf.len() as u64 > s.faults.capacity {
            return Err(io::Error::from_raw_os_error(28));
        }
        drop(s);
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let end = offset as usize + buf.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[offset as usize..end].copy_from_slice(buf);
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> io::Result<()> {
        let data = std::mem::take(&mut self.data);
        let tmp = std::mem::take(&mut self.tmp);
        let path = std::mem::take(&mut self.path);
        let disk = self.disk.clone();
        // Dropped first: its Drop takes the disk's lock too.
        drop(self);
        let mut state = disk.lock();
        state.sync(Some(&tmp), &path, data)
    }
}

impl Drop for SimSink {
    fn drop(&mut self) {
        // Abandoned (or committed, which already removed it): the temporary file goes.
        self.disk.lock().visible.remove(&self.tmp);
    }
}

struct SimSource {
    data: Arc<Vec<u8>>,
}

impl ShardSource for SimSource {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let end = start
            .checked_add(buf.len())
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        let src = self
            .data
            .get(start..end)
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.data.len() as u64)
    }
}

impl DriveIo for SimDisk {
    fn create(&self, tmp: &Path, path: &Path) -> io::Result<Box<dyn ShardSink>> {
        let mut s = self.lock();
        if s.visible.contains_key(tmp) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        // The temporary file exists (empty, unsynced) from now on, as `create_new` makes it.
        s.visible.insert(tmp.to_path_buf(), Arc::new(Vec::new()));
        Ok(Box::new(SimSink {
            disk: self.clone(),
            tmp: tmp.to_path_buf(),
            path: path.to_path_buf(),
            data: Vec::new(),
        }))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn ShardSource>> {
        let data = self
            .lock()
            .visible
            .get(path)
            .cloned()
            .ok_or(io::ErrorKind::NotFound)?;
        Ok(Box::new(SimSource { data }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.visible.remove(path);
        // Production unlinks without an fsync of the directory; a crash may bring it back.
        // Modelled as durable: the healer and the orphan sweep must not rely on either.
        s.durable.remove(path);
        Ok(())
    }

    fn create_dir_all(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }

    fn clear_dir(&self, dir: &Path) -> io::Result<usize> {
        let mut s = self.lock();
        let doomed: Vec<PathBuf> = s
            .visible
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .cloned()
            .collect();
        for p in &doomed {
            s.visible.remove(p);
            s.durable.remove(p);
        }
        Ok(doomed.len())
    }

    fn write_file(&self, path: &Path, data: &[u8], _mode: u32) -> io::Result<()> {
        self.lock().sync(None, path, data.to_vec())
    }

    fn read_file(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        Ok(self.lock().visible.get(path).map(|v| v.as_ref().clone()))
    }

    fn device_id(&self, _path: &Path) -> io::Result<u64> {
        Ok(self.id)
    }

    fn list_files(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out: Vec<PathBuf> = self
            .lock()
            .visible
            .keys()
            .filter(|p| p.starts_with(dir) && p.as_path() != dir)
            .cloned()
            .collect();
        out.sort();
        Ok(out)
    }
}
