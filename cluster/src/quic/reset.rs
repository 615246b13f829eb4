//! A stateless-reset key that survives restarts.
//!
//! When a node restarts, its peers still hold QUIC connections to the old process. The new
//! process answers their packets with a stateless reset, but a peer honours it only if the
//! reset token was made with the same key as the one the old process announced. quinn's
//! default key is random per endpoint, so peers would wait for the idle timeout (seconds of
//! failed Raft heartbeats and shard calls) before reconnecting. Deriving the key from the
//! node's private key keeps it stable across restarts and secret (a forged reset would cut a
//! connection).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// Domain separation of the derivation.
const LABEL: &[u8] = b"coffer/quic-stateless-reset/v1";

/// HMAC-SHA256 under a key derived from the node's private key.
pub(crate) struct ResetKey {
    key: Zeroizing<[u8; 32]>,
}

impl ResetKey {
    /// The key of the node whose private key (DER) is `secret`.
    pub(crate) fn derive(secret: &[u8]) -> Self {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(LABEL);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&mac.finalize().into_bytes());
        Self { key }
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as Mac>::new_from_slice(self.key.as_slice()).expect("HMAC takes any key length")
    }
}

impl quinn::crypto::HmacKey for ResetKey {
    fn sign(&self, data: &[u8], signature_out: &mut [u8]) {
        let mut mac = self.mac();
        mac.update(data);
        signature_out.copy_from_slice(&mac.finalize().into_bytes());
    }

    fn signature_len(&self) -> usize {
        32
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), quinn::crypto::CryptoError> {
        let mut mac = self.mac();
        mac.update(data);
        mac.verify_slice(signature)
            .map_err(|_| quinn::crypto::CryptoError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quinn::crypto::HmacKey;

    #[test]
    fn same_secret_same_key_and_signatures_verify() {
        let a = ResetKey::derive(b"node key one");
        let b = ResetKey::derive(b"node key one");
        let c = ResetKey::derive(b"node key two");
        let (mut sa, mut sb, mut sc) = ([0u8; 32], [0u8; 32], [0u8; 32]);
        a.sign(b"cid", &mut sa);
        b.sign(b"cid", &mut sb);
        c.sign(b"cid", &mut sc);
        assert_eq!(sa, sb);
        assert_ne!(sa, sc);
        assert!(b.verify(b"cid", &sa).is_ok());
        assert!(c.verify(b"cid", &sa).is_err());
    }
}
