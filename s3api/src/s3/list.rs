//! Listings: ListObjectsV2, ListObjects (v1) and ListObjectVersions (unversioned view).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN_B64;
use base64::Engine as _;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::{etag, owner, timestamp};
use crate::backend::{Backend, ListPage, ListQuery};
use crate::error::invalid_argument;

/// S3's default and maximum page size.
const MAX_KEYS: usize = 1000;

/// Encodes the next marker as an opaque continuation token.
#[must_use]
pub(crate) fn encode_token(marker: &str) -> String {
    TOKEN_B64.encode(marker.as_bytes())
}

/// Decodes a continuation token back to its marker; anything else is InvalidArgument.
pub(crate) fn decode_token(token: &str) -> S3Result<String> {
    TOKEN_B64
        .decode(token.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| invalid_argument("The continuation token provided is incorrect"))
}

/// Validates max-keys: default 1000, capped at 1000, negative rejected.
fn page_size(max_keys: Option<i32>) -> S3Result<usize> {
    match max_keys {
        None => Ok(MAX_KEYS),
        Some(n) => usize::try_from(n)
            .map(|n| n.min(MAX_KEYS))
            .map_err(|_| invalid_argument("max-keys must not be negative")),
    }
}

/// Whether keys must be URL-encoded in the response (`encoding-type=url`).
fn url_encoding(encoding_type: Option<&EncodingType>) -> S3Result<bool> {
    match encoding_type.map(EncodingType::as_str) {
        None => Ok(false),
        Some(EncodingType::URL) => Ok(true),
        Some(_) => Err(invalid_argument(
            "Invalid Encoding Method specified in Request",
        )),
    }
}

/// URL-encodes a key the way S3 does for `encoding-type=url` (space as `+`, `/` kept).
#[must_use]
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Fetches one page, answering an empty page for max-keys=0 (after checking the bucket).
async fn fetch<B: Backend>(backend: &B, bucket: &str, query: ListQuery) -> S3Result<ListPage> {
    if query.max_keys == 0 {
        backend.head_bucket(bucket).await?;
        return Ok(ListPage::default());
    }
    Ok(backend.list_objects(bucket, query).await?)
}

struct Encoded {
    objects: Vec<Object>,
    prefixes: Vec<CommonPrefix>,
}

fn encode_page(page: &ListPage, enc: impl Fn(&str) -> String, with_owner: bool) -> Encoded {
    Encoded {
        objects: page
            .objects
            .iter()
            .map(|o| Object {
                key: Some(enc(&o.key)),
                size: Some(i64::try_from(o.size).unwrap_or(i64::MAX)),
                e_tag: Some(etag(&o.etag)),
                last_modified: Some(timestamp(o.last_modified_ms)),
                storage_class: Some(ObjectStorageClass::from_static(
                    ObjectStorageClass::STANDARD,
                )),
                owner: with_owner.then(owner),
                ..Default::default()
            })
            .collect(),
        prefixes: page
            .common_prefixes
            .iter()
            .map(|p| CommonPrefix {
                prefix: Some(enc(p)),
            })
            .collect(),
    }
}

fn encoder(url: bool) -> impl Fn(&str) -> String {
    move |s: &str| if url { url_encode(s) } else { s.to_owned() }
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

pub(super) async fn list_objects_v2<B: Backend>(
    backend: &B,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let input = req.input;
    let url = url_encoding(input.encoding_type.as_ref())?;
    let max_keys = page_size(input.max_keys)?;
    let token_marker = input
        .continuation_token
        .as_deref()
        .map(decode_token)
        .transpose()?;
    // The token resumes after the last item returned, which is always past start-after.
    let start_after = token_marker.or_else(|| input.start_after.clone().filter(|s| !s.is_empty()));
    let prefix = input.prefix.clone().unwrap_or_default();
    let delimiter = input.delimiter.clone().filter(|d| !d.is_empty());
    let page = fetch(
        backend,
        &input.bucket,
        ListQuery {
            prefix,
            delimiter,
            start_after,
            max_keys,
        },
    )
    .await?;
    let enc = encoder(url);
    let e = encode_page(&page, &enc, input.fetch_owner.unwrap_or(false));
    let key_count = e.objects.len() + e.prefixes.len();
    let next = page
        .is_truncated
        .then(|| page.next_marker.as_deref().map(encode_token))
        .flatten();
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(input.bucket),
        prefix: Some(input.prefix.as_deref().map(&enc).unwrap_or_default()),
        delimiter: input.delimiter.as_deref().map(&enc),
        max_keys: Some(i32::try_from(max_keys).unwrap_or(1000)),
        key_count: Some(i32::try_from(key_count).unwrap_or(i32::MAX)),
        is_truncated: Some(page.is_truncated),
        continuation_token: input.continuation_token,
        next_continuation_token: next,
        start_after: input.start_after.as_deref().map(&enc),
        encoding_type: input.encoding_type,
        contents: non_empty(e.objects),
        common_prefixes: non_empty(e.prefixes),
        ..Default::default()
    }))
}

pub(super) async fn list_objects<B: Backend>(
    backend: &B,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let input = req.input;
    let url = url_encoding(input.encoding_type.as_ref())?;
    let max_keys = page_size(input.max_keys)?;
    let delimiter = input.delimiter.clone().filter(|d| !d.is_empty());
    let page = fetch(
        backend,
        &input.bucket,
        ListQuery {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: delimiter.clone(),
            start_after: input.marker.clone().filter(|m| !m.is_empty()),
            max_keys,
        },
    )
    .await?;
    let enc = encoder(url);
    let e = encode_page(&page, &enc, true);
    // v1 only sends NextMarker with a delimiter; without one clients resume from the last key.
    let next_marker = (page.is_truncated && delimiter.is_some())
        .then(|| page.next_marker.as_deref().map(&enc))
        .flatten();
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(input.bucket),
        prefix: Some(input.prefix.as_deref().map(&enc).unwrap_or_default()),
        marker: Some(input.marker.as_deref().map(&enc).unwrap_or_default()),
        delimiter: input.delimiter.as_deref().map(&enc),
        max_keys: Some(i32::try_from(max_keys).unwrap_or(1000)),
        is_truncated: Some(page.is_truncated),
        next_marker,
        encoding_type: input.encoding_type,
        contents: non_empty(e.objects),
        common_prefixes: non_empty(e.prefixes),
        ..Default::default()
    }))
}

pub(super) async fn list_object_versions<B: Backend>(
    backend: &B,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let input = req.input;
    let url = url_encoding(input.encoding_type.as_ref())?;
    let max_keys = page_size(input.max_keys)?;
    let delimiter = input.delimiter.clone().filter(|d| !d.is_empty());
    // Every object has exactly one version ("null"), so the key marker alone pages the listing.
    let page = fetch(
        backend,
        &input.bucket,
        ListQuery {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter,
            start_after: input.key_marker.clone().filter(|m| !m.is_empty()),
            max_keys,
        },
    )
    .await?;
    let enc = encoder(url);
    let versions: Vec<ObjectVersion> = page
        .objects
        .iter()
        .map(|o| ObjectVersion {
            key: Some(enc(&o.key)),
            version_id: Some("null".to_owned()),
            is_latest: Some(true),
            size: Some(i64::try_from(o.size).unwrap_or(i64::MAX)),
            e_tag: Some(etag(&o.etag)),
            last_modified: Some(timestamp(o.last_modified_ms)),
            storage_class: Some(ObjectVersionStorageClass::from_static(
                ObjectVersionStorageClass::STANDARD,
            )),
            owner: Some(owner()),
            ..Default::default()
        })
        .collect();
    let prefixes: Vec<CommonPrefix> = page
        .common_prefixes
        .iter()
        .map(|p| CommonPrefix {
            prefix: Some(enc(p)),
        })
        .collect();
    let next_key_marker = page
        .is_truncated
        .then(|| page.next_marker.as_deref().map(&enc))
        .flatten();
    let next_version_id_marker = next_key_marker.as_ref().map(|_| "null".to_owned());
    Ok(S3Response::new(ListObjectVersionsOutput {
        name: Some(input.bucket),
        prefix: Some(input.prefix.as_deref().map(&enc).unwrap_or_default()),
        delimiter: input.delimiter.as_deref().map(&enc),
        key_marker: Some(input.key_marker.as_deref().map(&enc).unwrap_or_default()),
        version_id_marker: Some(input.version_id_marker.unwrap_or_default()),
        max_keys: Some(i32::try_from(max_keys).unwrap_or(1000)),
        is_truncated: Some(page.is_truncated),
        next_key_marker,
        next_version_id_marker,
        encoding_type: input.encoding_type,
        versions: non_empty(versions),
        common_prefixes: non_empty(prefixes),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip() {
        for m in [
            "",
            "a",
            "dir/sub/key with spaces",
            "ünïcødé/ключ",
            "a+b=c&d",
        ] {
            assert_eq!(decode_token(&encode_token(m)).unwrap(), m);
        }
        assert!(decode_token("!!!").is_err());
        // Valid base64 of invalid UTF-8.
        assert!(decode_token(&TOKEN_B64.encode([0xff, 0xfe])).is_err());
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(None).unwrap(), 1000);
        assert_eq!(page_size(Some(5000)).unwrap(), 1000);
        assert_eq!(page_size(Some(0)).unwrap(), 0);
        assert!(page_size(Some(-1)).is_err());
    }

    #[test]
    fn url_encoding_like_s3() {
        assert_eq!(url_encode("a b/c+d%é"), "a+b/c%2Bd%25%C3%A9");
        assert!(url_encoding(Some(&EncodingType::from_static("gzip"))).is_err());
    }
}
