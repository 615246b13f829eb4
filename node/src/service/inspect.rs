//! The admin API's view of how an object or upload is stored: encryption facts and segment
//! layout. It names keys only by one-way check values, so equal part keys can be told apart
//! from different ones (re-uploaded parts must differ) without exposing a key.

use serde_json::{json, Value};

use coffer_crypto::SecretKey;
use coffer_s3api::backend::{StoreError, StoreResult};

use super::objects::binding;
use super::NodeService;
use crate::keys::KeyService;
use crate::manifest::{self, Segment, SseMode, SseRecord};

fn mode_name(mode: SseMode) -> &'static str {
    match mode {
        SseMode::S3 => "AES256",
        SseMode::Kms => "aws:kms",
        SseMode::Customer => "SSE-C",
    }
}

fn cipher_name(record: &SseRecord) -> &'static str {
    match KeyService::suite_of(record) {
        Ok(coffer_crypto::CipherSuite::ChaCha20Poly1305) => "CHACHA20-POLY1305",
        _ => "AES256",
    }
}

impl NodeService {
    /// The object key, when the node can open it without the client (not SSE-C).
    async fn inspect_key(&self, bucket: &str, key: &str, sse: &SseRecord) -> Option<SecretKey> {
        if sse.mode == SseMode::Customer {
            return None;
        }
        match self.keys.open(bucket, key, sse, None).await {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::warn!(bucket, key, error = %e, "inspect: object key does not open");
                None
            }
        }
    }

    fn segment_json(
        bucket: &str,
        key: &str,
        seg: &Segment,
        sse: &SseRecord,
        oek: Option<&SecretKey>,
    ) -> Value {
        let stream_key = oek.and_then(|oek| {
            let salt: [u8; 32] = seg.salt.as_slice().try_into().ok()?;
            let suite = KeyService::suite_of(sse).ok()?;
            coffer_crypto::derive_stream_key_for(
                seg.stream_version,
                oek,
                suite,
                &salt,
                &binding(bucket, key, seg.part),
            )
            .ok()
        });
        json!({
            "part": seg.part,
            "data_id": seg.data_id,
            "plain_len": seg.plain_len,
            "sealed_len": seg.sealed_len,
            "stream_version": seg.stream_version,
            "erasure": format!("{}+{}", seg.data, seg.parity),
            "nonce_prefix": stream_key.as_ref().map(|k| hex::encode(k.nonce_prefix())),
            "key_check": stream_key.as_ref().map(|k| hex::encode(k.key_check())),
        })
    }

    pub(crate) async fn inspect_object(&self, bucket: &str, key: &str) -> StoreResult<Value> {
        let (rec, m) = self.load_object(bucket, key).await?;
        let oek = self.inspect_key(bucket, key, &m.sse).await;
        let kms_key_version = match &m.sse.wrapped_data_key {
            Some(w) => self.keys.wrapped_key_version(w).await.ok().flatten(),
            None => None,
        };
        let segments: Vec<Value> = m
            .segments
            .iter()
            .map(|s| Self::segment_json(bucket, key, s, &m.sse, oek.as_ref()))
            .collect();
        Ok(json!({
            "bucket": bucket,
            "key": key,
            "size": rec.size,
            "etag": rec.etag,
            "manifest_version": m.version,
            "sse": mode_name(m.sse.mode),
            "cipher": cipher_name(&m.sse),
            "kms_key_id": m.sse.kms_key_id,
            "kms_key_version": kms_key_version,
            "bucket_key_enabled": m.sse.bucket_key,
            "user_metadata_sealed": m.meta.user_sealed.is_some(),
            "parts_count": m.parts_count,
            "segments": segments,
        }))
    }

    pub(crate) async fn inspect_upload(&self, bucket: &str, upload_id: &str) -> StoreResult<Value> {
        let up = self
            .meta
            .get_upload(upload_id)
            .await
            .map_err(super::meta_error)?
            .filter(|u| u.bucket == bucket)
            .ok_or(StoreError::NoSuchUpload)?;
        let um = manifest::decode_upload(&up.manifest).map_err(|_| StoreError::DataCorrupt)?;
        let oek = self.inspect_key(bucket, &up.key, &um.sse).await;
        let parts = self
            .meta
            .list_parts(upload_id, 0, 10_001)
            .await
            .map_err(super::meta_error)?;
        let mut out = Vec::with_capacity(parts.len());
        for p in parts {
            let pm = manifest::decode_part(&p.manifest).map_err(|_| StoreError::DataCorrupt)?;
            let mut v = Self::segment_json(bucket, &up.key, &pm.segment, &um.sse, oek.as_ref());
            v["part"] = json!(p.part_number);
            v["size"] = json!(p.size);
            v["etag"] = json!(p.etag);
            out.push(v);
        }
        Ok(json!({
            "bucket": bucket,
            "key": up.key,
            "upload_id": upload_id,
            "sse": mode_name(um.sse.mode),
            "cipher": cipher_name(&um.sse),
            "kms_key_id": um.sse.kms_key_id,
            "parts": out,
        }))
    }
}
