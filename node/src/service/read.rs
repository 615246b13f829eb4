//! GET bodies: a stream that decrypts only the packages a range needs, produced by a task that
//! runs at most [`BODY_AHEAD`] opened and [`READ_AHEAD`](crate::pipeline::READ_AHEAD) sealed
//! packages ahead of the client, so memory stays flat whatever the object size.

use std::sync::Arc;

use bytes::Bytes;
use coffer_crypto::{SecretKey, PACKAGE_SIZE};
use coffer_s3api::backend::{BodyError, ByteStream, RangeSpec, StoreError, StoreResult};
use tracing::Instrument;

use super::NodeService;
use crate::keys::KeyService;
use crate::manifest::{ObjectManifest, Segment};
use crate::metrics::Metrics;
use crate::pipeline::{CipherFactory, PackageOpener, PackageStream, SegmentReader};

/// Opened packages (64 KiB each) a GET body may hold ready before the client takes them.
/// 16 (1 MiB) rather than 4: with a shallow channel the producer stalls whenever the
/// connection task is busy writing, and 64 MiB GETs ran 15-40% slower (docs/benchmarks.md).
const BODY_AHEAD: usize = 16;

/// Turns a requested range into inclusive offsets, or InvalidRange.
pub(crate) fn resolve_range(spec: RangeSpec, size: u64) -> StoreResult<(u64, u64)> {
    let invalid = StoreError::InvalidRange { size };
    if size == 0 {
        return Err(invalid);
    }
    match spec {
        RangeSpec::FromTo(a, b) if a <= b && a < size => Ok((a, b.min(size - 1))),
        RangeSpec::From(a) if a < size => Ok((a, size - 1)),
        RangeSpec::Suffix(n) if n > 0 => Ok((size - n.min(size), size - 1)),
        _ => Err(invalid),
    }
}

struct Cursor {
    segments: Vec<Segment>,
    starts: Vec<u64>,
    seg: usize,
    reader: Option<PackageStream<Box<dyn PackageOpener>>>,
    cipher: Arc<dyn CipherFactory>,
    oek: SecretKey,
    suite: coffer_crypto::CipherSuite,
    bucket: String,
    key: String,
    shards: Arc<crate::shards::ShardMap>,
    healer: Arc<crate::heal::Healer>,
    metrics: Arc<Metrics>,
    pos: u64,
    end: u64,
}

impl Cursor {
    async fn next_chunk(&mut self) -> StoreResult<Option<Bytes>> {
        if self.pos > self.end {
            return Ok(None);
        }
        while self.seg < self.segments.len()
            && self.pos >= self.starts[self.seg] + self.segments[self.seg].plain_len
        {
            self.seg += 1;
            self.reader = None;
        }
        let Some(segment) = self.segments.get(self.seg) else {
            return Err(StoreError::DataCorrupt);
        };
        let seg_start = self.starts[self.seg];
        if self.reader.is_none() {
            let salt: [u8; 32] = segment
                .salt
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::DataCorrupt)?;
            let binding = super::objects::binding(&self.bucket, &self.key, segment.part);
            let key = coffer_crypto::derive_stream_key_for(
                segment.stream_version,
                &self.oek,
                self.suite,
                &salt,
                &binding,
            )
            .map_err(|_| StoreError::DataCorrupt)?;
            // Packages of this segment the range covers.
            let first = (self.pos - seg_start) / PACKAGE_SIZE as u64;
            let seg_end = (self.end - seg_start).min(segment.plain_len.max(1) - 1);
            let last = seg_end / PACKAGE_SIZE as u64;
            let stores = self.shards.resolve(segment)?;
            let mut reader = SegmentReader::new(segment.clone(), self.cipher.opener(key), &stores)?;
            let h = self.healer.clone();
            reader = reader.on_degraded(Arc::new(move || h.wake()));
            self.reader = Some(reader.packages(first, last));
        }
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        let seg_off = self.pos - seg_start;
        let pkg = seg_off / PACKAGE_SIZE as u64;
        let plain = reader.next().await?.ok_or(StoreError::DataCorrupt)?;
        self.metrics.record_decrypt(plain.len() as u64);
        let pkg_start = pkg * PACKAGE_SIZE as u64;
        let from = (seg_off - pkg_start) as usize;
        let to = ((self.end - seg_start - pkg_start + 1) as usize).min(plain.len());
        if from >= to {
            return Err(StoreError::DataCorrupt);
        }
        self.pos += (to - from) as u64;
        Ok(Some(Bytes::from(plain).slice(from..to)))
    }
}

impl NodeService {
    /// A lazy plaintext stream of bytes `start..=end` of the object.
    pub(crate) fn read_stream(
        &self,
        bucket: &str,
        key: &str,
        m: ObjectManifest,
        oek: SecretKey,
        start: u64,
        end: u64,
    ) -> StoreResult<ByteStream> {
        let suite = KeyService::suite_of(&m.sse)?;
        let mut starts = Vec::with_capacity(m.segments.len());
        let mut acc = 0;
        for s in &m.segments {
            starts.push(acc);
            acc += s.plain_len;
        }
        let cursor = Cursor {
            segments: m.segments,
            starts,
            seg: 0,
            reader: None,
            oek,
            suite,
            bucket: bucket.to_string(),
            key: key.to_string(),
            shards: self.shards.clone(),
            healer: self.healer.clone(),
            metrics: self.metrics.clone(),
            cipher: self.cipher.clone(),
            pos: start,
            end,
        };
        // The cursor runs in its own task, a few packages ahead of the body: reading, opening
        // and sending then overlap instead of taking turns each time the client asks for more.
        // The channel bounds how far ahead; a dropped body ends the task at its next send.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, BodyError>>(BODY_AHEAD);
        let producer = async move {
            let mut c = cursor;
            loop {
                let item = match c.next_chunk().await {
                    Ok(Some(b)) => Ok(b),
                    Ok(None) => return,
                    Err(StoreError::Unavailable) => {
                        tracing::warn!(
                            "object read stopped mid-stream: too many shards unreachable"
                        );
                        Err(BodyError::Unavailable)
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "object read failed mid-stream");
                        Err(BodyError::Storage)
                    }
                };
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        };
        tokio::spawn(producer.instrument(tracing::Span::current()));
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(Box::pin(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_like_s3() {
        assert_eq!(resolve_range(RangeSpec::FromTo(0, 0), 10).unwrap(), (0, 0));
        assert_eq!(
            resolve_range(RangeSpec::FromTo(5, 100), 10).unwrap(),
            (5, 9)
        );
        assert_eq!(resolve_range(RangeSpec::From(9), 10).unwrap(), (9, 9));
        assert_eq!(resolve_range(RangeSpec::Suffix(1), 10).unwrap(), (9, 9));
        assert_eq!(resolve_range(RangeSpec::Suffix(50), 10).unwrap(), (0, 9));
        assert!(resolve_range(RangeSpec::From(10), 10).is_err());
        assert!(resolve_range(RangeSpec::FromTo(3, 2), 10).is_err());
        assert!(resolve_range(RangeSpec::Suffix(0), 10).is_err());
        assert!(resolve_range(RangeSpec::FromTo(0, 0), 0).is_err());
    }
}
