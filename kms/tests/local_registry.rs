//! The built-in KMS with a key registry: keys and rotations persist in the registry, another
//! instance over the same registry (another node, or this one after a restart) sees them, old
//! versions stay readable, a disabled key neither wraps nor unwraps, and without a registry
//! rotation is refused rather than forgotten at the next restart.

use std::sync::Arc;

use coffer_crypto::{OsEntropy, SecretKey};
use coffer_kms::{
    EncryptionContext, KeyState, Kms, KmsError, LocalKeyRegistry, LocalKms, MemoryKeyRegistry,
    DEFAULT_KEY_ID,
};

fn kms() -> LocalKms {
    LocalKms::new(SecretKey::from_bytes([9; 32]), Arc::new(OsEntropy))
}

fn ctx() -> EncryptionContext {
    [("coffer:bucket", "b")].into_iter().collect()
}

#[tokio::test]
async fn keys_and_rotations_live_in_the_registry() {
    let registry: Arc<dyn LocalKeyRegistry> = Arc::new(MemoryKeyRegistry::default());
    let a = kms();
    a.attach_registry(registry.clone()).await.unwrap();
    assert!(a.capabilities().rotate && a.capabilities().enable_disable);
    a.create_key("tenant").await.unwrap();
    let v1 = a.generate_data_key("tenant", &ctx()).await.unwrap();
    assert_eq!(v1.key_version, 1);

    // A second instance (another node) over the same registry knows the key ...
    let b = kms();
    b.attach_registry(registry.clone()).await.unwrap();
    assert!(b.key_exists("tenant").await.unwrap());
    assert_eq!(
        b.create_key("tenant").await,
        Err(KmsError::KeyAlreadyExists("tenant".into()))
    );

    // ... and a rotation on one is seen by the other when it meets the new version.
    let info = a.rotate_key("tenant").await.unwrap();
    assert_eq!(
        (info.current_version, info.versions.clone()),
        (Some(2), vec![1, 2])
    );
    let v2 = a.generate_data_key("tenant", &ctx()).await.unwrap();
    assert_eq!(v2.key_version, 2);
    assert_eq!(a.wrapped_key_version(&v2.ciphertext), Some(2));
    let back = b
        .decrypt_data_key("tenant", &v2.ciphertext, &ctx())
        .await
        .unwrap();
    assert_eq!(back, v2.plaintext);
    assert_eq!(
        b.decrypt_data_key("tenant", &v1.ciphertext, &ctx())
            .await
            .unwrap(),
        v1.plaintext,
        "version 1 still unwraps after the rotation"
    );
    // b rotates next, from the version a left: no lost update.
    assert_eq!(
        b.rotate_key("tenant").await.unwrap().current_version,
        Some(3)
    );
    assert_eq!(
        a.describe_key("tenant").await.unwrap().current_version,
        Some(3)
    );

    // Re-wrap moves an old blob to the newest version, same data key.
    let re = a
        .rewrap_data_key("tenant", &v1.ciphertext, &ctx(), "tenant")
        .await
        .unwrap();
    assert_eq!(re.key_version, 3);
    assert_eq!(
        a.decrypt_data_key("tenant", &re.ciphertext, &ctx())
            .await
            .unwrap(),
        v1.plaintext
    );

    // The default key rotates too, although it was never stored before.
    assert_eq!(
        a.rotate_key(DEFAULT_KEY_ID).await.unwrap().current_version,
        Some(2)
    );
    assert_eq!(
        b.describe_key(DEFAULT_KEY_ID)
            .await
            .unwrap()
            .current_version,
        Some(2)
    );

    // Disabled: neither wraps nor unwraps, on either instance; enabled again: both work.
    a.set_key_enabled("tenant", false).await.unwrap();
    assert_eq!(
        b.describe_key("tenant").await.unwrap().state,
        KeyState::Disabled
    );
    for k in [&a, &b] {
        assert!(matches!(
            k.generate_data_key("tenant", &ctx()).await,
            Err(KmsError::KeyUnusable { .. })
        ));
        assert!(matches!(
            k.decrypt_data_key("tenant", &v1.ciphertext, &ctx()).await,
            Err(KmsError::KeyUnusable { .. })
        ));
    }
    a.set_key_enabled("tenant", true).await.unwrap();
    let _ = b.list_keys().await.unwrap();
    assert_eq!(
        b.decrypt_data_key("tenant", &v1.ciphertext, &ctx())
            .await
            .unwrap(),
        v1.plaintext
    );

    // A fresh instance (a restart) has everything back from the registry.
    let c = kms();
    c.attach_registry(registry).await.unwrap();
    assert_eq!(
        c.describe_key("tenant").await.unwrap().current_version,
        Some(3)
    );
    assert_eq!(
        c.decrypt_data_key("tenant", &v2.ciphertext, &ctx())
            .await
            .unwrap(),
        v2.plaintext
    );
}

#[tokio::test]
async fn without_a_registry_rotation_is_refused() {
    let k = kms();
    assert!(!k.capabilities().rotate);
    assert!(matches!(
        k.rotate_key(DEFAULT_KEY_ID).await,
        Err(KmsError::Unsupported { .. })
    ));
    assert!(matches!(
        k.set_key_enabled(DEFAULT_KEY_ID, false).await,
        Err(KmsError::Unsupported { .. })
    ));
}
