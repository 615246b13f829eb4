//! Coffer against moto's AWS KMS (issue 4, acceptance 2): SSE-S3 and SSE-KMS round trips with
//! keys named by alias, key ARN and key id; rotation keeps old objects readable; a wrapped key
//! does not unwrap under another encryption context.

mod common;

use aws_sdk_s3::types::ServerSideEncryption;
use coffer_kms::{AwsConfig, AwsKms, EncryptionContext, KeyState, Kms, KmsError};
use common::kms::{aws_env, put_kms, Moto};
use common::*;

async fn provider(moto: &Moto, dir: &std::path::Path) -> AwsKms {
    // The SDK's credential chain reads the environment; this process is this test's alone
    // (nextest runs each test in its own process) and every value is the same anyway.
    for (k, v) in aws_env(dir) {
        std::env::set_var(k, v);
    }
    AwsKms::connect(AwsConfig {
        region: Some("us-east-1".into()),
        endpoint: Some(moto.url()),
        ca_bundle: None,
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_provider_binds_context_and_manages_keys() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let kms = provider(&moto, dir.path()).await;
    kms.health().await.unwrap();
    kms.create_key("coffer-test").await.unwrap();
    assert_eq!(
        kms.create_key("coffer-test").await,
        Err(KmsError::KeyAlreadyExists("coffer-test".into()))
    );
    assert!(kms
        .list_keys()
        .await
        .unwrap()
        .contains(&"alias/coffer-test".to_string()));
    let info = kms.describe_key("alias/coffer-test").await.unwrap();
    assert_eq!(info.state, KeyState::Enabled);
    let arn = info.provider_key_id.clone().unwrap();
    assert!(arn.starts_with("arn:aws:kms:us-east-1:"), "{arn}");

    let ctx_a: EncryptionContext = [("coffer:bucket", "a")].into_iter().collect();
    let ctx_b: EncryptionContext = [("coffer:bucket", "b")].into_iter().collect();
    let dk = kms
        .generate_data_key("alias/coffer-test", &ctx_a)
        .await
        .unwrap();
    assert_eq!(
        dk.key_id, arn,
        "the record keeps the key ARN, not the alias"
    );
    assert_eq!(
        kms.decrypt_data_key(&dk.key_id, &dk.ciphertext, &ctx_a)
            .await
            .unwrap(),
        dk.plaintext
    );
    // The object whose context does not match cannot be decrypted.
    assert_eq!(
        kms.decrypt_data_key(&dk.key_id, &dk.ciphertext, &ctx_b)
            .await,
        Err(KmsError::InvalidCiphertext)
    );
    assert_eq!(
        kms.decrypt_data_key(&dk.key_id, &dk.ciphertext, &EncryptionContext::new())
            .await,
        Err(KmsError::InvalidCiphertext)
    );

    // ReEncrypt to another key, without Coffer seeing the plaintext.
    kms.create_key("alias/coffer-other").await.unwrap();
    let re = kms
        .rewrap_data_key(&dk.key_id, &dk.ciphertext, &ctx_a, "alias/coffer-other")
        .await
        .unwrap();
    assert_ne!(re.key_id, arn);
    assert_eq!(
        kms.decrypt_data_key(&re.key_id, &re.ciphertext, &ctx_a)
            .await
            .unwrap(),
        dk.plaintext
    );

    // Rotation keeps old blobs readable; disabling and enabling reach AWS. (moto does not
    // refuse data keys under a disabled key, as AWS does, so that part is not checked here.)
    kms.rotate_key("alias/coffer-test").await.unwrap();
    assert_eq!(
        kms.decrypt_data_key(&dk.key_id, &dk.ciphertext, &ctx_a)
            .await
            .unwrap(),
        dk.plaintext
    );
    kms.set_key_enabled("alias/coffer-test", false)
        .await
        .unwrap();
    assert_eq!(
        kms.describe_key("alias/coffer-test").await.unwrap().state,
        KeyState::Disabled
    );
    kms.set_key_enabled("alias/coffer-test", true)
        .await
        .unwrap();
    kms.generate_data_key("alias/coffer-test", &ctx_a)
        .await
        .unwrap();
    assert_eq!(
        kms.generate_data_key("alias/absent", &ctx_a)
            .await
            .map(|_| ()),
        Err(KmsError::KeyNotFound("alias/absent".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_round_trips_through_aws_kms() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let kms = provider(&moto, dir.path()).await;
    kms.create_key("coffer-sse").await.unwrap();
    kms.create_key("tenant-b").await.unwrap();
    let tenant_arn = kms
        .describe_key("alias/tenant-b")
        .await
        .unwrap()
        .provider_key_id
        .unwrap();
    let tenant_id = tenant_arn.rsplit('/').next().unwrap().to_string();

    let mut extra_env: Vec<(String, String)> = [
        ("COFFER_KMS_PROVIDER", "aws".to_string()),
        ("COFFER_KMS_AWS_ENDPOINT", moto.url()),
        ("COFFER_KMS_AWS_REGION", "us-east-1".to_string()),
        ("COFFER_KMS_DEFAULT_KEY", "alias/coffer-sse".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    extra_env.extend(aws_env(dir.path()));
    let mut server = TestServer::start(ServerOpts {
        extra_env,
        ..Default::default()
    })
    .await;
    let s3 = server.client();
    let bucket = bucket_name("aws");
    create_bucket(&s3, &bucket).await;

    // Keys named by alias, by ARN and by bare key id all work.
    let objects: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
        ("s3", None, pseudo_random(150 * KIB, 11)),
        (
            "by-alias",
            Some("alias/tenant-b"),
            pseudo_random(9 * KIB, 12),
        ),
        (
            "by-arn",
            Some(tenant_arn.as_str()),
            pseudo_random(70 * KIB, 13),
        ),
        ("by-id", Some(tenant_id.as_str()), pseudo_random(1, 14)),
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
        let head = s3
            .head_object()
            .bucket(&bucket)
            .key(*key)
            .send()
            .await
            .unwrap();
        let want = if kms_key.is_some() {
            ServerSideEncryption::AwsKms
        } else {
            ServerSideEncryption::Aes256
        };
        assert_eq!(head.server_side_encryption(), Some(&want), "{key}");
        if kms_key.is_some() {
            assert_eq!(head.ssekms_key_id(), Some(tenant_arn.as_str()), "{key}");
        }
    }

    // Rotate both keys in AWS; after a restart (no cached data keys) everything still reads.
    kms.rotate_key("alias/tenant-b").await.unwrap();
    kms.rotate_key("alias/coffer-sse").await.unwrap();
    server.restart().await;
    let s3 = server.client();
    for (key, _, body) in &objects {
        assert_same_bytes(&get_bytes(&s3, &bucket, key).await, body, key);
    }
    let after = pseudo_random(4 * KIB, 15);
    put_kms(&s3, &bucket, "after", "alias/tenant-b", &after).await;
    assert_same_bytes(&get_bytes(&s3, &bucket, "after").await, &after, "after");

    // A key AWS does not have is the client's error.
    let err = s3
        .put_object()
        .bucket(&bucket)
        .key("nokey")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("alias/absent")
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap_err();
    assert_not_5xx(&err, "PUT under a missing key");
}
