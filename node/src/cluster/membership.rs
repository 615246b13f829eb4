//! Membership changes from any node: a node joining at start-up, and the admin API's add and
//! remove. They run on the Raft leader; elsewhere they travel there on channel [`CHANNEL`]
//! (any peer with a certificate from the cluster CA may ask: that certificate is the
//! authorization to be a member).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use coffer_cluster::{HandlerError, RpcHandler, Transport};
use coffer_metadata::{MetaError, MetaStore};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::shards::layout;

/// The channel of membership requests.
pub const CHANNEL: &str = "cluster-member";

/// Longest wait for one membership change (a learner catching up included).
pub const CHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest wait for a new learner to catch up with the log, per attempt.
const LEARNER_CATCH_UP: Duration = Duration::from_secs(20);

/// A membership change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Change {
    /// Node `id` at QUIC `addr` joins as a learner and becomes a voter once caught up.
    Add {
        /// Node id.
        id: u64,
        /// QUIC address.
        addr: String,
    },
    /// Node `id` leaves the group and the layout.
    Remove {
        /// Node id.
        id: u64,
    },
}

/// The leader's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    /// Committed.
    Done,
    /// Ask this node instead.
    NotLeader {
        /// The leader, if known.
        leader: Option<u64>,
        /// Its QUIC address, if known.
        addr: Option<String>,
    },
    /// Refused for good (e.g. removing the last voter).
    Refused {
        /// Why.
        message: String,
    },
    /// Failed; worth retrying.
    Failed {
        /// Why.
        message: String,
    },
}

/// Why a membership change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// The leader refused it.
    #[error("membership change refused: {0}")]
    Refused(String),
    /// It kept failing until the bound.
    #[error("membership change failed: {0}")]
    Failed(String),
}

/// Applies membership changes here when leading, else at the leader.
pub struct Membership {
    meta: MetaStore,
    transport: Arc<dyn Transport>,
    /// Changes run one at a time on the leader (openraft refuses overlapping ones).
    lock: tokio::sync::Mutex<()>,
}

impl Membership {
    /// Membership of `meta`'s group, reaching the leader over `transport`.
    pub fn new(meta: MetaStore, transport: Arc<dyn Transport>) -> Self {
        Self {
            meta,
            transport,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Applies `change` on this node if it leads.
    pub async fn apply_here(&self, change: &Change) -> Outcome {
        let _one_at_a_time = self.lock.lock().await;
        let result = match change {
            Change::Add { id, addr } => self.add(*id, addr).await,
            Change::Remove { id } => self.remove(*id).await,
        };
        match result {
            Ok(()) => Outcome::Done,
            Err(MetaError::NotLeader { leader }) => {
                let addr = leader.and_then(|l| {
                    self.meta
                        .status()
                        .members
                        .into_iter()
                        .find(|m| m.id == l)
                        .map(|m| m.addr)
                });
                Outcome::NotLeader { leader, addr }
            }
            Err(MetaError::InvalidArgument(message)) => Outcome::Refused { message },
            Err(e) => Outcome::Failed {
                message: e.to_string(),
            },
        }
    }

    async fn add(&self, id: u64, addr: &str) -> Result<(), MetaError> {
        let st = self.meta.status();
        if !st.is_leader {
            return Err(MetaError::NotLeader {
                leader: st.current_leader,
            });
        }
        if st.members.iter().any(|m| m.id == id && m.voter) {
            return Ok(());
        }
        // openraft waits for the learner to catch up without a bound; a node that died while
        // joining (or a wrong address) must not hold the one-at-a-time lock for ever.
        match tokio::time::timeout(LEARNER_CATCH_UP, self.meta.add_learner(id, addr)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(MetaError::Unavailable(format!(
                    "node {id} at {addr} did not catch up within {LEARNER_CATCH_UP:?}"
                )))
            }
        }
        self.meta.promote([id]).await
    }

    async fn remove(&self, id: u64) -> Result<(), MetaError> {
        let st = self.meta.status();
        if !st.is_leader {
            return Err(MetaError::NotLeader {
                leader: st.current_leader,
            });
        }
        let voters = st.members.iter().filter(|m| m.voter).count();
        if voters <= 1 && st.members.iter().any(|m| m.id == id && m.voter) {
            return Err(MetaError::InvalidArgument(
                "cannot remove the last voter of the cluster".into(),
            ));
        }
        self.meta.remove_node(id).await?;
        self.meta
            .put_record(
                layout::NAMESPACE,
                &id.to_string(),
                None,
                coffer_metadata::RecordExpect::Any,
            )
            .await
            .map(|_| ())
    }

    /// Applies `change` wherever the leader is, following redirects, within [`CHANGE_TIMEOUT`].
    /// `candidates` are nodes to ask while no leader is known (the configured peers when
    /// joining); empty: start here.
    pub async fn apply(&self, change: Change, candidates: &[u64]) -> Result<(), MembershipError> {
        let deadline = Instant::now() + CHANGE_TIMEOUT;
        let mut tried = 0usize;
        let pick = |i: usize| (!candidates.is_empty()).then(|| candidates[i % candidates.len()]);
        let mut target = pick(0);
        let mut backoff = Duration::from_millis(100);
        let mut last = String::from("no leader known");
        loop {
            let outcome = match target {
                Some(t) if t != self.meta.node_id() => self.ask(t, &change, deadline).await,
                _ => self.apply_here(&change).await,
            };
            match outcome {
                Outcome::Done => return Ok(()),
                Outcome::Refused { message } => return Err(MembershipError::Refused(message)),
                Outcome::Failed { message } => {
                    tracing::debug!(%message, ?target, "membership change failed; retrying");
                    last = message;
                    tried += 1;
                    target = pick(tried);
                }
                Outcome::NotLeader { leader, addr } => {
                    if let (Some(l), Some(a)) = (leader, &addr) {
                        self.transport.learn_peer(l, a);
                    }
                    target = match leader {
                        Some(l) => Some(l),
                        None => {
                            tried += 1;
                            pick(tried)
                        }
                    };
                }
            }
            if Instant::now() >= deadline {
                return Err(MembershipError::Failed(last));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    async fn ask(&self, node: u64, change: &Change, deadline: Instant) -> Outcome {
        let body = match serde_json::to_vec(change) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                return Outcome::Failed {
                    message: e.to_string(),
                }
            }
        };
        let left = deadline.saturating_duration_since(Instant::now());
        match self
            .transport
            .call_with_deadline(node, CHANNEL, body, left.max(Duration::from_millis(1)))
            .await
        {
            Ok(reply) => serde_json::from_slice(&reply).unwrap_or_else(|e| Outcome::Failed {
                message: format!("bad reply from node {node}: {e}"),
            }),
            Err(e) => Outcome::Failed {
                message: e.to_string(),
            },
        }
    }
}

/// Serves [`CHANNEL`].
pub struct MemberHandler(pub Arc<Membership>);

#[async_trait::async_trait]
impl RpcHandler for MemberHandler {
    async fn handle(&self, from: u64, payload: Bytes) -> Result<Bytes, HandlerError> {
        let change: Change =
            serde_json::from_slice(&payload).map_err(|e| HandlerError::new(e.to_string()))?;
        // A node may ask to join itself; changing anyone else's membership takes a voter (a
        // removed node's certificate is still valid).
        let st = self.0.meta.status();
        let voter = st.members.iter().any(|m| m.id == from && m.voter);
        let allowed = match &change {
            Change::Add { id, .. } => *id == from || voter,
            Change::Remove { .. } => voter,
        };
        if !allowed {
            tracing::warn!(
                from,
                ?change,
                "membership change refused: the caller is not a voter"
            );
            let outcome = Outcome::Refused {
                message: format!("node {from} may not make this change"),
            };
            return serde_json::to_vec(&outcome)
                .map(Bytes::from)
                .map_err(|e| HandlerError::new(e.to_string()));
        }
        tracing::info!(from, ?change, "membership change requested");
        let outcome = self.0.apply_here(&change).await;
        serde_json::to_vec(&outcome)
            .map(Bytes::from)
            .map_err(|e| HandlerError::new(e.to_string()))
    }
}
