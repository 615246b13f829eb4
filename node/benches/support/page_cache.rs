//! Dropping files from the kernel's page cache, so a GET after it reads from the device the way
//! an object store's GETs mostly do (the data set is larger than memory), instead of from the
//! copy the PUT left in memory. Shard files are fsynced by the PUT, so their pages are clean and
//! `POSIX_FADV_DONTNEED` drops them; no privilege is needed.

use std::fs::File;
use std::path::Path;

use rustix::fs::{fadvise, Advice};

/// Drops every regular file under `root` from the page cache; returns the bytes covered.
pub fn evict_tree(root: &Path) -> u64 {
    let mut bytes = 0;
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            bytes += evict_tree(&path);
        } else if kind.is_file() {
            // A file removed meanwhile (a DELETE of another object) is simply skipped.
            if let Ok(f) = File::open(&path) {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                fadvise(&f, 0, None, Advice::DontNeed).expect("fadvise DONTNEED");
                bytes += len;
            }
        }
    }
    bytes
}
