//! The local KMS provider.

use std::sync::Arc;

use coffer_crypto::{SecretKey, SeededEntropy};
use coffer_kms::{
    validate_key_id, EncryptionContext, Kms, KmsError, LocalKms, DEFAULT_KEY_ID, LOCAL_BLOB_LEN,
};

fn root() -> SecretKey {
    SecretKey::from_bytes([0x5A; 32])
}

fn kms(seed: u64) -> LocalKms {
    LocalKms::new(root(), Arc::new(SeededEntropy::new(seed)))
}

fn ctx(object: &str) -> EncryptionContext {
    [("bucket", "photos"), ("object", object)]
        .into_iter()
        .collect()
}

#[tokio::test]
async fn round_trip() {
    let kms = kms(1);
    assert_eq!(kms.provider(), "local");
    kms.health().await.unwrap();
    let dk = kms
        .generate_data_key(DEFAULT_KEY_ID, &ctx("a"))
        .await
        .unwrap();
    assert_eq!(dk.key_id, DEFAULT_KEY_ID);
    assert_eq!(dk.key_version, 1);
    assert_eq!(dk.ciphertext.len(), LOCAL_BLOB_LEN);
    assert_eq!(dk.ciphertext[0], 1);
    let got = kms
        .decrypt_data_key(DEFAULT_KEY_ID, &dk.ciphertext, &ctx("a"))
        .await
        .unwrap();
    assert_eq!(got, dk.plaintext);
    let other = kms
        .generate_data_key(DEFAULT_KEY_ID, &ctx("a"))
        .await
        .unwrap();
    assert_ne!(other.plaintext, dk.plaintext);
}

#[tokio::test]
async fn failures_are_typed() {
    let kms = kms(2);
    kms.create_key("tenant-b").await.unwrap();
    let dk = kms
        .generate_data_key(DEFAULT_KEY_ID, &ctx("a"))
        .await
        .unwrap();
    assert_eq!(
        kms.decrypt_data_key(DEFAULT_KEY_ID, &dk.ciphertext, &ctx("b"))
            .await,
        Err(KmsError::InvalidCiphertext)
    );
    assert_eq!(
        kms.decrypt_data_key(DEFAULT_KEY_ID, &dk.ciphertext, &EncryptionContext::new())
            .await,
        Err(KmsError::InvalidCiphertext)
    );
    assert_eq!(
        kms.decrypt_data_key("tenant-b", &dk.ciphertext, &ctx("a"))
            .await,
        Err(KmsError::InvalidCiphertext)
    );
    for pos in [0, 1, 4, 5, 20, LOCAL_BLOB_LEN - 1] {
        let mut bad = dk.ciphertext.clone();
        bad[pos] ^= 1;
        assert_eq!(
            kms.decrypt_data_key(DEFAULT_KEY_ID, &bad, &ctx("a")).await,
            Err(KmsError::InvalidCiphertext),
            "{pos}"
        );
    }
    assert_eq!(
        kms.decrypt_data_key(DEFAULT_KEY_ID, &dk.ciphertext[..30], &ctx("a"))
            .await,
        Err(KmsError::InvalidCiphertext)
    );
    assert_eq!(
        kms.decrypt_data_key("nope", &dk.ciphertext, &ctx("a"))
            .await,
        Err(KmsError::KeyNotFound("nope".into()))
    );
    assert_eq!(
        kms.generate_data_key("nope", &ctx("a")).await.unwrap_err(),
        KmsError::KeyNotFound("nope".into())
    );
    assert_eq!(
        kms.generate_data_key("bad key", &ctx("a"))
            .await
            .unwrap_err(),
        KmsError::InvalidKeyId("bad key".into())
    );
    assert_eq!(
        kms.create_key("tenant-b").await,
        Err(KmsError::KeyAlreadyExists("tenant-b".into()))
    );
}

#[tokio::test]
async fn keys_survive_a_restart() {
    let before = LocalKms::new(root(), Arc::new(SeededEntropy::new(3)));
    before.create_key("app/one").await.unwrap();
    let dk = before
        .generate_data_key("app/one", &ctx("x"))
        .await
        .unwrap();
    let ids = before.list_keys().await.unwrap();
    assert_eq!(ids, vec!["app/one".to_string(), DEFAULT_KEY_ID.to_string()]);
    drop(before);

    let after = LocalKms::with_keys(root(), Arc::new(SeededEntropy::new(99)), ids);
    assert!(after.key_exists("app/one").await.unwrap());
    let got = after
        .decrypt_data_key("app/one", &dk.ciphertext, &ctx("x"))
        .await
        .unwrap();
    assert_eq!(got, dk.plaintext);

    // Another root key cannot.
    let stranger = LocalKms::with_keys(
        SecretKey::from_bytes([1; 32]),
        Arc::new(SeededEntropy::new(3)),
        ["app/one".to_string()],
    );
    assert_eq!(
        stranger
            .decrypt_data_key("app/one", &dk.ciphertext, &ctx("x"))
            .await,
        Err(KmsError::InvalidCiphertext)
    );
}

#[tokio::test]
async fn default_key_is_always_present() {
    let kms = LocalKms::with_keys(root(), Arc::new(SeededEntropy::new(4)), Vec::new());
    assert!(kms.key_exists(DEFAULT_KEY_ID).await.unwrap());
    assert!(!kms.key_exists("other").await.unwrap());
    assert_eq!(
        kms.key_exists("").await,
        Err(KmsError::InvalidKeyId(String::new()))
    );
}

#[test]
fn key_id_rules() {
    for ok in [
        "a",
        "coffer-default",
        "team/app_1.key:v-2",
        &"x".repeat(256),
    ] {
        assert!(validate_key_id(ok).is_ok(), "{ok}");
    }
    for bad in ["", "has space", "ü", "a\0b", "semi;colon", &"x".repeat(257)] {
        assert!(
            matches!(validate_key_id(bad), Err(KmsError::InvalidKeyId(_))),
            "{bad}"
        );
    }
}

#[test]
fn context_encoding_is_canonical_and_unambiguous() {
    let a: EncryptionContext = [("a", "bc")].into_iter().collect();
    let b: EncryptionContext = [("ab", "c")].into_iter().collect();
    assert_ne!(a.canonical_bytes(), b.canonical_bytes());
    let x: EncryptionContext = [("k1", "v1"), ("k2", "v2")].into_iter().collect();
    let y: EncryptionContext = [("k2", "v2"), ("k1", "v1")].into_iter().collect();
    assert_eq!(x.canonical_bytes(), y.canonical_bytes());
    assert_eq!(EncryptionContext::new().canonical_bytes(), vec![0, 0, 0, 0]);
    assert_eq!(
        a.canonical_bytes(),
        vec![0, 0, 0, 1, 0, 0, 0, 1, b'a', 0, 0, 0, 2, b'b', b'c']
    );
}

#[test]
fn data_key_debug_hides_the_key() {
    let dk = coffer_kms::DataKey {
        key_id: "k".into(),
        key_version: 1,
        plaintext: SecretKey::from_bytes([0xEE; 32]),
        ciphertext: vec![1, 2, 3],
    };
    let shown = format!("{dk:?}");
    assert!(shown.contains("SecretKey(..)"), "{shown}");
    assert!(!shown.contains("238"), "{shown}");
}
