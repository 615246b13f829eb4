//! Any node serves metadata: a follower forwards writes to the leader and asks it for a read
//! index before a linearizable read.
//!
//! Writes: the follower sends the JSON [`Command`] on `meta-write`; the leader proposes it and
//! answers with the state machine's [`Response`]. A refusal that proves the write was not
//! proposed (the receiver is not the leader, is stopping, or cannot be reached) is retried
//! against the new leader with backoff, bounded by `MetaOptions::forward_timeout`. So is a
//! timeout or a connection lost mid-call: every write with peers carries a request id
//! (`Command::Once`), and the state machine answers a retry with the first outcome.
//!
//! Reads: the read-index protocol (Raft thesis §6.4). The follower asks the leader on
//! `meta-read-index`; the leader confirms its leadership with a heartbeat round
//! (`get_read_log_id`) and returns the index a read must see; the follower waits until its
//! own state machine has applied that index, then reads locally. Idempotent, so every failure
//! is retried within the bound.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use coffer_cluster::{Transport, TransportError as Wire};
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use tokio::time::Instant;

use crate::command::{Command, Response};
use crate::error::MetaError;
use crate::reads::read_err;
use crate::remote::{ForwardReply, ReadIndexReply, FORWARD_CHANNEL, READ_INDEX_CHANNEL};
use crate::store::{write_err, MetaStore};
use crate::NodeId;

const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// Longest single forwarded call; the whole operation is bounded by `forward_timeout`. Short:
/// a call to a leader that just died hangs until it (QUIC notices a dead peer only at its idle
/// timeout), and retrying is safe (request ids), so the next attempt finds the new leader.
const CALL_DEADLINE: Duration = Duration::from_secs(1);

/// What one attempt against a presumed leader tells the retry loop.
enum Step<T> {
    Done(T),
    /// Try again, at this leader if known.
    Retry(Option<NodeId>),
}

impl MetaStore {
    /// Proposes `cmd` (forwarded to the leader when this node does not lead and a peer
    /// transport is configured) and returns the state machine's response; a rejection becomes
    /// its error.
    pub(crate) async fn propose(&self, cmd: Command) -> Result<Response, MetaError> {
        if self.inner.peers.is_none() {
            return self.propose_unbounded(cmd).await;
        }
        // With peers, every write carries a request id, so a retry after an unknown outcome
        // (the leader died mid-call) is answered from the first outcome (`requests.rs`).
        let cmd = match cmd {
            once @ Command::Once { .. } => once,
            other => Command::Once {
                request: crate::requests::new_id(),
                command: Box::new(other),
            },
        };
        // A leader cut off from its majority never commits and openraft does not give up by
        // itself: bound the wait so the client gets a 503 instead of a hung request. The
        // write may still commit later, as with any ambiguous failure.
        bounded(
            self.inner.forward_timeout,
            "write",
            self.propose_unbounded(cmd),
        )
        .await
    }

    async fn propose_unbounded(&self, cmd: Command) -> Result<Response, MetaError> {
        let resp = match &self.inner.peers {
            None => {
                self.inner
                    .raft
                    .client_write(cmd)
                    .await
                    .map_err(write_err)?
                    .data
            }
            Some(peers) => match self.inner.raft.client_write(cmd.clone()).await {
                Ok(r) => r.data,
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    self.forward_write(peers, cmd, f.leader_id).await?
                }
                Err(e) => return Err(write_err(e)),
            },
        };
        match resp {
            Response::Rejected(e) => Err(e.into()),
            other => Ok(other),
        }
    }

    /// Waits until this node may serve a read that reflects every write acknowledged before
    /// it: locally on the leader, by read index from the leader on a follower.
    pub(crate) async fn read_barrier(&self) -> Result<(), MetaError> {
        if self.inner.peers.is_none() {
            return self.read_barrier_unbounded().await;
        }
        bounded(
            self.inner.forward_timeout,
            "read",
            self.read_barrier_unbounded(),
        )
        .await
    }

    async fn read_barrier_unbounded(&self) -> Result<(), MetaError> {
        let hint = match self.inner.raft.ensure_linearizable().await {
            Ok(_) => {
                let Some(floor) = self.inner.restored_read_floor() else {
                    return Ok(());
                };
                return self
                    .inner
                    .raft
                    .wait(Some(self.inner.forward_timeout))
                    .applied_index_at_least(Some(floor), "restored log applied")
                    .await
                    .map(drop)
                    .map_err(|e| MetaError::Unavailable(format!("restored leader: {e}")));
            }
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))
                if self.inner.peers.is_some() =>
            {
                f.leader_id
            }
            Err(e) => return Err(read_err(e)),
        };
        let deadline = Instant::now() + self.inner.forward_timeout;
        let index = self.remote_read_index(hint, deadline).await?;
        let Some(index) = index else {
            return Ok(());
        };
        let left = deadline.saturating_duration_since(Instant::now());
        self.inner
            .raft
            .wait(Some(left))
            .applied_index_at_least(Some(index), "read index applied")
            .await
            .map_err(|e| MetaError::Unavailable(format!("catching up to read index: {e}")))?;
        Ok(())
    }

    /// Tells the transport where `leader` is, from the membership.
    fn learn_address(&self, peers: &Arc<dyn Transport>, leader: NodeId) {
        let m = self.inner.raft.metrics().borrow().membership_config.clone();
        if let Some(node) = m.membership().get_node(&leader) {
            peers.learn_peer(leader, &node.addr);
        }
    }

    /// Runs `attempt` against the presumed leader until it is done or the deadline passes.
    async fn with_leader<T, F, Fut>(
        &self,
        mut leader: Option<NodeId>,
        deadline: Instant,
        what: &str,
        mut attempt: F,
    ) -> Result<T, MetaError>
    where
        F: FnMut(NodeId, Duration) -> Fut,
        Fut: std::future::Future<Output = Result<Step<T>, MetaError>>,
    {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(MetaError::Unavailable(format!(
                    "{what}: no leader answered"
                )));
            }
            let target = leader.or_else(|| self.inner.raft.metrics().borrow().current_leader);
            if let Some(target) = target {
                let left = (deadline - now).min(CALL_DEADLINE);
                match attempt(target, left).await? {
                    Step::Done(v) => return Ok(v),
                    Step::Retry(next) => leader = next.filter(|n| *n != target),
                }
            }
            tokio::time::sleep(backoff.min(deadline.saturating_duration_since(Instant::now())))
                .await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn forward_write(
        &self,
        peers: &Arc<dyn Transport>,
        cmd: Command,
        hint: Option<NodeId>,
    ) -> Result<Response, MetaError> {
        let body =
            Bytes::from(serde_json::to_vec(&cmd).map_err(|e| MetaError::Codec(e.to_string()))?);
        let deadline = Instant::now() + self.inner.forward_timeout;
        let me = self.inner.node_id;
        self.with_leader(hint, deadline, "forwarded write", |target, left| {
            let (cmd, body) = (cmd.clone(), body.clone());
            async move {
                if target == me {
                    // Leadership moved here meanwhile.
                    return match self.inner.raft.client_write(cmd).await {
                        Ok(r) => Ok(Step::Done(r.data)),
                        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                            Ok(Step::Retry(f.leader_id))
                        }
                        Err(e) => Err(write_err(e)),
                    };
                }
                self.learn_address(peers, target);
                match peers
                    .call_with_deadline(target, FORWARD_CHANNEL, body, left)
                    .await
                {
                    Ok(bytes) => match decode::<ForwardReply>(&bytes)? {
                        ForwardReply::Applied(r) => Ok(Step::Done(r)),
                        ForwardReply::NotLeader(l) => Ok(Step::Retry(l)),
                        ForwardReply::Unavailable(_) => Ok(Step::Retry(None)),
                    },
                    Err(Wire::Closed) => Err(MetaError::Unavailable("transport closed".into())),
                    // Not delivered, refused before proposing, or an unknown outcome: the
                    // request id makes a retry safe (it cannot apply twice).
                    Err(e) => {
                        tracing::debug!(target, error = %e, "forwarded write failed; retrying");
                        Ok(Step::Retry(None))
                    }
                }
            }
        })
        .await
    }

    async fn remote_read_index(
        &self,
        hint: Option<NodeId>,
        deadline: Instant,
    ) -> Result<Option<u64>, MetaError> {
        let Some(peers) = self.inner.peers.clone() else {
            return Err(MetaError::NotLeader { leader: hint });
        };
        let me = self.inner.node_id;
        self.with_leader(hint, deadline, "read index", |target, left| {
            let peers = Arc::clone(&peers);
            async move {
                if target == me {
                    return match self.inner.raft.ensure_linearizable().await {
                        Ok(_) => Ok(Step::Done(None)),
                        Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                            Ok(Step::Retry(f.leader_id))
                        }
                        Err(_) => Ok(Step::Retry(None)),
                    };
                }
                self.learn_address(&peers, target);
                match peers
                    .call_with_deadline(target, READ_INDEX_CHANNEL, Bytes::new(), left)
                    .await
                {
                    Ok(bytes) => match decode::<ReadIndexReply>(&bytes)? {
                        ReadIndexReply::Index(i) => Ok(Step::Done(i)),
                        ReadIndexReply::NotLeader(l) => Ok(Step::Retry(l)),
                        ReadIndexReply::Unavailable(_) => Ok(Step::Retry(None)),
                    },
                    Err(Wire::Closed) => Err(MetaError::Unavailable("transport closed".into())),
                    Err(_) => Ok(Step::Retry(None)),
                }
            }
        })
        .await
    }
}

/// `fut`, or `Unavailable` once `bound` has passed.
async fn bounded<T>(
    bound: Duration,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, MetaError>>,
) -> Result<T, MetaError> {
    match tokio::time::timeout(bound, fut).await {
        Ok(r) => r,
        Err(_) => Err(MetaError::Unavailable(format!(
            "metadata {what}: no quorum within {bound:?}"
        ))),
    }
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, MetaError> {
    serde_json::from_slice(bytes).map_err(|e| MetaError::Codec(e.to_string()))
}
