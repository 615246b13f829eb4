//! The receiving side of the shard channel: peers write, read, stat and delete shards on this
//! node's drives.
//!
//! A write is a session: `open` creates the temporary file, `append`s arrive in order (each
//! waits for the previous one's answer, which is the backpressure), `commit` writes the header,
//! fsyncs and renames. A session that goes quiet (its writer died) is dropped after
//! [`SESSION_IDLE`], and with it the partial file. The caller's node id comes from its verified
//! certificate, so sessions of different peers never collide.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use coffer_cluster::{HandlerError, RpcHandler};
// tokio's clock, not std's, so a simulated node's sessions age in simulated time.
use tokio::time::Instant;

use super::wire::{self, Reply, Request, Status};
use crate::drive::{DataId, Drive};
use crate::seams::{stages, ShardSink};

/// A write session with no call for this long is dropped (writers call at least every 10 s).
pub const SESSION_IDLE: Duration = Duration::from_secs(300);

/// Largest read answered (the transport's frame limit is 16 MiB; shard blocks are smaller).
const MAX_READ: u64 = 8 << 20;

/// Most write sessions open at once (per node, all peers together).
const MAX_SESSIONS: usize = 4096;

struct Session {
    /// `None` while a call holds it on the blocking pool.
    sink: Option<Box<dyn ShardSink>>,
    written: u64,
    last_used: Instant,
}

/// Serves [`wire::CHANNEL`] from this node's drives.
pub struct ShardServer {
    drives: Vec<Arc<Drive>>,
    sessions: Mutex<BTreeMap<(u64, u64), Session>>,
    /// Whether a caller is a member of the cluster now (a removed node's certificate stays
    /// valid, so the certificate alone does not admit it).
    is_member: Box<dyn Fn(u64) -> bool + Send + Sync>,
}

impl ShardServer {
    /// Serves `drives` to the callers `is_member` admits.
    pub fn new(drives: Vec<Arc<Drive>>, is_member: Box<dyn Fn(u64) -> bool + Send + Sync>) -> Self {
        Self {
            drives,
            sessions: Mutex::default(),
            is_member,
        }
    }

    fn drive(&self, index: usize) -> Result<Arc<Drive>, Reply> {
        self.drives
            .get(index)
            .cloned()
            .ok_or_else(|| Reply::failed(format!("no drive {index}")))
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, BTreeMap<(u64, u64), Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the sink of a session out for one call, checking the offset.
    fn take(&self, key: (u64, u64), offset: u64) -> Result<Box<dyn ShardSink>, Reply> {
        let mut sessions = self.sessions();
        let s = sessions.get_mut(&key).ok_or_else(Reply::not_found)?;
        if s.written != offset {
            return Err(Reply::failed(format!(
                "append at {offset}, expected {}",
                s.written
            )));
        }
        s.sink
            .take()
            .ok_or_else(|| Reply::failed("concurrent calls on one write session"))
    }

    fn put_back(&self, key: (u64, u64), sink: Box<dyn ShardSink>, added: u64) {
        if let Some(s) = self.sessions().get_mut(&key) {
            s.sink = Some(sink);
            s.written += added;
            s.last_used = Instant::now();
        }
    }

    /// Drops sessions idle past [`SESSION_IDLE`]; their partial files go with them.
    pub fn reap(&self) -> usize {
        let now = Instant::now();
        let mut sessions = self.sessions();
        let before = sessions.len();
        sessions.retain(|_, s| s.sink.is_none() || now.duration_since(s.last_used) < SESSION_IDLE);
        before - sessions.len()
    }

    /// Write sessions open now.
    pub fn open_sessions(&self) -> usize {
        self.sessions().len()
    }

    async fn serve(&self, from: u64, req: Request, body: Bytes) -> (Reply, Bytes) {
        match self.serve_inner(from, req, body).await {
            Ok(r) => r,
            Err(reply) => (reply, Bytes::new()),
        }
    }

    async fn serve_inner(
        &self,
        from: u64,
        req: Request,
        body: Bytes,
    ) -> Result<(Reply, Bytes), Reply> {
        let ok = |r: Reply| Ok((r, Bytes::new()));
        match req {
            Request::Ping => ok(Reply::ok()),
            Request::Open {
                drive,
                id,
                shard,
                session,
            } => {
                let (drive, id) = (self.drive(drive)?, data_id(&id)?);
                self.reap();
                if self.open_sessions() >= MAX_SESSIONS {
                    return Err(Reply::failed("too many shard writes in progress"));
                }
                let sink = blocking(move || drive.create(id, shard)).await?;
                self.sessions().insert(
                    (from, session),
                    Session {
                        sink: Some(sink),
                        written: 0,
                        last_used: Instant::now(),
                    },
                );
                ok(Reply::ok())
            }
            Request::Append { session, offset } => {
                let key = (from, session);
                let mut sink = self.take(key, offset)?;
                let len = body.len() as u64;
                let (sink, result) = stages::spawn_blocking(move || {
                    let r = sink.write_all(&body);
                    (sink, r)
                })
                .await
                .map_err(|e| Reply::failed(format!("append task: {e}")))?;
                match result {
                    Ok(()) => {
                        self.put_back(key, sink, len);
                        ok(Reply::ok())
                    }
                    Err(e) => {
                        self.sessions().remove(&key);
                        Err(Reply::failed(format!("append: {e}")))
                    }
                }
            }
            Request::Commit { session, len, at } => {
                let key = (from, session);
                let mut sink = self.take(key, len)?;
                self.sessions().remove(&key);
                blocking(move || {
                    if !body.is_empty() {
                        sink.write_at(at, &body)?;
                    }
                    sink.commit()
                })
                .await?;
                ok(Reply::ok())
            }
            Request::Abort { session } => {
                self.sessions().remove(&(from, session));
                ok(Reply::ok())
            }
            Request::Stat { drive, id, shard } => {
                let (drive, id) = (self.drive(drive)?, data_id(&id)?);
                let len = blocking(move || drive.open_shard(id, shard)?.len()).await?;
                ok(Reply {
                    len: Some(len),
                    ..Reply::ok()
                })
            }
            Request::Read {
                drive,
                id,
                shard,
                offset,
                len,
            } => {
                let (drive, id) = (self.drive(drive)?, data_id(&id)?);
                if len > MAX_READ {
                    return Err(Reply::failed(format!("read of {len} bytes is too large")));
                }
                let buf = blocking(move || {
                    let src = drive.open_shard(id, shard)?;
                    let mut buf = vec![0u8; len as usize];
                    src.read_exact_at(&mut buf, offset)?;
                    Ok(buf)
                })
                .await?;
                Ok((Reply::ok(), Bytes::from(buf)))
            }
            Request::Delete { drive, id, shard } => {
                let (drive, id) = (self.drive(drive)?, data_id(&id)?);
                blocking(move || drive.remove(id, shard)).await?;
                ok(Reply::ok())
            }
        }
    }
}

fn data_id(hex: &str) -> Result<DataId, Reply> {
    DataId::from_hex(hex).ok_or_else(|| Reply::failed("bad data id"))
}

/// Runs drive I/O on the blocking pool; `NotFound` becomes [`Status::NotFound`].
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, Reply> {
    match stages::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Err(Reply {
            status: Status::NotFound,
            len: None,
            message: None,
        }),
        Ok(Err(e)) => Err(Reply::failed(e.to_string())),
        Err(e) => Err(Reply::failed(format!("drive task: {e}"))),
    }
}

#[async_trait::async_trait]
impl RpcHandler for ShardServer {
    async fn handle(&self, from: u64, payload: Bytes) -> Result<Bytes, HandlerError> {
        if !(self.is_member)(from) {
            return Err(HandlerError::new(format!("node {from} is not a member")));
        }
        let (req, body) =
            wire::decode::<Request>(&payload).map_err(|e| HandlerError::new(e.to_string()))?;
        let (reply, out) = self.serve(from, req, body).await;
        if reply.status == Status::Failed {
            tracing::debug!(from, message = ?reply.message, "shard request failed");
        }
        Ok(wire::encode(&reply, &out))
    }
}
