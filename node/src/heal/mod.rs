//! The healer: restores full redundancy after shard writes that missed a node, nodes that were
//! down, lost or corrupt shard files.
//!
//! The Raft leader runs it (one healer per cluster, so two nodes never rebuild the same shard).
//! Each pass walks every object manifest in key order, then every part of an upload in
//! progress, and checks each segment's shards where the manifest places them: a stat per
//! shard, and on every [`DEEP_EVERY`]th pass a scrub that reads every block and verifies its
//! CRC32C. Bad shards are rebuilt from k good ones
//! (`rebuild.rs`); shards on an unreachable node wait for a later pass. The pace is bounded
//! ([`SEGMENTS_PER_SEC`]), and a pass starts every [`PASS_EVERY`] or when woken.

pub mod orphans;
pub mod rebuild;
pub mod relocate;
pub mod walk;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_metadata::{MetaError, MetaStore, ObjectPrecondition, ObjectRecord};
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::manifest;
use crate::metrics::Metrics;
use crate::seams::Clock;
use crate::shards::ShardMap;

/// Time between passes.
pub const PASS_EVERY: Duration = Duration::from_secs(5);
/// Every this many passes is a deep one (CRC of every block).
pub const DEEP_EVERY: u64 = 12;
/// Most segments checked per second.
pub const SEGMENTS_PER_SEC: u32 = 500;
/// The pause after each segment that keeps the pace.
const PAUSE: Duration = Duration::from_micros(1_000_000 / SEGMENTS_PER_SEC as u64);

/// What one pass found.
struct PassCounts {
    /// Objects checked.
    checked: u64,
    /// Objects still below full redundancy.
    degraded: u64,
    /// Parts of uploads in progress checked.
    parts: u64,
    /// Parts still below full redundancy.
    degraded_parts: u64,
}

/// The Raft members and the layout (node id, drive count) a pass moves shards by.
type Placement = (BTreeSet<u64>, Vec<(u64, usize)>);

/// What the healer has done, for the admin API.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HealStats {
    /// Completed passes on this node.
    pub passes: u64,
    /// Completed deep (scrub) passes.
    pub deep_passes: u64,
    /// A pass is running now.
    pub running: bool,
    /// End of the last completed pass, ms since the epoch.
    pub last_pass_ms: Option<i64>,
    /// Objects checked in the last completed pass.
    pub objects_checked: u64,
    /// Objects below full redundancy after the last completed pass.
    pub degraded_objects: u64,
    /// Parts of uploads in progress checked in the last completed pass.
    pub parts_checked: u64,
    /// Parts of uploads in progress below full redundancy after the last completed pass.
    pub degraded_parts: u64,
    /// Shards rewritten since start.
    pub shards_healed: u64,
    /// Shards moved off nodes that left the cluster since start (`relocate.rs`).
    pub shards_moved: u64,
    /// Segments that could not be rebuilt (too few good shards) since start.
    pub heal_failures: u64,
}

/// The healer of one node.
pub struct Healer {
    meta: Arc<MetaStore>,
    shards: Arc<ShardMap>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    stats: Mutex<HealStats>,
    wake: Notify,
}

impl Healer {
    /// A healer over `shards`, reading manifests from `meta`.
    pub fn new(
        meta: Arc<MetaStore>,
        shards: Arc<ShardMap>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            meta,
            shards,
            metrics,
            clock,
            stats: Mutex::default(),
            wake: Notify::new(),
        }
    }

    /// The current statistics.
    pub fn stats(&self) -> HealStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Starts a pass now (e.g. after a write that missed shards).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn update(&self, f: impl FnOnce(&mut HealStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Runs passes while this node leads, until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut pass = 0u64;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(PASS_EVERY) => {}
                _ = self.wake.notified() => {}
            }
            if !self.meta.status().is_leader {
                continue;
            }
            pass += 1;
            let deep = pass.is_multiple_of(DEEP_EVERY);
            self.update(|s| s.running = true);
            let result = tokio::select! {
                _ = stop.cancelled() => return,
                r = self.pass(deep) => r,
            };
            match result {
                Ok(PassCounts {
                    checked,
                    degraded,
                    parts,
                    degraded_parts,
                }) => {
                    let now = self.clock.now_ms();
                    self.metrics.record_heal("scans", 1);
                    self.metrics.set_degraded(degraded);
                    self.update(|s| {
                        s.running = false;
                        s.passes += 1;
                        s.deep_passes += u64::from(deep);
                        s.last_pass_ms = Some(now);
                        s.objects_checked = checked;
                        s.degraded_objects = degraded;
                        s.parts_checked = parts;
                        s.degraded_parts = degraded_parts;
                    });
                    if degraded + degraded_parts > 0 {
                        tracing::info!(
                            degraded,
                            checked,
                            degraded_parts,
                            parts,
                            "heal pass left objects or parts degraded"
                        );
                    }
                }
                Err(e) => {
                    self.update(|s| s.running = false);
                    tracing::debug!(error = %e, "heal pass stopped");
                }
            }
        }
    }

    /// One pass over every object, then every part of an upload in progress.
    async fn pass(&self, deep: bool) -> Result<PassCounts, String> {
        let (mut checked, mut degraded) = (0u64, 0u64);
        let buckets = self.meta.list_buckets().await.map_err(|e| e.to_string())?;
        let names: Vec<String> = buckets.into_iter().map(|b| b.name).collect();
        let mut pages = walk::ObjectPages::new(&self.meta, names.clone());
        while let Some((bucket, page)) = pages.next().await.map_err(|e| e.to_string())? {
            let placement = self.placement();
            for (key, rec) in page {
                let Ok(m) = manifest::decode_object(&rec.manifest) else {
                    tracing::warn!(%bucket, %key, "unreadable manifest");
                    continue;
                };
                checked += 1;
                let whole = self
                    .check_object(bucket, &key, &rec, m, placement.as_ref(), deep)
                    .await;
                if !whole {
                    degraded += 1;
                }
            }
        }
        // Parts are healed where they are; moving them off removed nodes waits for their
        // upload to complete (the object's segments then move).
        let (mut parts, mut degraded_parts) = (0u64, 0u64);
        let mut uploads = walk::UploadParts::new(&self.meta, names);
        while let Some((upload_id, page)) = uploads.next().await.map_err(|e| e.to_string())? {
            for p in page {
                let Ok(pm) = manifest::decode_part(&p.manifest) else {
                    tracing::warn!(%upload_id, part = p.part_number, "unreadable part manifest");
                    continue;
                };
                parts += 1;
                if !self.check(&pm.segment, deep).await {
                    degraded_parts += 1;
                }
                tokio::time::sleep(PAUSE).await;
            }
        }
        Ok(PassCounts {
            checked,
            degraded,
            parts,
            degraded_parts,
        })
    }

    /// In a cluster: the Raft members and the layout, to find shards on nodes that left.
    /// `None` on a single node.
    fn placement(&self) -> Option<Placement> {
        let cluster = self.shards.cluster_side()?;
        let members: BTreeSet<u64> = self.meta.status().members.iter().map(|m| m.id).collect();
        let layout: Vec<(u64, usize)> = cluster.nodes().iter().map(|n| (n.id, n.drives)).collect();
        Some((members, layout))
    }

    /// Checks and heals every segment of an object and, in a cluster, moves shards off nodes
    /// that are not among `placement`'s members (`relocate.rs`); true when all its shards are
    /// in place afterwards.
    async fn check_object(
        &self,
        bucket: &str,
        key: &str,
        rec: &ObjectRecord,
        m: manifest::ObjectManifest,
        placement: Option<&Placement>,
        deep: bool,
    ) -> bool {
        let mut whole = true;
        let mut moved_shards = 0u64;
        // Segments whose shards were rebuilt on new drives: (index, new placement).
        let mut relocated = Vec::new();
        for (i, seg) in m.segments.iter().enumerate() {
            let plan =
                placement.and_then(|(members, layout)| relocate::replan(seg, members, layout));
            match plan {
                None => whole &= self.check(seg, deep).await,
                Some((planned, moved)) => match self.heal(&planned, deep).await {
                    Some(h) if moved.iter().all(|s| h.healed.contains(s)) => {
                        whole &= h.is_whole();
                        moved_shards += moved.len() as u64;
                        relocated.push((i, planned));
                    }
                    _ => whole = false,
                },
            }
            tokio::time::sleep(PAUSE).await;
        }
        if relocated.is_empty() {
            return whole;
        }
        let mut replaced = m;
        for (i, seg) in relocated {
            replaced.segments[i] = seg;
        }
        let new = ObjectRecord {
            manifest: manifest::encode(&replaced),
            ..rec.clone()
        };
        let unchanged = ObjectPrecondition::unchanged(rec);
        match self
            .meta
            .put_object_if(bucket, key, new, Some(unchanged))
            .await
        {
            Ok(_) => {
                tracing::info!(%bucket, %key, moved = moved_shards, "moved shards off removed nodes");
                self.metrics.record_heal("shards_moved", moved_shards);
                self.update(|s| s.shards_moved += moved_shards);
                whole
            }
            // Replaced or deleted meanwhile: the rebuilt files are unreferenced (orphan sweep).
            Err(MetaError::PreconditionFailed | MetaError::NoSuchBucket) => true,
            Err(e) => {
                tracing::warn!(%bucket, %key, error = %e, "cannot record moved shards");
                false
            }
        }
    }

    /// Checks and heals one segment; true when all its shards are in place afterwards.
    async fn check(&self, seg: &manifest::Segment, deep: bool) -> bool {
        self.heal(seg, deep).await.is_some_and(|h| h.is_whole())
    }

    /// Checks and heals one segment where `seg` places it: what was found and done, `None`
    /// when it could not be healed.
    async fn heal(&self, seg: &manifest::Segment, deep: bool) -> Option<rebuild::SegmentHealth> {
        let stores = self.shards.resolve(seg).ok()?;
        let data_id = seg.data_id.clone();
        let outcome = rebuild::check_and_heal(seg, &stores, deep).await;
        self.metrics.record_heal("segments_checked", 1);
        match outcome {
            Ok(h) => {
                if !h.healed.is_empty() {
                    tracing::info!(%data_id, healed = ?h.healed, "rebuilt shards");
                    self.metrics
                        .record_heal("shards_healed", h.healed.len() as u64);
                    self.update(|s| s.shards_healed += h.healed.len() as u64);
                }
                Some(h)
            }
            Err(e) => {
                tracing::warn!(%data_id, error = %e, "cannot heal segment");
                self.metrics.record_heal("heal_failures", 1);
                self.update(|s| s.heal_failures += 1);
                None
            }
        }
    }
}
