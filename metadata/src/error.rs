//! Error types: `MetaError` for callers of `MetaStore`, `DomainError` for the outcomes the state
//! machine decides, and the crate-internal `StoreError` for sled and codec failures.

use serde::{Deserialize, Serialize};

/// Errors returned by [`crate::MetaStore`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    /// `create_bucket` on a name that is taken.
    #[error("bucket already exists")]
    BucketExists,
    /// The named bucket does not exist.
    #[error("no such bucket")]
    NoSuchBucket,
    /// `delete_bucket` while the bucket still holds objects or multipart uploads.
    #[error("bucket is not empty")]
    BucketNotEmpty,
    /// The named multipart upload does not exist (never created, completed or aborted).
    #[error("no such upload")]
    NoSuchUpload,
    /// `complete_upload` named a part that was never uploaded.
    #[error("invalid part {part_number}: not uploaded")]
    InvalidPart {
        /// The first missing part number, in the order the caller listed them.
        part_number: u32,
    },
    /// A name the key layout cannot represent (empty, or containing a NUL byte) or a duplicate
    /// upload id.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A conditional write found the object not as required.
    #[error("precondition failed")]
    PreconditionFailed,
    /// This node is not the Raft leader; `leader` is the current leader if known.
    #[error("not the metadata leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of, if any.
        leader: Option<u64>,
    },
    /// Raft cannot serve the request now: quorum lost, not ready, or shutting down.
    #[error("metadata unavailable: {0}")]
    Unavailable(String),
    /// The local sled database failed.
    #[error("metadata storage: {0}")]
    Storage(String),
    /// Raft reported an error that is neither of the above.
    #[error("raft: {0}")]
    Raft(String),
    /// A stored or replicated value failed to (de)serialize.
    #[error("metadata codec: {0}")]
    Codec(String),
    /// The state machine answered a command with a response of the wrong shape (a bug).
    #[error("unexpected state machine response to {command}")]
    UnexpectedResponse {
        /// The command that got the wrong response.
        command: &'static str,
    },
}

impl MetaError {
    /// True when the operation certainly changed nothing and never will: the state machine
    /// judged it, or it was refused before it was proposed. False when it may have applied or
    /// may still apply (a timeout, lost quorum, a storage or Raft failure after proposing), so
    /// that a writer keeps the data such a commit would reference.
    pub fn is_definite(&self) -> bool {
        matches!(
            self,
            Self::BucketExists
                | Self::NoSuchBucket
                | Self::BucketNotEmpty
                | Self::NoSuchUpload
                | Self::InvalidPart { .. }
                | Self::InvalidArgument(_)
                | Self::PreconditionFailed
        )
    }
}

/// A domain outcome decided by the state machine; it travels in the Raft response, not as a Raft
/// error, so that it is linearizable and deterministic on every replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(deny_unknown_fields)]
pub enum DomainError {
    /// See [`MetaError::BucketExists`].
    #[error("bucket already exists")]
    BucketExists,
    /// See [`MetaError::NoSuchBucket`].
    #[error("no such bucket")]
    NoSuchBucket,
    /// See [`MetaError::BucketNotEmpty`].
    #[error("bucket is not empty")]
    BucketNotEmpty,
    /// See [`MetaError::NoSuchUpload`].
    #[error("no such upload")]
    NoSuchUpload,
    /// See [`MetaError::InvalidPart`].
    #[error("invalid part {part_number}")]
    InvalidPart {
        /// The first missing part number.
        part_number: u32,
    },
    /// See [`MetaError::InvalidArgument`].
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// See [`MetaError::PreconditionFailed`].
    #[error("precondition failed")]
    PreconditionFailed,
}

impl From<DomainError> for MetaError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::BucketExists => MetaError::BucketExists,
            DomainError::NoSuchBucket => MetaError::NoSuchBucket,
            DomainError::BucketNotEmpty => MetaError::BucketNotEmpty,
            DomainError::NoSuchUpload => MetaError::NoSuchUpload,
            DomainError::InvalidPart { part_number } => MetaError::InvalidPart { part_number },
            DomainError::InvalidArgument(m) => MetaError::InvalidArgument(m),
            DomainError::PreconditionFailed => MetaError::PreconditionFailed,
        }
    }
}

/// Failures of the local store, before they are mapped to openraft's or the caller's error type.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// sled failed.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// JSON (de)serialization failed.
    #[error("codec: {0}")]
    Codec(#[from] serde_json::Error),
    /// A stored key does not have the layout this version writes.
    #[error("corrupt key in tree {tree}: {key:?}")]
    CorruptKey {
        /// The tree holding the key.
        tree: &'static str,
        /// The offending key bytes.
        key: Vec<u8>,
    },
    /// A snapshot body written by an incompatible version.
    #[error("unknown snapshot format {0}")]
    UnknownSnapshotFormat(u32),
}

impl From<StoreError> for MetaError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Codec(e) => MetaError::Codec(e.to_string()),
            other => MetaError::Storage(other.to_string()),
        }
    }
}
