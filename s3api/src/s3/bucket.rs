//! Bucket operations: list, create, head, delete, location, versioning.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::{owner, timestamp};
use crate::backend::Backend;

/// AWS's general-purpose bucket naming rules (s3s checks most of them when routing; CreateBucket
/// re-checks the full set, including the reserved prefixes and suffixes s3s does not know).
pub(crate) fn valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (3..=63).contains(&name.len())
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
        && name.parse::<std::net::Ipv4Addr>().is_err()
        && !name.starts_with("xn--")
        && !name.starts_with("sthree-")
        && !name.ends_with("-s3alias")
        && !name.ends_with("--ol-s3")
}

pub(super) async fn list_buckets<B: Backend>(
    backend: &B,
    _req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let buckets = backend
        .list_buckets()
        .await?
        .into_iter()
        .map(|b| Bucket {
            name: Some(b.name),
            creation_date: Some(timestamp(b.created_ms)),
            bucket_region: None,
        })
        .collect();
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(owner()),
        ..Default::default()
    }))
}

pub(super) async fn create_bucket<B: Backend>(
    backend: &B,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let bucket = req.input.bucket;
    if !valid_bucket_name(&bucket) {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidBucketName,
            "The specified bucket is not valid.",
        ));
    }
    // One region: any LocationConstraint is accepted, as MinIO and Garage do.
    backend.create_bucket(&bucket).await?;
    Ok(S3Response::new(CreateBucketOutput {
        location: Some(format!("/{bucket}")),
    }))
}

pub(super) async fn head_bucket<B: Backend>(
    backend: &B,
    req: S3Request<HeadBucketInput>,
) -> S3Result<S3Response<HeadBucketOutput>> {
    backend.head_bucket(&req.input.bucket).await?;
    Ok(S3Response::new(HeadBucketOutput::default()))
}

pub(super) async fn delete_bucket<B: Backend>(
    backend: &B,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    backend.delete_bucket(&req.input.bucket).await?;
    Ok(S3Response::new(DeleteBucketOutput::default()))
}

pub(super) async fn get_bucket_location<B: Backend>(
    backend: &B,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    backend.head_bucket(&req.input.bucket).await?;
    // An empty LocationConstraint means us-east-1, which is what SDKs expect by default.
    Ok(S3Response::new(GetBucketLocationOutput::default()))
}

pub(super) async fn get_bucket_versioning<B: Backend>(
    backend: &B,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    backend.head_bucket(&req.input.bucket).await?;
    // Never versioned: S3 answers an empty VersioningConfiguration.
    Ok(S3Response::new(GetBucketVersioningOutput::default()))
}

#[cfg(test)]
mod tests {
    use super::valid_bucket_name;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket", "my.bucket.1", "a1b", &"a".repeat(63)] {
            assert!(valid_bucket_name(ok), "{ok}");
        }
        for bad in [
            "ab",
            "ABC",
            "a_b",
            "-ab",
            "ab-",
            "a..b",
            "a.-b",
            "192.168.1.1",
            "xn--abc",
            "sthree-x",
            "x-s3alias",
            "x--ol-s3",
            &"a".repeat(64),
            "",
        ] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }
}
