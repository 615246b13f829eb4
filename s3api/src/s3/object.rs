//! Object operations: put, get, head, delete, delete-many, copy.

use futures::StreamExt as _;
use http::{HeaderMap, HeaderValue};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::{etag, not_implemented, response_body, timestamp};
use crate::backend::{
    Backend, ByteStream, ChecksumAlgorithm, CopyObjectRequest, GetObjectRequest, ObjectInfo,
    PutObjectRequest, SourceCheck, SseCustomerKey, StoreError, WriteCondition,
};
use crate::checksum::{self, VerifyingStream};
use crate::error::{invalid_argument, invalid_request, to_s3_error, wire_code};
use crate::headers::{
    object_meta, parse_http_date, parse_sse_customer, parse_sse_request, response_metadata,
    sse_echo, KmsHeaders, MetaHeaders, SseCustomerHeaders,
};
use crate::range::{self, Conditions, Outcome};

/// Verifies and converts a request body into the backend's stream.
pub(super) fn verified_body(
    body: Option<StreamingBlob>,
    headers: &HeaderMap,
    content_md5: Option<&str>,
    content_length: Option<i64>,
    trailing: Option<&s3s::TrailingHeaders>,
) -> S3Result<(crate::backend::ByteStream, Option<u64>)> {
    let length = content_length
        .map(|l| {
            u64::try_from(l).map_err(|_| invalid_argument("Content-Length must not be negative"))
        })
        .transpose()?;
    let exp = checksum::expectations(headers, content_md5, length, trailing)?;
    let stream = match body {
        Some(b) => VerifyingStream::new(b, exp),
        None => VerifyingStream::new(
            futures::stream::empty::<Result<bytes::Bytes, s3s::StdError>>(),
            exp,
        ),
    };
    Ok((stream.into_byte_stream(), length))
}

/// The checksum the client declared, as response fields (checksum_crc32, ...).
#[derive(Default)]
pub(super) struct ChecksumEcho {
    pub crc32: Option<String>,
    pub crc32c: Option<String>,
    pub sha256: Option<String>,
    pub sha1: Option<String>,
    pub crc64nvme: Option<String>,
}

pub(super) fn checksum_echo(
    headers: &HeaderMap,
    trailing: Option<&s3s::TrailingHeaders>,
) -> ChecksumEcho {
    let mut echo = ChecksumEcho::default();
    if let Some((alg, v)) = checksum::declared_checksum(headers, trailing) {
        match alg {
            ChecksumAlgorithm::Crc32 => echo.crc32 = Some(v),
            ChecksumAlgorithm::Crc32c => echo.crc32c = Some(v),
            ChecksumAlgorithm::Sha256 => echo.sha256 = Some(v),
            ChecksumAlgorithm::Sha1 => echo.sha1 = Some(v),
            ChecksumAlgorithm::Crc64Nvme => echo.crc64nvme = Some(v),
        }
    }
    echo
}

/// `If-Match` / `If-None-Match` on PutObject and CompleteMultipartUpload, as S3 supports them:
/// `If-None-Match: *` (create only), `If-Match: "etag"` (replace only that version) and
/// `If-Match: *` (replace only an existing object).
pub(super) fn write_condition(
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
) -> S3Result<Option<WriteCondition>> {
    match (if_match, if_none_match) {
        (None, None) => Ok(None),
        (None, Some(ETagCondition::Any)) => Ok(Some(WriteCondition::Absent)),
        (None, Some(ETagCondition::ETag(_))) => Err(not_implemented(
            "If-None-Match with an ETag on a write (only If-None-Match: *)",
        )),
        (Some(ETagCondition::Any), None) => Ok(Some(WriteCondition::Exists)),
        (Some(ETagCondition::ETag(e)), None) => Ok(Some(WriteCondition::EtagIs(e.into_value()))),
        (Some(_), Some(_)) => Err(not_implemented(
            "If-Match together with If-None-Match on a write",
        )),
    }
}

pub(super) async fn put_object<B: Backend>(
    backend: &B,
    req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let S3Request {
        input,
        headers,
        trailing_headers,
        ..
    } = req;
    let condition = write_condition(input.if_match, input.if_none_match)?;
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
    let (body, content_length) = verified_body(
        input.body,
        &headers,
        input.content_md5.as_deref(),
        input.content_length,
        trailing_headers.as_ref(),
    )?;
    let res = backend
        .put_object(PutObjectRequest {
            bucket: input.bucket,
            key: input.key,
            body,
            content_length,
            meta,
            sse,
            condition,
        })
        .await?;
    let echo = sse_echo(&res.sse);
    let sums = checksum_echo(&headers, trailing_headers.as_ref());
    Ok(S3Response::new(PutObjectOutput {
        e_tag: Some(etag(&res.etag)),
        server_side_encryption: echo.server_side_encryption,
        ssekms_key_id: echo.kms_key_id,
        ssekms_encryption_context: echo.kms_context,
        bucket_key_enabled: echo.bucket_key_enabled,
        sse_customer_algorithm: echo.customer_algorithm,
        sse_customer_key_md5: echo.customer_key_md5,
        checksum_crc32: sums.crc32,
        checksum_crc32c: sums.crc32c,
        checksum_sha256: sums.sha256,
        checksum_sha1: sums.sha1,
        checksum_crc64nvme: sums.crc64nvme,
        ..Default::default()
    }))
}

/// 304 with the validators S3 sends along.
fn not_modified(info: &ObjectInfo) -> S3Error {
    let mut err = S3Error::new(S3ErrorCode::NotModified);
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", info.etag)) {
        headers.insert(http::header::ETAG, v);
    }
    if let Some(v) = crate::headers::http_date(&timestamp(info.last_modified_ms))
        .and_then(|d| HeaderValue::from_str(&d).ok())
    {
        headers.insert(http::header::LAST_MODIFIED, v);
    }
    err.set_headers(headers);
    err
}

fn check_conditions(c: &Conditions<'_>, info: &ObjectInfo) -> S3Result<()> {
    match range::evaluate(c, &info.etag, info.last_modified_ms) {
        Outcome::Proceed => Ok(()),
        Outcome::NotModified => Err(not_modified(info)),
        Outcome::PreconditionFailed => Err(to_s3_error(StoreError::PreconditionFailed)),
    }
}

fn unsatisfiable_range() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::InvalidRange,
        "The requested range is not satisfiable",
    )
}

/// `?partNumber=N`: 1..=10000, and not together with a Range (as S3 answers).
fn part_number(n: Option<i32>, has_range: bool) -> S3Result<Option<u32>> {
    match n {
        None => Ok(None),
        Some(_) if has_range => Err(invalid_request(
            "Cannot specify both Range header and partNumber query parameter",
        )),
        Some(n) => match u32::try_from(n) {
            Ok(n) if (1..=10_000).contains(&n) => Ok(Some(n)),
            _ => Err(invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive",
            )),
        },
    }
}

/// The stored standard headers for a GET/HEAD response.
struct StoredHeaders {
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<Timestamp>,
    metadata: Option<Metadata>,
}

fn stored_headers(info: &ObjectInfo) -> StoredHeaders {
    let m = &info.meta;
    StoredHeaders {
        content_type: m.content_type.clone(),
        content_encoding: m.content_encoding.clone(),
        content_disposition: m.content_disposition.clone(),
        content_language: m.content_language.clone(),
        cache_control: m.cache_control.clone(),
        expires: m.expires.as_deref().and_then(parse_http_date),
        metadata: response_metadata(m),
    }
}

fn customer_key(
    alg: Option<String>,
    key: Option<String>,
    md5: Option<String>,
) -> S3Result<Option<SseCustomerKey>> {
    parse_sse_customer(SseCustomerHeaders {
        algorithm: alg,
        key,
        key_md5: md5,
    })
}

pub(super) async fn get_object<B: Backend>(
    backend: &B,
    req: S3Request<GetObjectInput>,
) -> S3Result<S3Response<GetObjectOutput>> {
    let input = req.input;
    let part = part_number(input.part_number, input.range.is_some())?;
    let sse_customer = customer_key(
        input.sse_customer_algorithm,
        input.sse_customer_key,
        input.sse_customer_key_md5,
    )?;
    let range = input.range.as_ref().map(range::to_range_spec);
    if range.is_some_and(range::is_never_satisfiable) {
        return Err(unsatisfiable_range());
    }
    let res = backend
        .get_object(GetObjectRequest {
            bucket: input.bucket,
            key: input.key,
            range,
            part_number: part,
            sse_customer,
        })
        .await?;
    let info = res.info;
    // The body is lazy: returning early here drops it without reading any shard.
    check_conditions(
        &Conditions {
            if_match: input.if_match.as_ref(),
            if_none_match: input.if_none_match.as_ref(),
            if_modified_since: input.if_modified_since.as_ref(),
            if_unmodified_since: input.if_unmodified_since.as_ref(),
        },
        &info,
    )?;
    let (len, content_range) = match res.range {
        Some((start, end)) if end >= start && end < info.size => (
            end - start + 1,
            Some(range::content_range(start, end, info.size)),
        ),
        Some((start, end)) => {
            tracing::error!(
                start,
                end,
                size = info.size,
                "backend served an impossible range"
            );
            return Err(to_s3_error(StoreError::Internal(
                "backend returned an invalid range".into(),
            )));
        }
        None if part.is_some() => (0, None),
        None => (info.size, None),
    };
    let body = if len > 0 {
        first_chunk_read(res.body).await?
    } else {
        res.body
    };
    let h = stored_headers(&info);
    let echo = sse_echo(&info.sse);
    Ok(S3Response::new(GetObjectOutput {
        body: Some(response_body(body, len)),
        content_length: Some(i64::try_from(len).unwrap_or(i64::MAX)),
        content_range,
        accept_ranges: Some("bytes".to_owned()),
        e_tag: Some(etag(&info.etag)),
        last_modified: Some(timestamp(info.last_modified_ms)),
        content_type: h.content_type,
        content_encoding: h.content_encoding,
        content_disposition: h.content_disposition,
        content_language: h.content_language,
        cache_control: h.cache_control,
        expires: h.expires,
        metadata: h.metadata,
        parts_count: info
            .parts_count
            .and_then(|n| i32::try_from(n).ok())
            .filter(|_| input.part_number.is_some()),
        server_side_encryption: echo.server_side_encryption,
        ssekms_key_id: echo.kms_key_id,
        bucket_key_enabled: echo.bucket_key_enabled,
        sse_customer_algorithm: echo.customer_algorithm,
        sse_customer_key_md5: echo.customer_key_md5,
        ..Default::default()
    }))
}

/// Reads the body's first chunk before the status line goes out, so an object that cannot be
/// read now (its shards' nodes unreachable: 503; unreadable: 500) gets an error status rather
/// than a 200 whose body breaks off.
async fn first_chunk_read(mut body: ByteStream) -> S3Result<ByteStream> {
    match body.next().await {
        Some(Err(e)) => Err(to_s3_error(StoreError::Body(e))),
        Some(Ok(first)) => Ok(Box::pin(
            futures::stream::once(async { Ok(first) }).chain(body),
        )),
        None => Ok(body),
    }
}

pub(super) async fn head_object<B: Backend>(
    backend: &B,
    req: S3Request<HeadObjectInput>,
) -> S3Result<S3Response<HeadObjectOutput>> {
    let input = req.input;
    let part = part_number(input.part_number, input.range.is_some())?;
    let sse_customer = customer_key(
        input.sse_customer_algorithm,
        input.sse_customer_key,
        input.sse_customer_key_md5,
    )?;
    let info = backend
        .head_object(&input.bucket, &input.key, sse_customer, part)
        .await?;
    check_conditions(
        &Conditions {
            if_match: input.if_match.as_ref(),
            if_none_match: input.if_none_match.as_ref(),
            if_modified_since: input.if_modified_since.as_ref(),
            if_unmodified_since: input.if_unmodified_since.as_ref(),
        },
        &info,
    )?;
    let (len, content_range) = match (input.range, part.and(info.part_range)) {
        (_, Some((start, end))) => (
            end - start + 1,
            Some(range::content_range(start, end, info.size)),
        ),
        (_, None) if part.is_some() => (0, None),
        (Some(r), None) => {
            let served = r.check(info.size).map_err(|_| unsatisfiable_range())?;
            let (start, end) = (served.start, served.end.saturating_sub(1));
            (
                end - start + 1,
                Some(range::content_range(start, end, info.size)),
            )
        }
        (None, None) => (info.size, None),
    };
    let h = stored_headers(&info);
    let echo = sse_echo(&info.sse);
    let output = HeadObjectOutput {
        content_length: Some(i64::try_from(len).unwrap_or(i64::MAX)),
        content_range,
        accept_ranges: Some("bytes".to_owned()),
        e_tag: Some(etag(&info.etag)),
        last_modified: Some(timestamp(info.last_modified_ms)),
        content_type: h.content_type,
        content_encoding: h.content_encoding,
        content_disposition: h.content_disposition,
        content_language: h.content_language,
        cache_control: h.cache_control,
        expires: h.expires,
        metadata: h.metadata,
        parts_count: info
            .parts_count
            .and_then(|n| i32::try_from(n).ok())
            .filter(|_| input.part_number.is_some()),
        server_side_encryption: echo.server_side_encryption,
        ssekms_key_id: echo.kms_key_id,
        bucket_key_enabled: echo.bucket_key_enabled,
        sse_customer_algorithm: echo.customer_algorithm,
        sse_customer_key_md5: echo.customer_key_md5,
        ..Default::default()
    };
    let partial = output.content_range.is_some();
    let mut resp = S3Response::new(output);
    if partial {
        // s3s's HeadObject ignores S3Response::status; the audit layer applies this marker.
        resp.extensions
            .insert(crate::audit::ForceStatus(http::StatusCode::PARTIAL_CONTENT));
    }
    Ok(resp)
}

pub(super) async fn delete_object<B: Backend>(
    backend: &B,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let input = req.input;
    if input.version_id.as_deref().is_some_and(|v| v != "null") {
        return Err(invalid_argument("Invalid version id specified"));
    }
    backend.delete_object(&input.bucket, &input.key).await?;
    Ok(S3Response::new(DeleteObjectOutput::default()))
}

/// S3 caps a DeleteObjects request at 1000 keys.
const MAX_DELETE_KEYS: usize = 1000;

pub(super) async fn delete_objects<B: Backend>(
    backend: &B,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let input = req.input;
    let objects = input.delete.objects;
    let quiet = input.delete.quiet.unwrap_or(false);
    if objects.len() > MAX_DELETE_KEYS {
        return Err(S3Error::with_message(
            S3ErrorCode::MalformedXML,
            "The request must contain no more than 1000 keys",
        ));
    }
    backend.head_bucket(&input.bucket).await?;
    let bucket = input.bucket.as_str();
    // Bounded concurrency, results kept in request order.
    let results: Vec<(ObjectIdentifier, Result<(), StoreError>)> = futures::stream::iter(objects)
        .map(|obj| async move {
            let res = if obj.version_id.as_deref().is_some_and(|v| v != "null") {
                Err(StoreError::InvalidArgument(
                    "Invalid version id specified".into(),
                ))
            } else {
                backend.delete_object(bucket, &obj.key).await
            };
            (obj, res)
        })
        .buffered(16)
        .collect()
        .await;
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for (obj, res) in results {
        match res {
            Ok(()) if quiet => {}
            Ok(()) => deleted.push(DeletedObject {
                key: Some(obj.key),
                version_id: obj.version_id,
                ..Default::default()
            }),
            Err(e) => {
                let wire = wire_code(&e);
                let s3 = to_s3_error(e);
                errors.push(Error {
                    code: Some(wire.code.as_str().to_owned()),
                    key: Some(obj.key),
                    message: s3.message().map(str::to_owned),
                    version_id: obj.version_id,
                });
            }
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: (!deleted.is_empty()).then_some(deleted),
        errors: (!errors.is_empty()).then_some(errors),
        ..Default::default()
    }))
}

/// The bucket and key of `x-amz-copy-source`; only the `null` version exists while buckets are
/// unversioned.
pub(super) fn copy_source(src: &CopySource) -> S3Result<(String, String)> {
    let CopySource::Bucket {
        bucket,
        key,
        version_id,
    } = src
    else {
        return Err(not_implemented(
            "Copying from an access point or outpost ARN",
        ));
    };
    if version_id.as_deref().is_some_and(|v| v != "null") {
        return Err(invalid_argument("Invalid version id specified"));
    }
    Ok((bucket.to_string(), key.to_string()))
}

pub(super) async fn copy_object<B: Backend>(
    backend: &B,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let input = req.input;
    let (src_bucket, src_key) = copy_source(&input.copy_source)?;
    let src_sse_customer = customer_key(
        input.copy_source_sse_customer_algorithm,
        input.copy_source_sse_customer_key,
        input.copy_source_sse_customer_key_md5,
    )?;
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
    let directive = input
        .metadata_directive
        .as_ref()
        .map(MetadataDirective::as_str);
    let metadata = match directive {
        None | Some("COPY") => crate::backend::MetadataDirective::Copy,
        Some("REPLACE") => crate::backend::MetadataDirective::Replace(object_meta(MetaHeaders {
            content_type: input.content_type,
            content_encoding: input.content_encoding,
            content_disposition: input.content_disposition,
            content_language: input.content_language,
            cache_control: input.cache_control,
            expires: input.expires,
            metadata: input.metadata,
        })?),
        Some(other) => {
            return Err(invalid_argument(format!(
                "Unknown metadata directive {other:?}"
            )))
        }
    };
    if src_bucket == input.bucket
        && src_key == input.key
        && matches!(metadata, crate::backend::MetadataDirective::Copy)
        && matches!(sse, crate::backend::SseRequest::Default)
    {
        return Err(invalid_request(
            "This copy request is illegal because it is trying to copy an object to itself without changing the \
             object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let has_conditions = input.copy_source_if_match.is_some()
        || input.copy_source_if_none_match.is_some()
        || input.copy_source_if_modified_since.is_some()
        || input.copy_source_if_unmodified_since.is_some();
    let src_check = has_conditions.then(|| {
        let (if_match, if_none_match) =
            (input.copy_source_if_match, input.copy_source_if_none_match);
        let (if_modified_since, if_unmodified_since) = (
            input.copy_source_if_modified_since,
            input.copy_source_if_unmodified_since,
        );
        // S3 answers 412 (never 304) for every failed copy condition.
        SourceCheck::new(move |etag, last_modified_ms| {
            let c = Conditions {
                if_match: if_match.as_ref(),
                if_none_match: if_none_match.as_ref(),
                if_modified_since: if_modified_since.as_ref(),
                if_unmodified_since: if_unmodified_since.as_ref(),
            };
            range::evaluate(&c, etag, last_modified_ms) == Outcome::Proceed
        })
    });
    let res = backend
        .copy_object(CopyObjectRequest {
            src_bucket,
            src_key,
            src_sse_customer,
            dst_bucket: input.bucket,
            dst_key: input.key,
            metadata,
            sse,
            src_check,
        })
        .await?;
    let echo = sse_echo(&res.sse);
    Ok(S3Response::new(CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(etag(&res.etag)),
            last_modified: Some(timestamp(res.last_modified_ms)),
            ..Default::default()
        }),
        server_side_encryption: echo.server_side_encryption,
        ssekms_key_id: echo.kms_key_id,
        ssekms_encryption_context: echo.kms_context,
        bucket_key_enabled: echo.bucket_key_enabled,
        sse_customer_algorithm: echo.customer_algorithm,
        sse_customer_key_md5: echo.customer_key_md5,
        ..Default::default()
    }))
}
