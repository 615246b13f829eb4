//! HKDF derivation vectors: hkdf.json.

use coffer_crypto::{
    derive_kek, derive_key, derive_stream_key, derive_stream_key_v1, seal, ssec_fingerprint,
    ssec_kek, SecretKey, SeededEntropy, StreamBinding,
};
use serde::{Deserialize, Serialize};

use super::*;
use crate::reference::{self, RefStream};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HkdfFile {
    description: String,
    vectors: Vec<HkdfVector>,
    ssec_fingerprint: Vec<FingerprintVector>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HkdfVector {
    name: String,
    label: String,
    ikm: String,
    /// Absent: HKDF's default salt (32 zero bytes).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    salt: Option<String>,
    context: String,
    /// The full info string: label ‖ 0x00 ‖ context.
    info: String,
    okm: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FingerprintVector {
    client_key: String,
    salt: String,
    mac_key: String,
    fingerprint: String,
}

const LABELS: [&str; 6] = [
    "coffer/kek/v1",
    "coffer/stream/v1",
    "coffer/stream/v2",
    "coffer/ssec-kek/v1",
    "coffer/ssec-fingerprint/v1",
    "coffer/kms-local/v1",
];

/// What coffer_crypto derives for a vector; `None` where the API hides the bytes (stream keys,
/// which are checked through their ciphertext instead).
fn coffer_okm(v: &HkdfVector) -> Vec<u8> {
    let ikm = unhex32(&v.ikm);
    let context = unhex(&v.context);
    let salt = v.salt.as_deref().map(unhex32);
    match v.label.as_str() {
        "coffer/kek/v1" => derive_kek(&SecretKey::from_bytes(ikm), &context)
            .as_bytes()
            .to_vec(),
        "coffer/ssec-kek/v1" => ssec_kek(&ikm, &context).as_bytes().to_vec(),
        "coffer/kms-local/v1" | "coffer/ssec-fingerprint/v1" => {
            derive_key(&SecretKey::from_bytes(ikm), &v.label, &context)
                .as_bytes()
                .to_vec()
        }
        "coffer/stream/v1" | "coffer/stream/v2" => {
            let suite = suite_of(context[0]);
            let salt = salt.expect("stream keys are salted");
            let oek = SecretKey::from_bytes(ikm);
            let (key, okm_len) = if v.label.ends_with("v1") {
                (derive_stream_key_v1(&oek, suite, &salt), 32)
            } else {
                let b = StreamBinding::new("b", "o", "v", 0);
                (derive_stream_key(&oek, suite, &salt, &b), 39)
            };
            // Pin the key through one sealed package made with the recorded key bytes.
            let okm = unhex(&v.okm);
            assert_eq!(okm.len(), okm_len, "{}", v.name);
            let r = RefStream {
                suite,
                version: key.version(),
                key: okm[..32].try_into().unwrap(),
                prefix: key.nonce_prefix(),
                aad: if key.version() == 1 {
                    vec![1, suite.id()]
                } else {
                    [
                        &[2, suite.id()][..],
                        &StreamBinding::new("b", "o", "v", 0).encode(),
                    ]
                    .concat()
                },
            };
            assert_eq!(
                seal(key, b"pin").unwrap(),
                r.seal(b"pin"),
                "{}: coffer's stream key differs from the recorded okm",
                v.name
            );
            let mut out = okm[..32].to_vec();
            if okm_len == 39 {
                out.extend_from_slice(&r.prefix);
            }
            out
        }
        other => panic!("no coffer API for label {other}"),
    }
}

fn generate_hkdf() -> HkdfFile {
    let rng = SeededEntropy::new(777);
    let mut vectors = Vec::new();
    let mut push = |name: &str, label: &str, salt: Option<[u8; 32]>, context: Vec<u8>, len| {
        let ikm = bytes32(&rng);
        let mut okm = vec![0u8; len];
        reference::hkdf(
            &ikm,
            salt.as_ref().map(|s| &s[..]),
            label,
            &context,
            &mut okm,
        );
        let mut info = label.as_bytes().to_vec();
        info.push(0);
        info.extend_from_slice(&context);
        vectors.push(HkdfVector {
            name: name.into(),
            label: label.into(),
            ikm: hex::encode(ikm),
            salt: salt.map(hex::encode),
            context: hex::encode(&context),
            info: hex::encode(info),
            okm: hex::encode(okm),
        });
    };
    let salt = bytes32(&SeededEntropy::new(778));
    push(
        "kek",
        "coffer/kek/v1",
        None,
        b"coffer/object-key/v1\0S3\0photos\0cat.jpg".to_vec(),
        32,
    );
    push("kek-empty-context", "coffer/kek/v1", None, Vec::new(), 32);
    for suite in CipherSuite::ALL {
        let s = suite.name().to_lowercase();
        push(
            &format!("stream-v1-{s}"),
            "coffer/stream/v1",
            Some(salt),
            vec![suite.id()],
            32,
        );
        push(
            &format!("stream-v2-{s}"),
            "coffer/stream/v2",
            Some(salt),
            vec![suite.id()],
            39,
        );
    }
    push(
        "ssec-kek",
        "coffer/ssec-kek/v1",
        None,
        b"coffer/object-key/v1\0C\0b\0k".to_vec(),
        32,
    );
    push(
        "ssec-fingerprint",
        "coffer/ssec-fingerprint/v1",
        None,
        Vec::new(),
        32,
    );
    let mut local = b"coffer-default".to_vec();
    local.extend_from_slice(&1u32.to_be_bytes());
    push("kms-local", "coffer/kms-local/v1", None, local, 32);
    let mut fingerprints = Vec::new();
    for i in 0..2u8 {
        let client_key = bytes32(&rng);
        let salt = bytes32(&rng)[..16 + 16 * usize::from(i)].to_vec();
        let fp = ssec_fingerprint(&client_key, &salt);
        let (mac_key, _) = reference::ssec_fingerprint(&client_key, &salt);
        fingerprints.push(FingerprintVector {
            client_key: hex::encode(client_key),
            salt: hex::encode(salt),
            mac_key: hex::encode(mac_key),
            fingerprint: hex::encode(fp),
        });
    }
    HkdfFile {
        description: "Coffer HKDF-SHA256 derivations: okm = HKDF(salt or 32 zero bytes, ikm, \
                      info = label ‖ 0x00 ‖ context). One vector per label at least; stream \
                      contexts are the cipher id. See docs/format/object-encryption.md."
            .into(),
        vectors,
        ssec_fingerprint: fingerprints,
    }
}

#[test]
fn hkdf_vectors() {
    let file: HkdfFile = load("hkdf.json", generate_hkdf);
    for label in LABELS {
        assert!(
            file.vectors.iter().any(|v| v.label == label),
            "{label} has no vector"
        );
    }
    for v in &file.vectors {
        let ikm = unhex(&v.ikm);
        let salt = v.salt.as_deref().map(unhex);
        let context = unhex(&v.context);
        let mut info = v.label.as_bytes().to_vec();
        info.push(0);
        info.extend_from_slice(&context);
        assert_eq!(hex::encode(&info), v.info, "{}", v.name);
        let okm = unhex(&v.okm);
        let mut expected = vec![0u8; okm.len()];
        reference::hkdf(&ikm, salt.as_deref(), &v.label, &context, &mut expected);
        assert_eq!(expected, okm, "{}: reference", v.name);
        assert_eq!(coffer_okm(v), okm, "{}: coffer_crypto", v.name);
    }
    assert!(!file.ssec_fingerprint.is_empty());
    for f in &file.ssec_fingerprint {
        let client_key = unhex32(&f.client_key);
        let salt = unhex(&f.salt);
        let (mac_key, fp) = reference::ssec_fingerprint(&client_key, &salt);
        assert_eq!(hex::encode(mac_key), f.mac_key);
        assert_eq!(hex::encode(fp), f.fingerprint);
        assert_eq!(
            hex::encode(ssec_fingerprint(&client_key, &salt)),
            f.fingerprint
        );
        assert!(coffer_crypto::ssec_verify(&client_key, &salt, &fp));
    }
}
