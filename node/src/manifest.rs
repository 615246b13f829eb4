//! The object manifest: what the node stores in Raft for each object, upload and part.
//! Layout and versioning are documented in docs/format/manifest.md. Holds wrapped keys only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Current manifest version; a change bumps it and keeps old versions readable.
///
/// Version 2 added the stream version and part number of segments, sealed user metadata, the
/// SSE-KMS context and the bucket-key flag; every new field has a default, so version-1
/// manifests read as before.
///
/// Version 3 added `nodes` to segments (the node holding each shard, in a cluster); absent,
/// every shard is on the reading node's own drives, as in versions 1 and 2.
pub const MANIFEST_VERSION: u8 = 3;
/// Oldest manifest version this build reads.
pub const OLDEST_MANIFEST_VERSION: u8 = 1;

/// How an object's key is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SseMode {
    /// SSE-S3: a data key from the cluster's default KMS key.
    S3,
    /// SSE-KMS: a data key from a named KMS key.
    Kms,
    /// SSE-C: the client's key.
    Customer,
}

impl SseMode {
    /// Label bound into key derivation, so a key sealed for one mode never opens as another.
    pub fn label(self) -> &'static str {
        match self {
            Self::S3 => "SSE-S3",
            Self::Kms => "SSE-KMS",
            Self::Customer => "SSE-C",
        }
    }
}

/// The encryption record of an object or upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SseRecord {
    /// SSE mode.
    pub mode: SseMode,
    /// Cipher suite id (see docs/format/stream.md).
    pub cipher: u8,
    /// KMS key that wrapped the data key (S3 and KMS modes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// The KMS-wrapped data key (S3 and KMS modes).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_hex")]
    pub wrapped_data_key: Option<Vec<u8>>,
    /// The object key sealed under the key-encryption key.
    #[serde(with = "hex_bytes")]
    pub sealed_oek: Vec<u8>,
    /// SSE-C: salt of the key fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_hex")]
    pub ssec_salt: Option<Vec<u8>>,
    /// SSE-C: keyed fingerprint of the client key (never the key, never its plain MD5).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_hex")]
    pub ssec_fingerprint: Option<Vec<u8>>,
    /// SSE-C: the MD5 the client sent, echoed back in responses as S3 does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_key_md5: Option<String>,
    /// SSE-KMS: the client's encryption context, bound into the KMS context of the data key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_context: Option<BTreeMap<String, String>>,
    /// SSE-KMS: the data key is a cached S3 Bucket Key (shared by many objects).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bucket_key: bool,
}

/// Headers stored with the object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredMeta {
    /// Standard headers (content-type, cache-control, ...), by lower-case name.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `x-amz-meta-*` without the prefix, in plaintext: only in version-1 manifests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, String>,
    /// `x-amz-meta-*` sealed under the object key (docs/format/object-encryption.md).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_hex")]
    pub user_sealed: Option<Vec<u8>>,
}

/// One encrypted, erasure-coded data stream: a whole object or one multipart part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// Names the shard files.
    pub data_id: String,
    /// Plaintext bytes.
    pub plain_len: u64,
    /// Sealed (ciphertext) bytes, the length the erasure layer sees.
    pub sealed_len: u64,
    /// Per-segment random salt of the stream key.
    #[serde(with = "hex_bytes")]
    pub salt: Vec<u8>,
    /// Reed-Solomon codec id.
    pub codec: String,
    /// Data shards.
    pub data: usize,
    /// Parity shards.
    pub parity: usize,
    /// Erasure block size.
    pub block_size: usize,
    /// Drive index holding shard i (on node `nodes[i]` in a cluster).
    pub drives: Vec<usize>,
    /// Node id holding shard i; empty when all shards are on the node's own drives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<u64>,
    /// Stream format version of the sealed data (1 for segments written before version 2).
    #[serde(default = "stream_v1")]
    pub stream_version: u8,
    /// Part number bound into the stream (0 for a single-part object).
    #[serde(default)]
    pub part: u32,
}

fn stream_v1() -> u8 {
    1
}

/// The manifest of a complete object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectManifest {
    /// Format version.
    pub version: u8,
    /// Stored headers.
    pub meta: StoredMeta,
    /// Encryption.
    pub sse: SseRecord,
    /// Data, in order.
    pub segments: Vec<Segment>,
    /// Number of parts for a multipart object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts_count: Option<u32>,
}

/// The manifest of an upload in progress: its key is fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadManifest {
    /// Format version.
    pub version: u8,
    /// Headers for the final object.
    pub meta: StoredMeta,
    /// Encryption shared by every part.
    pub sse: SseRecord,
}

/// The manifest of one uploaded part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartManifest {
    /// Format version.
    pub version: u8,
    /// The part's ETag bytes (hex): the MD5 of its plaintext for SSE-S3, random otherwise;
    /// the multipart ETag is the MD5 of these.
    pub md5: String,
    /// The part's data.
    pub segment: Segment,
}

/// Manifest (de)serialization failures.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Bytes did not parse.
    #[error("manifest does not parse: {0}")]
    Parse(#[from] serde_json::Error),
    /// Written by a newer release.
    #[error("manifest version {0} is not supported")]
    Version(u8),
}

/// Encodes any manifest type.
pub fn encode<T: Serialize>(m: &T) -> Vec<u8> {
    // Serializing plain structs of strings and numbers cannot fail.
    serde_json::to_vec(m).unwrap_or_default()
}

/// Decodes an object manifest.
pub fn decode_object(bytes: &[u8]) -> Result<ObjectManifest, ManifestError> {
    let m: ObjectManifest = serde_json::from_slice(bytes)?;
    check_version(m.version)?;
    Ok(m)
}

/// Decodes an upload manifest.
pub fn decode_upload(bytes: &[u8]) -> Result<UploadManifest, ManifestError> {
    let m: UploadManifest = serde_json::from_slice(bytes)?;
    check_version(m.version)?;
    Ok(m)
}

/// Decodes a part manifest.
pub fn decode_part(bytes: &[u8]) -> Result<PartManifest, ManifestError> {
    let m: PartManifest = serde_json::from_slice(bytes)?;
    check_version(m.version)?;
    Ok(m)
}

fn check_version(v: u8) -> Result<(), ManifestError> {
    if (OLDEST_MANIFEST_VERSION..=MANIFEST_VERSION).contains(&v) {
        Ok(())
    } else {
        Err(ManifestError::Version(v))
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

mod opt_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| hex::decode(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest exactly as version 1 wrote it (plaintext user metadata, no stream version).
    const V1_MANIFEST: &str = r#"{"version":1,"meta":{"headers":{"content-type":"text/plain"},"user":{"color":"blue"}},"sse":{"mode":"S3","cipher":1,"kms_key_id":"coffer-default","wrapped_data_key":"0102","sealed_oek":"03"},"segments":[{"data_id":"00000000000000000000000000000000","plain_len":1,"sealed_len":17,"salt":"0000000000000000000000000000000000000000000000000000000000000000","codec":"rs-gf8-v1","data":1,"parity":0,"block_size":1048576,"drives":[0]}]}"#;

    #[test]
    fn cluster_segments_name_their_nodes() {
        let seg = Segment {
            data_id: "00".repeat(16),
            plain_len: 1,
            sealed_len: 17,
            salt: vec![0; 32],
            codec: "rs-gf8-v1".into(),
            data: 1,
            parity: 1,
            block_size: 1 << 20,
            drives: vec![0, 0],
            nodes: vec![4, 1],
            stream_version: 2,
            part: 0,
        };
        let text = serde_json::to_string(&seg).unwrap();
        assert!(text.contains("\"nodes\":[4,1]"), "{text}");
        let back: Segment = serde_json::from_str(&text).unwrap();
        assert_eq!(back, seg);
        // Single-node segments carry no `nodes` at all.
        let local = Segment {
            nodes: vec![],
            ..seg
        };
        let text = serde_json::to_string(&local).unwrap();
        assert!(!text.contains("nodes"), "{text}");
        let back: Segment = serde_json::from_str(&text).unwrap();
        assert!(back.nodes.is_empty());
    }

    #[test]
    fn version_1_manifests_stay_readable() {
        let m = decode_object(V1_MANIFEST.as_bytes()).unwrap();
        assert_eq!(m.version, 1);
        assert_eq!(m.segments[0].stream_version, 1);
        assert_eq!(m.segments[0].part, 0);
        assert_eq!(m.meta.user.get("color").map(String::as_str), Some("blue"));
        assert!(m.meta.user_sealed.is_none());
        assert!(!m.sse.bucket_key);
    }

    #[test]
    fn object_manifest_round_trips_and_pins_field_names() {
        let m = ObjectManifest {
            version: MANIFEST_VERSION,
            meta: StoredMeta::default(),
            sse: SseRecord {
                mode: SseMode::S3,
                cipher: 1,
                kms_key_id: Some("coffer-default".into()),
                wrapped_data_key: Some(vec![1, 2]),
                sealed_oek: vec![3],
                ssec_salt: None,
                ssec_fingerprint: None,
                customer_key_md5: None,
                kms_context: None,
                bucket_key: false,
            },
            segments: vec![Segment {
                data_id: "00".repeat(16),
                plain_len: 1,
                sealed_len: 17,
                salt: vec![0; 32],
                codec: "rs-gf8-v1".into(),
                data: 1,
                parity: 0,
                block_size: 1 << 20,
                drives: vec![0],
                nodes: vec![],
                stream_version: 2,
                part: 0,
            }],
            parts_count: None,
        };
        let bytes = encode(&m);
        let text = String::from_utf8(bytes.clone()).unwrap();
        for field in [
            "\"sealed_oek\":\"03\"",
            "\"wrapped_data_key\":\"0102\"",
            "\"mode\":\"S3\"",
        ] {
            assert!(text.contains(field), "{text}");
        }
        assert_eq!(decode_object(&bytes).unwrap(), m);
        assert!(
            !text.contains("\"user\""),
            "empty plaintext metadata is not written: {text}"
        );
        let mut newer = m.clone();
        newer.version = 9;
        assert!(matches!(
            decode_object(&encode(&newer)),
            Err(ManifestError::Version(9))
        ));
    }
}
