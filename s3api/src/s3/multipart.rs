//! Multipart uploads: create, upload part, complete, abort, list parts, list uploads.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::object::{checksum_echo, copy_source, verified_body};
use super::{etag, not_implemented, owner, timestamp};
use crate::backend::{Backend, PutObjectRequest, SseRequest, UploadPartCopyRequest};
use crate::error::invalid_argument;
use crate::headers::{
    object_meta, parse_sse_customer, parse_sse_request, sse_echo, KmsHeaders, MetaHeaders,
    SseCustomerHeaders,
};

/// S3's default and maximum page size for parts and uploads.
const MAX_PAGE: usize = 1000;

fn page_size(n: Option<i32>, what: &str) -> S3Result<usize> {
    match n {
        None => Ok(MAX_PAGE),
        Some(n) => usize::try_from(n)
            .map(|n| n.clamp(1, MAX_PAGE))
            .map_err(|_| invalid_argument(format!("{what} must not be negative"))),
    }
}

fn part_number(n: i32) -> S3Result<u32> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| {
            invalid_argument("Part number must be an integer between 1 and 10000, inclusive")
        })
}

pub(super) async fn create_multipart_upload<B: Backend>(
    backend: &B,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let input = req.input;
    let sse = parse_sse_request(
        input.server_side_encryption.as_ref(),
        input.ssekms_key_id,
        KmsHeaders {
            context: input.ssekms_encryption_context,
            bucket_key: input.bucket_key_enabled,
        },
        SseCustomerHeaders {
            algorithm: input.sse_customer_algorithm,
            key: input.sse_customer_key,
            key_md5: input.sse_customer_key_md5,
        },
    )?;
    let meta = object_meta(MetaHeaders {
        content_type: input.content_type,
        content_encoding: input.content_encoding,
        content_disposition: input.content_disposition,
        content_language: input.content_language,
        cache_control: input.cache_control,
        expires: input.expires,
        metadata: input.metadata,
    })?;
    let created = backend
        .create_multipart_upload(&input.bucket, &input.key, meta, sse)
        .await?;
    let echo = sse_echo(&created.sse);
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(created.upload_id),
        server_side_encryption: echo.server_side_encryption,
        ssekms_key_id: echo.kms_key_id,
        ssekms_encryption_context: echo.kms_context,
        bucket_key_enabled: echo.bucket_key_enabled,
        sse_customer_algorithm: echo.customer_algorithm,
        sse_customer_key_md5: echo.customer_key_md5,
        ..Default::default()
    }))
}

pub(super) async fn upload_part<B: Backend>(
    backend: &B,
    req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    let S3Request {
        input,
        headers,
        trailing_headers,
        ..
    } = req;
    let number = part_number(input.part_number)?;
    let customer = parse_sse_customer(SseCustomerHeaders {
        algorithm: input.sse_customer_algorithm,
        key: input.sse_customer_key,
        key_md5: input.sse_customer_key_md5,
    })?;
    let customer_md5 = customer.as_ref().map(|k| k.key_md5.clone());
    let (body, content_length) = verified_body(
        input.body,
        &headers,
        input.content_md5.as_deref(),
        input.content_length,
        trailing_headers.as_ref(),
    )?;
    let part = backend
        .upload_part(
            &input.upload_id,
            number,
            PutObjectRequest {
                bucket: input.bucket,
                key: input.key,
                body,
                content_length,
                meta: Default::default(),
                sse: customer.map_or(SseRequest::Default, SseRequest::Customer),
                condition: None,
            },
        )
        .await?;
    let sums = checksum_echo(&headers, trailing_headers.as_ref());
    let echo = part.sse.as_ref().map(sse_echo).unwrap_or_default();
    Ok(S3Response::new(UploadPartOutput {
        e_tag: Some(etag(&part.etag)),
        server_side_encryption: echo.server_side_encryption,
        ssekms_key_id: echo.kms_key_id,
        bucket_key_enabled: echo.bucket_key_enabled,
        sse_customer_algorithm: customer_md5.as_ref().map(|_| "AES256".to_owned()),
        sse_customer_key_md5: customer_md5,
        checksum_crc32: sums.crc32,
        checksum_crc32c: sums.crc32c,
        checksum_sha256: sums.sha256,
        checksum_sha1: sums.sha1,
        checksum_crc64nvme: sums.crc64nvme,
        ..Default::default()
    }))
}

pub(super) async fn complete_multipart_upload<B: Backend>(
    backend: &B,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let input = req.input;
    let condition = super::object::write_condition(input.if_match, input.if_none_match)?;
    let malformed = || {
        S3Error::with_message(
            S3ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    };
    let parts = input
        .multipart_upload
        .and_then(|m| m.parts)
        .unwrap_or_default();
    if parts.is_empty() {
        return Err(malformed());
    }
    let mut list = Vec::with_capacity(parts.len());
    for p in parts {
        let (Some(n), Some(tag)) = (p.part_number, p.e_tag) else {
            return Err(malformed());
        };
        list.push((part_number(n)?, tag.value().to_owned()));
    }
    let res = backend
        .complete_multipart_upload(&input.bucket, &input.key, &input.upload_id, list, condition)
        .await?;
    let echo = sse_echo(&res.sse);
    Ok(S3Response::new(CompleteMultipartUploadOutput {
        location: Some(format!("/{}/{}", input.bucket, input.key)),
        bucket: Some(input.bucket),
        key: Some(input.key),
        e_tag: Some(etag(&res.etag)),
        server_side_encryption: echo.server_side_encryption,
        ssekms_key_id: echo.kms_key_id,
        bucket_key_enabled: echo.bucket_key_enabled,
        ..Default::default()
    }))
}

/// Parses `x-amz-copy-source-range: bytes=first-last` (both required, as S3 demands).
fn copy_source_range(v: &str) -> S3Result<(u64, u64)> {
    let bad = || {
        invalid_argument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
        )
    };
    let spec = v.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let first: u64 = a.trim().parse().map_err(|_| bad())?;
    let last: u64 = b.trim().parse().map_err(|_| bad())?;
    if first > last {
        return Err(bad());
    }
    Ok((first, last))
}

pub(super) async fn upload_part_copy<B: Backend>(
    backend: &B,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let input = req.input;
    let number = part_number(input.part_number)?;
    let (src_bucket, src_key) = copy_source(&input.copy_source)?;
    if input.copy_source_if_match.is_some()
        || input.copy_source_if_none_match.is_some()
        || input.copy_source_if_modified_since.is_some()
        || input.copy_source_if_unmodified_since.is_some()
    {
        return Err(not_implemented("Conditional UploadPartCopy"));
    }
    let src_range = input
        .copy_source_range
        .as_deref()
        .map(copy_source_range)
        .transpose()?;
    let src_sse_customer = parse_sse_customer(SseCustomerHeaders {
        algorithm: input.copy_source_sse_customer_algorithm,
        key: input.copy_source_sse_customer_key,
        key_md5: input.copy_source_sse_customer_key_md5,
    })?;
    let sse_customer = parse_sse_customer(SseCustomerHeaders {
        algorithm: input.sse_customer_algorithm,
        key: input.sse_customer_key,
        key_md5: input.sse_customer_key_md5,
    })?;
    let customer_md5 = sse_customer.as_ref().map(|k| k.key_md5.clone());
    let part = backend
        .upload_part_copy(UploadPartCopyRequest {
            bucket: input.bucket,
            key: input.key,
            upload_id: input.upload_id,
            part_number: number,
            src_bucket,
            src_key,
            src_range,
            src_sse_customer,
            sse_customer,
        })
        .await?;
    let echo = part.sse.as_ref().map(sse_echo).unwrap_or_default();
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(etag(&part.etag)),
            last_modified: Some(timestamp(part.last_modified_ms)),
            ..Default::default()
        }),
        server_side_encryption: echo.server_side_encryption,
        ssekms_key_id: echo.kms_key_id,
        bucket_key_enabled: echo.bucket_key_enabled,
        sse_customer_algorithm: customer_md5.as_ref().map(|_| "AES256".to_owned()),
        sse_customer_key_md5: customer_md5,
        ..Default::default()
    }))
}

pub(super) async fn abort_multipart_upload<B: Backend>(
    backend: &B,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let input = req.input;
    backend
        .abort_multipart_upload(&input.bucket, &input.key, &input.upload_id)
        .await?;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

pub(super) async fn list_parts<B: Backend>(
    backend: &B,
    req: S3Request<ListPartsInput>,
) -> S3Result<S3Response<ListPartsOutput>> {
    let input = req.input;
    let max = page_size(input.max_parts, "max-parts")?;
    let marker = match input.part_number_marker {
        None => 0,
        Some(n) => u32::try_from(n)
            .map_err(|_| invalid_argument("part-number-marker must not be negative"))?,
    };
    let (parts, truncated) = backend
        .list_parts(&input.bucket, &input.key, &input.upload_id, marker, max)
        .await?;
    let next = parts
        .last()
        .map(|p| i32::try_from(p.part_number).unwrap_or(i32::MAX));
    let parts: Vec<Part> = parts
        .into_iter()
        .map(|p| Part {
            part_number: i32::try_from(p.part_number).ok(),
            e_tag: Some(etag(&p.etag)),
            size: Some(i64::try_from(p.size).unwrap_or(i64::MAX)),
            last_modified: Some(timestamp(p.last_modified_ms)),
            ..Default::default()
        })
        .collect();
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(input.upload_id),
        part_number_marker: input.part_number_marker,
        next_part_number_marker: next,
        max_parts: Some(i32::try_from(max).unwrap_or(1000)),
        is_truncated: Some(truncated),
        parts: Some(parts),
        owner: Some(owner()),
        initiator: Some(Initiator {
            display_name: Some("coffer".to_owned()),
            id: Some("coffer".to_owned()),
        }),
        storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
        ..Default::default()
    }))
}

pub(super) async fn list_multipart_uploads<B: Backend>(
    backend: &B,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let input = req.input;
    let max = page_size(input.max_uploads, "max-uploads")?;
    let prefix = input.prefix.clone().unwrap_or_default();
    // S3 ignores upload-id-marker without key-marker.
    let marker = input
        .key_marker
        .as_deref()
        .filter(|k| !k.is_empty())
        .map(|k| {
            (
                k,
                input.upload_id_marker.as_deref().filter(|i| !i.is_empty()),
            )
        });
    let (uploads, truncated) = backend
        .list_multipart_uploads(&input.bucket, &prefix, marker, max)
        .await?;
    let next_key_marker = truncated
        .then(|| uploads.last().map(|u| u.key.clone()))
        .flatten();
    let next_upload_id_marker = truncated
        .then(|| uploads.last().map(|u| u.upload_id.clone()))
        .flatten();
    let list: Vec<MultipartUpload> = uploads
        .into_iter()
        .map(|u| MultipartUpload {
            key: Some(u.key),
            upload_id: Some(u.upload_id),
            initiated: Some(timestamp(u.initiated_ms)),
            owner: Some(owner()),
            initiator: Some(Initiator {
                display_name: Some("coffer".to_owned()),
                id: Some("coffer".to_owned()),
            }),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            ..Default::default()
        })
        .collect();
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(input.bucket),
        prefix: Some(prefix),
        key_marker: input.key_marker,
        upload_id_marker: input.upload_id_marker,
        next_key_marker,
        next_upload_id_marker,
        max_uploads: Some(i32::try_from(max).unwrap_or(1000)),
        is_truncated: Some(truncated),
        uploads: Some(list),
        ..Default::default()
    }))
}
