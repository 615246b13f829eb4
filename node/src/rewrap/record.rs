//! The re-wrap job's record, as it is checkpointed in Raft (namespace `jobs`, id
//! `rewrap/<bucket>`) and shown by the admin API.

use serde::{Deserialize, Serialize};

/// Raft namespace of job records.
pub const JOBS_NAMESPACE: &str = "jobs";

/// The id of a bucket's re-wrap job record.
pub fn job_id(bucket: &str) -> String {
    format!("rewrap/{bucket}")
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Working, or interrupted (a restart resumes it from `after`).
    Running,
    /// Every object was visited.
    Done,
    /// Stopped on an error; starting it again resumes from `after`.
    Failed,
}

/// One bucket's re-wrap job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewrapJob {
    /// Bucket.
    pub bucket: String,
    /// Target key of SSE-KMS objects; `None`: each object's own key.
    pub to_key: Option<String>,
    /// Throttle in objects per second.
    pub max_per_second: Option<u32>,
    /// State.
    pub state: JobState,
    /// Checkpoint: every object whose key sorts at or before this one has been visited.
    pub after: Option<String>,
    /// Objects in the bucket when the job started (for progress; the bucket may change).
    pub total: u64,
    /// Objects visited so far.
    pub scanned: u64,
    /// Objects whose data key was re-wrapped.
    pub rewrapped: u64,
    /// Objects already wrapped under the target version.
    pub current: u64,
    /// Objects without a KMS data key (SSE-C) or gone before they could be updated.
    pub skipped: u64,
    /// Start time (ms since the epoch).
    pub started_ms: i64,
    /// Time of the last checkpoint.
    pub updated_ms: i64,
    /// When it finished (done or failed).
    pub finished_ms: Option<i64>,
    /// How many times it was started or resumed (1 = never interrupted).
    pub runs: u32,
    /// Why it failed.
    pub error: Option<String>,
}

impl RewrapJob {
    /// A new job.
    pub fn new(
        bucket: &str,
        to_key: Option<String>,
        max_per_second: Option<u32>,
        now_ms: i64,
    ) -> Self {
        Self {
            bucket: bucket.to_owned(),
            to_key,
            max_per_second,
            state: JobState::Running,
            after: None,
            total: 0,
            scanned: 0,
            rewrapped: 0,
            current: 0,
            skipped: 0,
            started_ms: now_ms,
            updated_ms: now_ms,
            finished_ms: None,
            runs: 1,
            error: None,
        }
    }

    /// The admin API's view: the record plus its progress and rate.
    pub fn to_json(&self, now_ms: i64) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        let elapsed_s =
            ((self.finished_ms.unwrap_or(now_ms) - self.started_ms).max(1)) as f64 / 1e3;
        if let Some(obj) = v.as_object_mut() {
            let percent = if self.state == JobState::Done {
                100.0
            } else if self.total == 0 {
                0.0
            } else {
                (self.scanned as f64 * 100.0 / self.total as f64).min(99.9)
            };
            obj.insert("percent".into(), serde_json::json!(percent));
            obj.insert(
                "objects_per_second".into(),
                serde_json::json!(self.scanned as f64 / elapsed_s),
            );
        }
        v
    }
}
