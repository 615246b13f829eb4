//! A node as a cluster member: its QUIC endpoint, the metadata store over it, joining the
//! group at start-up, registering its drives in the layout, and the admin API's cluster view.
//!
//! Start-up order matters: the endpoint binds first (peers must reach us while we join), the
//! store opens over it, its Raft handlers are served, then a fresh node asks the leader to add
//! it (as a learner that catches up, then a voter). Only then does the rest of the node start,
//! so the key registry and everything else read a store that holds the cluster's state.

pub mod membership;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use coffer_cluster::{Handlers, NodeTls, QuicConfig, QuicNode, Transport};
use coffer_metadata::kv::Db;
use coffer_metadata::{MetaOptions, MetaStore, RecordExpect};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cluster_config::ClusterSettings;
use crate::shards::layout::{self, NodeRecord};
use crate::shards::remote::ClusterShards;
use membership::{Change, MemberHandler, Membership};

/// Why cluster start-up failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterStartError {
    /// The node certificate, key or CA could not be used.
    #[error("cluster TLS: {0}")]
    Tls(#[from] coffer_cluster::QuicError),
    /// The configured node id is not the certificate's.
    #[error("--node-id {configured} does not match the node certificate's id {cert}")]
    IdMismatch {
        /// Configured.
        configured: u64,
        /// In the certificate.
        cert: u64,
    },
    /// A fresh node that neither bootstraps nor knows a peer.
    #[error(
        "this node has no cluster state yet: start the first node with --bootstrap and the \
         others with --peers ID@HOST:PORT"
    )]
    NothingToJoin,
    /// The metadata store failed to open.
    #[error("metadata store: {0}")]
    Meta(#[from] coffer_metadata::MetaError),
    /// Joining failed.
    #[error("joining the cluster: {0}")]
    Join(#[from] membership::MembershipError),
}

/// A link to the peers that someone else made, in place of the QUIC endpoint: the
/// simulation's message bus (house plan §5). TLS is then the link's business, so the node's
/// certificate files are not read and `node_id` is taken as given.
pub struct ClusterLink {
    /// This node's id.
    pub node_id: u64,
    /// Calls to peers.
    pub transport: Arc<dyn Transport>,
    /// Where calls from peers are dispatched.
    pub handlers: Handlers,
    /// The metadata database to open the store on.
    pub db: Db,
    /// Whether that database holds no cluster state yet.
    pub fresh: bool,
}

/// A running cluster member's shared parts.
pub struct ClusterNode {
    /// The QUIC endpoint (listener and transport); `None` over a [`ClusterLink`].
    pub quic: Option<QuicNode>,
    /// The handler table calls from peers are dispatched by.
    pub handlers: Handlers,
    /// Calls to peers.
    pub transport: Arc<dyn Transport>,
    /// This node's id (from its certificate).
    pub node_id: u64,
    /// Membership changes.
    pub membership: Arc<Membership>,
    /// The settings it runs with.
    pub settings: ClusterSettings,
}

/// Binds the endpoint (or takes `link`), opens the metadata store over it and joins the group
/// if needed.
pub async fn start(
    settings: &ClusterSettings,
    meta_dir: &Path,
    link: Option<ClusterLink>,
) -> Result<(ClusterNode, MetaStore), ClusterStartError> {
    let (node_id, fresh, quic, handlers, transport, db) = match link {
        Some(l) => (
            l.node_id,
            l.fresh,
            None,
            l.handlers,
            l.transport,
            Some(l.db),
        ),
        None => {
            let tls = NodeTls::from_files(&settings.cert, &settings.key, &settings.ca)?;
            let node_id = tls.node_id();
            if let Some(configured) = settings.node_id.filter(|c| *c != node_id) {
                return Err(ClusterStartError::IdMismatch {
                    configured,
                    cert: node_id,
                });
            }
            let fresh = !meta_dir.exists();
            let quic = QuicNode::bind(QuicConfig::new(settings.listen, tls))?;
            let qt = quic.transport();
            let handlers = quic.handlers().clone();
            (
                node_id,
                fresh,
                Some(quic),
                handlers,
                Arc::new(qt) as Arc<dyn Transport>,
                None,
            )
        }
    };
    if fresh && !settings.bootstrap && settings.peers.is_empty() {
        return Err(ClusterStartError::NothingToJoin);
    }
    for p in &settings.peers {
        transport.learn_peer(p.id, &p.addr);
    }
    let options = MetaOptions {
        advertise_addr: settings.advertise.clone(),
        // Only a fresh store bootstraps: a restarted first node is a member like the others.
        bootstrap: fresh && settings.bootstrap,
        ready_timeout: Duration::from_secs(30),
        forward_timeout: Duration::from_secs(5),
        ..MetaOptions::over(Arc::clone(&transport))
    };
    let meta = match db {
        Some(db) => MetaStore::open_on(db, node_id, options).await?,
        None => MetaStore::open_with(meta_dir, node_id, options).await?,
    };
    meta.register_handlers(&handlers);
    let membership = Arc::new(Membership::new(meta.clone(), Arc::clone(&transport)));
    handlers.register(
        membership::CHANNEL,
        Arc::new(MemberHandler(Arc::clone(&membership))),
    );
    match &quic {
        Some(q) => tracing::info!(node_id, listen = %q.local_addr(), fresh, "cluster endpoint up"),
        None => tracing::info!(node_id, fresh, "cluster link up"),
    }
    let node = ClusterNode {
        quic,
        handlers,
        transport,
        node_id,
        membership,
        settings: settings.clone(),
    };
    node.join_if_needed(&meta, fresh).await?;
    Ok((node, meta))
}

impl ClusterNode {
    /// A node that is not a voter (fresh, or stopped before its promotion) asks to be one.
    async fn join_if_needed(&self, meta: &MetaStore, fresh: bool) -> Result<(), ClusterStartError> {
        if self.settings.peers.is_empty() {
            return Ok(());
        }
        if !fresh {
            // openraft loads the stored membership in its own task: wait for it before
            // deciding that this node is not a voter yet.
            let loaded = meta
                .raft()
                .wait(Some(Duration::from_secs(5)))
                .metrics(
                    |m| m.membership_config.membership().nodes().next().is_some(),
                    "stored membership loaded",
                )
                .await;
            if loaded.is_err() {
                tracing::warn!("no stored membership found; asking to join");
            }
        }
        let is_voter = meta
            .status()
            .members
            .iter()
            .any(|x| x.id == self.node_id && x.voter);
        if is_voter {
            return Ok(());
        }
        let candidates: Vec<u64> = self.settings.peers.iter().map(|p| p.id).collect();
        tracing::info!(peers = ?candidates, "joining the cluster");
        self.membership
            .apply(
                Change::Add {
                    id: self.node_id,
                    addr: self.settings.advertise.clone(),
                },
                &candidates,
            )
            .await?;
        tracing::info!(node_id = self.node_id, "joined the cluster as a voter");
        Ok(())
    }

    /// Stops serving peers.
    pub async fn shutdown(&self) {
        if let Some(q) = &self.quic {
            q.shutdown().await;
        }
    }
}

/// Writes this node's layout record until it lands, then keeps the layout of `shards` in step
/// with the Raft records of the current members until `stop`.
pub async fn run_layout(
    meta: MetaStore,
    shards: ClusterShards,
    me: NodeRecord,
    stop: CancellationToken,
) {
    let value = match serde_json::to_string(&me) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "cannot encode the layout record");
            return;
        }
    };
    let mut warned_for: Option<(usize, usize)> = None;
    let mut announced = false;
    loop {
        if let Ok(records) = meta.list_records(layout::NAMESPACE).await {
            let st = meta.status();
            let member = st.members.iter().any(|m| m.id == me.id);
            // (Re-)register while a member whose record is missing or stale: at start-up, and
            // after a removal and re-add through the admin API.
            let mine = records.iter().find(|(id, _)| *id == me.id.to_string());
            if member && mine.map(|(_, v)| v) != Some(&value) {
                let put = meta
                    .put_record(
                        layout::NAMESPACE,
                        &me.id.to_string(),
                        Some(value.clone()),
                        RecordExpect::Any,
                    )
                    .await;
                if put.is_ok() && !announced {
                    announced = true;
                    tracing::info!(
                        node_id = me.id,
                        drives = me.drives,
                        "registered in the layout"
                    );
                }
            }
            let nodes: Vec<NodeRecord> = records
                .iter()
                .filter_map(|(_, v)| serde_json::from_str::<NodeRecord>(v).ok())
                .filter(|n| st.members.iter().any(|m| m.id == n.id))
                .collect();
            shards.set_nodes(nodes);
            warn_if_fragile(&shards, &st, &mut warned_for);
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Logs once per layout when the erasure layout survives fewer node losses than Raft does, for
/// reads (`parity` shards may be missing) or for writes (`width - write_quorum` may be).
fn warn_if_fragile(
    shards: &ClusterShards,
    st: &coffer_metadata::MetaStatus,
    warned_for: &mut Option<(usize, usize)>,
) {
    let nodes = shards.nodes();
    let voters = st.members.iter().filter(|m| m.voter).count();
    let key = (nodes.len(), voters);
    if *warned_for == Some(key) {
        return;
    }
    *warned_for = Some(key);
    let Some(cfg) = shards.erasure() else {
        return;
    };
    let raft_losses = voters.saturating_sub(1) / 2;
    let reads = survivable_node_losses(&nodes, cfg.width(), cfg.parity);
    let writes = survivable_node_losses(&nodes, cfg.width(), cfg.width() - cfg.write_quorum());
    if reads.min(writes) < raft_losses {
        tracing::warn!(
            nodes = nodes.len(),
            erasure = %format!("{}+{}", cfg.data, cfg.parity),
            raft_survives = raft_losses,
            reads_survive = reads,
            writes_survive = writes,
            "the erasure layout survives fewer node losses than Raft: add drives or nodes, or \
             raise the parity (--cluster-parity)"
        );
    }
}

/// Node losses every object survives when `missing` of its shards may be unavailable: that
/// divided by the most shards placement puts on one node (sampled over many object hashes,
/// which covers every ranking of small clusters).
pub fn survivable_node_losses(nodes: &[NodeRecord], width: usize, missing: usize) -> usize {
    let pairs: Vec<(u64, usize)> = nodes.iter().map(|n| (n.id, n.drives)).collect();
    let mut most = 0;
    for h in 0..256u64 {
        let Some(p) =
            coffer_erasure::place_on_nodes(h.wrapping_mul(0x9e37_79b9_7f4a_7c15), &pairs, width)
        else {
            return 0;
        };
        for n in &pairs {
            most = most.max(p.iter().filter(|x| x.0 == n.0).count());
        }
    }
    missing.checked_div(most).unwrap_or(0)
}

/// The admin API's view of the cluster from this node.
pub fn status_json(
    meta: &MetaStore,
    shards: &ClusterShards,
    local_drives: &[std::sync::Arc<crate::drive::Drive>],
) -> serde_json::Value {
    let st = meta.status();
    let layout = shards.nodes();
    let down: Vec<u64> = shards
        .liveness()
        .down_nodes()
        .into_iter()
        .map(|d| d.0)
        .collect();
    let nodes: Vec<serde_json::Value> = st
        .members
        .iter()
        .map(|m| {
            let rec = layout.iter().find(|n| n.id == m.id);
            let reachable = m.id == st.node_id || !down.contains(&m.id);
            json!({
                "id": m.id,
                "addr": m.addr,
                "role": if Some(m.id) == st.current_leader { "leader" } else if m.voter { "voter" } else { "learner" },
                "reachable": reachable,
                "s3": rec.map(|r| r.s3.clone()),
                "admin": rec.map(|r| r.admin.clone()),
                "drives": rec.map(|r| r.drives),
                "in_layout": rec.is_some(),
                "matched_index": m.matched_index,
                "lag": m.lag,
            })
        })
        .collect();
    let erasure = shards.erasure().map(|c| format!("{}+{}", c.data, c.parity));
    json!({
        "node_id": st.node_id,
        "leader": st.current_leader,
        "term": st.current_term,
        "commit_index": st.committed_index,
        "last_applied": st.last_applied,
        "nodes": nodes,
        "layout_nodes": layout.len(),
        "total_drives": layout.iter().map(|n| n.drives).sum::<usize>(),
        "erasure": erasure,
        "drives": drives_json(local_drives),
    })
}

/// This node's drives as the admin API's status shows them.
pub fn drives_json(local_drives: &[std::sync::Arc<crate::drive::Drive>]) -> serde_json::Value {
    local_drives
        .iter()
        .map(|d| {
            json!({
                "index": d.index(),
                "path": d.root().display().to_string(),
                "healthy": d.root().join("shards").is_dir(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(drives: &[usize]) -> Vec<NodeRecord> {
        drives
            .iter()
            .enumerate()
            .map(|(i, &d)| NodeRecord {
                id: i as u64 + 1,
                quic: String::new(),
                s3: String::new(),
                admin: String::new(),
                drives: d,
            })
            .collect()
    }

    #[test]
    fn node_losses_the_layout_survives() {
        // Five nodes, one drive each, 3+2: any two nodes.
        assert_eq!(survivable_node_losses(&nodes(&[1; 5]), 5, 2), 2);
        // Four nodes 2+2: two.
        assert_eq!(survivable_node_losses(&nodes(&[1; 4]), 4, 2), 2);
        // Two nodes with two drives each, 2+2: one node holds two shards, survives one.
        assert_eq!(survivable_node_losses(&nodes(&[2, 2]), 4, 2), 1);
        // Three nodes, 4 drives in all, 3+1 (one node has two shards): one.
        assert_eq!(survivable_node_losses(&nodes(&[2, 1, 1]), 4, 1), 0);
        assert_eq!(survivable_node_losses(&[], 4, 2), 0);
        // Writes of five single-drive nodes (3+2, write quorum 4) may miss one shard: one node.
        assert_eq!(survivable_node_losses(&nodes(&[1; 5]), 5, 1), 1);
    }
}
