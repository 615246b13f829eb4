//! The replicated commands, their responses, and the apply logic.
//!
//! `execute` is the only place that decides a command's outcome. It reads the state as it is
//! after the previous entry and stages its writes in a `crate::kv::Batch` that the caller commits
//! together with `last_applied`. It must be deterministic (no clock, no randomness, no hash-map
//! iteration) and must never panic on bad input: bad input becomes a `Response::Rejected`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::codec::{decode, encode};
use crate::error::{DomainError, StoreError};
use crate::keys;
use crate::types::{
    BucketEncryptionRecord, BucketRecord, CompleteOutcome, ObjectPrecondition, ObjectRecord,
    PartRecord, UploadRecord,
};

/// A state-machine command: the application data of a Raft log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Command {
    /// Create an empty bucket.
    CreateBucket {
        /// Bucket name.
        name: String,
        /// Creation time chosen by the proposer.
        created_ms: i64,
    },
    /// Delete a bucket that holds no objects and no uploads.
    DeleteBucket {
        /// Bucket name.
        name: String,
    },
    /// Set or clear a bucket's default encryption.
    SetBucketEncryption {
        /// Bucket name.
        bucket: String,
        /// The new setting; `None` clears it.
        encryption: Option<BucketEncryptionRecord>,
    },
    /// Create or replace an object record.
    PutObject {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
        /// The new record.
        record: ObjectRecord,
        /// Applies only if the current record meets this; absent in older log entries.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        precondition: Option<ObjectPrecondition>,
    },
    /// Delete an object record (absent is not an error).
    DeleteObject {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
    },
    /// Start a multipart upload.
    CreateUpload {
        /// The upload; its bucket must exist and its id must be new.
        record: UploadRecord,
    },
    /// Add or replace one part of an upload.
    PutPart {
        /// Upload id.
        upload_id: String,
        /// The part.
        part: PartRecord,
    },
    /// Turn an upload into an object and drop the upload with all its parts.
    CompleteUpload {
        /// Upload id.
        upload_id: String,
        /// The object record to write under the upload's bucket and key.
        object: ObjectRecord,
        /// Part numbers the object is made of; each must exist.
        used_parts: Vec<u32>,
        /// Applies only if the object it replaces meets this; absent in older log entries.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        precondition: Option<ObjectPrecondition>,
    },
    /// Drop an upload with all its parts.
    AbortUpload {
        /// Upload id.
        upload_id: String,
    },
    /// Set (or with `None` delete) an admin record, only if the current value meets `expect`.
    PutRecord {
        /// Namespace (e.g. `jobs`, `kms-local`); no NUL.
        namespace: String,
        /// Id within the namespace.
        id: String,
        /// The new value (JSON text), or `None` to delete.
        value: Option<String>,
        /// Compare-and-set condition on the current value.
        expect: RecordExpect,
    },
    /// `command`, applied at most once per `request` (32 hex digits, chosen at random by the
    /// proposer): a retry of a write whose outcome was unknown gets the first outcome back
    /// instead of applying again (`requests.rs`).
    Once {
        /// Request id.
        request: String,
        /// The write.
        command: Box<Command>,
    },
}

/// The condition a [`Command::PutRecord`] needs to apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum RecordExpect {
    /// Whatever is there.
    Any,
    /// No record under the id.
    Absent,
    /// Exactly this value.
    Is(String),
}

impl Command {
    /// A short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Command::CreateBucket { .. } => "create_bucket",
            Command::DeleteBucket { .. } => "delete_bucket",
            Command::SetBucketEncryption { .. } => "set_bucket_encryption",
            Command::PutObject { .. } => "put_object",
            Command::DeleteObject { .. } => "delete_object",
            Command::CreateUpload { .. } => "create_upload",
            Command::PutPart { .. } => "put_part",
            Command::CompleteUpload { .. } => "complete_upload",
            Command::AbortUpload { .. } => "abort_upload",
            Command::PutRecord { .. } => "put_record",
            Command::Once { command, .. } => command.name(),
        }
    }
}

/// The state machine's answer to one log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Response {
    /// Applied; nothing to return (also the answer to blank and membership entries).
    Done,
    /// Applied; the object record that was replaced or deleted.
    Object(Option<ObjectRecord>),
    /// Applied; the part that was replaced.
    Part(Option<PartRecord>),
    /// Applied; what `CompleteUpload` displaced.
    Completed(CompleteOutcome),
    /// Applied; the parts `AbortUpload` removed, by part number.
    Parts(Vec<PartRecord>),
    /// Not applied: the command's preconditions did not hold. Nothing was written but
    /// `last_applied`.
    Rejected(DomainError),
}

/// Shorthand for a rejection.
fn reject(e: DomainError) -> Result<Response, StoreError> {
    Ok(Response::Rejected(e))
}

/// Decides `cmd` against `tree` and stages its writes in `batch`.
pub(crate) fn execute(
    tree: &crate::kv::Tree,
    cmd: &Command,
    batch: &mut crate::kv::Batch,
) -> Result<Response, StoreError> {
    match cmd {
        Command::CreateBucket { name, created_ms } => {
            if !keys::valid_component(name) {
                return reject(invalid("bucket name is empty or contains NUL"));
            }
            let k = keys::bucket(name);
            if tree.contains_key(&k)? {
                return reject(DomainError::BucketExists);
            }
            let rec = BucketRecord {
                name: name.clone(),
                created_ms: *created_ms,
                encryption: None,
            };
            batch.insert(k, encode(&rec)?);
            Ok(Response::Done)
        }
        Command::DeleteBucket { name } => {
            let k = keys::bucket(name);
            if !tree.contains_key(&k)? {
                return reject(DomainError::NoSuchBucket);
            }
            if has_any(tree, &keys::object_prefix(name, ""))?
                || has_any(tree, &keys::upload_index_prefix(name, ""))?
            {
                return reject(DomainError::BucketNotEmpty);
            }
            batch.remove(k);
            Ok(Response::Done)
        }
        Command::SetBucketEncryption { bucket, encryption } => {
            let k = keys::bucket(bucket);
            let Some(mut rec) = get::<BucketRecord>(tree, &k)? else {
                return reject(DomainError::NoSuchBucket);
            };
            rec.encryption = encryption.clone();
            batch.insert(k, encode(&rec)?);
            Ok(Response::Done)
        }
        Command::PutObject {
            bucket,
            key,
            record,
            precondition,
        } => {
            if !tree.contains_key(keys::bucket(bucket))? {
                return reject(DomainError::NoSuchBucket);
            }
            let k = keys::object(bucket, key);
            let previous = get::<ObjectRecord>(tree, &k)?;
            if let Some(p) = precondition {
                if !p.holds(previous.as_ref()) {
                    return reject(DomainError::PreconditionFailed);
                }
            }
            batch.insert(k, encode(record)?);
            Ok(Response::Object(previous))
        }
        Command::DeleteObject { bucket, key } => {
            if !tree.contains_key(keys::bucket(bucket))? {
                return reject(DomainError::NoSuchBucket);
            }
            let k = keys::object(bucket, key);
            let previous = get::<ObjectRecord>(tree, &k)?;
            if previous.is_some() {
                batch.remove(k);
            }
            Ok(Response::Object(previous))
        }
        Command::CreateUpload { record } => {
            if !keys::valid_component(&record.upload_id) {
                return reject(invalid("upload id is empty or contains NUL"));
            }
            if !tree.contains_key(keys::bucket(&record.bucket))? {
                return reject(DomainError::NoSuchBucket);
            }
            let k = keys::upload(&record.upload_id);
            if tree.contains_key(&k)? {
                return reject(invalid("upload id already exists"));
            }
            batch.insert(k, encode(record)?);
            batch.insert(
                keys::upload_index(&record.bucket, &record.key, &record.upload_id),
                Vec::new(),
            );
            Ok(Response::Done)
        }
        Command::PutPart { upload_id, part } => {
            if !tree.contains_key(keys::upload(upload_id))? {
                return reject(DomainError::NoSuchUpload);
            }
            let k = keys::part(upload_id, part.part_number);
            let previous = get::<PartRecord>(tree, &k)?;
            batch.insert(k, encode(part)?);
            Ok(Response::Part(previous))
        }
        Command::CompleteUpload {
            upload_id,
            object,
            used_parts,
            precondition,
        } => {
            let Some(upload) = get::<UploadRecord>(tree, &keys::upload(upload_id))? else {
                return reject(DomainError::NoSuchUpload);
            };
            let parts = parts_of(tree, upload_id)?;
            let present: BTreeSet<u32> = parts.iter().map(|p| p.part_number).collect();
            if let Some(missing) = used_parts.iter().find(|n| !present.contains(n)) {
                return reject(DomainError::InvalidPart {
                    part_number: *missing,
                });
            }
            // delete_bucket refuses while uploads exist, so this only trips on damaged state.
            if !tree.contains_key(keys::bucket(&upload.bucket))? {
                return reject(DomainError::NoSuchBucket);
            }
            let object_key = keys::object(&upload.bucket, &upload.key);
            let previous = get::<ObjectRecord>(tree, &object_key)?;
            if let Some(p) = precondition {
                // The upload stays, so the client may retry or abort it.
                if !p.holds(previous.as_ref()) {
                    return reject(DomainError::PreconditionFailed);
                }
            }
            batch.insert(object_key, encode(object)?);
            remove_upload(batch, &upload, &parts);
            let used: BTreeSet<u32> = used_parts.iter().copied().collect();
            let discarded_parts = parts
                .into_iter()
                .filter(|p| !used.contains(&p.part_number))
                .collect();
            Ok(Response::Completed(CompleteOutcome {
                previous,
                discarded_parts,
            }))
        }
        Command::AbortUpload { upload_id } => {
            let Some(upload) = get::<UploadRecord>(tree, &keys::upload(upload_id))? else {
                return reject(DomainError::NoSuchUpload);
            };
            let parts = parts_of(tree, upload_id)?;
            remove_upload(batch, &upload, &parts);
            Ok(Response::Parts(parts))
        }
        Command::PutRecord {
            namespace,
            id,
            value,
            expect,
        } => {
            if !keys::valid_component(namespace) || id.is_empty() {
                return reject(invalid("record namespace or id is empty or contains NUL"));
            }
            let k = keys::record(namespace, id);
            let current = tree.get(&k)?;
            let holds = match (expect, &current) {
                (RecordExpect::Any, _) | (RecordExpect::Absent, None) => true,
                (RecordExpect::Is(want), Some(have)) => have.as_ref() == want.as_bytes(),
                _ => false,
            };
            if !holds {
                return reject(DomainError::PreconditionFailed);
            }
            match value {
                Some(v) => batch.insert(k, v.as_bytes()),
                None => batch.remove(k),
            }
            Ok(Response::Done)
        }
        // The state machine unwraps one level with its log index (`requests.rs`); a `Once`
        // inside a `Once` is refused.
        Command::Once { .. } => reject(invalid("nested request id")),
    }
}

fn invalid(msg: &str) -> DomainError {
    DomainError::InvalidArgument(msg.to_owned())
}

/// Reads and decodes one record.
pub(crate) fn get<T: serde::de::DeserializeOwned>(
    tree: &crate::kv::Tree,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    match tree.get(key)? {
        Some(v) => Ok(Some(decode(&v)?)),
        None => Ok(None),
    }
}

/// Whether any key starts with `prefix`.
fn has_any(tree: &crate::kv::Tree, prefix: &[u8]) -> Result<bool, StoreError> {
    Ok(tree.scan_prefix(prefix).next().transpose()?.is_some())
}

/// All parts of an upload, by part number.
pub(crate) fn parts_of(
    tree: &crate::kv::Tree,
    upload_id: &str,
) -> Result<Vec<PartRecord>, StoreError> {
    tree.scan_prefix(keys::part_prefix(upload_id))
        .values()
        .map(|v| decode(&v?))
        .collect()
}

/// Stages removal of an upload, its index entry and all its parts.
fn remove_upload(batch: &mut crate::kv::Batch, upload: &UploadRecord, parts: &[PartRecord]) {
    batch.remove(keys::upload(&upload.upload_id));
    batch.remove(keys::upload_index(
        &upload.bucket,
        &upload.key,
        &upload.upload_id,
    ));
    for p in parts {
        batch.remove(keys::part(&upload.upload_id, p.part_number));
    }
}
