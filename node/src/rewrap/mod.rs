//! The re-wrap job (`coffer admin rewrap`, `POST /api/v1/buckets/{bucket}/rewrap`): after a KMS
//! key rotation or a change of a bucket's key, every object's data key is wrapped anew under
//! the newest key version without touching object bytes (the data key itself does not change,
//! so the sealed object key stays valid). One job per bucket; its checkpoint lives in Raft, so
//! a node that restarts resumes it, and running it again is harmless.

mod job;
mod record;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use coffer_metadata::{MetaError, MetaStore, RecordExpect};
use coffer_s3api::backend::{RewrapAdminRequest, StoreError, StoreResult};

use crate::actors::KeyHandle;
use crate::seams::Clock;
use crate::service::meta_error;
use job::{Run, PAGE};
pub use record::{job_id, JobState, RewrapJob, JOBS_NAMESPACE};

/// What every run needs.
pub(crate) struct Shared {
    meta: Arc<MetaStore>,
    keys: KeyHandle,
    clock: Arc<dyn Clock>,
}

/// The node's re-wrap jobs: starts, resumes and reports them.
pub struct RewrapJobs {
    shared: Arc<Shared>,
    /// Runs on this node, by bucket; an entry stays after its run ends (its final state).
    live: Mutex<BTreeMap<String, Arc<Mutex<RewrapJob>>>>,
}

impl RewrapJobs {
    /// The job service of a node.
    pub fn new(meta: Arc<MetaStore>, keys: KeyHandle, clock: Arc<dyn Clock>) -> Self {
        Self {
            shared: Arc::new(Shared { meta, keys, clock }),
            live: Mutex::new(BTreeMap::new()),
        }
    }

    /// Answers the admin API.
    pub async fn admin(&self, req: RewrapAdminRequest) -> StoreResult<serde_json::Value> {
        let job = match req {
            RewrapAdminRequest::Start {
                bucket,
                to_key,
                max_per_second,
            } => self.start(&bucket, to_key, max_per_second).await?,
            RewrapAdminRequest::Status { bucket } => self.status(&bucket).await?,
        };
        Ok(job.to_json(self.shared.clock.now_ms()))
    }

    fn live_job(&self, bucket: &str) -> Option<RewrapJob> {
        let live = self.live.lock().ok()?;
        let j = live.get(bucket)?.lock().ok()?.clone();
        Some(j)
    }

    fn running_here(&self, bucket: &str) -> Option<RewrapJob> {
        self.live_job(bucket)
            .filter(|j| j.state == JobState::Running)
    }

    /// The bucket's job as this node sees it: the live run if there is one, else the record.
    pub async fn status(&self, bucket: &str) -> StoreResult<RewrapJob> {
        if let Some(j) = self.running_here(bucket) {
            return Ok(j);
        }
        self.stored(bucket)
            .await?
            .map(|(j, _)| j)
            .ok_or(StoreError::NoSuchJob)
    }

    async fn stored(&self, bucket: &str) -> StoreResult<Option<(RewrapJob, String)>> {
        let raw = self
            .shared
            .meta
            .get_record(JOBS_NAMESPACE, &job_id(bucket))
            .await
            .map_err(meta_error)?;
        Ok(raw.and_then(|raw| {
            let job = serde_json::from_str(&raw)
                .map_err(|e| tracing::error!(bucket, error = %e, "re-wrap job record unreadable"))
                .ok()?;
            Some((job, raw))
        }))
    }

    /// Starts a job, resumes an interrupted or failed one with the same target, or returns the
    /// one already running.
    pub async fn start(
        &self,
        bucket: &str,
        to_key: Option<String>,
        max_per_second: Option<u32>,
    ) -> StoreResult<RewrapJob> {
        if self
            .shared
            .meta
            .get_bucket(bucket)
            .await
            .map_err(meta_error)?
            .is_none()
        {
            return Err(StoreError::NoSuchBucket);
        }
        if let Some(k) = &to_key {
            if !self.shared.keys.key_exists(k).await? {
                return Err(StoreError::KmsKeyNotFound(k.clone()));
            }
        }
        if let Some(j) = self.running_here(bucket) {
            return if j.to_key == to_key {
                Ok(j)
            } else {
                Err(StoreError::Conflict)
            };
        }
        let now = self.shared.clock.now_ms();
        let (job, expect) = match self.stored(bucket).await? {
            Some((mut old, raw)) if old.state != JobState::Done && old.to_key == to_key => {
                // Interrupted (no live run holds it) or failed: go on from the checkpoint.
                old.state = JobState::Running;
                old.runs += 1;
                old.error = None;
                old.finished_ms = None;
                old.max_per_second = max_per_second.or(old.max_per_second);
                (old, RecordExpect::Is(raw))
            }
            Some((old, _)) if old.state == JobState::Running => return Err(StoreError::Conflict),
            Some((_, raw)) => (
                self.fresh(bucket, to_key, max_per_second, now).await?,
                RecordExpect::Is(raw),
            ),
            None => (
                self.fresh(bucket, to_key, max_per_second, now).await?,
                RecordExpect::Absent,
            ),
        };
        self.launch(job, expect).await
    }

    async fn fresh(
        &self,
        bucket: &str,
        to_key: Option<String>,
        max_per_second: Option<u32>,
        now: i64,
    ) -> StoreResult<RewrapJob> {
        let mut job = RewrapJob::new(bucket, to_key, max_per_second, now);
        job.total = self.count_objects(bucket).await?;
        Ok(job)
    }

    async fn count_objects(&self, bucket: &str) -> StoreResult<u64> {
        let (mut n, mut after) = (0u64, None::<String>);
        loop {
            let page = self
                .shared
                .meta
                .list_objects(bucket, "", after.as_deref(), PAGE * 16)
                .await
                .map_err(meta_error)?;
            let Some((last, _)) = page.last() else {
                return Ok(n);
            };
            after = Some(last.clone());
            n += page.len() as u64;
        }
    }

    /// Writes the record (compare-and-set, so two starts cannot both win) and spawns its run.
    async fn launch(&self, job: RewrapJob, expect: RecordExpect) -> StoreResult<RewrapJob> {
        let value = serde_json::to_string(&job).map_err(|e| StoreError::Internal(e.to_string()))?;
        match self
            .shared
            .meta
            .put_record(
                JOBS_NAMESPACE,
                &job_id(&job.bucket),
                Some(value.clone()),
                expect,
            )
            .await
        {
            Ok(()) => {}
            Err(MetaError::PreconditionFailed) => return Err(StoreError::Conflict),
            Err(e) => return Err(meta_error(e)),
        }
        tracing::info!(
            bucket = %job.bucket,
            to_key = ?job.to_key,
            run = job.runs,
            after = ?job.after,
            "re-wrap job started"
        );
        let live = Arc::new(Mutex::new(job.clone()));
        if let Ok(mut map) = self.live.lock() {
            map.insert(job.bucket.clone(), live.clone());
        }
        tokio::spawn(Run::new(self.shared.clone(), live, value).run());
        Ok(job)
    }

    /// Resumes every job a restart interrupted (called once at start-up).
    pub async fn resume_interrupted(&self) {
        let records = match self.shared.meta.list_records(JOBS_NAMESPACE).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list re-wrap jobs to resume");
                return;
            }
        };
        for (_, raw) in records {
            let Ok(mut job) = serde_json::from_str::<RewrapJob>(&raw) else {
                continue;
            };
            if job.state != JobState::Running || self.running_here(&job.bucket).is_some() {
                continue;
            }
            job.runs += 1;
            let bucket = job.bucket.clone();
            if let Err(e) = self.launch(job, RecordExpect::Is(raw)).await {
                tracing::warn!(bucket, error = %e, "cannot resume re-wrap job");
            }
        }
    }
}
