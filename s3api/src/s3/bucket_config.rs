//! Reads of bucket configurations that Coffer does not keep — tags, policy, CORS, website,
//! lifecycle, replication, object lock, logging, acceleration, request payment, ACL — answered
//! as S3 answers for a bucket that never had them. Infrastructure tools read all of these
//! before they trust a bucket (Terraform's `aws_s3_bucket` refresh does), and a 501 on any one
//! fails the whole plan. Writes of them stay 501: refusing a setting beats ignoring it.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::backend::Backend;

/// The 404 S3 gives for a configuration the bucket does not have, once the bucket is known.
async fn none_configured<B: Backend, T>(
    backend: &B,
    bucket: &str,
    code: S3ErrorCode,
    what: &str,
) -> S3Result<T> {
    backend.head_bucket(bucket).await?;
    Err(S3Error::with_message(
        code,
        format!("The bucket has no {what}"),
    ))
}

pub(super) async fn get_bucket_tagging<B: Backend>(
    backend: &B,
    req: S3Request<GetBucketTaggingInput>,
) -> S3Result<S3Response<GetBucketTaggingOutput>> {
    none_configured(
        backend,
        &req.input.bucket,
        S3ErrorCode::NoSuchTagSet,
        "tag set",
    )
    .await
}

pub(super) async fn get_bucket_policy<B: Backend>(
    backend: &B,
    req: S3Request<GetBucketPolicyInput>,
) -> S3Result<S3Response<GetBucketPolicyOutput>> {
    let code = S3ErrorCode::NoSuchBucketPolicy;
    none_configured(backend, &req.input.bucket, code, "bucket policy").await
}

pub(super) async fn get_bucket_cors<B: Backend>(
    backend: &B,
    req: S3Request<GetBucketCorsInput>,
) -> S3Result<S3Response<GetBucketCorsOutput>> {
    let code = S3ErrorCode::NoSuchCORSConfiguration;
    none_configured(backend, &req.input.bucket, code, "CORS configuration").await
}

pub(super) async fn get_bucket_website<B: Backend>(
    backend: &B,
    req: S3Request<GetBucketWebsiteInput>,
) -> S3Result<S3Response<GetBucketWebsiteOutput>> {
    let code = S3ErrorCode::NoSuchWebsiteConfiguration;
    none_configured(backend, &req.input.bucket, code, "website configuration").await
}

pub(super) async fn get_bucket_lifecycle_configuration<B: Backend>(
    backend: &B,
    req: S3Request<GetBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
    let code = S3ErrorCode::NoSuchLifecycleConfiguration;
    none_configured(backend, &req.input.bucket, code, "lifecycle configuration").await
}

pub(super) async fn get_bucket_replication<B: Backend>(
    backend: &B,
    req: S3Request<GetBucketReplicationInput>,
) -> S3Result<S3Response<GetBucketReplicationOutput>> {
    let code = S3ErrorCode::ReplicationConfigurationNotFoundError;
    none_configured(
        backend,
        &req.input.bucket,
        code,
        "replication configuration",
    )
    .await
}

pub(super) async fn get_object_lock_configuration<B: Backend>(
    backend: &B,
    req: S3Request<GetObjectLockConfigurationInput>,
) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
    let code = S3ErrorCode::ObjectLockConfigurationNotFoundError;
    none_configured(
        backend,
        &req.input.bucket,
        code,
        "object lock configuration",
    )
    .await
}

pub(super) async fn get_bucket_logging<B: Backend>(
    backend: &B,
    req: S3Request<GetBucketLoggingInput>,
) -> S3Result<S3Response<GetBucketLoggingOutput>> {
    backend.head_bucket(&req.input.bucket).await?;
    // Logging off: an empty BucketLoggingStatus.
    Ok(S3Response::new(GetBucketLoggingOutput::default()))
}

pub(super) async fn get_bucket_accelerate_configuration<B: Backend>(
    backend: &B,
    req: S3Request<GetBucketAccelerateConfigurationInput>,
) -> S3Result<S3Response<GetBucketAccelerateConfigurationOutput>> {
    backend.head_bucket(&req.input.bucket).await?;
    // Never enabled: S3 answers without a Status.
    Ok(S3Response::new(
        GetBucketAccelerateConfigurationOutput::default(),
    ))
}

pub(super) async fn get_bucket_request_payment<B: Backend>(
    backend: &B,
    req: S3Request<GetBucketRequestPaymentInput>,
) -> S3Result<S3Response<GetBucketRequestPaymentOutput>> {
    backend.head_bucket(&req.input.bucket).await?;
    Ok(S3Response::new(GetBucketRequestPaymentOutput {
        payer: Some(Payer::from_static(Payer::BUCKET_OWNER)),
    }))
}

pub(super) async fn get_bucket_acl<B: Backend>(
    backend: &B,
    req: S3Request<GetBucketAclInput>,
) -> S3Result<S3Response<GetBucketAclOutput>> {
    backend.head_bucket(&req.input.bucket).await?;
    // One tenant: the owner holds FULL_CONTROL, as a new S3 bucket's default (private) ACL.
    let owner = super::owner();
    let grant = Grant {
        grantee: Some(Grantee {
            display_name: owner.display_name.clone(),
            email_address: None,
            id: owner.id.clone(),
            type_: Type::from_static(Type::CANONICAL_USER),
            uri: None,
        }),
        permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
    };
    Ok(S3Response::new(GetBucketAclOutput {
        grants: Some(vec![grant]),
        owner: Some(owner),
    }))
}
