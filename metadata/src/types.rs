//! The records the state machine stores, and the small value types `MetaStore` returns.
//!
//! Every record is serialized as JSON (see `codec.rs`); `deny_unknown_fields` makes a node refuse
//! a record written by a newer schema instead of silently dropping the fields it does not know.

use serde::{Deserialize, Serialize};

/// A bucket and its configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketRecord {
    /// Bucket name (never contains a NUL byte: NUL separates bucket from key in the layout).
    pub name: String,
    /// Creation time, milliseconds since the Unix epoch (supplied by the proposer, not the apply).
    pub created_ms: i64,
    /// Default server-side encryption for new objects; `None` means the cluster default.
    pub encryption: Option<BucketEncryptionRecord>,
}

/// A bucket's default server-side encryption setting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketEncryptionRecord {
    /// `"AES256"` (SSE-S3) or `"aws:kms"` (SSE-KMS); validated by the S3 layer, opaque here.
    pub algorithm: String,
    /// The KMS key id for SSE-KMS; `None` means the cluster's default KMS key.
    pub kms_key_id: Option<String>,
    /// Data cipher of new objects (`"AES256"` or `"CHACHA20-POLY1305"`); `None` is AES-256-GCM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    /// S3 Bucket Keys for SSE-KMS objects.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bucket_key_enabled: bool,
}

/// A condition the current object record must meet for a `PutObject` to apply; decided by the
/// state machine, so exactly one of two racing conditional writers wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ObjectPrecondition {
    /// No object under the key (`If-None-Match: *`).
    Absent,
    /// The current object's ETag is this one (`If-Match`).
    EtagIs(String),
    /// Some object is under the key (`If-Match: *`).
    Exists,
    /// The current record is exactly the one that was read: its manifest bytes hash to this
    /// (SHA-256, lower-case hex). Used by read-modify-write updates such as re-sealing a key.
    ManifestIs(String),
}

impl ObjectPrecondition {
    /// The `ManifestIs` condition for a record that was read.
    pub fn unchanged(rec: &ObjectRecord) -> Self {
        Self::ManifestIs(manifest_digest(&rec.manifest))
    }

    /// Whether `current` meets the condition.
    pub fn holds(&self, current: Option<&ObjectRecord>) -> bool {
        match (self, current) {
            (Self::Absent, None) => true,
            (Self::EtagIs(e), Some(c)) => c.etag == *e,
            (Self::Exists, Some(_)) => true,
            (Self::ManifestIs(d), Some(c)) => manifest_digest(&c.manifest) == *d,
            _ => false,
        }
    }
}

/// SHA-256 of manifest bytes, lower-case hex.
pub fn manifest_digest(manifest: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(manifest)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An object's committed metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectRecord {
    /// Plaintext size in bytes.
    pub size: u64,
    /// S3 ETag as sent to clients.
    pub etag: String,
    /// Last-modified time, milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
    /// Node-defined manifest (layout, wrapped keys — never a plaintext key); opaque here.
    #[serde(with = "b64")]
    pub manifest: Vec<u8>,
}

/// A multipart upload in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRecord {
    /// Bucket the object will land in.
    pub bucket: String,
    /// Object key the upload completes to.
    pub key: String,
    /// Upload id (unique cluster-wide; never contains a NUL byte).
    pub upload_id: String,
    /// Initiation time, milliseconds since the Unix epoch.
    pub initiated_ms: i64,
    /// Node-defined manifest (encryption choice for the parts, etc.); opaque here.
    #[serde(with = "b64")]
    pub manifest: Vec<u8>,
}

/// One uploaded part of a multipart upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartRecord {
    /// S3 part number (1..=10000, validated by the S3 layer).
    pub part_number: u32,
    /// Plaintext size in bytes.
    pub size: u64,
    /// The part's ETag.
    pub etag: String,
    /// Upload time, milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
    /// Node-defined manifest of the part's shards; opaque here.
    #[serde(with = "b64")]
    pub manifest: Vec<u8>,
}

/// What `complete_upload` changed, so the node can delete shards nobody references any more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteOutcome {
    /// The object record the completed upload replaced, if any.
    pub previous: Option<ObjectRecord>,
    /// Parts of the upload that were not in `used_parts`, by part number.
    pub discarded_parts: Vec<PartRecord>,
}

/// A health summary of this node's Raft member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaStatus {
    /// This node's Raft id.
    pub node_id: u64,
    /// Whether this node believes it is the leader.
    pub is_leader: bool,
    /// The current leader, if known.
    pub current_leader: Option<u64>,
    /// The current Raft term.
    pub current_term: u64,
    /// Index of the last log entry applied to the state machine.
    pub last_applied: Option<u64>,
    /// Index of the last log entry in the local log.
    pub last_log_index: Option<u64>,
    /// Index of the last entry this node knows to be committed.
    pub committed_index: Option<u64>,
    /// Index up to which the last snapshot covers the log.
    pub snapshot_index: Option<u64>,
    /// Index up to which log entries have been purged.
    pub purged_index: Option<u64>,
    /// Every node in the membership this node has applied, by id.
    pub members: Vec<MemberStatus>,
}

/// One member of the metadata group as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    /// Raft node id.
    pub id: u64,
    /// Its cluster address, as recorded in the membership.
    pub addr: String,
    /// A voter (else a learner).
    pub voter: bool,
    /// On the leader: the last log index known replicated to it (`None`: nothing yet, or this
    /// node is not the leader).
    pub matched_index: Option<u64>,
    /// On the leader: how many entries it is behind the leader's log (`None` off the leader).
    pub lag: Option<u64>,
}

/// Serde helper: opaque bytes as base64 text, because JSON arrays of numbers are ~4x larger.
mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}
