//! The one mapping from metadata errors to storage errors.

use coffer_metadata::MetaError;
use coffer_s3api::backend::StoreError;

/// Maps a metadata failure to what the S3 layer reports.
pub fn meta_error(e: MetaError) -> StoreError {
    match e {
        MetaError::BucketExists => StoreError::BucketAlreadyOwnedByYou,
        MetaError::NoSuchBucket => StoreError::NoSuchBucket,
        MetaError::BucketNotEmpty => StoreError::BucketNotEmpty,
        MetaError::NoSuchUpload => StoreError::NoSuchUpload,
        MetaError::InvalidPart { .. } => StoreError::InvalidPart,
        MetaError::NotLeader { .. } | MetaError::Unavailable(_) => StoreError::Unavailable,
        MetaError::InvalidArgument(msg) => StoreError::InvalidArgument(msg),
        MetaError::PreconditionFailed => StoreError::PreconditionFailed,
        other => StoreError::Internal(other.to_string()),
    }
}
