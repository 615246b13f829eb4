//! The sealing stage of a segment write: encrypt 64 KiB packages, cut the ciphertext into
//! erasure blocks, encode each block's framed shards and hand them to the shard writers.
//!
//! A segment smaller than one erasure block is sealed inline in the request task (a hand-off
//! would cost more than it saves). Once a segment fills its first block the stage moves to its
//! own blocking-pool thread ([`Threaded`]), so sealing and coding of one block overlap with
//! receiving the next part of the body: on a PUT they were the serial part of the request task
//! (ChaCha20-Poly1305 alone is ~0.5 ns/B).

use bytes::Bytes;
use coffer_erasure::Codec;
use coffer_s3api::backend::StoreError;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::pipeline::cipher::StreamSealer;
use crate::seams::stages;

/// Body chunks queued for the sealing thread; bounds how far the request task may run ahead.
const CHUNK_DEPTH: usize = 8;

/// What a shard writer is sent.
pub(crate) enum ShardMsg {
    /// A framed shard block to append.
    Block(Vec<u8>),
    /// The shard header: write it and commit the file.
    Finish(Vec<u8>),
}

/// The sealer, the codec and the shard senders of one segment.
pub(crate) struct Sealing<S: StreamSealer> {
    sealer: Option<S>,
    codec: Codec,
    block_size: usize,
    pending: Vec<u8>,
    /// Sealed bytes handed to the shard writers so far.
    pub(crate) sealed_len: u64,
    /// One sender per shard; None once that shard's writer has failed.
    pub(crate) shards: Vec<Option<mpsc::Sender<ShardMsg>>>,
    write_quorum: usize,
}

impl<S: StreamSealer> Sealing<S> {
    /// A stage sealing with `sealer` into blocks of `block_size` for the shard `senders`.
    pub(crate) fn new(
        sealer: S,
        codec: Codec,
        block_size: usize,
        senders: Vec<mpsc::Sender<ShardMsg>>,
        write_quorum: usize,
    ) -> Self {
        Self {
            sealer: Some(sealer),
            codec,
            block_size,
            pending: Vec::with_capacity(block_size + 2 * coffer_crypto::PACKAGE_SIZE),
            sealed_len: 0,
            shards: senders.into_iter().map(Some).collect(),
            write_quorum,
        }
    }

    fn push(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        let sealer = self
            .sealer
            .as_mut()
            .ok_or(StoreError::Internal("segment already sealed".into()))?;
        sealer
            .push(chunk, &mut self.pending)
            .map_err(|_| StoreError::EntityTooLarge)
    }

    /// Seals the final package; the blocks left are then taken with `take_block(true)`.
    fn seal_final(&mut self) -> Result<(), StoreError> {
        let sealer = self
            .sealer
            .take()
            .ok_or(StoreError::Internal("segment already sealed".into()))?;
        sealer
            .finish(&mut self.pending)
            .map_err(|_| StoreError::EntityTooLarge)
    }

    fn has_full_block(&self) -> bool {
        self.pending.len() >= self.block_size
    }

    /// The next block to encode: a full one, or (when `last`) whatever is left.
    fn take_block(&mut self, last: bool) -> Option<Vec<u8>> {
        if self.pending.len() >= self.block_size {
            let rest = self.pending.split_off(self.block_size);
            Some(std::mem::replace(&mut self.pending, rest))
        } else if last && !self.pending.is_empty() {
            Some(std::mem::take(&mut self.pending))
        } else {
            None
        }
    }

    fn encode(&mut self, block: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        self.sealed_len += block.len() as u64;
        let mut outs: Vec<Vec<u8>> = (0..self.shards.len()).map(|_| Vec::new()).collect();
        self.codec
            .encode_framed(block, &mut outs)
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        Ok(outs)
    }

    fn check_quorum(&self) -> Result<(), StoreError> {
        let alive = self.shards.iter().filter(|s| s.is_some()).count();
        if alive < self.write_quorum {
            return Err(StoreError::Unavailable);
        }
        Ok(())
    }

    async fn send(&mut self, framed: Vec<Vec<u8>>) -> Result<(), StoreError> {
        for (slot, block) in self.shards.iter_mut().zip(framed) {
            let Some(tx) = slot else { continue };
            if tx.send(ShardMsg::Block(block)).await.is_err() {
                // The writer failed; its error is collected at finish.
                *slot = None;
            }
        }
        self.check_quorum()
    }

    fn send_blocking(&mut self, framed: Vec<Vec<u8>>) -> Result<(), StoreError> {
        for (slot, block) in self.shards.iter_mut().zip(framed) {
            let Some(tx) = slot else { continue };
            if tx.blocking_send(ShardMsg::Block(block)).is_err() {
                *slot = None;
            }
        }
        self.check_quorum()
    }

    /// Encodes and sends, from the request task, every block that is ready.
    async fn flush(&mut self, last: bool) -> Result<(), StoreError> {
        while let Some(block) = self.take_block(last) {
            let framed = self.encode(&block)?;
            self.send(framed).await?;
        }
        Ok(())
    }

    fn flush_blocking(&mut self, last: bool) -> Result<(), StoreError> {
        while let Some(block) = self.take_block(last) {
            let framed = self.encode(&block)?;
            self.send_blocking(framed)?;
        }
        Ok(())
    }
}

enum SealMsg {
    Chunk(Bytes),
    Finish,
}

/// The stage running on its own thread.
struct Threaded<S: StreamSealer> {
    tx: mpsc::Sender<SealMsg>,
    task: JoinHandle<Result<Sealing<S>, StoreError>>,
}

enum Stage<S: StreamSealer> {
    Inline(Box<Sealing<S>>),
    Threaded(Threaded<S>),
    /// The stage failed or finished; nothing more is accepted.
    Gone,
}

/// The sealing stage as the segment writer drives it.
pub(crate) struct SealStage<S: StreamSealer> {
    stage: Stage<S>,
}

impl<S: StreamSealer> SealStage<S> {
    /// Starts inline; see the module docs for when it moves to a thread.
    pub(crate) fn new(sealing: Sealing<S>) -> Self {
        Self {
            stage: Stage::Inline(Box::new(sealing)),
        }
    }

    /// Seals a chunk of plaintext (or queues it for the sealing thread).
    pub(crate) async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        match &mut self.stage {
            Stage::Inline(s) => {
                let mut r = s.push(&chunk);
                // Inline stages (the simulation) never hand off: the thread would block on its
                // sends, and there is no second core to overlap with.
                if r.is_ok() && stages::inline() {
                    r = s.flush(false).await;
                }
                if let Err(e) = r {
                    self.stage = Stage::Gone;
                    return Err(e);
                }
                if s.has_full_block() {
                    let Stage::Inline(s) = std::mem::replace(&mut self.stage, Stage::Gone) else {
                        unreachable!("matched Inline above");
                    };
                    self.stage = Stage::Threaded(spawn(*s));
                }
                Ok(())
            }
            Stage::Threaded(t) => {
                if t.tx.send(SealMsg::Chunk(chunk)).await.is_ok() {
                    return Ok(());
                }
                // The thread stopped: its result says why.
                Err(self
                    .stop()
                    .await
                    .err()
                    .unwrap_or(StoreError::Internal("sealing stage stopped early".into())))
            }
            Stage::Gone => Err(StoreError::Internal("sealing stage already failed".into())),
        }
    }

    /// Seals the final package and sends every remaining block; returns the stage's state
    /// (shard senders, sealed length) for the commit.
    pub(crate) async fn finish(mut self) -> Result<Sealing<S>, StoreError> {
        match std::mem::replace(&mut self.stage, Stage::Gone) {
            Stage::Inline(mut s) => {
                s.seal_final()?;
                s.flush(true).await?;
                Ok(*s)
            }
            Stage::Threaded(t) => {
                // A failed send means the thread already stopped; its result says why.
                let _ = t.tx.send(SealMsg::Finish).await;
                join(t.task).await
            }
            Stage::Gone => Err(StoreError::Internal("sealing stage already failed".into())),
        }
    }

    async fn stop(&mut self) -> Result<Sealing<S>, StoreError> {
        match std::mem::replace(&mut self.stage, Stage::Gone) {
            Stage::Threaded(t) => join(t.task).await,
            _ => Err(StoreError::Internal("sealing stage not running".into())),
        }
    }
}

async fn join<S: StreamSealer>(
    task: JoinHandle<Result<Sealing<S>, StoreError>>,
) -> Result<Sealing<S>, StoreError> {
    task.await
        .map_err(|_| StoreError::Internal("sealing thread failed".into()))?
}

fn spawn<S: StreamSealer>(sealing: Sealing<S>) -> Threaded<S> {
    let (tx, rx) = mpsc::channel(CHUNK_DEPTH);
    let task = tokio::task::spawn_blocking(move || run(sealing, rx));
    Threaded { tx, task }
}

/// The sealing thread. Returning early drops the shard senders, so an abandoned or failed
/// segment leaves only temporary files, which their writers remove.
fn run<S: StreamSealer>(
    mut s: Sealing<S>,
    mut rx: mpsc::Receiver<SealMsg>,
) -> Result<Sealing<S>, StoreError> {
    s.flush_blocking(false)?;
    while let Some(msg) = rx.blocking_recv() {
        match msg {
            SealMsg::Chunk(chunk) => {
                s.push(&chunk)?;
                s.flush_blocking(false)?;
            }
            SealMsg::Finish => {
                s.seal_final()?;
                s.flush_blocking(true)?;
                return Ok(s);
            }
        }
    }
    Err(StoreError::Internal("segment write abandoned".into()))
}
