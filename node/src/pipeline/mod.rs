//! The data path: plaintext → encryption → erasure → drives, and back (house plan §3).

mod block;
pub mod cipher;
pub mod etag;
pub mod get;
pub mod put;
mod seal;
#[cfg(test)]
mod tests;

pub use cipher::{stream_cipher, CipherFactory, PackageOpener, StreamCipher, StreamSealer};
pub use get::{PackageStream, SegmentReader, READ_AHEAD};
pub use put::{SegmentWriter, WrittenSegment};
