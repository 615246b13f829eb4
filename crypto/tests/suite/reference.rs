//! An independent implementation of docs/format/object-encryption.md with the RustCrypto
//! crates (`hkdf`, `hmac`, `aes-gcm`, `chacha20poly1305`). It shares no code with
//! coffer_crypto (which runs on `ring`) beyond the cipher id enum.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use coffer_crypto::CipherSuite;
use hkdf::Hkdf;
use sha2::Sha256;

pub const PACKAGE: usize = 65_536;
pub const TAG: usize = 16;

/// HKDF-SHA256 with info = label ‖ 0x00 ‖ context.
pub fn hkdf(ikm: &[u8], salt: Option<&[u8]>, label: &str, context: &[u8], out: &mut [u8]) {
    let mut info = label.as_bytes().to_vec();
    info.push(0);
    info.extend_from_slice(context);
    Hkdf::<Sha256>::new(salt, ikm).expand(&info, out).unwrap();
}

pub fn hkdf32(ikm: &[u8], salt: Option<&[u8]>, label: &str, context: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    hkdf(ikm, salt, label, context, &mut out);
    out
}

pub fn aead_seal(suite: CipherSuite, key: &[u8], nonce: &[u8], aad: &[u8], msg: &[u8]) -> Vec<u8> {
    let payload = Payload { msg, aad };
    match suite {
        CipherSuite::Aes256Gcm => aes_gcm::Aes256Gcm::new_from_slice(key)
            .unwrap()
            .encrypt(aes_gcm::Nonce::from_slice(nonce), payload)
            .unwrap(),
        CipherSuite::ChaCha20Poly1305 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(key)
            .unwrap()
            .encrypt(chacha20poly1305::Nonce::from_slice(nonce), payload)
            .unwrap(),
    }
}

pub fn aead_open(
    suite: CipherSuite,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    msg: &[u8],
) -> Option<Vec<u8>> {
    let payload = Payload { msg, aad };
    match suite {
        CipherSuite::Aes256Gcm => aes_gcm::Aes256Gcm::new_from_slice(key)
            .unwrap()
            .decrypt(aes_gcm::Nonce::from_slice(nonce), payload)
            .ok(),
        CipherSuite::ChaCha20Poly1305 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(key)
            .unwrap()
            .decrypt(chacha20poly1305::Nonce::from_slice(nonce), payload)
            .ok(),
    }
}

/// Canonical binding bytes: u32 BE length ‖ UTF-8 for bucket, object, version id; part u32 BE.
pub fn binding_bytes(bucket: &str, object: &str, version_id: &str, part: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for field in [bucket, object, version_id] {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out.extend_from_slice(&part.to_be_bytes());
    out
}

/// One stream as the format document describes it.
pub struct RefStream {
    pub suite: CipherSuite,
    pub version: u8,
    pub key: [u8; 32],
    pub prefix: [u8; 7],
    pub aad: Vec<u8>,
}

impl RefStream {
    /// Version 2: one 39-byte HKDF expand; AAD = 0x02 ‖ cipher id ‖ binding bytes.
    pub fn v2(oek: &[u8; 32], suite: CipherSuite, salt: &[u8; 32], binding: &[u8]) -> Self {
        let mut okm = [0u8; 39];
        hkdf(oek, Some(salt), "coffer/stream/v2", &[suite.id()], &mut okm);
        let mut aad = vec![2, suite.id()];
        aad.extend_from_slice(binding);
        RefStream {
            suite,
            version: 2,
            key: okm[..32].try_into().unwrap(),
            prefix: okm[32..].try_into().unwrap(),
            aad,
        }
    }

    /// Version 1: a 32-byte HKDF expand; AAD = 0x01 ‖ cipher id.
    pub fn v1(oek: &[u8; 32], suite: CipherSuite, salt: &[u8; 32]) -> Self {
        RefStream {
            suite,
            version: 1,
            key: hkdf32(oek, Some(salt), "coffer/stream/v1", &[suite.id()]),
            prefix: [0; 7],
            aad: vec![1, suite.id()],
        }
    }

    pub fn nonce(&self, index: u64, is_final: bool) -> [u8; 12] {
        let mut n = [0u8; 12];
        if self.version == 1 {
            n[..8].copy_from_slice(&index.to_be_bytes());
        } else {
            n[..7].copy_from_slice(&self.prefix);
            n[7..11].copy_from_slice(&u32::try_from(index).unwrap().to_be_bytes());
        }
        n[11] = u8::from(is_final);
        n
    }

    pub fn seal_package(&self, index: u64, is_final: bool, msg: &[u8]) -> Vec<u8> {
        aead_seal(
            self.suite,
            &self.key,
            &self.nonce(index, is_final),
            &self.aad,
            msg,
        )
    }

    pub fn seal(&self, data: &[u8]) -> Vec<u8> {
        let packages: Vec<&[u8]> = if data.is_empty() {
            vec![&[][..]]
        } else {
            data.chunks(PACKAGE).collect()
        };
        let mut out = Vec::new();
        for (i, msg) in packages.iter().enumerate() {
            out.extend(self.seal_package(i as u64, i + 1 == packages.len(), msg));
        }
        out
    }

    /// Opens a whole stream of `plain_len` bytes; `None` on any mismatch.
    pub fn open(&self, plain_len: usize, sealed: &[u8]) -> Option<Vec<u8>> {
        let n = plain_len.div_ceil(PACKAGE).max(1);
        if sealed.len() != plain_len + n * TAG {
            return None;
        }
        let mut out = Vec::with_capacity(plain_len);
        for (i, package) in sealed.chunks(PACKAGE + TAG).enumerate() {
            let nonce = self.nonce(i as u64, i + 1 == n);
            out.extend(aead_open(
                self.suite, &self.key, &nonce, &self.aad, package,
            )?);
        }
        Some(out)
    }
}

/// Sealed key version 1: 0x01 ‖ nonce ‖ AES-256-GCM(kek, nonce, 0x01 ‖ aad, key).
pub fn seal_key_v1(kek: &[u8], key: &[u8], aad: &[u8], nonce: &[u8; 12]) -> Vec<u8> {
    let mut full_aad = vec![1u8];
    full_aad.extend_from_slice(aad);
    let mut out = vec![1u8];
    out.extend_from_slice(nonce);
    out.extend(aead_seal(
        CipherSuite::Aes256Gcm,
        kek,
        nonce,
        &full_aad,
        key,
    ));
    out
}

/// Sealed key version 2: 0x02 ‖ alg ‖ nonce ‖ AEAD(kek, nonce, 0x02 ‖ alg ‖ aad, key).
pub fn seal_key_v2(
    suite: CipherSuite,
    kek: &[u8],
    key: &[u8],
    aad: &[u8],
    nonce: &[u8; 12],
) -> Vec<u8> {
    let header = [2u8, suite.id()];
    let mut full_aad = header.to_vec();
    full_aad.extend_from_slice(aad);
    let mut out = header.to_vec();
    out.extend_from_slice(nonce);
    out.extend(aead_seal(suite, kek, nonce, &full_aad, key));
    out
}

/// Opens either sealed-key version.
pub fn unseal_key(kek: &[u8], blob: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    let (suite, header) = match *blob.first()? {
        1 if blob.len() == 61 => (CipherSuite::Aes256Gcm, &blob[..1]),
        2 if blob.len() == 62 => (CipherSuite::from_id(blob[1]).ok()?, &blob[..2]),
        _ => return None,
    };
    let nonce = &blob[header.len()..header.len() + 12];
    let mut full_aad = header.to_vec();
    full_aad.extend_from_slice(aad);
    aead_open(suite, kek, nonce, &full_aad, &blob[header.len() + 12..])
}

/// The SSE-C fingerprint: HMAC-SHA256(HKDF(client key, "coffer/ssec-fingerprint/v1", ""), salt).
pub fn ssec_fingerprint(client_key: &[u8], salt: &[u8]) -> ([u8; 32], [u8; 32]) {
    use hmac::{Hmac, Mac};
    let mac_key = hkdf32(client_key, None, "coffer/ssec-fingerprint/v1", b"");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&mac_key).unwrap();
    mac.update(salt);
    (mac_key, mac.finalize().into_bytes().into())
}
