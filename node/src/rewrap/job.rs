//! One run of a re-wrap job: walk the bucket in key order from the checkpoint, re-wrap each
//! object's data key where it is not yet under the target key version, and checkpoint the
//! position in Raft after every page. Re-visiting objects after a restart is harmless: an object
//! already under the target version is only counted, and every update is compare-and-set on the
//! manifest that was read, so a concurrent overwrite is never clobbered.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_metadata::{MetaError, ObjectPrecondition, ObjectRecord, RecordExpect};
use coffer_s3api::backend::StoreError;
use tokio::time::Instant;

use super::record::{job_id, JobState, RewrapJob, JOBS_NAMESPACE};
use super::Shared;
use crate::manifest::{self, SseMode};
use crate::service::meta_error;

/// Objects read and checkpointed per step.
pub(crate) const PAGE: usize = 64;
/// Distinct wrapped keys remembered per run (bucket keys make many objects share one).
const MEMO_CAP: usize = 4096;
/// Attempts per KMS or metadata call before the job fails.
const ATTEMPTS: u32 = 4;

/// Why a run stopped early.
pub(crate) enum Stop {
    /// Another runner owns the record now (its checkpoint moved under us).
    Superseded,
    /// An error the job cannot get past.
    Failed(String),
}

type MemoKey = (String, Vec<u8>, Option<BTreeMap<String, String>>, String);

/// A run in progress: the live record (the admin API shows it) and what it remembers.
pub(crate) struct Run {
    shared: Arc<Shared>,
    live: Arc<Mutex<RewrapJob>>,
    // Fixed for the run (copied out of the record so the per-object path does not clone it).
    bucket: String,
    to_key: Option<String>,
    max_per_second: Option<u32>,
    /// The record as last written to Raft (compare-and-set base).
    stored: String,
    versions: HashMap<String, Option<u32>>,
    /// Old wrapping → new (key id, wrapped data key). Only the wrapping is shared: each object
    /// keeps its own sealed object key.
    memo: HashMap<MemoKey, (Option<String>, Option<Vec<u8>>)>,
    started: Instant,
    visited_this_run: u64,
}

impl Run {
    pub(crate) fn new(shared: Arc<Shared>, live: Arc<Mutex<RewrapJob>>, stored: String) -> Self {
        let job = live
            .lock()
            .map(|j| j.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        Self {
            shared,
            live,
            bucket: job.bucket,
            to_key: job.to_key,
            max_per_second: job.max_per_second,
            stored,
            versions: HashMap::new(),
            memo: HashMap::new(),
            started: Instant::now(),
            visited_this_run: 0,
        }
    }

    fn snapshot(&self) -> RewrapJob {
        self.live
            .lock()
            .map(|j| j.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn update(&self, f: impl FnOnce(&mut RewrapJob)) {
        match self.live.lock() {
            Ok(mut j) => f(&mut j),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Runs to the end of the bucket (or until it must stop) and records the outcome.
    pub(crate) async fn run(mut self) {
        let outcome = self.walk().await;
        let now = self.shared.clock.now_ms();
        match outcome {
            Ok(()) => {
                self.update(|j| {
                    j.state = JobState::Done;
                    j.finished_ms = Some(now);
                });
            }
            Err(Stop::Superseded) => {
                tracing::info!(bucket = %self.bucket, "re-wrap run superseded by another");
                return;
            }
            Err(Stop::Failed(e)) => {
                tracing::warn!(bucket = %self.bucket, error = %e, "re-wrap job failed");
                self.update(|j| {
                    j.state = JobState::Failed;
                    j.finished_ms = Some(now);
                    j.error = Some(e);
                });
            }
        }
        // The final record; a failure to write it leaves the last checkpoint, which resumes.
        if let Err(Stop::Failed(e)) = self.checkpoint().await {
            tracing::warn!(error = %e, "re-wrap job: final checkpoint not written");
        }
        let job = self.snapshot();
        tracing::info!(
            bucket = %job.bucket,
            state = ?job.state,
            scanned = job.scanned,
            rewrapped = job.rewrapped,
            current = job.current,
            skipped = job.skipped,
            "re-wrap job finished"
        );
    }

    async fn walk(&mut self) -> Result<(), Stop> {
        let bucket = self.bucket.clone();
        loop {
            let after = self.snapshot().after;
            let page = retry(|| async {
                self.shared
                    .meta
                    .list_objects(&bucket, "", after.as_deref(), PAGE)
                    .await
                    .map_err(meta_error)
            })
            .await?;
            let Some(last) = page.last().map(|(k, _)| k.clone()) else {
                return Ok(());
            };
            for (key, rec) in page {
                self.visit(&bucket, &key, rec).await?;
                self.throttle().await;
            }
            let now = self.shared.clock.now_ms();
            self.update(|j| {
                j.after = Some(last);
                j.updated_ms = now;
            });
            self.checkpoint().await?;
        }
    }

    async fn throttle(&mut self) {
        self.visited_this_run += 1;
        let Some(rate) = self.max_per_second else {
            return;
        };
        let due =
            self.started + Duration::from_secs_f64(self.visited_this_run as f64 / f64::from(rate));
        tokio::time::sleep_until(due).await;
    }

    /// Writes the live record over the stored one, compare-and-set.
    async fn checkpoint(&mut self) -> Result<(), Stop> {
        let job = self.snapshot();
        let value = serde_json::to_string(&job).map_err(|e| Stop::Failed(e.to_string()))?;
        let id = job_id(&job.bucket);
        let expect = RecordExpect::Is(self.stored.clone());
        let mut attempt = 0;
        loop {
            match self
                .shared
                .meta
                .put_record(JOBS_NAMESPACE, &id, Some(value.clone()), expect.clone())
                .await
            {
                Ok(()) => {
                    self.stored = value;
                    return Ok(());
                }
                Err(MetaError::PreconditionFailed) => return Err(Stop::Superseded),
                Err(e) if attempt + 1 < ATTEMPTS => {
                    attempt += 1;
                    tracing::debug!(error = %e, "re-wrap checkpoint retry");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(Stop::Failed(format!("checkpoint: {e}"))),
            }
        }
    }

    /// One object: count it, and re-wrap its data key unless it is already current.
    async fn visit(&mut self, bucket: &str, key: &str, mut rec: ObjectRecord) -> Result<(), Stop> {
        // A concurrent overwrite makes the compare-and-set fail; the new record is read again
        // (a fresh write is normally current already). Bounded: a key rewritten that often is
        // left for the next run.
        for _ in 0..3 {
            let outcome = self.try_visit(bucket, key, &rec).await?;
            let Some(()) = outcome else {
                self.update(|j| j.scanned += 1);
                return Ok(());
            };
            match self.shared.meta.get_object(bucket, key).await {
                Ok(Some(again)) => rec = again,
                Ok(None) => break,
                Err(e) => return Err(Stop::Failed(format!("read {key}: {e}"))),
            }
        }
        self.update(|j| {
            j.scanned += 1;
            j.skipped += 1;
        });
        Ok(())
    }

    /// `Ok(None)` when the object was handled; `Ok(Some(()))` when it changed under us.
    async fn try_visit(
        &mut self,
        bucket: &str,
        key: &str,
        rec: &ObjectRecord,
    ) -> Result<Option<()>, Stop> {
        let Ok(m) = manifest::decode_object(&rec.manifest) else {
            tracing::error!(bucket, key, "re-wrap: object manifest unreadable; skipped");
            self.update(|j| j.skipped += 1);
            return Ok(None);
        };
        let sse = &m.sse;
        let (Some(from_key), Some(wrapped)) = (&sse.kms_key_id, &sse.wrapped_data_key) else {
            // SSE-C: the client holds the key; there is nothing to re-wrap.
            self.update(|j| j.skipped += 1);
            return Ok(None);
        };
        let to_key = match (&self.to_key, sse.mode) {
            (Some(k), SseMode::Kms) => k.clone(),
            _ => from_key.clone(),
        };
        let target_version = self.target_version(&to_key).await?;
        let wrapped_version = self
            .shared
            .keys
            .wrapped_key_version(wrapped)
            .await
            .ok()
            .flatten();
        if *from_key == to_key && target_version.is_some() && wrapped_version == target_version {
            self.update(|j| j.current += 1);
            return Ok(None);
        }
        let memo_key: MemoKey = (
            from_key.clone(),
            wrapped.clone(),
            sse.kms_context.clone(),
            to_key.clone(),
        );
        let (new_key_id, new_wrapped) = match self.memo.get(&memo_key) {
            Some(w) => w.clone(),
            None => {
                let keys = &self.shared.keys;
                let r = retry(|| keys.rewrap(bucket, sse, &to_key)).await?;
                let w = (r.kms_key_id, r.wrapped_data_key);
                if self.memo.len() >= MEMO_CAP {
                    self.memo.clear();
                }
                self.memo.insert(memo_key, w.clone());
                w
            }
        };
        let mut m = m;
        m.sse.kms_key_id = new_key_id;
        m.sse.wrapped_data_key = new_wrapped;
        // Same size, ETag and modification time: to S3 clients the object did not change.
        let new = ObjectRecord {
            manifest: manifest::encode(&m),
            ..rec.clone()
        };
        let unchanged = ObjectPrecondition::unchanged(rec);
        match self
            .shared
            .meta
            .put_object_if(bucket, key, new, Some(unchanged))
            .await
        {
            Ok(_) => {
                self.update(|j| j.rewrapped += 1);
                Ok(None)
            }
            Err(MetaError::PreconditionFailed) => Ok(Some(())),
            Err(MetaError::NoSuchBucket) => Err(Stop::Failed("the bucket was deleted".into())),
            Err(e) => Err(Stop::Failed(format!("update {key}: {e}"))),
        }
    }

    async fn target_version(&mut self, key_id: &str) -> Result<Option<u32>, Stop> {
        if let Some(v) = self.versions.get(key_id) {
            return Ok(*v);
        }
        let keys = &self.shared.keys;
        let v = retry(|| keys.current_version(key_id)).await?;
        self.versions.insert(key_id.to_owned(), v);
        Ok(v)
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 << attempt.min(5))
}

/// Retries transient failures (KMS or quorum unavailable) a few times; others fail the job.
async fn retry<T, F, Fut>(mut f: F) -> Result<T, Stop>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e @ (StoreError::KmsUnavailable(_) | StoreError::Unavailable))
                if attempt + 1 < ATTEMPTS =>
            {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "re-wrap: transient failure, retrying");
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => return Err(Stop::Failed(e.to_string())),
        }
    }
}
