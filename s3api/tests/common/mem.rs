//! An in-memory `Backend` with just enough S3 semantics to exercise the HTTP layer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use coffer_s3api::*;
use futures::StreamExt as _;
use md5::{Digest as _, Md5};

#[derive(Clone)]
struct MemObject {
    data: Bytes,
    info: ObjectInfo,
    ssec: Option<[u8; 32]>,
}

struct MemBucket {
    created_ms: i64,
    enc: Option<BucketEncryption>,
    objects: BTreeMap<String, MemObject>,
}

struct Upload {
    bucket: String,
    key: String,
    meta: ObjectMeta,
    sse: SseInfo,
    ssec: Option<[u8; 32]>,
    parts: BTreeMap<u32, (Bytes, String, i64)>,
    initiated_ms: i64,
}

#[derive(Default)]
struct State {
    buckets: BTreeMap<String, MemBucket>,
    uploads: BTreeMap<String, Upload>,
    next: u64,
    clock: i64,
}

/// An in-memory backend with just enough S3 semantics to exercise the HTTP layer.
#[derive(Default)]
pub struct MemBackend {
    state: Mutex<State>,
    /// Number of put_object/upload_part calls that reached the backend.
    pub writes: AtomicU64,
    /// Makes `health` fail.
    pub unhealthy: AtomicBool,
    /// Makes every object body fail at once, as if its shards' nodes were unreachable.
    pub unreachable_data: AtomicBool,
}

const T0: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z

impl MemBackend {
    fn tick(st: &mut State) -> i64 {
        st.clock += 1000;
        T0 + st.clock
    }

    fn resolve_sse(
        enc: Option<&BucketEncryption>,
        sse: SseRequest,
    ) -> StoreResult<(SseInfo, Option<[u8; 32]>)> {
        let info = |kind, kms_key_id, customer_key_md5| SseInfo {
            kms_key_id,
            customer_key_md5,
            ..SseInfo::of(kind)
        };
        Ok(match sse {
            SseRequest::Default => match enc {
                Some(e) if e.algorithm == SseAlgorithm::AwsKms => (
                    info(
                        SseKind::Kms,
                        Some(e.kms_key_id.clone().unwrap_or("default".into())),
                        None,
                    ),
                    None,
                ),
                _ => (info(SseKind::S3, None, None), None),
            },
            SseRequest::S3 => (info(SseKind::S3, None, None), None),
            SseRequest::Kms { key_id, .. } => {
                if key_id.as_deref() == Some("missing") {
                    return Err(StoreError::KmsKeyNotFound("missing".into()));
                }
                (
                    info(SseKind::Kms, Some(key_id.unwrap_or("default".into())), None),
                    None,
                )
            }
            SseRequest::Customer(k) => (
                info(SseKind::Customer, None, Some(k.key_md5.clone())),
                Some(*k.key),
            ),
        })
    }

    fn check_ssec(stored: Option<[u8; 32]>, given: Option<&SseCustomerKey>) -> StoreResult<()> {
        match (stored, given) {
            (Some(_), None) => Err(StoreError::SseCustomerKeyMissing),
            (Some(s), Some(g)) if s != *g.key => Err(StoreError::SseCustomerKeyMismatch),
            (None, Some(_)) => Err(StoreError::SseNotApplicable),
            _ => Ok(()),
        }
    }

    async fn drain(mut body: ByteStream) -> StoreResult<Bytes> {
        let mut out = Vec::new();
        while let Some(item) = body.next().await {
            out.extend_from_slice(&item?);
        }
        Ok(Bytes::from(out))
    }

    fn object(&self, bucket: &str, key: &str) -> StoreResult<MemObject> {
        let st = self.state.lock().unwrap();
        let b = st.buckets.get(bucket).ok_or(StoreError::NoSuchBucket)?;
        b.objects.get(key).cloned().ok_or(StoreError::NoSuchKey)
    }

    /// The mem backend keeps no part boundaries: only part 1 of a single-part object exists.
    fn part_range(info: &ObjectInfo, n: u32) -> StoreResult<Option<(u64, u64)>> {
        if n != 1 || info.parts_count.is_some_and(|c| c > 1) {
            return Err(StoreError::InvalidPartNumber);
        }
        Ok((info.size > 0).then(|| (0, info.size - 1)))
    }

    /// S3's answers to a failed write condition.
    fn check_condition(
        &self,
        bucket: &str,
        key: &str,
        condition: Option<&WriteCondition>,
    ) -> StoreResult<()> {
        let current = match self.object(bucket, key) {
            Ok(o) => Some(o),
            Err(StoreError::NoSuchKey) => None,
            Err(e) => return Err(e),
        };
        match (condition, current) {
            (None, _) | (Some(WriteCondition::Absent), None) => Ok(()),
            (Some(WriteCondition::Exists | WriteCondition::EtagIs(_)), None) => {
                Err(StoreError::NoSuchKey)
            }
            (Some(WriteCondition::Exists), Some(_)) => Ok(()),
            (Some(WriteCondition::EtagIs(e)), Some(o)) if o.info.etag == *e => Ok(()),
            _ => Err(StoreError::PreconditionFailed),
        }
    }

    fn insert(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        meta: ObjectMeta,
        sse: SseRequest,
        parts: Option<u32>,
    ) -> StoreResult<PutObjectResult> {
        let mut st = self.state.lock().unwrap();
        let now = Self::tick(&mut st);
        let b = st.buckets.get_mut(bucket).ok_or(StoreError::NoSuchBucket)?;
        let (sse, ssec) = Self::resolve_sse(b.enc.as_ref(), sse)?;
        let etag = match parts {
            Some(n) => format!("{}-{n}", hex::encode(Md5::digest(&data))),
            None => hex::encode(Md5::digest(&data)),
        };
        let info = ObjectInfo {
            key: key.to_owned(),
            size: data.len() as u64,
            etag: etag.clone(),
            last_modified_ms: now,
            meta,
            sse: sse.clone(),
            parts_count: parts,
            part_range: None,
        };
        b.objects
            .insert(key.to_owned(), MemObject { data, info, ssec });
        Ok(PutObjectResult {
            etag,
            sse,
            last_modified_ms: now,
        })
    }
}

fn resolve_range(spec: RangeSpec, size: u64) -> StoreResult<(u64, u64)> {
    let bad = StoreError::InvalidRange { size };
    if size == 0 {
        return Err(bad);
    }
    match spec {
        RangeSpec::FromTo(a, b) if a < size && a <= b => Ok((a, b.min(size - 1))),
        RangeSpec::From(a) if a < size => Ok((a, size - 1)),
        RangeSpec::Suffix(n) if n > 0 => Ok((size - n.min(size), size - 1)),
        _ => Err(bad),
    }
}

#[async_trait::async_trait]
impl Backend for MemBackend {
    async fn create_bucket(&self, bucket: &str) -> StoreResult<()> {
        let mut st = self.state.lock().unwrap();
        let now = Self::tick(&mut st);
        if st.buckets.contains_key(bucket) {
            return Err(StoreError::BucketAlreadyOwnedByYou);
        }
        st.buckets.insert(
            bucket.to_owned(),
            MemBucket {
                created_ms: now,
                enc: None,
                objects: BTreeMap::new(),
            },
        );
        Ok(())
    }
    async fn head_bucket(&self, bucket: &str) -> StoreResult<()> {
        let st = self.state.lock().unwrap();
        st.buckets
            .get(bucket)
            .map(|_| ())
            .ok_or(StoreError::NoSuchBucket)
    }
    async fn delete_bucket(&self, bucket: &str) -> StoreResult<()> {
        let mut st = self.state.lock().unwrap();
        match st.buckets.get(bucket) {
            None => Err(StoreError::NoSuchBucket),
            Some(b) if !b.objects.is_empty() => Err(StoreError::BucketNotEmpty),
            Some(_) => {
                st.buckets.remove(bucket);
                Ok(())
            }
        }
    }
    async fn list_buckets(&self) -> StoreResult<Vec<BucketInfo>> {
        let st = self.state.lock().unwrap();
        Ok(st
            .buckets
            .iter()
            .map(|(n, b)| BucketInfo {
                name: n.clone(),
                created_ms: b.created_ms,
            })
            .collect())
    }
    async fn get_bucket_encryption(&self, bucket: &str) -> StoreResult<Option<BucketEncryption>> {
        let st = self.state.lock().unwrap();
        Ok(st
            .buckets
            .get(bucket)
            .ok_or(StoreError::NoSuchBucket)?
            .enc
            .clone())
    }
    async fn put_bucket_encryption(
        &self,
        bucket: &str,
        config: Option<BucketEncryption>,
    ) -> StoreResult<()> {
        let mut st = self.state.lock().unwrap();
        st.buckets
            .get_mut(bucket)
            .ok_or(StoreError::NoSuchBucket)?
            .enc = config;
        Ok(())
    }
    async fn put_object(&self, req: PutObjectRequest) -> StoreResult<PutObjectResult> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.head_bucket(&req.bucket).await?;
        self.check_condition(&req.bucket, &req.key, req.condition.as_ref())?;
        let data = Self::drain(req.body).await?;
        self.insert(&req.bucket, &req.key, data, req.meta, req.sse, None)
    }
    async fn get_object(&self, req: GetObjectRequest) -> StoreResult<GetObjectResult> {
        let obj = self.object(&req.bucket, &req.key)?;
        Self::check_ssec(obj.ssec, req.sse_customer.as_ref())?;
        let size = obj.data.len() as u64;
        let range = match req.part_number {
            Some(n) => Self::part_range(&obj.info, n)?,
            None => req.range.map(|r| resolve_range(r, size)).transpose()?,
        };
        let data = match range {
            Some((a, b)) => obj.data.slice(a as usize..=b as usize),
            None => obj.data.clone(),
        };
        let body: ByteStream = if self.unreachable_data.load(Ordering::SeqCst) {
            Box::pin(futures::stream::once(async { Err(BodyError::Unavailable) }))
        } else {
            Box::pin(futures::stream::once(async move { Ok(data) }))
        };
        Ok(GetObjectResult {
            info: obj.info,
            range,
            body,
        })
    }
    async fn head_object(
        &self,
        bucket: &str,
        key: &str,
        sse_customer: Option<SseCustomerKey>,
        part_number: Option<u32>,
    ) -> StoreResult<ObjectInfo> {
        let obj = self.object(bucket, key)?;
        Self::check_ssec(obj.ssec, sse_customer.as_ref())?;
        let mut info = obj.info;
        if let Some(n) = part_number {
            info.part_range = Self::part_range(&info, n)?;
        }
        Ok(info)
    }
    async fn delete_object(&self, bucket: &str, key: &str) -> StoreResult<()> {
        let mut st = self.state.lock().unwrap();
        st.buckets
            .get_mut(bucket)
            .ok_or(StoreError::NoSuchBucket)?
            .objects
            .remove(key);
        Ok(())
    }
    async fn copy_object(&self, req: CopyObjectRequest) -> StoreResult<PutObjectResult> {
        let src = self.object(&req.src_bucket, &req.src_key)?;
        Self::check_ssec(src.ssec, req.src_sse_customer.as_ref())?;
        if let Some(check) = &req.src_check {
            if !check.permits(&src.info.etag, src.info.last_modified_ms) {
                return Err(StoreError::PreconditionFailed);
            }
        }
        let meta = match req.metadata {
            MetadataDirective::Copy => src.info.meta.clone(),
            MetadataDirective::Replace(m) => m,
        };
        self.insert(&req.dst_bucket, &req.dst_key, src.data, meta, req.sse, None)
    }
    async fn list_objects(&self, bucket: &str, q: ListQuery) -> StoreResult<ListPage> {
        let st = self.state.lock().unwrap();
        let b = st.buckets.get(bucket).ok_or(StoreError::NoSuchBucket)?;
        let mut page = ListPage::default();
        let mut count = 0;
        let mut last_prefix: Option<String> = None;
        for (key, obj) in &b.objects {
            if !key.starts_with(&q.prefix) {
                continue;
            }
            let rest = &key[q.prefix.len()..];
            let item = match q
                .delimiter
                .as_deref()
                .and_then(|d| rest.find(d).map(|i| (d, i)))
            {
                Some((d, i)) => Err(format!("{}{}", q.prefix, &rest[..i + d.len()])),
                None => Ok(key.clone()),
            };
            let name = match &item {
                Ok(k) => k.clone(),
                Err(p) => p.clone(),
            };
            if q.start_after.as_deref().is_some_and(|s| name.as_str() <= s) {
                continue;
            }
            if item.is_err() && last_prefix.as_deref() == Some(name.as_str()) {
                continue;
            }
            if count == q.max_keys {
                page.is_truncated = true;
                break;
            }
            count += 1;
            page.next_marker = Some(name.clone());
            match item {
                Ok(_) => page.objects.push(ObjectSummary {
                    key: key.clone(),
                    size: obj.info.size,
                    etag: obj.info.etag.clone(),
                    last_modified_ms: obj.info.last_modified_ms,
                }),
                Err(p) => {
                    last_prefix = Some(p.clone());
                    page.common_prefixes.push(p);
                }
            }
        }
        Ok(page)
    }
    async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
        sse: SseRequest,
    ) -> StoreResult<UploadCreated> {
        let mut st = self.state.lock().unwrap();
        let now = Self::tick(&mut st);
        let b = st.buckets.get(bucket).ok_or(StoreError::NoSuchBucket)?;
        let (sse, ssec) = Self::resolve_sse(b.enc.as_ref(), sse)?;
        let echo = sse.clone();
        st.next += 1;
        let id = format!("upload-{}", st.next);
        st.uploads.insert(
            id.clone(),
            Upload {
                bucket: bucket.into(),
                key: key.into(),
                meta,
                sse,
                ssec,
                parts: BTreeMap::new(),
                initiated_ms: now,
            },
        );
        Ok(UploadCreated {
            upload_id: id,
            sse: echo,
        })
    }
    async fn upload_part_copy(&self, _req: UploadPartCopyRequest) -> StoreResult<PartInfo> {
        Err(StoreError::Internal(
            "the in-memory backend does not copy parts".into(),
        ))
    }
    async fn upload_part(
        &self,
        upload_id: &str,
        part_number: u32,
        req: PutObjectRequest,
    ) -> StoreResult<PartInfo> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let data = Self::drain(req.body).await?;
        let mut st = self.state.lock().unwrap();
        let now = Self::tick(&mut st);
        let up = st
            .uploads
            .get_mut(upload_id)
            .ok_or(StoreError::NoSuchUpload)?;
        let given = match &req.sse {
            SseRequest::Customer(k) => Some(k),
            _ => None,
        };
        Self::check_ssec(up.ssec, given)?;
        let etag = hex::encode(Md5::digest(&data));
        let size = data.len() as u64;
        up.parts.insert(part_number, (data, etag.clone(), now));
        Ok(PartInfo {
            part_number,
            etag,
            size,
            last_modified_ms: now,
            sse: Some(up.sse.clone()),
        })
    }
    async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<(u32, String)>,
        condition: Option<WriteCondition>,
    ) -> StoreResult<PutObjectResult> {
        self.check_condition(bucket, key, condition.as_ref())?;
        let up = {
            let mut st = self.state.lock().unwrap();
            st.uploads
                .remove(upload_id)
                .ok_or(StoreError::NoSuchUpload)?
        };
        if up.bucket != bucket || up.key != key {
            return Err(StoreError::NoSuchUpload);
        }
        let mut data = Vec::new();
        let mut prev = 0;
        for (n, etag) in &parts {
            if *n <= prev {
                return Err(StoreError::InvalidPartOrder);
            }
            prev = *n;
            match up.parts.get(n) {
                Some((d, e, _)) if e == etag => data.extend_from_slice(d),
                _ => return Err(StoreError::InvalidPart),
            }
        }
        let sse = match up.ssec {
            Some(k) => SseRequest::Customer(SseCustomerKey {
                key: zeroize::Zeroizing::new(k),
                key_md5: up.sse.customer_key_md5.clone().unwrap_or_default(),
            }),
            None if up.sse.kind == SseKind::Kms => SseRequest::Kms {
                key_id: up.sse.kms_key_id.clone(),
                context: None,
                bucket_key: None,
            },
            None => SseRequest::S3,
        };
        self.insert(
            bucket,
            key,
            Bytes::from(data),
            up.meta,
            sse,
            Some(parts.len() as u32),
        )
    }
    async fn abort_multipart_upload(
        &self,
        _bucket: &str,
        _key: &str,
        upload_id: &str,
    ) -> StoreResult<()> {
        let mut st = self.state.lock().unwrap();
        st.uploads
            .remove(upload_id)
            .map(|_| ())
            .ok_or(StoreError::NoSuchUpload)
    }
    async fn list_parts(
        &self,
        _bucket: &str,
        _key: &str,
        upload_id: &str,
        marker: u32,
        max: usize,
    ) -> StoreResult<(Vec<PartInfo>, bool)> {
        let st = self.state.lock().unwrap();
        let up = st.uploads.get(upload_id).ok_or(StoreError::NoSuchUpload)?;
        let all: Vec<PartInfo> = up
            .parts
            .range(marker + 1..)
            .map(|(n, (d, e, t))| PartInfo {
                part_number: *n,
                etag: e.clone(),
                size: d.len() as u64,
                last_modified_ms: *t,
                sse: None,
            })
            .collect();
        let truncated = all.len() > max;
        Ok((all.into_iter().take(max).collect(), truncated))
    }
    async fn list_multipart_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        marker: Option<(&str, Option<&str>)>,
        max: usize,
    ) -> StoreResult<(Vec<UploadInfo>, bool)> {
        let st = self.state.lock().unwrap();
        let mut all: Vec<UploadInfo> = st
            .uploads
            .iter()
            .filter(|(_, u)| u.bucket == bucket && u.key.starts_with(prefix))
            .map(|(id, u)| UploadInfo {
                key: u.key.clone(),
                upload_id: id.clone(),
                initiated_ms: u.initiated_ms,
            })
            .filter(|u| match marker {
                None => true,
                Some((k, None)) => u.key.as_str() > k,
                Some((k, Some(id))) => (u.key.as_str(), u.upload_id.as_str()) > (k, id),
            })
            .collect();
        all.sort_by(|a, b| (&a.key, &a.upload_id).cmp(&(&b.key, &b.upload_id)));
        let truncated = all.len() > max;
        Ok((all.into_iter().take(max).collect(), truncated))
    }
    async fn admin_kms(&self, req: KmsAdminRequest) -> StoreResult<serde_json::Value> {
        // Enough of a KMS to exercise the admin routes: one fixed key.
        match req {
            KmsAdminRequest::Status => {
                Ok(serde_json::json!({ "provider": "mem", "healthy": true }))
            }
            KmsAdminRequest::ListKeys => Ok(serde_json::json!({ "keys": ["k1"] })),
            KmsAdminRequest::CreateKey(id) if id == "k1" => Err(StoreError::Conflict),
            KmsAdminRequest::CreateKey(id) => Ok(serde_json::json!({ "key_id": id })),
            KmsAdminRequest::DescribeKey(id) | KmsAdminRequest::RotateKey(id) if id != "k1" => {
                Err(StoreError::KmsKeyNotFound(id))
            }
            KmsAdminRequest::DescribeKey(id) => {
                Ok(serde_json::json!({ "key_id": id, "current_version": 1 }))
            }
            KmsAdminRequest::RotateKey(_) => {
                Err(StoreError::NotImplemented("mem cannot rotate".into()))
            }
        }
    }
    async fn health(&self) -> StoreResult<serde_json::Value> {
        if self.unhealthy.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable);
        }
        Ok(serde_json::json!({ "status": "ok" }))
    }
    async fn admin_object(&self, bucket: &str, key: &str) -> StoreResult<serde_json::Value> {
        let st = self.state.lock().unwrap();
        let b = st.buckets.get(bucket).ok_or(StoreError::NoSuchBucket)?;
        let o = b.objects.get(key).ok_or(StoreError::NoSuchKey)?;
        Ok(serde_json::json!({ "bucket": bucket, "key": key, "size": o.info.size }))
    }
    async fn admin_upload(&self, bucket: &str, upload_id: &str) -> StoreResult<serde_json::Value> {
        let st = self.state.lock().unwrap();
        let up = st
            .uploads
            .get(upload_id)
            .filter(|u| u.bucket == bucket)
            .ok_or(StoreError::NoSuchUpload)?;
        Ok(serde_json::json!({ "bucket": bucket, "key": up.key, "upload_id": upload_id }))
    }
}
