//! The shard RPC messages on channel [`CHANNEL`] (documented in docs/cluster.md).
//!
//! A message is `u32 header length (big-endian) ‖ header (JSON) ‖ body (raw bytes)`: the
//! header names the operation, the body carries shard bytes without any re-encoding. Shard
//! bytes are ciphertext plus CRCs already; QUIC's TLS encrypts them again in transit.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// The channel of every shard operation.
pub const CHANNEL: &str = "shard";

/// Largest header accepted (headers are small; this only bounds a malformed one).
const MAX_HEADER: usize = 4096;

/// What a caller asks of a peer's drive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Start writing shard `shard` of `id` on drive `drive`, as write session `session`
    /// (chosen by the caller, unique per caller).
    Open {
        /// Drive index on the peer.
        drive: usize,
        /// Data id, 32 hex digits.
        id: String,
        /// Shard index.
        shard: usize,
        /// Session id.
        session: u64,
    },
    /// Append the body at `offset` (must equal the bytes written so far).
    Append {
        /// Session id.
        session: u64,
        /// Where the body goes.
        offset: u64,
    },
    /// Write the body at `at` (the shard header, known only at the end), check that `len`
    /// bytes were appended, fsync and make the shard visible.
    Commit {
        /// Session id.
        session: u64,
        /// Total appended length.
        len: u64,
        /// Where the body is written.
        at: u64,
    },
    /// Drop a session and its partial file.
    Abort {
        /// Session id.
        session: u64,
    },
    /// The length of a shard file.
    Stat {
        /// Drive index.
        drive: usize,
        /// Data id.
        id: String,
        /// Shard index.
        shard: usize,
    },
    /// `len` bytes of a shard file at `offset`.
    Read {
        /// Drive index.
        drive: usize,
        /// Data id.
        id: String,
        /// Shard index.
        shard: usize,
        /// Start.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// Remove a shard file (absent is fine).
    Delete {
        /// Drive index.
        drive: usize,
        /// Data id.
        id: String,
        /// Shard index.
        shard: usize,
    },
    /// Liveness probe.
    Ping,
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Done; the body (if any) is the answer.
    Ok,
    /// The shard (or session) does not exist.
    NotFound,
    /// The drive failed or the request was invalid; `message` says why.
    Failed,
}

/// The answer's header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// Outcome.
    pub status: Status,
    /// Stat: the file length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
    /// Failed: why (for logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Reply {
    /// Success without a length.
    pub fn ok() -> Self {
        Self {
            status: Status::Ok,
            len: None,
            message: None,
        }
    }

    /// A failure saying `message`.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            status: Status::Failed,
            len: None,
            message: Some(message.into()),
        }
    }

    /// Not found.
    pub fn not_found() -> Self {
        Self {
            status: Status::NotFound,
            len: None,
            message: None,
        }
    }
}

/// A malformed message.
#[derive(Debug, thiserror::Error)]
#[error("malformed shard message: {0}")]
pub struct WireError(pub String);

/// `header ‖ body` as one message.
pub fn encode<H: Serialize>(header: &H, body: &[u8]) -> Bytes {
    let h = serde_json::to_vec(header).unwrap_or_default();
    let mut out = BytesMut::with_capacity(4 + h.len() + body.len());
    out.put_u32(h.len() as u32);
    out.put_slice(&h);
    out.put_slice(body);
    out.freeze()
}

/// Splits a message into its header and body.
pub fn decode<H: serde::de::DeserializeOwned>(msg: &Bytes) -> Result<(H, Bytes), WireError> {
    if msg.len() < 4 {
        return Err(WireError("shorter than its length prefix".into()));
    }
    let n = u32::from_be_bytes([msg[0], msg[1], msg[2], msg[3]]) as usize;
    if n > MAX_HEADER || 4 + n > msg.len() {
        return Err(WireError(format!("header length {n} out of range")));
    }
    let header = serde_json::from_slice(&msg[4..4 + n]).map_err(|e| WireError(e.to_string()))?;
    Ok((header, msg.slice(4 + n..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_pin_their_layout() {
        let req = Request::Read {
            drive: 1,
            id: "00".repeat(16),
            shard: 2,
            offset: 5,
            len: 7,
        };
        let msg = encode(&req, b"");
        let (back, body): (Request, Bytes) = decode(&msg).unwrap();
        assert_eq!(back, req);
        assert!(body.is_empty());
        let msg = encode(
            &Request::Append {
                session: 9,
                offset: 0,
            },
            b"abc",
        );
        assert_eq!(
            &msg[..],
            b"\x00\x00\x00\x26{\"op\":\"append\",\"session\":9,\"offset\":0}abc"
        );
        let (_, body): (Request, Bytes) = decode(&msg).unwrap();
        assert_eq!(&body[..], b"abc");
    }

    #[test]
    fn malformed_messages_are_refused() {
        for bad in [
            &b""[..],
            b"\x00\x00",
            b"\x00\x00\x00\x09{}",
            b"\x00\x00\x10\x00{}",
            b"\x00\x00\x00\x02{}",
            b"\x00\x00\x00\x0e{\"op\":\"nope\"}",
        ] {
            assert!(decode::<Request>(&Bytes::copy_from_slice(bad)).is_err());
        }
    }
}
