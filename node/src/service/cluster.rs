//! The admin API's cluster routes: status from this node, membership changes at the leader.

use coffer_s3api::backend::{ClusterAdminRequest, StoreError, StoreResult};

use super::NodeService;
use crate::cluster::membership::{Change, MembershipError};

impl NodeService {
    pub(crate) async fn cluster_admin(
        &self,
        req: ClusterAdminRequest,
    ) -> StoreResult<serde_json::Value> {
        let (Some(node), Some(shards)) = (&self.cluster, self.shards.cluster_side()) else {
            return match req {
                ClusterAdminRequest::Status => Ok(self.alone_status()),
                _ => Err(StoreError::NotImplemented(
                    "this node runs alone: start it with --cluster-cert/--cluster-key/--cluster-ca"
                        .into(),
                )),
            };
        };
        let change = match req {
            ClusterAdminRequest::Status => return Ok(self.cluster_status(shards)),
            ClusterAdminRequest::AddNode { id, addr } => Change::Add { id, addr },
            ClusterAdminRequest::RemoveNode(id) => Change::Remove { id },
        };
        match node.membership.apply(change, &[]).await {
            Ok(()) => Ok(self.cluster_status(shards)),
            Err(MembershipError::Refused(message)) => Err(StoreError::InvalidArgument(message)),
            Err(MembershipError::Failed(message)) => {
                tracing::warn!(%message, "membership change failed");
                Err(StoreError::Unavailable)
            }
        }
    }

    /// Status of a node that runs alone: it leads its own Raft group and heals its own drives,
    /// so an operator who replaced a drive reads the healer's progress here as in a cluster.
    fn alone_status(&self) -> serde_json::Value {
        let st = self.meta.status();
        let erasure = self.shards.erasure();
        serde_json::json!({
            "node_id": st.node_id,
            "alone": true,
            "leader": st.current_leader,
            "term": st.current_term,
            "commit_index": st.committed_index,
            "last_applied": st.last_applied,
            "erasure": format!("{}+{}", erasure.data, erasure.parity),
            "drives": crate::cluster::drives_json(&self.drives),
            "heal": serde_json::to_value(self.healer.stats()).unwrap_or_default(),
        })
    }

    fn cluster_status(&self, shards: &crate::shards::remote::ClusterShards) -> serde_json::Value {
        let mut v = crate::cluster::status_json(&self.meta, shards, &self.drives);
        v["heal"] = serde_json::to_value(self.healer.stats()).unwrap_or_default();
        v
    }
}
