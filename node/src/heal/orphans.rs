//! The orphan sweep: removes shard files on this node's drives that no object and no part of an
//! upload in progress references. They are left behind by a crash within the discard grace
//! (`service/discard.rs`), by a write whose metadata commit had an unknown outcome (its data is
//! kept in case the commit applied), by a delete sent to a node that was down, and by a rebuild
//! that raced a delete.
//!
//! Every node sweeps its own drives, every [`SWEEP_EVERY`]. A file is removed only when every
//! pass for at least [`MIN_AGE`] (and at least two passes) found it unreferenced. The age covers
//! writes in flight: a segment's shard files are committed one by one and its manifest only
//! after the slowest shard is done or has failed, which under faults takes several call
//! timeouts (the simulation found a shard removed 6 s after it was first seen, before its part
//! was committed); and readers of a manifest that was just replaced, which finish within the
//! discard grace. Ages are measured on this node's monotonic clock from the pass that first saw
//! the file unreferenced, so a restart starts them again. The metadata reads are linearizable,
//! so a node cut off from the leader sweeps nothing. Uploads are read before objects: a part that
//! a completing upload moves into an object while the pass runs is seen in one place or the
//! other.
//!
//! A pass that would remove more than half of the files it found removes nothing and says so:
//! that is what a node started on the wrong (or an empty) metadata directory with its old drives
//! would see, and orphans are never that many in normal operation (replaced data goes by the
//! discard path, not here).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use coffer_metadata::{MetaError, MetaStore};
// Tokio's clock: simulated nodes age in simulated time.
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::walk::{ObjectPages, UploadParts};
use crate::drive::{DataId, Drive};
use crate::manifest;
use crate::metrics::Metrics;
use crate::seams::stages;

/// Time between passes.
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);
/// How long a file must have been found unreferenced before it is removed.
pub const MIN_AGE: Duration = Duration::from_secs(3600);

/// One shard file: (drive index, data id, shard index).
pub type ShardFile = (usize, DataId, usize);
/// Unreferenced files and when a pass first found them unreferenced.
pub type Suspects = BTreeMap<ShardFile, Instant>;

/// Why a pass stopped early (it then removes nothing).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The metadata could not be read (e.g. no quorum).
    #[error("metadata: {0}")]
    Meta(#[from] MetaError),
    /// A manifest did not parse, so what it references is unknown.
    #[error("unreadable manifest of {0}")]
    Manifest(String),
    /// A drive could not be listed.
    #[error("listing drive {drive}: {source}")]
    List {
        /// Drive index.
        drive: usize,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The blocking stage failed.
    #[error("listing task: {0}")]
    Task(String),
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepPass {
    /// Shard files found on this node's drives.
    pub files: usize,
    /// Files removed (unreferenced in this pass and the one before).
    pub removed: usize,
    /// Files found unreferenced but not removed, with when a pass first found them so.
    pub suspects: Suspects,
    /// The removal was refused: it would have taken more than half of the files.
    pub refused: bool,
}

/// The orphan sweep of one node.
pub struct OrphanSweep {
    meta: Arc<MetaStore>,
    drives: Vec<Arc<Drive>>,
    metrics: Arc<Metrics>,
    every: Duration,
    min_age: Duration,
}

impl OrphanSweep {
    /// A sweep of `drives`, one pass every `every`, removing files unreferenced for `min_age`.
    pub fn new(
        meta: Arc<MetaStore>,
        drives: Vec<Arc<Drive>>,
        metrics: Arc<Metrics>,
        every: Duration,
        min_age: Duration,
    ) -> Self {
        Self {
            meta,
            drives,
            metrics,
            every,
            min_age,
        }
    }

    /// Runs passes until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut suspects = Suspects::new();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.every) => {}
            }
            match self.pass(&suspects, Instant::now()).await {
                Ok(p) => {
                    if p.refused {
                        tracing::warn!(
                            files = p.files,
                            "most shard files on this node's drives are unknown to the metadata: \
                             orphan sweep refused (is this the right data directory?)"
                        );
                    } else if p.removed > 0 {
                        tracing::info!(
                            removed = p.removed,
                            files = p.files,
                            "removed orphan shard files"
                        );
                    }
                    suspects = p.suspects;
                }
                // The suspects stay: when a later pass confirms them, even more time has passed.
                Err(e @ SweepError::Meta(_)) => {
                    tracing::debug!(error = %e, "orphan sweep pass stopped")
                }
                Err(e) => tracing::warn!(error = %e, "orphan sweep pass stopped"),
            }
        }
    }

    /// One pass at `now`: lists this node's shard files, drops those the metadata references,
    /// removes the rest that `suspects` (the previous pass's finding) has held for the minimum
    /// age, and returns the others as the next suspects.
    pub async fn pass(&self, suspects: &Suspects, now: Instant) -> Result<SweepPass, SweepError> {
        // Listing first: a file written after it is not looked at before the next pass.
        let drives = self.drives.clone();
        let listed = stages::spawn_blocking(move || {
            let mut all = Vec::new();
            for d in &drives {
                let shards = d.list_shards().map_err(|source| SweepError::List {
                    drive: d.index(),
                    source,
                })?;
                all.extend(shards.into_iter().map(|(id, shard)| (d.index(), id, shard)));
            }
            Ok::<_, SweepError>(all)
        })
        .await
        .map_err(|e| SweepError::Task(e.to_string()))??;
        let files = listed.len();
        let mut unreferenced: BTreeMap<DataId, Vec<(usize, usize)>> = BTreeMap::new();
        for (drive, id, shard) in listed {
            unreferenced.entry(id).or_default().push((drive, shard));
        }
        self.drop_referenced(&mut unreferenced).await?;

        let mut pass = SweepPass {
            files,
            ..SweepPass::default()
        };
        let mut doomed = Vec::new();
        for (id, places) in unreferenced {
            for (drive, shard) in places {
                let f = (drive, id, shard);
                match suspects.get(&f) {
                    Some(&since) if now.saturating_duration_since(since) >= self.min_age => {
                        doomed.push((f, since))
                    }
                    Some(&since) => {
                        pass.suspects.insert(f, since);
                    }
                    None => {
                        tracing::trace!(drive, data_id = %id.to_hex(), shard, "orphan suspected");
                        pass.suspects.insert(f, now);
                    }
                }
            }
        }
        if doomed.len() * 2 > files {
            pass.refused = true;
            pass.suspects.extend(doomed);
            return Ok(pass);
        }
        let doomed: Vec<ShardFile> = doomed.into_iter().map(|(f, _)| f).collect();
        let drives = self.drives.clone();
        let removed = stages::spawn_blocking(move || {
            let mut n = 0;
            for (drive, id, shard) in doomed {
                let Some(d) = drives.iter().find(|d| d.index() == drive) else {
                    continue;
                };
                match d.remove(id, shard) {
                    Ok(()) => {
                        tracing::debug!(drive, data_id = %id.to_hex(), shard, "orphan removed");
                        n += 1
                    }
                    Err(e) => {
                        tracing::warn!(drive, data_id = %id.to_hex(), shard, error = %e, "orphan removal failed")
                    }
                }
            }
            n
        })
        .await
        .map_err(|e| SweepError::Task(e.to_string()))?;
        pass.removed = removed;
        self.metrics.record_heal("orphans_removed", removed as u64);
        Ok(pass)
    }

    /// Removes from `unreferenced` every data id a part of an upload in progress or an object
    /// names.
    async fn drop_referenced(
        &self,
        unreferenced: &mut BTreeMap<DataId, Vec<(usize, usize)>>,
    ) -> Result<(), SweepError> {
        let forget = |unreferenced: &mut BTreeMap<DataId, Vec<(usize, usize)>>, hex: &str| {
            if let Some(id) = DataId::from_hex(hex) {
                unreferenced.remove(&id);
            }
        };
        let buckets = self.meta.list_buckets().await?;
        let names: Vec<String> = buckets.into_iter().map(|b| b.name).collect();
        // Uploads first (see the module docs).
        let mut parts = UploadParts::new(&self.meta, names.clone());
        while let Some((upload_id, page)) = parts.next().await? {
            for p in &page {
                let pm = manifest::decode_part(&p.manifest).map_err(|_| {
                    SweepError::Manifest(format!("part {} of upload {upload_id}", p.part_number))
                })?;
                forget(unreferenced, &pm.segment.data_id);
            }
        }
        let mut pages = ObjectPages::new(&self.meta, names);
        while let Some((bucket, page)) = pages.next().await? {
            for (key, rec) in &page {
                let m = manifest::decode_object(&rec.manifest)
                    .map_err(|_| SweepError::Manifest(format!("object {bucket}/{key}")))?;
                for seg in &m.segments {
                    forget(unreferenced, &seg.data_id);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "orphans_tests.rs"]
mod tests;
