//! The audit log file: one JSON object per request, never a secret.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use coffer_s3api::backend::RequestRecord;

/// An append-only JSON-lines audit log.
pub struct AuditLog {
    out: Mutex<BufWriter<File>>,
}

impl AuditLog {
    /// Opens (appends to) the file at `path`.
    pub fn open(path: &Path) -> io::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            out: Mutex::new(BufWriter::new(file)),
        })
    }

    /// Appends one record; a full line reaches the file before this returns.
    pub fn write(&self, r: &RequestRecord) {
        let time = time::OffsetDateTime::from_unix_timestamp_nanos(r.time_ms as i128 * 1_000_000)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        let line = serde_json::json!({
            "time": time,
            "request_id": r.request_id,
            "access_key": r.access_key,
            "operation": r.operation,
            "bucket": r.bucket,
            "key": r.key,
            "status": r.status,
            "bytes_in": r.bytes_in,
            "bytes_out": r.bytes_out,
            "duration_ms": (r.duration_secs * 1000.0),
        });
        if let Ok(mut out) = self.out.lock() {
            let _ = serde_json::to_writer(&mut *out, &line);
            let _ = out.write_all(b"\n");
            let _ = out.flush();
        }
    }

    /// Flushes buffered lines.
    pub fn flush(&self) {
        if let Ok(mut out) = self.out.lock() {
            let _ = out.flush();
        }
    }
}
