//! SSE-C: keys supplied by the client on every request, never stored.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::keys::hkdf_sha256;
use crate::secret::SecretKey;

/// HKDF label for the KEK derived from a client key.
pub const SSEC_KEK_LABEL: &str = "coffer/ssec-kek/v1";
/// HKDF label for the key of the verification fingerprint.
pub const SSEC_FINGERPRINT_LABEL: &str = "coffer/ssec-fingerprint/v1";

/// Derives the KEK that seals an SSE-C object's key from the client's key and a context
/// (bucket, object key, SSE type) chosen by the node.
pub fn ssec_kek(client_key: &[u8; 32], context: &[u8]) -> SecretKey {
    hkdf_sha256(client_key, None, SSEC_KEK_LABEL, context)
}

/// A keyed fingerprint of the client key, stored to tell "wrong key" (403) apart early.
///
/// Unlike a bare MD5 of the key it is salted and keyed by a derived key, so the stored value
/// neither identifies the same key across objects nor allows an offline hash lookup.
pub fn ssec_fingerprint(client_key: &[u8; 32], salt: &[u8]) -> [u8; 32] {
    let mac_key = hkdf_sha256(client_key, None, SSEC_FINGERPRINT_LABEL, &[]);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(mac_key.as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(salt);
    mac.finalize().into_bytes().into()
}

/// Checks a client key against a stored fingerprint in constant time.
pub fn ssec_verify(client_key: &[u8; 32], salt: &[u8], expected: &[u8]) -> bool {
    ssec_fingerprint(client_key, salt)[..]
        .ct_eq(expected)
        .into()
}
