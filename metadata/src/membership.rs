//! Growing and shrinking the metadata group, and what this node knows of it.
//!
//! Membership changes run on the leader (elsewhere they answer `NotLeader{leader}`): a new node
//! first joins as a learner, which receives the log (or a snapshot) without voting, and is then
//! promoted to voter, so the quorum never counts a node that has not caught up.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use coffer_cluster::Handlers;
use openraft::{ChangeMembers, LogIdOptionExt};

use crate::error::MetaError;
use crate::remote;
use crate::store::{write_err, MetaStore};
use crate::types::{MemberStatus, MetaStatus};
use crate::{Node, NodeId};

impl MetaStore {
    /// This node's Raft id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// Serves this store's channels (Raft, forwarded writes, read indexes) from `handlers`
    /// (for QUIC: `QuicNode::handlers`).
    pub fn register_handlers(&self, handlers: &Handlers) {
        remote::register(&self.inner, handlers);
    }

    /// Adds node `id`, reachable at `addr`, as a learner, and returns once it has caught up
    /// with the log. Idempotent for a node that is already a member.
    pub async fn add_learner(&self, id: NodeId, addr: &str) -> Result<(), MetaError> {
        if let Some(peers) = &self.inner.peers {
            peers.learn_peer(id, addr);
        }
        self.inner
            .raft
            .add_learner(id, Node::new(addr), true)
            .await
            .map_err(write_err)?;
        Ok(())
    }

    /// Turns learners into voters.
    pub async fn promote(&self, ids: impl IntoIterator<Item = NodeId>) -> Result<(), MetaError> {
        let ids: BTreeSet<NodeId> = ids.into_iter().collect();
        self.change_membership(ChangeMembers::AddVoterIds(ids))
            .await
    }

    /// Applies any membership change (joint consensus; returns when it is committed).
    pub async fn change_membership(
        &self,
        change: ChangeMembers<NodeId, Node>,
    ) -> Result<(), MetaError> {
        self.inner
            .raft
            .change_membership(change, false)
            .await
            .map_err(write_err)?;
        Ok(())
    }

    /// Removes node `id` from the group: first from the voters (if it is one), then entirely.
    pub async fn remove_node(&self, id: NodeId) -> Result<(), MetaError> {
        let ids = BTreeSet::from([id]);
        let membership = self.inner.raft.metrics().borrow().membership_config.clone();
        let voter = membership.membership().voter_ids().any(|v| v == id);
        if voter {
            // `retain = false` drops it from the nodes as well in the same change.
            self.inner
                .raft
                .change_membership(ChangeMembers::RemoveVoters(ids.clone()), false)
                .await
                .map_err(write_err)?;
        }
        let membership = self.inner.raft.metrics().borrow().membership_config.clone();
        if membership.membership().get_node(&id).is_some() {
            self.change_membership(ChangeMembers::RemoveNodes(ids))
                .await?;
        }
        Ok(())
    }

    /// A health summary from Raft's metrics (no I/O, never blocks).
    pub fn status(&self) -> MetaStatus {
        let m = self.inner.raft.metrics().borrow().clone();
        let committed = match self.inner.committed.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n - 1),
        };
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, node)| {
                // On the leader: replication progress per node (itself: its own log).
                let matched: Option<Option<u64>> = m.replication.as_ref().map(|r| {
                    if *id == self.inner.node_id {
                        m.last_log_index
                    } else {
                        r.get(id).and_then(|l| l.index())
                    }
                });
                MemberStatus {
                    id: *id,
                    addr: node.addr.clone(),
                    voter: voters.contains(id),
                    matched_index: matched.flatten(),
                    lag: matched.map(|mi| entries(m.last_log_index).saturating_sub(entries(mi))),
                }
            })
            .collect();
        MetaStatus {
            node_id: self.inner.node_id,
            is_leader: m.current_leader == Some(self.inner.node_id),
            current_leader: m.current_leader,
            current_term: m.current_term,
            last_applied: m.last_applied.index(),
            last_log_index: m.last_log_index,
            committed_index: committed,
            snapshot_index: m.snapshot.index(),
            purged_index: m.purged.index(),
            members,
        }
    }
}

/// How many entries a log holds up to `last` (indexes start at 0).
fn entries(last: Option<u64>) -> u64 {
    last.map_or(0, |i| i.saturating_add(1))
}
