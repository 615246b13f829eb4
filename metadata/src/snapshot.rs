//! The snapshot body: every replicated record, as typed JSON.
//!
//! Typed rather than a raw key/value dump so that a snapshot does not depend on the key layout
//! (a follower re-derives keys, including the upload index, with its own `keys.rs`), and so that
//! installing one validates every record it carries.

use serde::{Deserialize, Serialize};

use crate::codec::{decode, encode};
use crate::error::StoreError;
use crate::keys;
use crate::types::{BucketRecord, ObjectRecord, PartRecord, UploadRecord};

/// Version of the body layout; bumped on an incompatible change. Version 2 added `records`;
/// version 1 bodies (without them) still install.
const FORMAT: u32 = 3;

/// Everything a snapshot carries, each list in key order.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SnapshotBody {
    /// Layout version, [`FORMAT`].
    format: u32,
    /// All buckets.
    buckets: Vec<BucketRecord>,
    /// All objects.
    objects: Vec<SnapshotObject>,
    /// All uploads in progress.
    uploads: Vec<UploadRecord>,
    /// All parts of those uploads.
    parts: Vec<SnapshotPart>,
    /// All admin records (format 2).
    #[serde(default)]
    records: Vec<SnapshotRecord>,
    /// Remembered request outcomes (format 3; `requests.rs`).
    #[serde(default)]
    requests: Vec<SnapshotRequest>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotRequest {
    /// 32 hex digits.
    id: String,
    outcome: crate::requests::RequestOutcome,
}

/// An admin record with its namespace and id.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotRecord {
    namespace: String,
    id: String,
    value: String,
}

/// An object record with its location.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotObject {
    bucket: String,
    key: String,
    record: ObjectRecord,
}

/// A part record with the upload it belongs to.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotPart {
    upload_id: String,
    part: PartRecord,
}

/// Raw (key, value) pairs of the data prefixes, copied while the state machine is not applying.
pub(crate) type RawDump = Vec<(crate::kv::Value, crate::kv::Value)>;

/// Copies every data key of the state tree. Called from `get_snapshot_builder`, which runs
/// between applies, so the copy is a consistent cut at `last_applied`.
pub(crate) fn dump(tree: &crate::kv::Tree) -> Result<RawDump, StoreError> {
    let mut out = Vec::new();
    for prefix in keys::DATA_PREFIXES {
        for kv in tree.scan_prefix([prefix]) {
            out.push(kv?);
        }
    }
    Ok(out)
}

/// Turns a raw dump into the serialized snapshot body.
pub(crate) fn encode_dump(raw: &RawDump) -> Result<Vec<u8>, StoreError> {
    let mut body = SnapshotBody {
        format: FORMAT,
        ..SnapshotBody::default()
    };
    for (k, v) in raw {
        let corrupt = || StoreError::CorruptKey {
            tree: "state",
            key: k.to_vec(),
        };
        match k.first().copied() {
            Some(keys::BUCKET) => body.buckets.push(decode(v)?),
            Some(keys::OBJECT) => {
                let (bucket, key) = keys::split_object(k).ok_or_else(corrupt)?;
                body.objects.push(SnapshotObject {
                    bucket,
                    key,
                    record: decode(v)?,
                });
            }
            Some(keys::UPLOAD) => body.uploads.push(decode(v)?),
            Some(keys::PART) => {
                let (upload_id, _) = keys::split_part(k).ok_or_else(corrupt)?;
                body.parts.push(SnapshotPart {
                    upload_id,
                    part: decode(v)?,
                });
            }
            Some(keys::RECORD) => {
                let (namespace, id) = keys::split_record(k).ok_or_else(corrupt)?;
                let value = String::from_utf8(v.to_vec()).map_err(|_| corrupt())?;
                body.records.push(SnapshotRecord {
                    namespace,
                    id,
                    value,
                });
            }
            Some(keys::REQUEST) => {
                let id: [u8; 16] = k
                    .get(1..)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(corrupt)?;
                body.requests.push(SnapshotRequest {
                    id: id.iter().map(|b| format!("{b:02x}")).collect(),
                    outcome: decode(v)?,
                });
            }
            // The indexes are derived from the uploads and requests; install rebuilds them.
            Some(keys::UPLOAD_INDEX) | Some(keys::REQUEST_INDEX) => {}
            _ => return Err(corrupt()),
        }
    }
    encode(&body)
}

/// Stages the writes that make the state tree hold exactly the snapshot's records.
/// The caller has already staged removal of every existing key in the same batch.
pub(crate) fn stage_install(bytes: &[u8], batch: &mut crate::kv::Batch) -> Result<(), StoreError> {
    let body: SnapshotBody = decode(bytes)?;
    if !(1..=FORMAT).contains(&body.format) {
        return Err(StoreError::UnknownSnapshotFormat(body.format));
    }
    for b in &body.buckets {
        batch.insert(keys::bucket(&b.name), encode(b)?);
    }
    for o in &body.objects {
        batch.insert(keys::object(&o.bucket, &o.key), encode(&o.record)?);
    }
    for u in &body.uploads {
        batch.insert(keys::upload(&u.upload_id), encode(u)?);
        batch.insert(
            keys::upload_index(&u.bucket, &u.key, &u.upload_id),
            Vec::new(),
        );
    }
    for p in &body.parts {
        batch.insert(
            keys::part(&p.upload_id, p.part.part_number),
            encode(&p.part)?,
        );
    }
    for r in &body.records {
        batch.insert(keys::record(&r.namespace, &r.id), r.value.as_bytes());
    }
    for r in &body.requests {
        let id = crate::requests::parse_id(&r.id).ok_or(StoreError::CorruptKey {
            tree: "snapshot",
            key: r.id.as_bytes().to_vec(),
        })?;
        batch.insert(crate::requests::key(&id), encode(&r.outcome)?);
        batch.insert(crate::requests::index_key(r.outcome.index, &id), Vec::new());
    }
    Ok(())
}
