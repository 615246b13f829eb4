//! Stream vectors: stream_v2.json and stream_v1.json.

use coffer_crypto::{
    derive_stream_key, derive_stream_key_v1, open, open_package, package_count, seal, sealed_len,
    CipherSuite, CryptoError, SecretKey, SeededEntropy, StreamBinding, StreamKey, PACKAGE_SIZE,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::*;
use crate::reference::{self, RefStream};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamFile {
    description: String,
    version: u8,
    package_size: usize,
    plaintext: String,
    vectors: Vec<StreamVector>,
}

#[derive(Serialize, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct BindingFields {
    bucket: String,
    object: String,
    version_id: String,
    part: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamVector {
    name: String,
    cipher: String,
    cipher_id: u8,
    oek: String,
    salt: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    binding: Option<BindingFields>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    binding_bytes: Option<String>,
    hkdf_info: String,
    stream_key: String,
    nonce_prefix: String,
    aad: String,
    plaintext_len: usize,
    package_count: u64,
    sealed_len: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    ciphertext: Option<String>,
    ciphertext_sha256: String,
    packages: Vec<PackageVector>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PackageVector {
    index: u64,
    #[serde(rename = "final")]
    is_final: bool,
    nonce: String,
    sealed_len: usize,
    /// The whole sealed package (ciphertext ‖ tag), for short packages only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    sealed: Option<String>,
    /// The first 32 sealed bytes.
    head: String,
    tag: String,
    sha256: String,
}

const STREAM_LENS: [usize; 6] = [0, 1, 65_535, 65_536, 65_537, 3 * 65_536 + 5];
const STREAM_V1_LENS: [usize; 4] = [0, 1, 65_536, 3 * 65_536 + 5];

fn v2_binding(i: usize) -> BindingFields {
    let (bucket, object, version_id, part) = [
        ("photos", "cat.jpg", "", 0),
        ("photos", "2024/cat.jpg", "null", 0),
        (
            "backups",
            "db/dump.sql",
            "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
            1,
        ),
        (
            "backups",
            "db/dump.sql",
            "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
            2,
        ),
        ("b", "k", "v", 10_000),
        ("données", "dir/ünïcode ✓.txt", "0195f5a8-7c1e-7d2a", 0),
    ][i];
    BindingFields {
        bucket: bucket.into(),
        object: object.into(),
        version_id: version_id.into(),
        part,
    }
}

fn to_binding(b: &BindingFields) -> StreamBinding {
    StreamBinding::new(&b.bucket, &b.object, &b.version_id, b.part)
}

fn describe_packages(r: &RefStream, sealed: &[u8], plain_len: usize) -> Vec<PackageVector> {
    let n = package_count(plain_len as u64) as usize;
    sealed
        .chunks(PACKAGE_SIZE + 16)
        .enumerate()
        .map(|(i, p)| PackageVector {
            index: i as u64,
            is_final: i + 1 == n,
            nonce: hex::encode(r.nonce(i as u64, i + 1 == n)),
            sealed_len: p.len(),
            sealed: (p.len() <= FULL_HEX_MAX).then(|| hex::encode(p)),
            head: hex::encode(&p[..HEAD_LEN.min(p.len())]),
            tag: hex::encode(&p[p.len() - 16..]),
            sha256: hex::encode(Sha256::digest(p)),
        })
        .collect()
}

fn stream_vector(
    name: String,
    version: u8,
    suite: CipherSuite,
    len: usize,
    seed: u64,
    binding: Option<BindingFields>,
) -> StreamVector {
    let rng = SeededEntropy::new(seed);
    let (oek, salt) = (bytes32(&rng), bytes32(&rng));
    let data = vector_plaintext(len);
    let (key, r) = match &binding {
        Some(b) => {
            let bytes = to_binding(b).encode();
            (
                derive_stream_key(&SecretKey::from_bytes(oek), suite, &salt, &to_binding(b)),
                RefStream::v2(&oek, suite, &salt, &bytes),
            )
        }
        None => (
            derive_stream_key_v1(&SecretKey::from_bytes(oek), suite, &salt),
            RefStream::v1(&oek, suite, &salt),
        ),
    };
    assert_eq!(key.version(), version);
    let sealed = seal(key, &data).unwrap();
    let label = if version == 1 {
        "coffer/stream/v1"
    } else {
        "coffer/stream/v2"
    };
    let mut info = label.as_bytes().to_vec();
    info.extend([0, suite.id()]);
    StreamVector {
        name,
        cipher: suite.name().into(),
        cipher_id: suite.id(),
        oek: hex::encode(oek),
        salt: hex::encode(salt),
        binding_bytes: binding
            .as_ref()
            .map(|b| hex::encode(to_binding(b).encode())),
        binding,
        hkdf_info: hex::encode(info),
        stream_key: hex::encode(r.key),
        nonce_prefix: hex::encode(r.prefix),
        aad: hex::encode(&r.aad),
        plaintext_len: len,
        package_count: package_count(len as u64),
        sealed_len: sealed.len() as u64,
        ciphertext: (sealed.len() <= FULL_HEX_MAX).then(|| hex::encode(&sealed)),
        ciphertext_sha256: hex::encode(Sha256::digest(&sealed)),
        packages: describe_packages(&r, &sealed, len),
    }
}

fn generate_streams(version: u8) -> StreamFile {
    let lens: &[usize] = if version == 1 {
        &STREAM_V1_LENS
    } else {
        &STREAM_LENS
    };
    let mut vectors = Vec::new();
    for suite in CipherSuite::ALL {
        for (i, &len) in lens.iter().enumerate() {
            let seed = u64::from(version) * 1000 + u64::from(suite.id()) * 100 + i as u64;
            let binding = (version == 2).then(|| v2_binding(i));
            let name = format!("v{version}-{}-{len}", suite.name().to_lowercase());
            vectors.push(stream_vector(name, version, suite, len, seed, binding));
        }
    }
    let description = if version == 1 {
        "Coffer stream format version 1 (legacy, read-only): HKDF-SHA256(salt, OEK, \
         \"coffer/stream/v1\" ‖ 0x00 ‖ cipher id, 32); nonce = index (u64 BE) ‖ 00 00 00 ‖ final; \
         AAD = 0x01 ‖ cipher id. See docs/format/object-encryption.md."
    } else {
        "Coffer stream format version 2: okm = HKDF-SHA256(salt, OEK, \"coffer/stream/v2\" ‖ 0x00 \
         ‖ cipher id, 39); key = okm[0..32], nonce prefix = okm[32..39]; nonce = prefix ‖ index \
         (u32 BE) ‖ final; AAD = 0x02 ‖ cipher id ‖ binding bytes. Packages longer than 64 bytes \
         are recorded by head (first 32 bytes), tag and SHA-256. See \
         docs/format/object-encryption.md."
    };
    StreamFile {
        description: description.into(),
        version,
        package_size: PACKAGE_SIZE,
        plaintext: PLAINTEXT_RULE.into(),
        vectors,
    }
}

fn check_sealed(v: &StreamVector, sealed: &[u8]) {
    let name = &v.name;
    assert_eq!(sealed.len() as u64, v.sealed_len, "{name}: sealed length");
    assert_eq!(v.sealed_len, sealed_len(v.plaintext_len as u64), "{name}");
    assert_eq!(
        v.package_count,
        package_count(v.plaintext_len as u64),
        "{name}"
    );
    assert_eq!(
        hex::encode(Sha256::digest(sealed)),
        v.ciphertext_sha256,
        "{name}: SHA-256"
    );
    if let Some(ct) = &v.ciphertext {
        assert_eq!(&hex::encode(sealed), ct, "{name}: ciphertext");
    }
    let packages: Vec<&[u8]> = sealed.chunks(PACKAGE_SIZE + 16).collect();
    assert_eq!(packages.len(), v.packages.len(), "{name}: package count");
    for (p, pv) in packages.iter().zip(&v.packages) {
        assert_eq!(p.len(), pv.sealed_len, "{name}: package {}", pv.index);
        assert_eq!(
            hex::encode(Sha256::digest(p)),
            pv.sha256,
            "{name} {}",
            pv.index
        );
        assert_eq!(hex::encode(&p[..HEAD_LEN.min(p.len())]), pv.head, "{name}");
        assert_eq!(hex::encode(&p[p.len() - 16..]), pv.tag, "{name}");
        if let Some(full) = &pv.sealed {
            assert_eq!(&hex::encode(p), full, "{name}: package {}", pv.index);
        }
    }
}

fn check_stream_file(file: &StreamFile) {
    assert_eq!(file.package_size, PACKAGE_SIZE);
    assert_eq!(file.plaintext, PLAINTEXT_RULE);
    assert!(!file.vectors.is_empty());
    let mut seen = std::collections::BTreeSet::new();
    for v in &file.vectors {
        let name = &v.name;
        let suite = suite_of(v.cipher_id);
        assert_eq!(suite.name(), v.cipher, "{name}");
        seen.insert((v.cipher_id, v.plaintext_len));
        let (oek, salt) = (unhex32(&v.oek), unhex32(&v.salt));
        let data = vector_plaintext(v.plaintext_len);

        // (b) the reference derives the recorded key, prefix, info and AAD.
        let r = match file.version {
            1 => {
                assert!(v.binding.is_none() && v.binding_bytes.is_none(), "{name}");
                RefStream::v1(&oek, suite, &salt)
            }
            2 => {
                let b = v.binding.as_ref().expect("v2 vectors carry a binding");
                let bytes = reference::binding_bytes(&b.bucket, &b.object, &b.version_id, b.part);
                assert_eq!(
                    Some(hex::encode(&bytes)),
                    v.binding_bytes,
                    "{name}: binding"
                );
                assert_eq!(
                    to_binding(b).encode(),
                    bytes,
                    "{name}: StreamBinding::encode"
                );
                RefStream::v2(&oek, suite, &salt, &bytes)
            }
            other => panic!("unknown stream version {other}"),
        };
        let label = format!("coffer/stream/v{}", file.version);
        let mut info = label.into_bytes();
        info.extend([0, suite.id()]);
        assert_eq!(hex::encode(info), v.hkdf_info, "{name}");
        assert_eq!(hex::encode(r.key), v.stream_key, "{name}: stream key");
        assert_eq!(
            hex::encode(r.prefix),
            v.nonce_prefix,
            "{name}: nonce prefix"
        );
        assert_eq!(hex::encode(&r.aad), v.aad, "{name}: AAD");
        for pv in &v.packages {
            assert_eq!(
                hex::encode(r.nonce(pv.index, pv.is_final)),
                pv.nonce,
                "{name}"
            );
        }

        let coffer_key = || -> StreamKey {
            let oek = SecretKey::from_bytes(oek);
            match &v.binding {
                Some(b) => derive_stream_key(&oek, suite, &salt, &to_binding(b)),
                None => derive_stream_key_v1(&oek, suite, &salt),
            }
        };
        let key = coffer_key();
        assert_eq!(key.version(), file.version, "{name}");
        assert_eq!(hex::encode(key.nonce_prefix()), v.nonce_prefix, "{name}");

        // (a) ring seals to exactly the recorded bytes.
        let sealed = seal(key, &data).unwrap();
        check_sealed(v, &sealed);
        // (b) the reference seals to the same bytes and opens them.
        assert!(
            r.seal(&data) == sealed,
            "{name}: reference ciphertext differs"
        );
        assert!(
            r.open(data.len(), &sealed) == Some(data.clone()),
            "{name}: reference open"
        );
        // (c) ring opens them, whole and package by package.
        assert!(
            open(coffer_key(), data.len() as u64, &sealed).unwrap() == data,
            "{name}"
        );
        let k = coffer_key();
        for (p, pv) in sealed.chunks(PACKAGE_SIZE + 16).zip(&v.packages) {
            let start = pv.index as usize * PACKAGE_SIZE;
            let plain = open_package(&k, pv.index, pv.is_final, p).unwrap();
            assert!(plain == data[start..start + plain.len()], "{name}");
            assert_eq!(
                open_package(&k, pv.index, !pv.is_final, p),
                Err(CryptoError::Authentication)
            );
        }
    }
    // Every length is covered for both ciphers.
    let lens: &[usize] = if file.version == 1 {
        &STREAM_V1_LENS
    } else {
        &STREAM_LENS
    };
    for suite in CipherSuite::ALL {
        for &len in lens {
            assert!(seen.contains(&(suite.id(), len)), "{suite:?} {len} missing");
        }
    }
}

#[test]
fn stream_v2_vectors() {
    let file: StreamFile = load("stream_v2.json", || generate_streams(2));
    assert_eq!(file.version, 2);
    check_stream_file(&file);
}

#[test]
fn stream_v1_vectors() {
    let file: StreamFile = load("stream_v1.json", || generate_streams(1));
    assert_eq!(file.version, 1);
    check_stream_file(&file);
}
