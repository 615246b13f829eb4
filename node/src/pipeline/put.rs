//! Writing one segment (an object or a part): encrypt in 64 KiB packages, cut the ciphertext into
//! erasure blocks, and stream each block's shards to their drives, fsynced before we return.
//! Memory is bounded by the per-shard channel depth whatever the object size.

use std::sync::Arc;

use bytes::Bytes;
use coffer_crypto::{Encryptor, SecretKey, StreamBinding};
use coffer_erasure::{Codec, ErasureConfig, ShardHeader};
use coffer_s3api::backend::StoreError;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::drive::DataId;
use crate::manifest::Segment;
use crate::pipeline::cipher::StreamSealer;
use crate::pipeline::etag::Md5Worker;
use crate::pipeline::seal::{SealStage, Sealing, ShardMsg};
use crate::shards::{ShardStore, ShardTargets};

/// Blocks in flight per shard writer: bounds memory to about this × block size × width.
const CHANNEL_DEPTH: usize = 4;

/// A segment being written, sealed by `S` (coffer_crypto's [`Encryptor`] in production).
pub struct SegmentWriter<S: StreamSealer = Encryptor> {
    data_id: DataId,
    salt: [u8; 32],
    cfg: ErasureConfig,
    drives: Vec<usize>,
    nodes: Vec<u64>,
    shard_drives: Vec<Arc<dyn ShardStore>>,
    stage: SealStage<S>,
    md5: Option<Md5Worker>,
    part: u32,
    stream_version: u8,
    plain_len: u64,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
    write_quorum: usize,
}

/// A segment whose shards reached the write quorum.
pub struct WrittenSegment {
    /// Manifest entry.
    pub segment: Segment,
    /// MD5 of the plaintext, when it was asked for.
    pub md5: Option<[u8; 16]>,
    /// Shards that failed to write (for the heal queue).
    pub failed_shards: Vec<usize>,
}

impl SegmentWriter<Encryptor> {
    /// Opens shard writers on `targets` (one per shard, by placement).
    ///
    /// `binding` names the object and part the stream belongs to; `with_md5` asks for the MD5
    /// of the plaintext (S3 needs it only for SSE-S3 ETags, and it is the slowest stage).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        data_id: DataId,
        salt: [u8; 32],
        oek: &SecretKey,
        suite: coffer_crypto::CipherSuite,
        binding: &StreamBinding,
        with_md5: bool,
        cfg: ErasureConfig,
        targets: ShardTargets,
    ) -> Result<Self, StoreError> {
        let key = coffer_crypto::derive_stream_key(oek, suite, &salt, binding);
        let stream_version = key.version();
        Self::start_with(
            data_id,
            salt,
            Encryptor::new(key),
            stream_version,
            binding.part,
            with_md5,
            cfg,
            targets,
        )
    }
}

impl<S: StreamSealer> SegmentWriter<S> {
    /// Like [`SegmentWriter::start`], with the stream sealed by `sealer`; `stream_version` and
    /// `part` are recorded in the manifest entry.
    #[allow(clippy::too_many_arguments)]
    pub fn start_with(
        data_id: DataId,
        salt: [u8; 32],
        sealer: S,
        stream_version: u8,
        part: u32,
        with_md5: bool,
        cfg: ErasureConfig,
        targets: ShardTargets,
    ) -> Result<Self, StoreError> {
        let codec = Codec::new(cfg).map_err(|e| StoreError::Internal(e.to_string()))?;
        if targets.stores.len() != cfg.width() {
            return Err(StoreError::Internal(format!(
                "{} shard targets for a {}-wide layout",
                targets.stores.len(),
                cfg.width()
            )));
        }
        let ShardTargets {
            drives: placement,
            nodes,
            stores: shard_drives,
        } = targets;
        let mut senders = Vec::with_capacity(placement.len());
        let mut tasks = Vec::with_capacity(placement.len());
        for (shard, drive) in shard_drives.iter().enumerate() {
            let drive = drive.clone();
            let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
            tasks.push(write_shard(drive, data_id, shard, rx));
            senders.push(tx);
        }
        let sealing = Sealing::new(sealer, codec, cfg.block_size, senders, cfg.write_quorum());
        Ok(Self {
            data_id,
            salt,
            cfg,
            drives: placement,
            nodes,
            shard_drives,
            stage: SealStage::new(sealing),
            md5: with_md5.then(Md5Worker::start),
            part,
            stream_version,
            plain_len: 0,
            tasks,
            write_quorum: cfg.write_quorum(),
        })
    }

    /// Plaintext bytes accepted so far.
    pub fn plain_len(&self) -> u64 {
        self.plain_len
    }

    /// Encrypts and writes a chunk of plaintext.
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        if let Some(md5) = &self.md5 {
            if !md5.update(chunk.clone()).await {
                return Err(StoreError::Internal("MD5 worker stopped".into()));
            }
        }
        self.plain_len += chunk.len() as u64;
        self.stage.write(chunk).await
    }

    /// Seals the last package, flushes every shard durably, and reports the segment.
    pub async fn finish(self) -> Result<WrittenSegment, StoreError> {
        let sealed = self.stage.finish().await?;
        let sealed_len = sealed.sealed_len;
        let mut failed = Vec::new();
        let mut committed = Vec::new();
        for (shard, (tx, task)) in sealed.shards.into_iter().zip(self.tasks).enumerate() {
            let header = ShardHeader::new(self.cfg, shard as u8, sealed_len, self.data_id.0)
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            let sent = match tx {
                Some(tx) => tx
                    .send(ShardMsg::Finish(header.encode().to_vec()))
                    .await
                    .is_ok(),
                None => false,
            };
            let result = task.await;
            match (sent, result) {
                (true, Ok(Ok(()))) => committed.push(shard),
                (_, Ok(Err(e))) => {
                    tracing::warn!(shard, error = %e, "shard write failed");
                    failed.push(shard);
                }
                _ => failed.push(shard),
            }
        }
        if committed.len() < self.write_quorum {
            // Too few shards to read the segment back: remove the ones that did land.
            for shard in committed {
                let drive = self.shard_drives[shard].clone();
                let id = self.data_id;
                let _ = drive.remove(id, shard).await;
            }
            return Err(StoreError::Unavailable);
        }
        let md5 = match self.md5 {
            Some(w) => Some(
                w.finish()
                    .await
                    .ok_or(StoreError::Internal("MD5 worker failed".into()))?,
            ),
            None => None,
        };
        Ok(WrittenSegment {
            segment: Segment {
                data_id: self.data_id.to_hex(),
                plain_len: self.plain_len,
                sealed_len,
                salt: self.salt.to_vec(),
                codec: coffer_erasure::CODEC_ID.to_string(),
                data: self.cfg.data,
                parity: self.cfg.parity,
                block_size: self.cfg.block_size,
                drives: self.drives,
                nodes: self.nodes,
                stream_version: self.stream_version,
                part: self.part,
            },
            md5,
            failed_shards: failed,
        })
    }
}

/// The writer of one shard, a task: appends framed blocks, then writes the header and commits.
/// Dropping the channel without `Finish` drops the writer, which discards the partial shard.
fn write_shard(
    drive: Arc<dyn ShardStore>,
    id: DataId,
    shard: usize,
    mut rx: mpsc::Receiver<ShardMsg>,
) -> JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        let mut sink = drive.create(id, shard).await?;
        sink.append(vec![0u8; coffer_erasure::HEADER_LEN]).await?;
        while let Some(msg) = rx.recv().await {
            match msg {
                ShardMsg::Block(b) => sink.append(b).await?,
                ShardMsg::Finish(header) => {
                    sink.write_at(0, header).await?;
                    return sink.commit().await;
                }
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::Interrupted,
            "shard write abandoned",
        ))
    })
}
