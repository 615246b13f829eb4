//! Removing the shard files of data nothing references any more: at once for data no manifest
//! ever named, after a grace period for data a replaced or deleted object named.

use coffer_metadata::ObjectRecord;

use super::NodeService;
use crate::actors::DriveActors;
use crate::drive::DataId;
use crate::manifest::{self, Segment};
use crate::shards::ShardMap;

impl NodeService {
    /// Removes the shard files of segments that nothing references any more (and that no
    /// manifest ever did, so no reader can be using them).
    pub(crate) fn discard_segments(&self, segments: &[Segment]) {
        remove_segments(&self.drive_actors, &self.shards, segments);
    }

    /// Removes the shard files of segments a committed manifest referenced until now, after
    /// the grace period: a GET or copy that loaded that manifest a moment ago is still reading
    /// them, perhaps from another node. A crash before the delay ends leaves the files behind.
    pub(crate) fn retire_segments(&self, segments: Vec<Segment>) {
        if segments.is_empty() {
            return;
        }
        let (actors, shards, grace) = (
            self.drive_actors.clone(),
            self.shards.clone(),
            self.discard_grace,
        );
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            remove_segments(&actors, &shards, &segments);
        });
    }

    /// Removes the data of a replaced object that the new manifest does not reuse (a re-sealed
    /// copy keeps its segments).
    pub(crate) fn discard_replaced(&self, prev: &ObjectRecord, kept: &[Segment]) {
        match manifest::decode_object(&prev.manifest) {
            Ok(m) => {
                let gone: Vec<Segment> = m
                    .segments
                    .into_iter()
                    .filter(|s| !kept.iter().any(|k| k.data_id == s.data_id))
                    .collect();
                self.retire_segments(gone);
            }
            Err(e) => tracing::warn!(error = %e, "unreadable manifest of a replaced object"),
        }
    }

    /// Removes the data of a replaced or deleted object.
    pub(crate) fn discard_object(&self, rec: &ObjectRecord) {
        match manifest::decode_object(&rec.manifest) {
            Ok(m) => self.retire_segments(m.segments),
            Err(e) => tracing::warn!(error = %e, "unreadable manifest of a discarded object"),
        }
    }
}

/// Deletes the shard files of `segments` now: ours through the drive actors, peers' by RPC off
/// the request path.
fn remove_segments(actors: &DriveActors, shards: &ShardMap, segments: &[Segment]) {
    for seg in segments {
        let Some(id) = DataId::from_hex(&seg.data_id) else {
            continue;
        };
        if seg.nodes.is_empty() {
            for (shard, &drive) in seg.drives.iter().enumerate() {
                actors.delete(drive, id, shard);
            }
            continue;
        }
        // Shards on peers (and ours) of a cluster segment: removed off the request path.
        let Ok(stores) = shards.resolve(seg) else {
            continue;
        };
        let me = shards.cluster_side().map(|c| c.self_id());
        for (shard, (store, (&node, &drive))) in stores
            .into_iter()
            .zip(seg.nodes.iter().zip(&seg.drives))
            .enumerate()
        {
            if Some(node) == me {
                actors.delete(drive, id, shard);
            } else {
                tokio::spawn(async move {
                    if let Err(e) = store.remove(id, shard).await {
                        tracing::debug!(node, shard, error = %e, "remote shard delete failed");
                    }
                });
            }
        }
    }
}
