//! A drive of this node behind the [`ShardStore`] interface: each call runs the drive's blocking
//! file I/O as a data-path stage ([`stages::spawn_blocking`]), so the async caller never blocks
//! a runtime thread on a disk.

use std::io;
use std::sync::Arc;

use async_trait::async_trait;

use super::{ShardReader, ShardStore, ShardWriter};
use crate::drive::{DataId, Drive};
use crate::seams::{stages, ShardSink, ShardSource};

/// One of this node's drives.
pub struct LocalStore(pub Arc<Drive>);

impl LocalStore {
    /// `drive` as a shard store.
    pub fn shared(drive: &Arc<Drive>) -> Arc<dyn ShardStore> {
        Arc::new(Self(drive.clone()))
    }
}

/// Runs blocking drive work `f` as a stage.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    stages::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(format!("drive I/O task failed: {e}")))?
}

#[async_trait]
impl ShardStore for LocalStore {
    async fn create(&self, id: DataId, shard: usize) -> io::Result<Box<dyn ShardWriter>> {
        let drive = self.0.clone();
        let sink = blocking(move || drive.create(id, shard)).await?;
        Ok(Box::new(LocalWriter { sink: Some(sink) }))
    }

    async fn open_shard(&self, id: DataId, shard: usize) -> io::Result<Arc<dyn ShardReader>> {
        let drive = self.0.clone();
        let (src, len) = blocking(move || {
            let src = drive.open_shard(id, shard)?;
            let len = src.len()?;
            Ok((src, len))
        })
        .await?;
        Ok(Arc::new(LocalReader {
            src: Arc::from(src),
            len,
        }))
    }

    async fn remove(&self, id: DataId, shard: usize) -> io::Result<()> {
        let drive = self.0.clone();
        blocking(move || drive.remove(id, shard)).await
    }
}

/// A shard file being written on a local drive. The sink moves into each stage and back, so
/// it is `None` only while a call runs (or after a call whose task was lost).
struct LocalWriter {
    sink: Option<Box<dyn ShardSink>>,
}

impl LocalWriter {
    async fn with_sink(
        &mut self,
        f: impl FnOnce(&mut dyn ShardSink) -> io::Result<()> + Send + 'static,
    ) -> io::Result<()> {
        let mut sink = self
            .sink
            .take()
            .ok_or_else(|| io::Error::other("shard writer lost its file"))?;
        let (sink, result) = stages::spawn_blocking(move || {
            let r = f(sink.as_mut());
            (sink, r)
        })
        .await
        .map_err(|e| io::Error::other(format!("drive I/O task failed: {e}")))?;
        self.sink = Some(sink);
        result
    }
}

#[async_trait]
impl ShardWriter for LocalWriter {
    async fn append(&mut self, data: Vec<u8>) -> io::Result<()> {
        self.with_sink(move |s| s.write_all(&data)).await
    }

    async fn write_at(&mut self, offset: u64, data: Vec<u8>) -> io::Result<()> {
        self.with_sink(move |s| s.write_at(offset, &data)).await
    }

    async fn commit(mut self: Box<Self>) -> io::Result<()> {
        let sink = self
            .sink
            .take()
            .ok_or_else(|| io::Error::other("shard writer lost its file"))?;
        blocking(move || sink.commit()).await
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        // An uncommitted sink removes its temporary file when dropped: file I/O, so off the
        // runtime thread when there is a runtime to hand it to.
        if let Some(sink) = self.sink.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                drop(stages::spawn_blocking(move || drop(sink)));
            }
        }
    }
}

/// A shard file open on a local drive.
struct LocalReader {
    src: Arc<dyn ShardSource>,
    len: u64,
}

#[async_trait]
impl ShardReader for LocalReader {
    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let src = self.src.clone();
        blocking(move || {
            let mut buf = vec![0u8; len];
            src.read_exact_at(&mut buf, offset)?;
            Ok(buf)
        })
        .await
    }

    fn len(&self) -> u64 {
        self.len
    }
}
