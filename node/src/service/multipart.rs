//! Multipart uploads. The object key is sealed once at creation; every part is its own stream
//! with a fresh random salt, so each upload attempt of a part gets its own part key and nonce
//! prefix and re-uploading a part never reuses a (key, nonce) pair.

use coffer_metadata::{PartRecord, UploadRecord};
use coffer_s3api::backend::{
    ByteStream, GetObjectRequest, ObjectMeta, PartInfo, PutObjectRequest, PutObjectResult,
    RangeSpec, SseCustomerKey, SseRequest, StoreError, StoreResult, UploadCreated,
    UploadPartCopyRequest, WriteCondition,
};
use md5::{Digest, Md5};

use super::objects::{check_customer_key, sse_info};
use super::{meta_error, NodeService};
use crate::manifest::{self, ObjectManifest, PartManifest, UploadManifest};

/// Smallest non-final part S3 accepts.
const MIN_PART_SIZE: u64 = 5 << 20;
/// Highest part number.
const MAX_PART_NUMBER: u32 = 10_000;

fn check_part_number(n: u32) -> StoreResult<()> {
    if (1..=MAX_PART_NUMBER).contains(&n) {
        Ok(())
    } else {
        Err(StoreError::InvalidArgument(format!(
            "Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive"
        )))
    }
}

impl NodeService {
    pub(crate) async fn load_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> StoreResult<(UploadRecord, UploadManifest)> {
        let up = self.meta.get_upload(upload_id).await.map_err(meta_error)?;
        let up = up
            .filter(|u| u.bucket == bucket && u.key == key)
            .ok_or(StoreError::NoSuchUpload)?;
        let m = manifest::decode_upload(&up.manifest).map_err(|_| StoreError::DataCorrupt)?;
        Ok((up, m))
    }

    pub(crate) async fn create_upload_impl(
        &self,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
        sse: SseRequest,
    ) -> StoreResult<UploadCreated> {
        let rec = self.require_bucket(bucket).await?;
        let spec = Self::resolve_sse(&rec, &sse);
        let customer = match &sse {
            SseRequest::Customer(c) => Some(c),
            _ => None,
        };
        let sealed = self.keys.seal_new(bucket, key, spec, customer).await?;
        let upload_id = hex::encode(self.random::<24>());
        // Sealed with the object's binding: the upload's metadata becomes the object's.
        let stored = self.seal_meta(bucket, key, &meta, &sealed.oek, &sealed.record)?;
        let info = sse_info(&sealed.record);
        let m = UploadManifest {
            version: manifest::MANIFEST_VERSION,
            meta: stored,
            sse: sealed.record,
        };
        self.meta
            .create_upload(UploadRecord {
                bucket: bucket.to_string(),
                key: key.to_string(),
                upload_id: upload_id.clone(),
                initiated_ms: self.clock.now_ms(),
                manifest: manifest::encode(&m),
            })
            .await
            .map_err(meta_error)?;
        Ok(UploadCreated {
            upload_id,
            sse: info,
        })
    }

    pub(crate) async fn upload_part_impl(
        &self,
        upload_id: &str,
        part_number: u32,
        req: PutObjectRequest,
    ) -> StoreResult<PartInfo> {
        let customer = match &req.sse {
            SseRequest::Customer(c) => Some(c),
            _ => None,
        };
        self.store_part(
            &req.bucket,
            &req.key,
            upload_id,
            part_number,
            customer,
            req.body,
            req.content_length,
        )
        .await
    }

    pub(crate) async fn upload_part_copy_impl(
        &self,
        req: UploadPartCopyRequest,
    ) -> StoreResult<PartInfo> {
        check_part_number(req.part_number)?;
        // Refuse a bad upload or key before reading any source data.
        let (_, um) = self
            .load_upload(&req.bucket, &req.key, &req.upload_id)
            .await?;
        check_customer_key(&um.sse, req.sse_customer.as_ref())?;
        let (src_rec, _) = self.load_object(&req.src_bucket, &req.src_key).await?;
        let range = match req.src_range {
            None => None,
            Some((first, last)) if last < src_rec.size => Some(RangeSpec::FromTo(first, last)),
            Some(_) => {
                return Err(StoreError::InvalidArgument(format!(
                    "Range specified is not valid for source object of size: {}",
                    src_rec.size
                )))
            }
        };
        let src = self
            .get_object_impl(GetObjectRequest {
                bucket: req.src_bucket.clone(),
                key: req.src_key.clone(),
                range,
                part_number: None,
                sse_customer: req.src_sse_customer,
            })
            .await?;
        let len = match src.range {
            Some((a, b)) => b - a + 1,
            None => src.info.size,
        };
        self.store_part(
            &req.bucket,
            &req.key,
            &req.upload_id,
            req.part_number,
            req.sse_customer.as_ref(),
            src.body,
            Some(len),
        )
        .await
    }

    /// Encrypts `body` as part `part_number` under the upload's object key, in a stream of its
    /// own (fresh salt: a re-uploaded part never reuses a key or nonce), and records it.
    #[allow(clippy::too_many_arguments)]
    async fn store_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        customer: Option<&SseCustomerKey>,
        body: ByteStream,
        content_length: Option<u64>,
    ) -> StoreResult<PartInfo> {
        check_part_number(part_number)?;
        let (_, um) = self.load_upload(bucket, key, upload_id).await?;
        check_customer_key(&um.sse, customer)?;
        let oek = self.keys.open(bucket, key, &um.sse, customer).await?;
        let written = self
            .write_body(
                bucket,
                key,
                part_number,
                body,
                content_length,
                &oek,
                &um.sse,
            )
            .await?;
        let etag = self.segment_etag(&written);
        let now = self.clock.now_ms();
        let size = written.segment.plain_len;
        let pm = PartManifest {
            version: manifest::MANIFEST_VERSION,
            md5: etag.clone(),
            segment: written.segment,
        };
        let rec = PartRecord {
            part_number,
            size,
            etag: etag.clone(),
            last_modified_ms: now,
            manifest: manifest::encode(&pm),
        };
        match self.meta.put_part(upload_id, rec).await {
            Ok(prev) => {
                if let Some(prev) = prev {
                    self.discard_part(&prev);
                }
                Ok(PartInfo {
                    part_number,
                    etag,
                    size,
                    last_modified_ms: now,
                    sse: Some(sse_info(&um.sse)),
                })
            }
            Err(e) => {
                // As for objects: an unknown outcome keeps the data for the orphan sweep.
                if e.is_definite() {
                    self.discard_segments(std::slice::from_ref(&pm.segment));
                }
                Err(meta_error(e))
            }
        }
    }

    fn discard_part(&self, part: &PartRecord) {
        if let Ok(pm) = manifest::decode_part(&part.manifest) {
            self.discard_segments(std::slice::from_ref(&pm.segment));
        }
    }

    pub(crate) async fn complete_upload_impl(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        requested: Vec<(u32, String)>,
        condition: Option<WriteCondition>,
    ) -> StoreResult<PutObjectResult> {
        let (_, um) = self.load_upload(bucket, key, upload_id).await?;
        self.check_condition(bucket, key, condition.as_ref())
            .await?;
        if requested.is_empty() {
            return Err(StoreError::InvalidArgument(
                "You must specify at least one part".to_string(),
            ));
        }
        if requested.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(StoreError::InvalidPartOrder);
        }
        let stored = self
            .meta
            .list_parts(upload_id, 0, MAX_PART_NUMBER as usize + 1)
            .await
            .map_err(meta_error)?;
        let mut segments = Vec::with_capacity(requested.len());
        let mut md5s = Md5::new();
        let last = requested.len() - 1;
        for (i, (number, etag)) in requested.iter().enumerate() {
            let part = stored
                .iter()
                .find(|p| p.part_number == *number)
                .filter(|p| p.etag == etag.trim_matches('"'))
                .ok_or(StoreError::InvalidPart)?;
            if i < last && part.size < MIN_PART_SIZE {
                return Err(StoreError::EntityTooSmall);
            }
            let pm = manifest::decode_part(&part.manifest).map_err(|_| StoreError::DataCorrupt)?;
            md5s.update(hex::decode(&pm.md5).map_err(|_| StoreError::DataCorrupt)?);
            segments.push(pm.segment);
        }
        let etag = format!("{}-{}", hex::encode(md5s.finalize()), requested.len());
        let m = ObjectManifest {
            version: manifest::MANIFEST_VERSION,
            meta: um.meta,
            sse: um.sse,
            segments,
            parts_count: Some(requested.len() as u32),
        };
        let now = self.clock.now_ms();
        let rec = coffer_metadata::ObjectRecord {
            size: m.segments.iter().map(|s| s.plain_len).sum(),
            etag: etag.clone(),
            last_modified_ms: now,
            manifest: manifest::encode(&m),
        };
        let used = requested.iter().map(|(n, _)| *n).collect();
        let outcome = self
            .meta
            .complete_upload_if(
                upload_id,
                rec,
                used,
                condition.as_ref().map(super::conditions::precondition),
            )
            .await
            .map_err(meta_error)?;
        if let Some(prev) = outcome.previous {
            self.discard_object(&prev);
        }
        for p in &outcome.discarded_parts {
            self.discard_part(p);
        }
        Ok(PutObjectResult {
            etag,
            sse: sse_info(&m.sse),
            last_modified_ms: now,
        })
    }

    pub(crate) async fn abort_upload_impl(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> StoreResult<()> {
        self.load_upload(bucket, key, upload_id).await?;
        let parts = self
            .meta
            .abort_upload(upload_id)
            .await
            .map_err(meta_error)?;
        for p in &parts {
            self.discard_part(p);
        }
        Ok(())
    }

    pub(crate) async fn list_parts_impl(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        marker: u32,
        max: usize,
    ) -> StoreResult<(Vec<PartInfo>, bool)> {
        self.load_upload(bucket, key, upload_id).await?;
        let mut parts = self
            .meta
            .list_parts(upload_id, marker, max.saturating_add(1))
            .await
            .map_err(meta_error)?;
        let truncated = parts.len() > max;
        parts.truncate(max);
        Ok((
            parts
                .into_iter()
                .map(|p| PartInfo {
                    part_number: p.part_number,
                    etag: p.etag,
                    size: p.size,
                    last_modified_ms: p.last_modified_ms,
                    sse: None,
                })
                .collect(),
            truncated,
        ))
    }
}
