//! Exactly-once writes: a [`Command::Once`] carries a random request id, and the state machine
//! remembers each id's response, so a proposer that retries a write whose outcome it could not
//! learn (the leader died mid-call, the connection dropped) gets the first outcome back instead
//! of applying the write twice. Without it, a retried `If-None-Match: *` PUT that had in fact
//! committed would come back 412, and a retried CreateBucket as BucketAlreadyExists.
//!
//! Outcomes are kept for the last [`KEEP`] log entries (a retry comes within seconds; the
//! bound keeps the state and snapshots small), in the replicated state and its snapshots, so
//! every replica decides a retry alike. Layout: `q ‖ id (16 bytes)` → `{index, response}`,
//! and `Q ‖ index (u64 BE) ‖ id` → empty, to drop the oldest in index order.

use serde::{Deserialize, Serialize};

use crate::codec::{decode, encode};
use crate::command::{execute, Command, Response};
use crate::error::{DomainError, StoreError};
use crate::keys;

/// Log entries a request's outcome is remembered for.
pub const KEEP: u64 = 10_000;

/// A remembered outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestOutcome {
    /// Log index of the entry that applied the request.
    pub index: u64,
    /// What it answered.
    pub response: Response,
}

/// Parses a request id: exactly 32 hex digits.
pub(crate) fn parse_id(request: &str) -> Option<[u8; 16]> {
    if request.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, chunk) in request.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// A fresh random request id (seeded in the simulation, see `runtime`).
pub(crate) fn new_id() -> String {
    uuid::Uuid::from_bytes(crate::runtime::random_id_bytes())
        .simple()
        .to_string()
}

pub(crate) fn key(id: &[u8; 16]) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(keys::REQUEST);
    k.extend_from_slice(id);
    k
}

pub(crate) fn index_key(index: u64, id: &[u8; 16]) -> Vec<u8> {
    let mut k = Vec::with_capacity(25);
    k.push(keys::REQUEST_INDEX);
    k.extend_from_slice(&index.to_be_bytes());
    k.extend_from_slice(id);
    k
}

/// Applies `command` once for `request` at log index `index`; stages its writes, the
/// remembered outcome and the removal of outcomes older than [`KEEP`] entries.
pub(crate) fn apply_once(
    tree: &crate::kv::Tree,
    request: &str,
    command: &Command,
    index: u64,
    batch: &mut crate::kv::Batch,
) -> Result<Response, StoreError> {
    let Some(id) = parse_id(request) else {
        return Ok(Response::Rejected(DomainError::InvalidArgument(
            "request id must be 32 hex digits".into(),
        )));
    };
    if let Some(v) = tree.get(key(&id))? {
        let seen: RequestOutcome = decode(&v)?;
        return Ok(seen.response);
    }
    let response = execute(tree, command, batch)?;
    let outcome = RequestOutcome {
        index,
        response: response.clone(),
    };
    batch.insert(key(&id), encode(&outcome)?);
    batch.insert(index_key(index, &id), Vec::new());
    if let Some(oldest_kept) = index.checked_sub(KEEP) {
        let end = index_key(oldest_kept, &[0u8; 16]);
        for k in tree
            .range([keys::REQUEST_INDEX].as_slice()..end.as_slice())
            .keys()
        {
            let k = k?;
            if let Ok(old) = <[u8; 16]>::try_from(&k[9..]) {
                batch.remove(key(&old));
            }
            batch.remove(k);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> crate::kv::Tree {
        let db = crate::kv::Db::sled(sled::Config::new().temporary(true).open().unwrap());
        db.open_tree("state").unwrap()
    }

    fn run(t: &crate::kv::Tree, request: &str, cmd: &Command, index: u64) -> Response {
        let mut batch = crate::kv::Batch::default();
        let r = apply_once(t, request, cmd, index, &mut batch).unwrap();
        t.apply_batch(batch).unwrap();
        r
    }

    #[test]
    fn a_retried_request_gets_its_first_outcome() {
        let t = tree();
        let create = Command::CreateBucket {
            name: "b".into(),
            created_ms: 1,
        };
        let id = new_id();
        assert_eq!(run(&t, &id, &create, 1), Response::Done);
        // The retry does not apply again (which would say BucketExists).
        assert_eq!(run(&t, &id, &create, 2), Response::Done);
        // Another request with the same command is a new write.
        assert_eq!(
            run(&t, &new_id(), &create, 3),
            Response::Rejected(DomainError::BucketExists)
        );
        let bad = run(&t, "xyz", &create, 4);
        assert!(matches!(
            bad,
            Response::Rejected(DomainError::InvalidArgument(_))
        ));
    }

    #[test]
    fn outcomes_are_forgotten_after_keep_entries() {
        let t = tree();
        let first = new_id();
        let cmd = |n: u64| Command::CreateBucket {
            name: format!("b{n}"),
            created_ms: 1,
        };
        run(&t, &first, &cmd(0), 1);
        assert!(t.get(key(&parse_id(&first).unwrap())).unwrap().is_some());
        run(&t, &new_id(), &cmd(1), KEEP);
        assert!(t.get(key(&parse_id(&first).unwrap())).unwrap().is_some());
        run(&t, &new_id(), &cmd(2), KEEP + 2);
        assert!(t.get(key(&parse_id(&first).unwrap())).unwrap().is_none());
        let remembered = t.scan_prefix([keys::REQUEST]).count();
        let indexed = t.scan_prefix([keys::REQUEST_INDEX]).count();
        assert_eq!((remembered, indexed), (2, 2));
    }

    #[test]
    fn ids_parse_strictly() {
        assert!(parse_id(&new_id()).is_some());
        assert!(parse_id("00112233445566778899aabbccddeeff").is_some());
        assert!(parse_id("00112233445566778899aabbccddeef").is_none());
        assert!(parse_id("00112233445566778899aabbccddeefg").is_none());
    }
}

#[cfg(test)]
mod snapshot_tests {
    use super::*;

    #[test]
    fn outcomes_travel_in_snapshots() {
        let db = crate::kv::Db::sled(sled::Config::new().temporary(true).open().unwrap());
        let a = db.open_tree("a").unwrap();
        let b = db.open_tree("b").unwrap();
        let id = new_id();
        let create = Command::CreateBucket {
            name: "b".into(),
            created_ms: 1,
        };
        let mut batch = crate::kv::Batch::default();
        apply_once(&a, &id, &create, 7, &mut batch).unwrap();
        a.apply_batch(batch).unwrap();
        let bytes = crate::snapshot::encode_dump(&crate::snapshot::dump(&a).unwrap()).unwrap();
        let mut batch = crate::kv::Batch::default();
        crate::snapshot::stage_install(&bytes, &mut batch).unwrap();
        b.apply_batch(batch).unwrap();
        // The replica that installed the snapshot answers the retry as the first one did.
        let mut batch = crate::kv::Batch::default();
        assert_eq!(
            apply_once(&b, &id, &create, 8, &mut batch).unwrap(),
            Response::Done
        );
        assert!(b
            .get(index_key(7, &parse_id(&id).unwrap()))
            .unwrap()
            .is_some());
    }
}
