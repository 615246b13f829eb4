//! Conditional writes (`If-None-Match: *`, `If-Match`). The condition is checked once before
//! the body is read, so a doomed upload is refused before it costs a byte, and again by the
//! Raft state machine when the manifest commits, so of two racing writers exactly one wins.

use coffer_metadata::ObjectPrecondition;
use coffer_s3api::backend::{StoreError, StoreResult, WriteCondition};

use super::{meta_error, NodeService};

/// The state-machine form of a write condition.
pub(crate) fn precondition(c: &WriteCondition) -> ObjectPrecondition {
    match c {
        WriteCondition::Absent => ObjectPrecondition::Absent,
        WriteCondition::Exists => ObjectPrecondition::Exists,
        WriteCondition::EtagIs(e) => ObjectPrecondition::EtagIs(e.trim_matches('"').to_owned()),
    }
}

impl NodeService {
    /// Fails early, as S3 answers: `If-Match` on a missing object → NoSuchKey, any other
    /// unmet condition → PreconditionFailed.
    pub(crate) async fn check_condition(
        &self,
        bucket: &str,
        key: &str,
        condition: Option<&WriteCondition>,
    ) -> StoreResult<()> {
        let Some(c) = condition else {
            return Ok(());
        };
        let current = self
            .meta
            .get_object(bucket, key)
            .await
            .map_err(meta_error)?;
        if current.is_none() && !matches!(c, WriteCondition::Absent) {
            return Err(StoreError::NoSuchKey);
        }
        if precondition(c).holds(current.as_ref()) {
            Ok(())
        } else {
            Err(StoreError::PreconditionFailed)
        }
    }
}
