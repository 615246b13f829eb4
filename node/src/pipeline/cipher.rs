//! The seam between the data path and the stream cipher: [`SegmentWriter`] seals through a
//! [`StreamSealer`] and [`SegmentReader`] opens through a [`PackageOpener`]. Production uses
//! coffer_crypto's [`Encryptor`] and [`StreamKey`]; the seam exists so a benchmark can compare
//! the pipeline against itself with the cipher swapped out. The segment types dispatch
//! statically (generic parameters with these types as defaults); the node service makes its
//! sealers and openers through a [`CipherFactory`] (dynamic, a call per 64 KiB package), so
//! the whole server can run with another cipher ([`crate::server::RunOptions`]).
//!
//! [`SegmentWriter`]: crate::pipeline::SegmentWriter
//! [`SegmentReader`]: crate::pipeline::SegmentReader

use std::sync::Arc;

use coffer_crypto::{CryptoError, Encryptor, StreamKey};

/// Seals a plaintext stream into packages of [`coffer_crypto::PACKAGE_SIZE`] bytes, each
/// followed by its [`coffer_crypto::TAG_LEN`]-byte tag (the layout the reader expects).
pub trait StreamSealer: Send + 'static {
    /// Feeds plaintext; appends every package now known not to be the last to `out`.
    fn push(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError>;
    /// Seals the final package (possibly empty) and ends the stream.
    fn finish(self, out: &mut Vec<u8>) -> Result<(), CryptoError>
    where
        Self: Sized;
    /// [`StreamSealer::finish`] for a boxed sealer (`(*self).finish(out)`).
    fn finish_boxed(self: Box<Self>, out: &mut Vec<u8>) -> Result<(), CryptoError>;
}

impl StreamSealer for Box<dyn StreamSealer> {
    #[inline]
    fn push(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        (**self).push(plaintext, out)
    }

    fn finish(self, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        <dyn StreamSealer>::finish_boxed(self, out)
    }

    fn finish_boxed(self: Box<Self>, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        (*self).finish(out)
    }
}

/// Opens one sealed package of a stream.
pub trait PackageOpener: Send + Sync + 'static {
    /// The plaintext of package `index` (`is_final` for the stream's last package), opened in
    /// the buffer that held it: the reader owns each sealed package, so no copy is needed.
    fn open_package(
        &self,
        index: u64,
        is_final: bool,
        sealed: Vec<u8>,
    ) -> Result<Vec<u8>, CryptoError>;
}

impl PackageOpener for Box<dyn PackageOpener> {
    #[inline]
    fn open_package(
        &self,
        index: u64,
        is_final: bool,
        sealed: Vec<u8>,
    ) -> Result<Vec<u8>, CryptoError> {
        (**self).open_package(index, is_final, sealed)
    }
}

/// Makes the sealer and the opener of a segment's stream from its derived stream key.
pub trait CipherFactory: Send + Sync + 'static {
    /// The sealer of a stream keyed by `key`.
    fn sealer(&self, key: StreamKey) -> Box<dyn StreamSealer>;
    /// The opener of a stream keyed by `key`.
    fn opener(&self, key: StreamKey) -> Box<dyn PackageOpener>;
}

/// The production cipher: coffer_crypto's STREAM construction.
#[derive(Debug, Default, Clone, Copy)]
pub struct StreamCipher;

impl CipherFactory for StreamCipher {
    fn sealer(&self, key: StreamKey) -> Box<dyn StreamSealer> {
        Box::new(Encryptor::new(key))
    }

    fn opener(&self, key: StreamKey) -> Box<dyn PackageOpener> {
        Box::new(key)
    }
}

/// The production cipher factory, shared.
pub fn stream_cipher() -> Arc<dyn CipherFactory> {
    Arc::new(StreamCipher)
}

impl StreamSealer for Encryptor {
    #[inline]
    fn push(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        Encryptor::push(self, plaintext, out)
    }

    #[inline]
    fn finish(self, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        Encryptor::finish(self, out)
    }

    fn finish_boxed(self: Box<Self>, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        Encryptor::finish(*self, out)
    }
}

impl PackageOpener for StreamKey {
    #[inline]
    fn open_package(
        &self,
        index: u64,
        is_final: bool,
        sealed: Vec<u8>,
    ) -> Result<Vec<u8>, CryptoError> {
        coffer_crypto::open_package_vec(self, index, is_final, sealed)
    }
}
