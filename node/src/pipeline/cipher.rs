//! The seam between the data path and the stream cipher: [`SegmentWriter`] seals through a
//! [`StreamSealer`] and [`SegmentReader`] opens through a [`PackageOpener`]. Production uses
//! coffer_crypto's [`Encryptor`] and [`StreamKey`]; the seam exists so a benchmark can compare
//! the pipeline against itself with the cipher swapped out. Dispatch is static (generic
//! parameters with these types as defaults), so the production path compiles to direct calls.
//!
//! [`SegmentWriter`]: crate::pipeline::SegmentWriter
//! [`SegmentReader`]: crate::pipeline::SegmentReader

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
}

/// Opens one sealed package of a stream.
pub trait PackageOpener: Send + 'static {
    /// The plaintext of package `index` (`is_final` for the stream's last package).
    fn open_package(
        &self,
        index: u64,
        is_final: bool,
        sealed: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
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
}

impl PackageOpener for StreamKey {
    #[inline]
    fn open_package(
        &self,
        index: u64,
        is_final: bool,
        sealed: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        coffer_crypto::open_package(self, index, is_final, sealed)
    }
}
