//! Verifying request bodies against Content-MD5, `x-amz-checksum-*` (header or aws-chunked
//! trailer) and the declared length while they stream to the backend.
//!
//! s3s checks SigV4 payload hashes and chunk signatures but not these; a mismatch here ends the
//! stream with an `Err` as its last item so the backend stores nothing.

use std::pin::Pin;
use std::task::{Context, Poll};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use futures::Stream;
use http::HeaderMap;
use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Md5, Sha1, Sha256};
use s3s::{S3Error, S3ErrorCode, S3Result, StdError, TrailingHeaders};

use crate::backend::{BodyError, ByteStream, ChecksumAlgorithm};

/// The `x-amz-checksum-*` header name of an algorithm.
#[must_use]
pub fn header_name(alg: ChecksumAlgorithm) -> &'static str {
    match alg {
        ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
        ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
        ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
        ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
    }
}

const ALL: [ChecksumAlgorithm; 5] = [
    ChecksumAlgorithm::Crc32,
    ChecksumAlgorithm::Crc32c,
    ChecksumAlgorithm::Sha256,
    ChecksumAlgorithm::Sha1,
    ChecksumAlgorithm::Crc64Nvme,
];

fn digest_len(alg: ChecksumAlgorithm) -> usize {
    match alg {
        ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
        ChecksumAlgorithm::Crc64Nvme => 8,
        ChecksumAlgorithm::Sha1 => 20,
        ChecksumAlgorithm::Sha256 => 32,
    }
}

enum Hasher {
    Crc32(Crc32),
    Crc32c(Crc32c),
    Crc64Nvme(Crc64Nvme),
    Sha1(Sha1),
    Sha256(Sha256),
    Md5(Md5),
}

impl Hasher {
    fn for_alg(alg: ChecksumAlgorithm) -> Self {
        match alg {
            ChecksumAlgorithm::Crc32 => Self::Crc32(Crc32::new()),
            ChecksumAlgorithm::Crc32c => Self::Crc32c(Crc32c::new()),
            ChecksumAlgorithm::Crc64Nvme => Self::Crc64Nvme(Crc64Nvme::new()),
            ChecksumAlgorithm::Sha1 => Self::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => Self::Sha256(Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Crc32(h) => h.update(data),
            Self::Crc32c(h) => h.update(data),
            Self::Crc64Nvme(h) => h.update(data),
            Self::Sha1(h) => h.update(data),
            Self::Sha256(h) => h.update(data),
            Self::Md5(h) => h.update(data),
        }
    }

    fn finalize(self) -> Vec<u8> {
        match self {
            Self::Crc32(h) => h.finalize().to_vec(),
            Self::Crc32c(h) => h.finalize().to_vec(),
            Self::Crc64Nvme(h) => h.finalize().to_vec(),
            Self::Sha1(h) => h.finalize().as_ref().to_vec(),
            Self::Sha256(h) => h.finalize().as_ref().to_vec(),
            Self::Md5(h) => h.finalize().as_ref().to_vec(),
        }
    }
}

/// What a request body must match, collected from its headers before the backend is called.
#[derive(Default)]
pub struct BodyExpectations {
    /// Decoded Content-MD5.
    pub md5: Option<Vec<u8>>,
    /// Decoded `x-amz-checksum-*` header values.
    pub checksums: Vec<(ChecksumAlgorithm, Vec<u8>)>,
    /// Checksum announced in `x-amz-trailer`, with the handle s3s fills from the aws-chunked trailer.
    pub trailer: Option<(ChecksumAlgorithm, TrailingHeaders)>,
    /// Declared (decoded) length.
    pub length: Option<u64>,
}

/// Decodes a Content-MD5 header; invalid base64 or a wrong length is InvalidDigest.
pub fn parse_content_md5(value: Option<&str>) -> S3Result<Option<Vec<u8>>> {
    let Some(value) = value else { return Ok(None) };
    match B64.decode(value.trim().as_bytes()) {
        Ok(d) if d.len() == 16 => Ok(Some(d)),
        _ => Err(S3Error::with_message(
            S3ErrorCode::InvalidDigest,
            "The Content-MD5 you specified is not valid.",
        )),
    }
}

/// Decodes the `x-amz-checksum-*` headers present in `headers`.
pub fn parse_checksum_headers(headers: &HeaderMap) -> S3Result<Vec<(ChecksumAlgorithm, Vec<u8>)>> {
    let mut out = Vec::new();
    for alg in ALL {
        let Some(value) = headers.get(header_name(alg)) else {
            continue;
        };
        let decoded = value
            .to_str()
            .ok()
            .and_then(|v| B64.decode(v.trim().as_bytes()).ok())
            .filter(|d| d.len() == digest_len(alg));
        match decoded {
            Some(d) => out.push((alg, d)),
            None => {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidRequest,
                    format!("Value for {} header is invalid.", header_name(alg)),
                ))
            }
        }
    }
    if out.len() > 1 {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        ));
    }
    Ok(out)
}

/// The checksum algorithm named by `x-amz-trailer`, if any.
pub fn trailer_algorithm(headers: &HeaderMap) -> S3Result<Option<ChecksumAlgorithm>> {
    let Some(value) = headers.get("x-amz-trailer") else {
        return Ok(None);
    };
    let name = value
        .to_str()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match ALL.into_iter().find(|a| header_name(*a) == name) {
        Some(alg) => Ok(Some(alg)),
        None => Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The value specified in the x-amz-trailer header is not supported",
        )),
    }
}

/// Collects everything a PutObject/UploadPart body must match.
pub fn expectations(
    headers: &HeaderMap,
    content_md5: Option<&str>,
    length: Option<u64>,
    trailing: Option<&TrailingHeaders>,
) -> S3Result<BodyExpectations> {
    let md5 = parse_content_md5(content_md5)?;
    let checksums = parse_checksum_headers(headers)?;
    // s3s hands us a trailer handle only for aws-chunked bodies; without one there is no trailer.
    let trailer = match (trailer_algorithm(headers)?, trailing) {
        (Some(alg), Some(handle)) => Some((alg, handle.clone())),
        _ => None,
    };
    Ok(BodyExpectations {
        md5,
        checksums,
        trailer,
        length,
    })
}

/// The base64 checksum value the client declared (header or, after the body, trailer).
pub fn declared_checksum(
    exp_headers: &HeaderMap,
    trailing: Option<&TrailingHeaders>,
) -> Option<(ChecksumAlgorithm, String)> {
    for alg in ALL {
        if let Some(v) = exp_headers
            .get(header_name(alg))
            .and_then(|v| v.to_str().ok())
        {
            return Some((alg, v.trim().to_owned()));
        }
    }
    let trailing = trailing?;
    trailing
        .read(|map| {
            ALL.into_iter().find_map(|alg| {
                map.get(header_name(alg))
                    .and_then(|v| v.to_str().ok())
                    .map(|v| (alg, v.trim().to_owned()))
            })
        })
        .flatten()
}

type Inner = Pin<Box<dyn Stream<Item = Result<Bytes, StdError>> + Send + 'static>>;

/// A body stream that verifies digests and length, failing as its last item on mismatch.
pub struct VerifyingStream {
    inner: Option<Inner>,
    md5: Option<(Hasher, Vec<u8>)>,
    checks: Vec<(ChecksumAlgorithm, Hasher, Vec<u8>)>,
    trailer: Option<(ChecksumAlgorithm, Hasher, TrailingHeaders)>,
    length: Option<u64>,
    seen: u64,
}

impl VerifyingStream {
    /// Wraps `inner` so it is checked against `exp`.
    pub fn new<S>(inner: S, exp: BodyExpectations) -> Self
    where
        S: Stream<Item = Result<Bytes, StdError>> + Send + 'static,
    {
        Self {
            inner: Some(Box::pin(inner)),
            md5: exp.md5.map(|d| (Hasher::Md5(Md5::new()), d)),
            checks: exp
                .checksums
                .into_iter()
                .map(|(alg, d)| (alg, Hasher::for_alg(alg), d))
                .collect(),
            trailer: exp.trailer.map(|(alg, h)| (alg, Hasher::for_alg(alg), h)),
            length: exp.length,
            seen: 0,
        }
    }

    /// Boxes the stream as the backend's [`ByteStream`].
    #[must_use]
    pub fn into_byte_stream(self) -> ByteStream {
        Box::pin(self)
    }

    fn finish(&mut self) -> Option<BodyError> {
        if let Some(len) = self.length {
            if self.seen != len {
                return Some(BodyError::IncompleteBody);
            }
        }
        if let Some((h, want)) = self.md5.take() {
            if h.finalize() != want {
                return Some(BodyError::BadDigest);
            }
        }
        for (alg, h, want) in std::mem::take(&mut self.checks) {
            if h.finalize() != want {
                return Some(BodyError::ChecksumMismatch(alg));
            }
        }
        if let Some((alg, h, handle)) = self.trailer.take() {
            let sent = handle
                .read(|map| {
                    map.get(header_name(alg))
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                })
                .flatten()
                .and_then(|v| B64.decode(v.trim().as_bytes()).ok());
            match sent {
                Some(want) if h.finalize() == want => {}
                Some(_) => return Some(BodyError::ChecksumMismatch(alg)),
                // The body announced a trailer checksum but never sent it.
                None => return Some(BodyError::IncompleteBody),
            }
        }
        None
    }
}

impl Stream for VerifyingStream {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(bytes))) => {
                this.seen = this.seen.saturating_add(bytes.len() as u64);
                if this.length.is_some_and(|len| this.seen > len) {
                    this.inner = None;
                    return Poll::Ready(Some(Err(BodyError::IncompleteBody)));
                }
                if let Some((h, _)) = this.md5.as_mut() {
                    h.update(&bytes);
                }
                for (_, h, _) in &mut this.checks {
                    h.update(&bytes);
                }
                if let Some((_, h, _)) = this.trailer.as_mut() {
                    h.update(&bytes);
                }
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.inner = None;
                tracing::debug!(error = %e, "request body failed");
                Poll::Ready(Some(Err(BodyError::Io(e.to_string()))))
            }
            Poll::Ready(None) => {
                this.inner = None;
                Poll::Ready(this.finish().map(Err))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt as _;
    use md5::Digest as _;

    fn chunks(
        parts: &[&'static [u8]],
    ) -> impl Stream<Item = Result<Bytes, StdError>> + Send + 'static {
        let v: Vec<Result<Bytes, StdError>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        futures::stream::iter(v)
    }

    async fn drain(s: VerifyingStream) -> (Vec<u8>, Option<BodyError>) {
        let mut s = s.into_byte_stream();
        let mut data = Vec::new();
        let mut err = None;
        while let Some(item) = s.next().await {
            match item {
                Ok(b) => data.extend_from_slice(&b),
                Err(e) => {
                    err = Some(e);
                    assert!(s.next().await.is_none(), "error must be the last item");
                    break;
                }
            }
        }
        (data, err)
    }

    #[tokio::test]
    async fn md5_ok_and_bad() {
        let md5 = md5::Md5::digest(b"hello world").to_vec();
        let exp = BodyExpectations {
            md5: Some(md5),
            length: Some(11),
            ..Default::default()
        };
        let (data, err) = drain(VerifyingStream::new(chunks(&[b"hello ", b"world"]), exp)).await;
        assert_eq!(data, b"hello world");
        assert_eq!(err, None);

        let wrong = md5::Md5::digest(b"other").to_vec();
        let exp = BodyExpectations {
            md5: Some(wrong),
            ..Default::default()
        };
        let (_, err) = drain(VerifyingStream::new(chunks(&[b"hello world"]), exp)).await;
        assert_eq!(err, Some(BodyError::BadDigest));
    }

    #[tokio::test]
    async fn short_and_long_body() {
        let exp = BodyExpectations {
            length: Some(20),
            ..Default::default()
        };
        let (_, err) = drain(VerifyingStream::new(chunks(&[b"hello"]), exp)).await;
        assert_eq!(err, Some(BodyError::IncompleteBody));
        let exp = BodyExpectations {
            length: Some(3),
            ..Default::default()
        };
        let (_, err) = drain(VerifyingStream::new(chunks(&[b"hello"]), exp)).await;
        assert_eq!(err, Some(BodyError::IncompleteBody));
    }

    #[tokio::test]
    async fn crc32_checksums() {
        let good = Crc32::checksum(b"abc").to_vec();
        let exp = BodyExpectations {
            checksums: vec![(ChecksumAlgorithm::Crc32, good)],
            ..Default::default()
        };
        assert_eq!(
            drain(VerifyingStream::new(chunks(&[b"a", b"bc"]), exp))
                .await
                .1,
            None
        );
        let exp = BodyExpectations {
            checksums: vec![(ChecksumAlgorithm::Sha256, vec![0; 32])],
            ..Default::default()
        };
        assert_eq!(
            drain(VerifyingStream::new(chunks(&[b"abc"]), exp)).await.1,
            Some(BodyError::ChecksumMismatch(ChecksumAlgorithm::Sha256))
        );
    }

    #[tokio::test]
    async fn inner_error_is_io() {
        let v: Vec<Result<Bytes, StdError>> =
            vec![Ok(Bytes::from_static(b"x")), Err("boom".into())];
        let (_, err) = drain(VerifyingStream::new(
            futures::stream::iter(v),
            BodyExpectations::default(),
        ))
        .await;
        assert!(matches!(err, Some(BodyError::Io(_))));
    }

    #[test]
    fn content_md5_parsing() {
        assert!(parse_content_md5(None).unwrap().is_none());
        assert_eq!(
            parse_content_md5(Some("%%%")).unwrap_err().code(),
            &S3ErrorCode::InvalidDigest
        );
        assert_eq!(
            parse_content_md5(Some("YWJj")).unwrap_err().code(),
            &S3ErrorCode::InvalidDigest
        );
        let ok = B64.encode(md5::Md5::digest(b"x"));
        assert_eq!(
            parse_content_md5(Some(&ok)).unwrap().map(|v| v.len()),
            Some(16)
        );
    }

    #[test]
    fn checksum_header_parsing() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-checksum-crc32", "not-base64!".parse().unwrap());
        assert_eq!(
            parse_checksum_headers(&h).unwrap_err().code(),
            &S3ErrorCode::InvalidRequest
        );
        let mut h = HeaderMap::new();
        h.insert(
            "x-amz-checksum-crc32c",
            B64.encode([1, 2, 3, 4]).parse().unwrap(),
        );
        assert_eq!(
            parse_checksum_headers(&h).unwrap(),
            vec![(ChecksumAlgorithm::Crc32c, vec![1, 2, 3, 4])]
        );
        let mut h = HeaderMap::new();
        h.insert("x-amz-trailer", "x-amz-checksum-crc32".parse().unwrap());
        assert_eq!(
            trailer_algorithm(&h).unwrap(),
            Some(ChecksumAlgorithm::Crc32)
        );
        h.insert("x-amz-trailer", "x-amz-checksum-md5".parse().unwrap());
        assert!(trailer_algorithm(&h).is_err());
    }
}
