//! The data path: plaintext → encryption → erasure → drives, and back (house plan §3).

pub mod cipher;
pub mod etag;
pub mod get;
pub mod put;

pub use cipher::{PackageOpener, StreamSealer};
pub use get::SegmentReader;
pub use put::{SegmentWriter, WrittenSegment};
