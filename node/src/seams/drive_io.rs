//! Shard-file I/O on one drive. Calls are blocking; callers run them on the blocking pool.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A shard file being written; invisible until `commit` renames it into place.
pub trait ShardSink: Send {
    /// Appends bytes.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Overwrites bytes at `offset` (used for the header once the length is known).
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()>;
    /// Flushes to stable storage and renames into place; durable when this returns.
    fn commit(self: Box<Self>) -> io::Result<()>;
}

/// A shard file open for reading.
pub trait ShardSource: Send + Sync {
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// File length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// True when the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// The file operations a drive needs.
pub trait DriveIo: Send + Sync + 'static {
    /// Starts writing `path` through a temporary file at `tmp`.
    fn create(&self, tmp: &Path, path: &Path) -> io::Result<Box<dyn ShardSink>>;
    /// Opens `path` for reading.
    fn open(&self, path: &Path) -> io::Result<Box<dyn ShardSource>>;
    /// Removes a file; a missing file is not an error.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Removes every file directly in `dir` (used to drop partial writes at start-up).
    fn clear_dir(&self, dir: &Path) -> io::Result<usize>;
    /// Writes a small file durably (write to temp, fsync, rename, fsync dir).
    fn write_file(&self, path: &Path, data: &[u8], mode: u32) -> io::Result<()>;
    /// Reads a small file; `Ok(None)` when absent.
    fn read_file(&self, path: &Path) -> io::Result<Option<Vec<u8>>>;
    /// The device a directory lives on, to warn when several drives share one disk.
    fn device_id(&self, path: &Path) -> io::Result<u64>;
    /// Every file under `dir`, in its subdirectories too, sorted; empty when `dir` is absent.
    fn list_files(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
}

/// The real filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsDriveIo;

struct FsSink {
    file: File,
    tmp: PathBuf,
    path: PathBuf,
}

impl ShardSink for FsSink {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let end = self.file.stream_position()?;
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.write_all(buf)?;
        self.file.seek(SeekFrom::Start(end))?;
        Ok(())
    }

    fn commit(self: Box<Self>) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(&self.tmp, &self.path)?;
        sync_parent(&self.path)
    }
}

impl Drop for FsSink {
    fn drop(&mut self) {
        // An uncommitted sink leaves nothing behind; after a commit the temp name is gone anyway.
        let _ = fs::remove_file(&self.tmp);
    }
}

struct FsSource {
    file: File,
}

impl ShardSource for FsSource {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

fn sync_parent(path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

impl DriveIo for FsDriveIo {
    fn create(&self, tmp: &Path, path: &Path) -> io::Result<Box<dyn ShardSink>> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().write(true).create_new(true).open(tmp)?;
        Ok(Box::new(FsSink {
            file,
            tmp: tmp.to_path_buf(),
            path: path.to_path_buf(),
        }))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn ShardSource>> {
        Ok(Box::new(FsSource {
            file: File::open(path)?,
        }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        match fs::remove_file(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn clear_dir(&self, dir: &Path) -> io::Result<usize> {
        let mut n = 0;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn write_file(&self, path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("tmp");
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_parent(path)
    }

    fn device_id(&self, path: &Path) -> io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        Ok(fs::metadata(path)?.dev())
    }

    fn read_file(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        match fs::read(path) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn list_files(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut dirs = vec![dir.to_path_buf()];
        while let Some(d) = dirs.pop() {
            let entries = match fs::read_dir(&d) {
                Ok(e) => e,
                // Absent, or removed since it was listed.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    dirs.push(entry.path());
                } else if kind.is_file() {
                    out.push(entry.path());
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_files_walks_subdirectories_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let io = FsDriveIo;
        assert!(io
            .list_files(&dir.path().join("absent"))
            .unwrap()
            .is_empty());
        for name in ["b/2", "a/1", "a/c/3", "top"] {
            io.write_file(&dir.path().join(name), b"x", 0o600).unwrap();
        }
        let got: Vec<String> = io
            .list_files(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(got, ["a/1", "a/c/3", "b/2", "top"]);
    }

    #[test]
    fn sink_is_invisible_until_commit_and_gone_if_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let io = FsDriveIo;
        let path = dir.path().join("a/shard");
        let tmp = dir.path().join("tmp1");
        let mut sink = io.create(&tmp, &path).unwrap();
        sink.write_all(b"xxxxhello").unwrap();
        sink.write_at(0, b"HEAD").unwrap();
        assert!(!path.exists());
        sink.commit().unwrap();
        let src = io.open(&path).unwrap();
        let mut buf = [0u8; 9];
        src.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"HEADhello");
        assert!(!tmp.exists());

        let tmp2 = dir.path().join("tmp2");
        let sink = io.create(&tmp2, &dir.path().join("b")).unwrap();
        drop(sink);
        assert!(!tmp2.exists());
        assert!(!dir.path().join("b").exists());
    }
}
