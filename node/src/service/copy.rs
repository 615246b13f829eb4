//! CopyObject: a copy onto itself that only changes how the object key is protected re-seals
//! that key and keeps the data; every other copy re-encrypts under the destination's settings.

use coffer_metadata::ObjectPrecondition;
use coffer_s3api::backend::{
    CopyObjectRequest, GetObjectRequest, MetadataDirective, PutObjectRequest, PutObjectResult,
    SourceCheck, SseRequest, StoreError, StoreResult,
};

use super::objects::{check_customer_key, Reuse};
use super::NodeService;
use crate::keys::KeyService;
use crate::manifest::{self, ObjectManifest, SseMode};

impl NodeService {
    pub(crate) async fn copy_object_impl(
        &self,
        req: CopyObjectRequest,
    ) -> StoreResult<PutObjectResult> {
        if req.src_bucket == req.dst_bucket && req.src_key == req.dst_key {
            if let Some(done) = self.try_reseal_in_place(&req).await? {
                return Ok(done);
            }
        }
        let src = self
            .get_object_impl(GetObjectRequest {
                bucket: req.src_bucket.clone(),
                key: req.src_key.clone(),
                range: None,
                part_number: None,
                sse_customer: req.src_sse_customer,
            })
            .await?;
        Self::check_source(
            req.src_check.as_ref(),
            &src.info.etag,
            src.info.last_modified_ms,
        )?;
        let meta = match req.metadata {
            MetadataDirective::Copy => src.info.meta.clone(),
            MetadataDirective::Replace(m) => m,
        };
        self.put_object_impl(PutObjectRequest {
            bucket: req.dst_bucket,
            key: req.dst_key,
            body: src.body,
            content_length: Some(src.info.size),
            meta,
            sse: req.sse,
            condition: None,
        })
        .await
    }

    /// A copy of an object onto itself that only changes how its key is protected (a new SSE-C
    /// key, SSE-S3 to SSE-KMS, another KMS key) or its metadata: the object key is re-sealed and
    /// the data stays where it is. `None` when the data must be rewritten instead (going to
    /// SSE-S3 from another mode needs the plaintext MD5 for the ETag).
    async fn try_reseal_in_place(
        &self,
        req: &CopyObjectRequest,
    ) -> StoreResult<Option<PutObjectResult>> {
        let bucket = self.require_bucket(&req.dst_bucket).await?;
        let (rec, m) = self.load_object(&req.src_bucket, &req.src_key).await?;
        check_customer_key(&m.sse, req.src_sse_customer.as_ref())?;
        Self::check_source(req.src_check.as_ref(), &rec.etag, rec.last_modified_ms)?;
        let mut spec = Self::resolve_sse(&bucket, &req.sse);
        if spec.mode == SseMode::S3 && m.sse.mode != SseMode::S3 {
            return Ok(None);
        }
        // The data stays sealed with the cipher it was written with.
        spec.suite = KeyService::suite_of(&m.sse)?;
        let (bkt, key) = (req.dst_bucket.as_str(), req.dst_key.as_str());
        let oek = self
            .keys
            .open(bkt, key, &m.sse, req.src_sse_customer.as_ref())
            .await?;
        let customer = match &req.sse {
            SseRequest::Customer(c) => Some(c),
            _ => None,
        };
        let record = self
            .keys
            .reseal(bkt, key, spec, customer, oek.clone())
            .await?;
        let meta = match &req.metadata {
            // The sealed metadata is bound to the object key and name, both unchanged.
            MetadataDirective::Copy => m.meta.clone(),
            MetadataDirective::Replace(new) => self.seal_meta(bkt, key, new, &oek, &record)?,
        };
        let etag =
            if record.mode != SseMode::S3 && m.sse.mode == SseMode::S3 && m.parts_count.is_none() {
                // The old ETag was the plaintext MD5, which a KMS or SSE-C object must not reveal.
                hex::encode(self.random::<16>())
            } else {
                rec.etag.clone()
            };
        let new = ObjectManifest {
            version: manifest::MANIFEST_VERSION,
            meta,
            sse: record,
            segments: m.segments,
            parts_count: m.parts_count,
        };
        // Only if nobody replaced the object since it was read: otherwise this manifest would
        // point at segments the other writer's commit has already discarded.
        let unchanged = ObjectPrecondition::unchanged(&rec);
        self.commit_object_if(bkt, key, new, etag, Some((unchanged, Reuse::OldData)))
            .await
            .map(Some)
    }

    /// Applies the copy-source conditions to the version being copied.
    fn check_source(check: Option<&SourceCheck>, etag: &str, modified_ms: i64) -> StoreResult<()> {
        match check {
            Some(c) if !c.permits(etag, modified_ms) => Err(StoreError::PreconditionFailed),
            _ => Ok(()),
        }
    }
}
