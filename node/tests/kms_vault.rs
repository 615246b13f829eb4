//! Coffer against a real OpenBao transit engine (issue 4, acceptance 1 without the re-wrap job,
//! and the provider itself): SSE-S3 and SSE-KMS round trips under two keys, rotation in
//! OpenBao keeps old objects readable and puts new ones under the new version, and the
//! encryption context is enforced by OpenBao.

mod common;

use std::sync::Arc;

use aws_sdk_s3::types::ServerSideEncryption;
use coffer_kms::{
    EncryptionContext, Kms, KmsError, SecretString, VaultAuth, VaultConfig, VaultKms,
};
use common::kms::{put_kms, vault_env, version_of, Bao};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_s3_and_sse_kms_round_trip_and_survive_rotation() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    for k in ["coffer-sse", "tenant-a", "tenant-b"] {
        bao.create_key(k, true).await;
    }
    let mut server = TestServer::start(ServerOpts {
        extra_env: vault_env(&bao, "coffer-sse"),
        ..Default::default()
    })
    .await;
    let s3 = server.client();
    let bucket = bucket_name("vault");
    create_bucket(&s3, &bucket).await;

    let objects: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
        ("s3-default", None, pseudo_random(200 * KIB, 1)),
        ("kms-a", Some("tenant-a"), pseudo_random(70 * KIB, 2)),
        ("kms-b", Some("tenant-b"), pseudo_random(3 * KIB, 3)),
    ];
    for (key, kms_key, body) in &objects {
        match kms_key {
            None => {
                put_bytes(&s3, &bucket, key, body).await;
            }
            Some(k) => put_kms(&s3, &bucket, key, k, body).await,
        }
    }
    for (key, kms_key, body) in &objects {
        assert_same_bytes(&get_bytes(&s3, &bucket, key).await, body, key);
        let (id, version) = version_of(&server, &bucket, key).await;
        assert_eq!(id, kms_key.unwrap_or("coffer-sse"), "{key}");
        assert_eq!(version, 1, "{key} wrapped under version 1");
        let head = s3
            .head_object()
            .bucket(&bucket)
            .key(*key)
            .send()
            .await
            .unwrap();
        if let Some(k) = kms_key {
            assert_eq!(head.ssekms_key_id(), Some(*k), "{key}");
        }
    }

    // Rotate two keys in OpenBao itself (not through Coffer).
    bao.rotate("tenant-a").await;
    bao.rotate("coffer-sse").await;
    assert_eq!(bao.latest_version("tenant-a").await, 2);

    // SSE-KMS without a bucket key asks the KMS per object: the new version at once.
    let new_a = pseudo_random(10 * KIB, 4);
    put_kms(&s3, &bucket, "kms-a-new", "tenant-a", &new_a).await;
    assert_eq!(version_of(&server, &bucket, "kms-a-new").await.1, 2);

    // A restart empties the data-key cache: every read below is unwrapped by OpenBao, so the
    // old objects prove that version 1 still decrypts after the rotation.
    server.restart().await;
    let s3 = server.client();
    for (key, _, body) in &objects {
        assert_same_bytes(&get_bytes(&s3, &bucket, key).await, body, key);
        assert_eq!(version_of(&server, &bucket, key).await.1, 1, "{key}");
    }
    assert_same_bytes(
        &get_bytes(&s3, &bucket, "kms-a-new").await,
        &new_a,
        "kms-a-new",
    );
    // SSE-S3 data keys are cached (bucket keys), so the rotated default key shows once the
    // cache is fresh, as it is after the restart.
    let new_s3 = pseudo_random(5 * KIB, 5);
    put_bytes(&s3, &bucket, "s3-new", &new_s3).await;
    assert_eq!(
        version_of(&server, &bucket, "s3-new").await,
        ("coffer-sse".into(), 2)
    );
    assert_same_bytes(&get_bytes(&s3, &bucket, "s3-new").await, &new_s3, "s3-new");

    // An SSE-KMS key that OpenBao does not have is the client's error, not a 5xx.
    let err = s3
        .put_object()
        .bucket(&bucket)
        .key("nokey")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("no-such-key")
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap_err();
    assert_not_5xx(&err, "PUT under a missing key");
}

fn direct(bao: &Bao, token: &str) -> VaultConfig {
    VaultConfig {
        address: bao.url(),
        auth: VaultAuth::Token(SecretString::new(token)),
        namespace: None,
        mount: "transit".into(),
        ca_bundle: None,
        request_timeout: std::time::Duration::from_secs(5),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_provider_binds_context_and_tracks_versions() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    let kms: Arc<dyn Kms> = Arc::new(
        VaultKms::connect(direct(&bao, &bao.root_token))
            .await
            .unwrap(),
    );
    kms.health().await.unwrap();
    kms.create_key("made-by-coffer").await.unwrap();
    assert_eq!(
        kms.create_key("made-by-coffer").await,
        Err(KmsError::KeyAlreadyExists("made-by-coffer".into()))
    );
    assert_eq!(
        kms.list_keys().await.unwrap(),
        vec!["made-by-coffer".to_string()]
    );

    let ctx_a: EncryptionContext = [("coffer:bucket", "a")].into_iter().collect();
    let ctx_b: EncryptionContext = [("coffer:bucket", "b")].into_iter().collect();
    let dk = kms
        .generate_data_key("made-by-coffer", &ctx_a)
        .await
        .unwrap();
    assert!(dk.ciphertext.starts_with(b"vault:v1:"));
    assert_eq!(dk.key_version, 1);
    assert_eq!(kms.wrapped_key_version(&dk.ciphertext), Some(1));
    let back = kms
        .decrypt_data_key("made-by-coffer", &dk.ciphertext, &ctx_a)
        .await
        .unwrap();
    assert_eq!(back, dk.plaintext);
    // Another context does not unwrap it: OpenBao derives a different key.
    assert_eq!(
        kms.decrypt_data_key("made-by-coffer", &dk.ciphertext, &ctx_b)
            .await,
        Err(KmsError::InvalidCiphertext)
    );
    assert_eq!(
        kms.decrypt_data_key("gone", &dk.ciphertext, &ctx_a).await,
        Err(KmsError::KeyNotFound("gone".into()))
    );

    // Rotation: versions, the new version for new keys, the old one still unwraps, and a
    // re-wrap moves an old blob to the new version.
    let info = kms.rotate_key("made-by-coffer").await.unwrap();
    assert_eq!(info.versions, vec![1, 2]);
    assert_eq!(info.current_version, Some(2));
    let dk2 = kms
        .generate_data_key("made-by-coffer", &ctx_a)
        .await
        .unwrap();
    assert_eq!(dk2.key_version, 2);
    assert_eq!(
        kms.decrypt_data_key("made-by-coffer", &dk.ciphertext, &ctx_a)
            .await
            .unwrap(),
        dk.plaintext
    );
    let re = kms
        .rewrap_data_key("made-by-coffer", &dk.ciphertext, &ctx_a, "made-by-coffer")
        .await
        .unwrap();
    assert_eq!(re.key_version, 2);
    assert_eq!(
        kms.decrypt_data_key("made-by-coffer", &re.ciphertext, &ctx_a)
            .await
            .unwrap(),
        dk.plaintext
    );

    // A key without derived=true would ignore the context: refused, with the reason.
    bao.create_key("plain", false).await;
    match kms.generate_data_key("plain", &ctx_a).await {
        Err(KmsError::KeyUnusable { reason, .. }) => assert!(reason.contains("derived=true")),
        other => panic!("expected KeyUnusable, got {other:?}"),
    }

    // A wrong token is PermissionDenied, and the error does not carry it.
    let bad = VaultKms::connect(direct(&bao, "not-the-token-4242"))
        .await
        .unwrap();
    let err = bad.describe_key("made-by-coffer").await.unwrap_err();
    assert!(matches!(err, KmsError::PermissionDenied(_)), "{err:?}");
    assert!(!err.to_string().contains("4242"));
    assert!(!format!("{bad:?}").contains("4242"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_login_with_a_least_privilege_policy() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    bao.create_key("coffer-sse", true).await;
    let ok = |r: RawResponse, what: &str| assert!(r.status / 100 == 2, "{what}: {}", r.brief());
    ok(
        bao.api("POST", "/v1/sys/auth/approle", br#"{"type":"approle"}"#)
            .await,
        "enable approle",
    );
    // What docs/kms.md says Coffer needs, and nothing more.
    let policy = r#"
        path "transit/keys/*" { capabilities = ["read", "list"] }
        path "transit/datakey/plaintext/*" { capabilities = ["update"] }
        path "transit/decrypt/*" { capabilities = ["update"] }
        path "transit/rewrap/*" { capabilities = ["update"] }
    "#;
    let body = serde_json::json!({ "policy": policy }).to_string();
    ok(
        bao.api("PUT", "/v1/sys/policies/acl/coffer", body.as_bytes())
            .await,
        "policy",
    );
    ok(
        bao.api(
            "POST",
            "/v1/auth/approle/role/coffer",
            br#"{"token_policies":["coffer"],"token_ttl":"1h"}"#,
        )
        .await,
        "role",
    );
    let r = bao
        .api("GET", "/v1/auth/approle/role/coffer/role-id", b"")
        .await;
    let role_id = serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = bao
        .api("POST", "/v1/auth/approle/role/coffer/secret-id", b"{}")
        .await;
    let secret_id = serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["data"]
        ["secret_id"]
        .as_str()
        .unwrap()
        .to_string();

    let extra_env: Vec<(String, String)> = [
        ("COFFER_KMS_PROVIDER", "vault".to_string()),
        ("COFFER_KMS_VAULT_ADDR", bao.url()),
        ("COFFER_KMS_VAULT_ROLE_ID", role_id),
        ("COFFER_KMS_VAULT_SECRET_ID", secret_id.clone()),
        ("COFFER_KMS_DEFAULT_KEY", "coffer-sse".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let server = TestServer::start(ServerOpts {
        extra_env,
        ..Default::default()
    })
    .await;
    let s3 = server.client();
    let bucket = bucket_name("approle");
    create_bucket(&s3, &bucket).await;
    let body = pseudo_random(5 * KIB, 77);
    put_kms(&s3, &bucket, "obj", "coffer-sse", &body).await;
    assert_same_bytes(&get_bytes(&s3, &bucket, "obj").await, &body, "obj");
    for f in ["stdout.1.log", "stderr.1.log"] {
        let log = std::fs::read_to_string(server.root_dir().join(f)).unwrap_or_default();
        assert!(!log.contains(&secret_id), "{f} shows the secret id");
    }
}
