//! Key layout of the state-machine tree.
//!
//! All state lives in ONE sled tree so that an entry's writes and its `last_applied` commit as one
//! atomic `sled::Batch`. The first byte of a key says what it is:
//!
//! | prefix | key | value |
//! |---|---|---|
//! | `b` | bucket | `BucketRecord` |
//! | `o` | bucket ‖ 0x00 ‖ object key | `ObjectRecord` |
//! | `u` | upload id | `UploadRecord` |
//! | `i` | bucket ‖ 0x00 ‖ esc(object key) ‖ 0x00 0x00 ‖ upload id | empty (uploads by bucket, key) |
//! | `p` | upload id ‖ 0x00 ‖ part number (u32 big-endian) | `PartRecord` |
//! | `r` | namespace ‖ 0x00 ‖ id | an admin record (JSON text; jobs, the local KMS's registry) |
//! | `m` | name | Raft bookkeeping (last applied, membership, current snapshot) |
//!
//! Bucket names and upload ids never contain 0x00 (the state machine refuses them), so 0x00 ends
//! them unambiguously and a bucket's objects are a contiguous range in byte order of the key.
//! In the upload index the object key is followed by more data, so it is escaped (0x00 → 0x00
//! 0xFF, terminator 0x00 0x00), which keeps byte order equal to (key, upload id) order.

/// Prefix of bucket records.
pub(crate) const BUCKET: u8 = b'b';
/// Prefix of object records.
pub(crate) const OBJECT: u8 = b'o';
/// Prefix of upload records.
pub(crate) const UPLOAD: u8 = b'u';
/// Prefix of the uploads-by-bucket-and-key index.
pub(crate) const UPLOAD_INDEX: u8 = b'i';
/// Prefix of part records.
pub(crate) const PART: u8 = b'p';
/// Prefix of admin records (`records.rs`).
pub(crate) const RECORD: u8 = b'r';
/// Prefix of remembered request outcomes (`requests.rs`): `q ‖ request id (16 bytes)`.
pub(crate) const REQUEST: u8 = b'q';
/// Prefix of the requests-by-log-index index: `Q ‖ index (u64 BE) ‖ request id`.
pub(crate) const REQUEST_INDEX: u8 = b'Q';

/// Last applied log id (JSON `LogId`), written in the same batch as each entry's data.
pub(crate) const META_LAST_APPLIED: &[u8] = b"mlast_applied";
/// Last applied membership (JSON `StoredMembership`), written with the entry that changed it.
pub(crate) const META_MEMBERSHIP: &[u8] = b"mmembership";
/// Metadata of the current snapshot (JSON `SnapshotMeta`).
pub(crate) const META_SNAPSHOT_META: &[u8] = b"msnapshot_meta";
/// Body of the current snapshot (the bytes openraft ships, see `snapshot.rs`).
pub(crate) const META_SNAPSHOT_DATA: &[u8] = b"msnapshot_data";

/// Prefixes that hold replicated data (everything a snapshot carries).
pub(crate) const DATA_PREFIXES: [u8; 8] = [
    BUCKET,
    OBJECT,
    UPLOAD,
    UPLOAD_INDEX,
    PART,
    RECORD,
    REQUEST,
    REQUEST_INDEX,
];

const SEP: u8 = 0x00;

/// Whether `name` can be a bucket name or upload id in this layout.
pub(crate) fn valid_component(name: &str) -> bool {
    !name.is_empty() && !name.as_bytes().contains(&SEP)
}

/// Key of a bucket record.
pub(crate) fn bucket(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(BUCKET);
    k.extend_from_slice(name.as_bytes());
    k
}

/// Key prefix of every bucket record.
pub(crate) fn bucket_prefix() -> [u8; 1] {
    [BUCKET]
}

/// Key of an object record.
pub(crate) fn object(bucket: &str, key: &str) -> Vec<u8> {
    object_prefix(bucket, key)
}

/// Key prefix of the objects in `bucket` whose key starts with `key_prefix`.
pub(crate) fn object_prefix(bucket: &str, key_prefix: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + bucket.len() + key_prefix.len());
    k.push(OBJECT);
    k.extend_from_slice(bucket.as_bytes());
    k.push(SEP);
    k.extend_from_slice(key_prefix.as_bytes());
    k
}

/// Splits an object key into (bucket, object key); `None` if it is not one.
pub(crate) fn split_object(raw: &[u8]) -> Option<(String, String)> {
    let rest = raw.strip_prefix(&[OBJECT])?;
    let sep = rest.iter().position(|b| *b == SEP)?;
    let bucket = std::str::from_utf8(&rest[..sep]).ok()?;
    let key = std::str::from_utf8(&rest[sep + 1..]).ok()?;
    Some((bucket.to_owned(), key.to_owned()))
}

/// Key of an upload record.
pub(crate) fn upload(upload_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + upload_id.len());
    k.push(UPLOAD);
    k.extend_from_slice(upload_id.as_bytes());
    k
}

/// Key of an upload's entry in the by-bucket index.
pub(crate) fn upload_index(bucket: &str, key: &str, upload_id: &str) -> Vec<u8> {
    let mut k = upload_index_prefix(bucket, key);
    k.extend_from_slice(&[SEP, SEP]);
    k.extend_from_slice(upload_id.as_bytes());
    k
}

/// Index prefix of the uploads in `bucket` whose object key starts with `key_prefix`.
pub(crate) fn upload_index_prefix(bucket: &str, key_prefix: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + bucket.len() + key_prefix.len());
    k.push(UPLOAD_INDEX);
    k.extend_from_slice(bucket.as_bytes());
    k.push(SEP);
    for b in key_prefix.as_bytes() {
        k.push(*b);
        if *b == SEP {
            k.push(0xFF);
        }
    }
    k
}

/// The upload id at the end of an index key; `None` if it is not one.
pub(crate) fn upload_id_from_index(raw: &[u8]) -> Option<String> {
    let rest = raw.strip_prefix(&[UPLOAD_INDEX])?;
    let bucket_end = rest.iter().position(|b| *b == SEP)?;
    let mut i = bucket_end + 1;
    // Walk the escaped key: 0x00 0xFF is an escaped NUL, 0x00 0x00 ends the key.
    while i + 1 < rest.len() {
        if rest[i] == SEP {
            if rest[i + 1] == SEP {
                return std::str::from_utf8(&rest[i + 2..]).ok().map(str::to_owned);
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    None
}

/// Key of a part record.
pub(crate) fn part(upload_id: &str, part_number: u32) -> Vec<u8> {
    let mut k = part_prefix(upload_id);
    k.extend_from_slice(&part_number.to_be_bytes());
    k
}

/// Key prefix of every part of an upload.
pub(crate) fn part_prefix(upload_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(6 + upload_id.len());
    k.push(PART);
    k.extend_from_slice(upload_id.as_bytes());
    k.push(SEP);
    k
}

/// Splits a part key into (upload id, part number); `None` if it is not one.
pub(crate) fn split_part(raw: &[u8]) -> Option<(String, u32)> {
    let rest = raw.strip_prefix(&[PART])?;
    if rest.len() < 5 {
        return None;
    }
    let (id, tail) = rest.split_at(rest.len() - 5);
    let (sep, number) = tail.split_first()?;
    if *sep != SEP {
        return None;
    }
    let number = u32::from_be_bytes(number.try_into().ok()?);
    Some((std::str::from_utf8(id).ok()?.to_owned(), number))
}

/// Key of an admin record.
pub(crate) fn record(namespace: &str, id: &str) -> Vec<u8> {
    let mut k = record_prefix(namespace);
    k.extend_from_slice(id.as_bytes());
    k
}

/// Key prefix of every admin record in `namespace`.
pub(crate) fn record_prefix(namespace: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + namespace.len());
    k.push(RECORD);
    k.extend_from_slice(namespace.as_bytes());
    k.push(SEP);
    k
}

/// Splits an admin record key into (namespace, id); `None` if it is not one.
pub(crate) fn split_record(raw: &[u8]) -> Option<(String, String)> {
    let rest = raw.strip_prefix(&[RECORD])?;
    let sep = rest.iter().position(|b| *b == SEP)?;
    let namespace = std::str::from_utf8(&rest[..sep]).ok()?;
    let id = std::str::from_utf8(&rest[sep + 1..]).ok()?;
    Some((namespace.to_owned(), id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_round_trip_and_stay_inside_their_bucket() {
        let k = object("a", "x\0y/z");
        assert_eq!(split_object(&k), Some(("a".into(), "x\0y/z".into())));
        // Every key of bucket "a" sorts before every key of bucket "a-b" and after bucket "".
        assert!(object("a", "\u{10FFFF}") < object("a-b", ""));
        assert!(!object("ab", "").starts_with(&object_prefix("a", "")));
    }

    #[test]
    fn upload_index_orders_by_key_then_id() {
        let a = upload_index("b", "a", "zz");
        let a_nul = upload_index("b", "a\0", "aa");
        let ab = upload_index("b", "ab", "aa");
        assert!(a < a_nul && a_nul < ab);
        assert_eq!(upload_id_from_index(&a_nul).as_deref(), Some("aa"));
        assert_eq!(upload_id_from_index(&a).as_deref(), Some("zz"));
        assert!(a_nul.starts_with(&upload_index_prefix("b", "a\0")));
        assert!(!a.starts_with(&upload_index_prefix("b", "a\0")));
    }

    #[test]
    fn part_keys_round_trip_in_number_order() {
        assert!(part("u", 2) < part("u", 10));
        assert_eq!(split_part(&part("u-1", 7)), Some(("u-1".into(), 7)));
        assert!(!valid_component("a\0b"));
        assert!(!valid_component(""));
    }

    #[test]
    fn record_keys_round_trip_and_stay_in_their_namespace() {
        let k = record("jobs", "rewrap/b\0x");
        assert_eq!(
            split_record(&k),
            Some(("jobs".into(), "rewrap/b\0x".into()))
        );
        assert!(!record("jobsx", "a").starts_with(&record_prefix("jobs")));
    }
}
