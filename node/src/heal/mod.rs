//! The healer: restores full redundancy after shard writes that missed a node, nodes that were
//! down, lost or corrupt shard files.
//!
//! The Raft leader runs it (one healer per cluster, so two nodes never rebuild the same shard).
//! Each pass walks every object manifest in key order and checks each segment's shards where
//! the manifest places them: a stat per shard, and on every [`DEEP_EVERY`]th pass a scrub that
//! reads every block and verifies its CRC32C. Bad shards are rebuilt from k good ones
//! (`rebuild.rs`); shards on an unreachable node wait for a later pass. The pace is bounded
//! ([`SEGMENTS_PER_SEC`]), and a pass starts every [`PASS_EVERY`] or when woken.

pub mod orphans;
pub mod rebuild;
pub mod walk;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_metadata::MetaStore;
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
    /// Shards rewritten since start.
    pub shards_healed: u64,
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
                Ok((checked, degraded)) => {
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
                    });
                    if degraded > 0 {
                        tracing::info!(degraded, checked, "heal pass left objects degraded");
                    }
                }
                Err(e) => {
                    self.update(|s| s.running = false);
                    tracing::debug!(error = %e, "heal pass stopped");
                }
            }
        }
    }

    /// One pass over every object: (objects checked, objects still degraded).
    async fn pass(&self, deep: bool) -> Result<(u64, u64), String> {
        let pause = Duration::from_secs(1) / SEGMENTS_PER_SEC;
        let (mut checked, mut degraded) = (0u64, 0u64);
        let buckets = self.meta.list_buckets().await.map_err(|e| e.to_string())?;
        let mut pages =
            walk::ObjectPages::new(&self.meta, buckets.into_iter().map(|b| b.name).collect());
        while let Some((bucket, page)) = pages.next().await.map_err(|e| e.to_string())? {
            for (key, rec) in page {
                let Ok(m) = manifest::decode_object(&rec.manifest) else {
                    tracing::warn!(%bucket, %key, "unreadable manifest");
                    continue;
                };
                checked += 1;
                let mut whole = true;
                for seg in m.segments {
                    whole &= self.check(seg, deep).await;
                    tokio::time::sleep(pause).await;
                }
                if !whole {
                    degraded += 1;
                }
            }
        }
        Ok((checked, degraded))
    }

    /// Checks and heals one segment; true when all its shards are in place afterwards.
    async fn check(&self, seg: manifest::Segment, deep: bool) -> bool {
        let stores = match self.shards.resolve(&seg) {
            Ok(s) => s,
            Err(_) => return false,
        };
        let data_id = seg.data_id.clone();
        let outcome = rebuild::check_and_heal(&seg, &stores, deep).await;
        self.metrics.record_heal("segments_checked", 1);
        match outcome {
            Ok(h) => {
                if !h.healed.is_empty() {
                    tracing::info!(%data_id, healed = ?h.healed, "rebuilt shards");
                    self.metrics
                        .record_heal("shards_healed", h.healed.len() as u64);
                    self.update(|s| s.shards_healed += h.healed.len() as u64);
                }
                h.is_whole()
            }
            Err(e) => {
                tracing::warn!(%data_id, error = %e, "cannot heal segment");
                self.metrics.record_heal("heal_failures", 1);
                self.update(|s| s.heal_failures += 1);
                false
            }
        }
    }
}
