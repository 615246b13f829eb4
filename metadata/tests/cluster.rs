//! The transport seam with an in-memory transport: a three-node group built from a snapshot,
//! replication, NotLeader on followers, and failover after the leader stops.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_metadata::{
    serve_rpc, MetaError, MetaOptions, MetaRaft, MetaStore, Node, RaftRpc, RaftRpcReply,
    RaftTransport, TransportError,
};
use common::obj;

/// Delivers RPCs by direct call to the target's Raft, after a JSON round trip each way so the
/// messages are proven to serialize.
#[derive(Clone, Default)]
struct MemTransport {
    peers: Arc<Mutex<BTreeMap<u64, MetaRaft>>>,
}

impl MemTransport {
    fn register(&self, id: u64, raft: MetaRaft) {
        self.peers.lock().unwrap().insert(id, raft);
    }

    fn unregister(&self, id: u64) {
        self.peers.lock().unwrap().remove(&id);
    }
}

#[async_trait::async_trait]
impl RaftTransport for MemTransport {
    async fn call(
        &self,
        target: u64,
        _node: &Node,
        rpc: RaftRpc,
        _deadline: Duration,
    ) -> Result<RaftRpcReply, TransportError> {
        let raft = self.peers.lock().unwrap().get(&target).cloned();
        let Some(raft) = raft else {
            return Err(TransportError::Unreachable {
                target,
                reason: "down".to_owned(),
            });
        };
        let wire = serde_json::to_vec(&rpc).unwrap();
        let rpc: RaftRpc = serde_json::from_slice(&wire).unwrap();
        let reply = serve_rpc(&raft, rpc).await;
        let wire = serde_json::to_vec(&reply).unwrap();
        Ok(serde_json::from_slice(&wire).unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_and_fail_over() {
    let transport = MemTransport::default();
    let options = |bootstrap| MetaOptions {
        transport: Arc::new(transport.clone()),
        keep_logs_after_snapshot: 0,
        bootstrap,
        ..MetaOptions::default()
    };
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();

    let n1 = MetaStore::open_with(dirs[0].path(), 1, options(true))
        .await
        .unwrap();
    transport.register(1, n1.raft().clone());
    n1.create_bucket("b", 1).await.unwrap();
    for n in 0..10 {
        n1.put_object("b", &format!("k{n}"), obj(n)).await.unwrap();
    }
    // The log is purged, so the new members can only catch up by installing the snapshot.
    n1.snapshot_now().await.unwrap();

    let mut others = Vec::new();
    for id in [2u64, 3] {
        let store = MetaStore::open_with(dirs[id as usize - 1].path(), id, options(false))
            .await
            .unwrap();
        transport.register(id, store.raft().clone());
        n1.raft()
            .add_learner(id, Node::new(format!("n{id}")), true)
            .await
            .unwrap();
        others.push(store);
    }
    n1.raft()
        .change_membership([1u64, 2, 3], false)
        .await
        .unwrap();
    n1.put_object("b", "after-join", obj(42)).await.unwrap();

    // Followers refuse writes and linearizable reads, naming the leader.
    assert_eq!(
        others[0].create_bucket("x", 1).await,
        Err(MetaError::NotLeader { leader: Some(1) })
    );
    assert_eq!(
        others[1].get_bucket("b").await,
        Err(MetaError::NotLeader { leader: Some(1) })
    );

    n1.shutdown().await.unwrap();
    transport.unregister(1);

    // One of the remaining two takes over with everything committed before.
    others[0]
        .raft()
        .wait(Some(Duration::from_secs(10)))
        .metrics(
            |m| m.current_leader.is_some_and(|l| l != 1),
            "new leader elected",
        )
        .await
        .unwrap();
    let leader_id = others[0].status().current_leader.unwrap();
    let leader = others
        .iter()
        .find(|s| s.status().node_id == leader_id)
        .unwrap();
    let listed = leader.list_objects("b", "", None, 100).await.unwrap();
    assert_eq!(listed.len(), 11);
    assert_eq!(
        leader.get_object("b", "after-join").await.unwrap(),
        Some(obj(42))
    );
    leader
        .put_object("b", "after-failover", obj(7))
        .await
        .unwrap();

    for store in &others {
        store.shutdown().await.unwrap();
    }
}
