//! RPC framing on one QUIC bidirectional stream per call.
//!
//! Request (client → server), then the client finishes its side:
//! `version: u8 = 1 | channel_len: u8 | channel: [u8; channel_len] (ASCII) | len: u32 BE | payload`
//!
//! Reply (server → client), then the server finishes its side:
//! `status: u8 | len: u32 BE | payload`, where payload is the handler's answer for
//! [`Status::Ok`] and a UTF-8 message otherwise.
//!
//! Lengths are checked against the frame limit before any payload byte is buffered, so a peer
//! cannot make the other side allocate more than the limit.

use bytes::Bytes;
use quinn::{RecvStream, SendStream};

/// Version byte that opens every request.
pub const VERSION: u8 = 1;
/// Longest channel name.
pub const MAX_CHANNEL_LEN: usize = 64;

/// Outcome byte of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// The handler answered; the payload is its reply.
    Ok = 0,
    /// The handler refused; the payload is its message.
    HandlerError = 1,
    /// No handler for the channel.
    UnknownChannel = 2,
    /// The request was larger than the server's frame limit.
    TooLarge = 3,
    /// The request header was malformed.
    BadRequest = 4,
}

impl Status {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Ok,
            1 => Self::HandlerError,
            2 => Self::UnknownChannel,
            3 => Self::TooLarge,
            4 => Self::BadRequest,
            _ => return None,
        })
    }
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A length above the frame limit.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Announced length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// An unknown version byte.
    #[error("unknown frame version {0}")]
    Version(u8),
    /// A channel name that is empty, too long or not ASCII graphic.
    #[error("invalid channel name")]
    Channel,
    /// An unknown status byte.
    #[error("unknown reply status {0}")]
    Status(u8),
    /// The stream ended or failed while reading.
    #[error("read: {0}")]
    Read(#[from] quinn::ReadExactError),
    /// The stream failed while writing.
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    /// The stream was already closed.
    #[error("stream closed")]
    Closed(#[from] quinn::ClosedStream),
}

fn valid_channel(channel: &str) -> bool {
    !channel.is_empty()
        && channel.len() <= MAX_CHANNEL_LEN
        && channel.bytes().all(|b| b.is_ascii_graphic())
}

/// The request header for `channel` and a payload of `len` bytes.
pub fn request_header(channel: &str, len: usize, max: usize) -> Result<Vec<u8>, FrameError> {
    if !valid_channel(channel) {
        return Err(FrameError::Channel);
    }
    let len32 = check_len(len as u64, max)?;
    let mut h = Vec::with_capacity(2 + channel.len() + 4);
    h.push(VERSION);
    h.push(channel.len() as u8);
    h.extend_from_slice(channel.as_bytes());
    h.extend_from_slice(&len32.to_be_bytes());
    Ok(h)
}

fn check_len(len: u64, max: usize) -> Result<u32, FrameError> {
    let too_large = FrameError::TooLarge {
        len,
        max: max as u64,
    };
    if len > max as u64 {
        return Err(too_large);
    }
    u32::try_from(len).map_err(|_| too_large)
}

/// Writes a whole request and finishes the sending side.
pub async fn write_request(
    send: &mut SendStream,
    channel: &str,
    payload: Bytes,
    max: usize,
) -> Result<(), FrameError> {
    let header = request_header(channel, payload.len(), max)?;
    send.write_all(&header).await?;
    send.write_chunk(payload).await?;
    send.finish()?;
    Ok(())
}

/// A request header as read: the channel and the announced payload length.
#[derive(Debug)]
pub struct RequestHead {
    /// Channel name.
    pub channel: String,
    /// Payload length (not yet checked against the limit).
    pub len: u64,
}

/// Reads a request header.
pub async fn read_request_head(recv: &mut RecvStream) -> Result<RequestHead, FrameError> {
    let mut two = [0u8; 2];
    recv.read_exact(&mut two).await?;
    if two[0] != VERSION {
        return Err(FrameError::Version(two[0]));
    }
    let mut name = vec![0u8; usize::from(two[1])];
    recv.read_exact(&mut name).await?;
    let channel = String::from_utf8(name).map_err(|_| FrameError::Channel)?;
    if !valid_channel(&channel) {
        return Err(FrameError::Channel);
    }
    let len = read_u32(recv).await?;
    Ok(RequestHead {
        channel,
        len: u64::from(len),
    })
}

async fn read_u32(recv: &mut RecvStream) -> Result<u32, FrameError> {
    let mut b = [0u8; 4];
    recv.read_exact(&mut b).await?;
    Ok(u32::from_be_bytes(b))
}

/// Reads `len` payload bytes, refusing more than `max`.
pub async fn read_payload(
    recv: &mut RecvStream,
    len: u64,
    max: usize,
) -> Result<Bytes, FrameError> {
    let len = check_len(len, max)? as usize;
    let mut buf = vec![0u8; len];
    recv.read_exact(&mut buf).await?;
    Ok(Bytes::from(buf))
}

/// Writes a whole reply and finishes the sending side.
pub async fn write_reply(
    send: &mut SendStream,
    status: Status,
    payload: Bytes,
) -> Result<(), FrameError> {
    let len = u32::try_from(payload.len()).map_err(|_| FrameError::TooLarge {
        len: payload.len() as u64,
        max: u64::from(u32::MAX),
    })?;
    let mut header = [0u8; 5];
    header[0] = status as u8;
    header[1..].copy_from_slice(&len.to_be_bytes());
    send.write_all(&header).await?;
    send.write_chunk(payload).await?;
    send.finish()?;
    Ok(())
}

/// Reads a whole reply, refusing a payload above `max`.
pub async fn read_reply(recv: &mut RecvStream, max: usize) -> Result<(Status, Bytes), FrameError> {
    let mut s = [0u8; 1];
    recv.read_exact(&mut s).await?;
    let status = Status::from_byte(s[0]).ok_or(FrameError::Status(s[0]))?;
    let len = read_u32(recv).await?;
    let payload = read_payload(recv, u64::from(len), max).await?;
    Ok((status, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let h = request_header("raft", 258, 1024).unwrap();
        assert_eq!(h, [1, 4, b'r', b'a', b'f', b't', 0, 0, 1, 2]);
    }

    #[test]
    fn header_refusals() {
        assert!(matches!(
            request_header("", 0, 10),
            Err(FrameError::Channel)
        ));
        assert!(matches!(
            request_header("has space", 0, 10),
            Err(FrameError::Channel)
        ));
        assert!(matches!(
            request_header(&"x".repeat(65), 0, 10),
            Err(FrameError::Channel)
        ));
        assert!(matches!(
            request_header("raft", 11, 10),
            Err(FrameError::TooLarge { len: 11, max: 10 })
        ));
        assert!(matches!(
            check_len(u64::from(u32::MAX) + 1, usize::MAX),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn status_bytes_round_trip() {
        for s in [
            Status::Ok,
            Status::HandlerError,
            Status::UnknownChannel,
            Status::TooLarge,
            Status::BadRequest,
        ] {
            assert_eq!(Status::from_byte(s as u8), Some(s));
        }
        assert_eq!(Status::from_byte(9), None);
    }
}
