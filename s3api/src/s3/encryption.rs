//! Bucket default encryption (Get/Put/DeleteBucketEncryption); the admin API shares the
//! validation in [`encryption_from_parts`].

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::backend::{Backend, BucketEncryption, SseAlgorithm};

/// Validates an algorithm name and optional KMS key id into a [`BucketEncryption`].
pub(crate) fn encryption_from_parts(
    algorithm: &str,
    kms_key_id: Option<String>,
) -> Result<BucketEncryption, String> {
    let kms_key_id = kms_key_id.filter(|k| !k.is_empty());
    match algorithm {
        ServerSideEncryption::AES256 => {
            if kms_key_id.is_some() {
                return Err("KMSMasterKeyID is only valid with SSEAlgorithm aws:kms".to_owned());
            }
            Ok(BucketEncryption::new(SseAlgorithm::Aes256, None))
        }
        ServerSideEncryption::AWS_KMS => {
            Ok(BucketEncryption::new(SseAlgorithm::AwsKms, kms_key_id))
        }
        other => Err(format!(
            "unsupported SSEAlgorithm {other:?}: use AES256 or aws:kms"
        )),
    }
}

pub(super) async fn get_bucket_encryption<B: Backend>(
    backend: &B,
    req: S3Request<GetBucketEncryptionInput>,
) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
    let Some(cfg) = backend.get_bucket_encryption(&req.input.bucket).await? else {
        let mut err = S3Error::with_message(
            S3ErrorCode::ServerSideEncryptionConfigurationNotFoundError,
            "The server side encryption configuration was not found",
        );
        // AWS sends 404 here; s3s's table says 400.
        err.set_status_code(http::StatusCode::NOT_FOUND);
        return Err(err);
    };
    let sse_algorithm = match cfg.algorithm {
        SseAlgorithm::Aes256 => ServerSideEncryption::from_static(ServerSideEncryption::AES256),
        SseAlgorithm::AwsKms => ServerSideEncryption::from_static(ServerSideEncryption::AWS_KMS),
    };
    let rule = ServerSideEncryptionRule {
        apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
            kms_master_key_id: cfg.kms_key_id,
            sse_algorithm,
        }),
        bucket_key_enabled: Some(cfg.bucket_key_enabled),
    };
    Ok(S3Response::new(GetBucketEncryptionOutput {
        server_side_encryption_configuration: Some(ServerSideEncryptionConfiguration {
            rules: vec![rule],
        }),
    }))
}

pub(super) async fn put_bucket_encryption<B: Backend>(
    backend: &B,
    req: S3Request<PutBucketEncryptionInput>,
) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
    let input = req.input;
    let mut rules = input.server_side_encryption_configuration.rules;
    if rules.len() != 1 {
        return Err(S3Error::with_message(
            S3ErrorCode::MalformedXML,
            "exactly one ServerSideEncryptionRule is required",
        ));
    }
    let rule = rules.pop();
    let bucket_key_enabled = rule
        .as_ref()
        .and_then(|r| r.bucket_key_enabled)
        .unwrap_or(false);
    let Some(default) = rule.and_then(|r| r.apply_server_side_encryption_by_default) else {
        return Err(S3Error::with_message(
            S3ErrorCode::MalformedXML,
            "ApplyServerSideEncryptionByDefault is required",
        ));
    };
    let mut cfg = encryption_from_parts(default.sse_algorithm.as_str(), default.kms_master_key_id)
        .map_err(|msg| S3Error::with_message(S3ErrorCode::InvalidArgument, msg))?;
    cfg.bucket_key_enabled = bucket_key_enabled;
    // S3's API has no cipher field: keep the one the admin API chose.
    if let Some(old) = backend.get_bucket_encryption(&input.bucket).await? {
        cfg.cipher = old.cipher;
    }
    backend
        .put_bucket_encryption(&input.bucket, Some(cfg))
        .await?;
    Ok(S3Response::new(PutBucketEncryptionOutput::default()))
}

pub(super) async fn delete_bucket_encryption<B: Backend>(
    backend: &B,
    req: S3Request<DeleteBucketEncryptionInput>,
) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
    backend
        .put_bucket_encryption(&req.input.bucket, None)
        .await?;
    Ok(S3Response::new(DeleteBucketEncryptionOutput::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms() {
        assert_eq!(
            encryption_from_parts("AES256", None).unwrap().algorithm,
            SseAlgorithm::Aes256
        );
        let kms = encryption_from_parts("aws:kms", Some("k".into())).unwrap();
        assert_eq!(
            (kms.algorithm, kms.kms_key_id.as_deref()),
            (SseAlgorithm::AwsKms, Some("k"))
        );
        assert!(encryption_from_parts("AES256", Some("k".into())).is_err());
        assert!(encryption_from_parts("aws:kms:dsse", None).is_err());
        assert!(encryption_from_parts("rot13", None).is_err());
    }
}
