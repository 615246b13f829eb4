//! Single-part objects: PUT, GET, HEAD, COPY, LIST, and the helpers multipart shares.

use std::collections::BTreeMap;

use futures::StreamExt;

use coffer_crypto::{CipherSuite, SecretKey, StreamBinding};
use coffer_metadata::{BucketRecord, MetaError, ObjectPrecondition, ObjectRecord};
use coffer_s3api::backend::{
    ByteStream, GetObjectRequest, GetObjectResult, ListPage, ListQuery, ObjectInfo, ObjectMeta,
    ObjectSummary, PutObjectRequest, PutObjectResult, SseCustomerKey, SseInfo, SseKind, SseRequest,
    StoreError, StoreResult,
};

use super::{meta_error, NodeService};
use crate::drive::DataId;
use crate::keys::{KeyService, KeySpec};
use crate::manifest::{self, ObjectManifest, SseMode, SseRecord, StoredMeta};
use crate::pipeline::{SegmentWriter, WrittenSegment};
use crate::sealed_meta;

/// S3's limit for a single PUT (and for one part).
pub(crate) const MAX_PUT_SIZE: u64 = 5 << 30;

/// Whether a manifest being committed brings new data or reuses the current object's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reuse {
    /// Freshly written segments: remove them if the commit fails.
    NewData,
    /// The current object's segments: never remove them on failure.
    OldData,
}

/// The version id of every object while buckets are unversioned.
pub(crate) const NULL_VERSION: &str = "null";

/// Keys sorting after every key that starts with a given common prefix.
const PREFIX_SKIP: &str = "\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}";

impl NodeService {
    /// Decides how a new object in `bucket` is encrypted: the request's SSE headers, else the
    /// bucket default, else SSE-S3; the data cipher is always the bucket's.
    pub(crate) fn resolve_sse(bucket: &BucketRecord, sse: &SseRequest) -> KeySpec {
        let enc = bucket.encryption.as_ref();
        let suite = match enc.and_then(|e| e.cipher.as_deref()) {
            Some("CHACHA20-POLY1305") => CipherSuite::ChaCha20Poly1305,
            _ => CipherSuite::Aes256Gcm,
        };
        let bucket_kms_key = enc
            .filter(|e| e.algorithm == "aws:kms")
            .and_then(|e| e.kms_key_id.clone());
        let bucket_key = enc.is_some_and(|e| e.bucket_key_enabled);
        let spec = |mode, kms_key_id, kms_context, bucket_key| KeySpec {
            mode,
            kms_key_id,
            kms_context,
            bucket_key,
            suite,
        };
        match sse {
            SseRequest::Customer(_) => spec(SseMode::Customer, None, None, false),
            SseRequest::S3 => spec(SseMode::S3, None, None, false),
            SseRequest::Kms {
                key_id,
                context,
                bucket_key: asked,
            } => spec(
                SseMode::Kms,
                key_id.clone().or(bucket_kms_key),
                context.as_ref().map(|c| c.pairs.clone()),
                asked.unwrap_or(bucket_key),
            ),
            SseRequest::Default => match enc {
                Some(e) if e.algorithm == "aws:kms" => {
                    spec(SseMode::Kms, e.kms_key_id.clone(), None, bucket_key)
                }
                _ => spec(SseMode::S3, None, None, false),
            },
        }
    }

    /// Streams `body` through encryption and erasure coding onto the drives, as part `part`
    /// (0 for a single-part object) of `bucket/key`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn write_body(
        &self,
        bucket: &str,
        key: &str,
        part: u32,
        mut body: ByteStream,
        declared_len: Option<u64>,
        oek: &SecretKey,
        record: &SseRecord,
    ) -> StoreResult<WrittenSegment> {
        if declared_len.is_some_and(|n| n > MAX_PUT_SIZE) {
            return Err(StoreError::EntityTooLarge);
        }
        let suite = KeyService::suite_of(record)?;
        let data_id = DataId(self.random());
        let salt: [u8; 32] = self.random();
        let hash = coffer_erasure::object_hash(bucket, key) ^ u64::from_le_bytes(self.random());
        let (erasure, targets) = self.shards.place(hash)?;
        let stream_key =
            coffer_crypto::derive_stream_key(oek, suite, &salt, &binding(bucket, key, part));
        let stream_version = stream_key.version();
        let mut writer = SegmentWriter::start_with(
            data_id,
            salt,
            self.cipher.sealer(stream_key),
            stream_version,
            part,
            // S3 ETags are the plaintext MD5 only for SSE-S3: skip the slowest stage otherwise.
            record.mode == SseMode::S3,
            erasure,
            targets,
        )?;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if writer.plain_len() + chunk.len() as u64 > MAX_PUT_SIZE {
                return Err(StoreError::EntityTooLarge);
            }
            writer.write(chunk).await?;
        }
        if declared_len.is_some_and(|n| n != writer.plain_len()) {
            return Err(StoreError::Body(
                coffer_s3api::backend::BodyError::IncompleteBody,
            ));
        }
        let written = writer.finish().await?;
        self.metrics.record_encrypt(written.segment.plain_len);
        if !written.failed_shards.is_empty() {
            tracing::warn!(data_id = %written.segment.data_id, failed = ?written.failed_shards, "segment written below full redundancy");
            self.healer.wake();
        }
        Ok(written)
    }

    /// The ETag of a written segment: its MD5 where S3 promises one, random bytes otherwise
    /// (AWS's SSE-KMS and SSE-C ETags are not the plaintext's MD5 either).
    pub(crate) fn segment_etag(&self, written: &WrittenSegment) -> String {
        match written.md5 {
            Some(md5) => hex::encode(md5),
            None => hex::encode(self.random::<16>()),
        }
    }

    pub(crate) async fn put_object_impl(
        &self,
        req: PutObjectRequest,
    ) -> StoreResult<PutObjectResult> {
        let bucket = self.require_bucket(&req.bucket).await?;
        self.check_condition(&req.bucket, &req.key, req.condition.as_ref())
            .await?;
        let spec = Self::resolve_sse(&bucket, &req.sse);
        let customer = match &req.sse {
            SseRequest::Customer(c) => Some(c),
            _ => None,
        };
        let new_key = self
            .keys
            .seal_new(&req.bucket, &req.key, spec, customer)
            .await?;
        let written = self
            .write_body(
                &req.bucket,
                &req.key,
                0,
                req.body,
                req.content_length,
                &new_key.oek,
                &new_key.record,
            )
            .await?;
        let etag = self.segment_etag(&written);
        let meta = self.seal_meta(
            &req.bucket,
            &req.key,
            &req.meta,
            &new_key.oek,
            &new_key.record,
        )?;
        let m = ObjectManifest {
            version: manifest::MANIFEST_VERSION,
            meta,
            sse: new_key.record,
            segments: vec![written.segment],
            parts_count: None,
        };
        let precondition = req
            .condition
            .as_ref()
            .map(|c| (super::conditions::precondition(c), Reuse::NewData));
        self.commit_object_if(&req.bucket, &req.key, m, etag, precondition)
            .await
    }

    /// Stored headers with the user metadata sealed under the object key.
    pub(crate) fn seal_meta(
        &self,
        bucket: &str,
        key: &str,
        meta: &ObjectMeta,
        oek: &SecretKey,
        record: &SseRecord,
    ) -> StoreResult<StoredMeta> {
        let mut stored = stored_meta(meta);
        let user = std::mem::take(&mut stored.user);
        stored.user_sealed = sealed_meta::seal(
            oek,
            KeyService::suite_of(record)?,
            &binding(bucket, key, 0),
            &user,
            self.entropy.as_ref(),
        );
        Ok(stored)
    }

    /// Commits a manifest through Raft, applied only if `precondition` holds; on failure its
    /// data is removed again, except that a re-sealed copy reuses the old manifest's segments
    /// and must not remove them (`Reuse::OldData`).
    pub(crate) async fn commit_object_if(
        &self,
        bucket: &str,
        key: &str,
        m: ObjectManifest,
        etag: String,
        precondition: Option<(ObjectPrecondition, Reuse)>,
    ) -> StoreResult<PutObjectResult> {
        let now = self.clock.now_ms();
        let size = m.segments.iter().map(|s| s.plain_len).sum();
        let rec = ObjectRecord {
            size,
            etag: etag.clone(),
            last_modified_ms: now,
            manifest: manifest::encode(&m),
        };
        let (precondition, reuse) = match precondition {
            Some((p, r)) => (Some(p), r),
            None => (None, Reuse::NewData),
        };
        match self
            .meta
            .put_object_if(bucket, key, rec, precondition)
            .await
        {
            Ok(prev) => {
                if let Some(prev) = prev {
                    self.discard_replaced(&prev, &m.segments);
                }
                Ok(PutObjectResult {
                    etag,
                    sse: sse_info(&m.sse),
                    last_modified_ms: now,
                })
            }
            Err(e) => {
                // A commit with an unknown outcome may still apply: its data stays, and the
                // orphan sweep removes it if no manifest ever names it.
                if reuse == Reuse::NewData && e.is_definite() {
                    self.discard_segments(&m.segments);
                }
                Err(match (e, reuse) {
                    // Someone else wrote the object after we read it: their write stands.
                    (MetaError::PreconditionFailed, Reuse::OldData) => StoreError::Conflict,
                    (e, _) => meta_error(e),
                })
            }
        }
    }

    /// Loads an object's record and manifest.
    pub(crate) async fn load_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> StoreResult<(ObjectRecord, ObjectManifest)> {
        self.require_bucket(bucket).await?;
        let rec = self
            .meta
            .get_object(bucket, key)
            .await
            .map_err(meta_error)?;
        let rec = rec.ok_or(StoreError::NoSuchKey)?;
        let m = manifest::decode_object(&rec.manifest).map_err(|e| {
            tracing::error!(bucket, key, error = %e, "object manifest unreadable");
            StoreError::DataCorrupt
        })?;
        Ok((rec, m))
    }

    pub(crate) async fn head_object_impl(
        &self,
        bucket: &str,
        key: &str,
        customer: Option<SseCustomerKey>,
        part_number: Option<u32>,
    ) -> StoreResult<ObjectInfo> {
        let (rec, m) = self.load_object(bucket, key).await?;
        check_customer_key(&m.sse, customer.as_ref())?;
        let part = part_number.map(|n| part_range(&m, n)).transpose()?;
        let user = if m.meta.user_sealed.is_some() {
            let oek = self
                .keys
                .open(bucket, key, &m.sse, customer.as_ref())
                .await?;
            open_user_meta(bucket, key, &m.meta, &oek)?
        } else {
            m.meta.user.clone()
        };
        let mut info = object_info(key, &rec, &m, user);
        info.part_range = part.flatten();
        Ok(info)
    }

    pub(crate) async fn get_object_impl(
        &self,
        req: GetObjectRequest,
    ) -> StoreResult<GetObjectResult> {
        let (rec, m) = self.load_object(&req.bucket, &req.key).await?;
        check_customer_key(&m.sse, req.sse_customer.as_ref())?;
        let range = match (req.part_number, req.range) {
            (Some(n), _) => part_range(&m, n)?,
            (None, Some(spec)) => Some(super::read::resolve_range(spec, rec.size)?),
            (None, None) => None,
        };
        // An empty part (only ever the last one) has no range to read.
        let empty = rec.size == 0 || (req.part_number.is_some() && range.is_none());
        let oek = self
            .keys
            .open(&req.bucket, &req.key, &m.sse, req.sse_customer.as_ref())
            .await?;
        let user = open_user_meta(&req.bucket, &req.key, &m.meta, &oek)?;
        let mut info = object_info(&req.key, &rec, &m, user);
        if req.part_number.is_some() {
            info.part_range = range;
        }
        let (start, end) = range.unwrap_or((0, rec.size.saturating_sub(1)));
        let body = if empty {
            super::empty_body()
        } else {
            self.read_stream(&req.bucket, &req.key, m, oek, start, end)?
        };
        Ok(GetObjectResult { info, range, body })
    }

    pub(crate) async fn list_objects_impl(
        &self,
        bucket: &str,
        q: ListQuery,
    ) -> StoreResult<ListPage> {
        self.require_bucket(bucket).await?;
        let mut page = ListPage::default();
        let delim = q.delimiter.clone().filter(|d| !d.is_empty());
        let mut cursor = q.start_after.clone();
        // A marker that is itself a common prefix means: continue after everything under it.
        if let (Some(d), Some(m)) = (&delim, &cursor) {
            if m.len() > q.prefix.len() && m.starts_with(&q.prefix) && m.ends_with(d.as_str()) {
                cursor = Some(format!("{m}{PREFIX_SKIP}"));
            }
        }
        let mut count = 0usize;
        'fetch: loop {
            let batch = self
                .meta
                .list_objects(bucket, &q.prefix, cursor.as_deref(), 1000)
                .await
                .map_err(meta_error)?;
            if batch.is_empty() {
                break;
            }
            for (key, rec) in batch {
                let common = delim.as_ref().and_then(|d| {
                    key[q.prefix.len()..]
                        .find(d.as_str())
                        .map(|pos| key[..q.prefix.len() + pos + d.len()].to_string())
                });
                if count >= q.max_keys {
                    page.is_truncated = true;
                    break 'fetch;
                }
                count += 1;
                match common {
                    Some(cp) => {
                        cursor = Some(format!("{cp}{PREFIX_SKIP}"));
                        page.next_marker = Some(cp.clone());
                        page.common_prefixes.push(cp);
                        continue 'fetch;
                    }
                    None => {
                        cursor = Some(key.clone());
                        page.next_marker = Some(key.clone());
                        page.objects.push(ObjectSummary {
                            key,
                            size: rec.size,
                            etag: rec.etag,
                            last_modified_ms: rec.last_modified_ms,
                        });
                    }
                }
            }
        }
        if !page.is_truncated {
            page.next_marker = None;
        }
        Ok(page)
    }
}

/// SSE-C objects need their key; other objects must not be given one.
pub(crate) fn check_customer_key(sse: &SseRecord, key: Option<&SseCustomerKey>) -> StoreResult<()> {
    match (sse.mode, key) {
        (SseMode::Customer, None) => Err(StoreError::SseCustomerKeyMissing),
        (SseMode::Customer, Some(k)) => {
            let (Some(salt), Some(fp)) = (&sse.ssec_salt, &sse.ssec_fingerprint) else {
                return Err(StoreError::DataCorrupt);
            };
            if coffer_crypto::ssec_verify(&k.key, salt, fp) {
                Ok(())
            } else {
                Err(StoreError::SseCustomerKeyMismatch)
            }
        }
        (_, Some(_)) => Err(StoreError::SseNotApplicable),
        (_, None) => Ok(()),
    }
}

/// What a response says about the encryption of an object.
pub(crate) fn sse_info(r: &SseRecord) -> SseInfo {
    SseInfo {
        kind: match r.mode {
            SseMode::S3 => SseKind::S3,
            SseMode::Kms => SseKind::Kms,
            SseMode::Customer => SseKind::Customer,
        },
        kms_key_id: if r.mode == SseMode::Kms {
            r.kms_key_id.clone()
        } else {
            None
        },
        customer_key_md5: r.customer_key_md5.clone(),
        kms_context: r.kms_context.as_ref().map(|c| {
            use base64::Engine as _;
            // A map of strings always serializes.
            base64::engine::general_purpose::STANDARD
                .encode(serde_json::to_vec(c).unwrap_or_default())
        }),
        bucket_key_enabled: r.bucket_key,
    }
}

/// An object's facts for a response, with its user metadata already opened.
pub(crate) fn object_info(
    key: &str,
    rec: &ObjectRecord,
    m: &ObjectManifest,
    user: BTreeMap<String, String>,
) -> ObjectInfo {
    let mut meta = object_meta(&m.meta);
    meta.user_metadata = user;
    ObjectInfo {
        key: key.to_string(),
        size: rec.size,
        etag: rec.etag.clone(),
        last_modified_ms: rec.last_modified_ms,
        meta,
        sse: sse_info(&m.sse),
        parts_count: m.parts_count,
        part_range: None,
    }
}

/// Inclusive byte range of part `n` (1-based, in the order the parts make up the object, so
/// `1..=PartsCount` walks it whatever part numbers the upload used; a single-part object is
/// part 1); None for an empty part; InvalidPartNumber past the last.
fn part_range(m: &ObjectManifest, n: u32) -> StoreResult<Option<(u64, u64)>> {
    let idx = usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .filter(|&i| i < m.segments.len())
        .ok_or(StoreError::InvalidPartNumber)?;
    let start: u64 = m.segments[..idx].iter().map(|s| s.plain_len).sum();
    let len = m.segments[idx].plain_len;
    Ok((len > 0).then(|| (start, start + len - 1)))
}

/// What a stream of `bucket/key` is bound to (no versioning yet: every version id is `null`).
pub(crate) fn binding(bucket: &str, key: &str, part: u32) -> StreamBinding {
    StreamBinding::new(bucket, key, NULL_VERSION, part)
}

/// The user metadata of an object: sealed (manifest version 2) or plaintext (version 1).
pub(crate) fn open_user_meta(
    bucket: &str,
    key: &str,
    meta: &StoredMeta,
    oek: &SecretKey,
) -> StoreResult<BTreeMap<String, String>> {
    match &meta.user_sealed {
        None => Ok(meta.user.clone()),
        Some(blob) => sealed_meta::open(oek, &binding(bucket, key, 0), blob).map_err(|e| {
            tracing::error!(bucket, key, error = %e, "user metadata does not open");
            StoreError::DataCorrupt
        }),
    }
}

const HEADER_FIELDS: [&str; 6] = [
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
];

pub(crate) fn stored_meta(m: &ObjectMeta) -> StoredMeta {
    let values = [
        &m.content_type,
        &m.content_encoding,
        &m.content_disposition,
        &m.content_language,
        &m.cache_control,
        &m.expires,
    ];
    let headers = HEADER_FIELDS
        .iter()
        .zip(values)
        .filter_map(|(name, v)| v.clone().map(|v| (name.to_string(), v)))
        .collect();
    StoredMeta {
        headers,
        user: m.user_metadata.clone(),
        user_sealed: None,
    }
}

pub(crate) fn object_meta(s: &StoredMeta) -> ObjectMeta {
    let get = |name: &str| s.headers.get(name).cloned();
    ObjectMeta {
        content_type: get("content-type"),
        content_encoding: get("content-encoding"),
        content_disposition: get("content-disposition"),
        content_language: get("content-language"),
        cache_control: get("cache-control"),
        expires: get("expires"),
        user_metadata: s.user.clone(),
    }
}
