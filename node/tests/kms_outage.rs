//! The KMS goes down under load and comes back (issue 4, acceptance 3), against a real OpenBao
//! that is SIGKILLed and restarted: PUTs that need a new data key fail fast with a 503 that
//! names the KMS, GETs whose data key is cached keep working, no failed PUT leaves an object,
//! and PUTs work again after the KMS returns without restarting Coffer.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_s3::types::ServerSideEncryption;
use common::kms::{put_kms, vault_env, Bao};
use common::*;

/// A failed PUT must answer within this (the breaker makes later ones near-instant).
const FAIL_FAST: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_outage_fails_puts_fast_keeps_cached_gets_and_recovers() {
    let Some(mut bao) = Bao::start().await else {
        return;
    };
    bao.create_key("coffer-sse", true).await;
    bao.create_key("tenant", true).await;
    let server = TestServer::start(ServerOpts {
        extra_env: vault_env(&bao, "coffer-sse"),
        ..Default::default()
    })
    .await;
    let s3 = server.client();
    let bucket = bucket_name("outage");
    create_bucket(&s3, &bucket).await;

    // Before the outage: objects under both SSE modes, each read once (which caches its
    // unwrapped data key, as any read does).
    let mut stored = Vec::new();
    for i in 0..4u64 {
        let body = pseudo_random(20 * KIB + i as usize, 100 + i);
        let key = format!("before-kms-{i}");
        put_kms(&s3, &bucket, &key, "tenant", &body).await;
        stored.push((key, body));
        let body = pseudo_random(8 * KIB + i as usize, 200 + i);
        let key = format!("before-s3-{i}");
        put_bytes(&s3, &bucket, &key, &body).await;
        stored.push((key, body));
    }
    for (key, body) in &stored {
        assert_same_bytes(&get_bytes(&s3, &bucket, key).await, body, key);
    }

    bao.stop();

    // A bounded load of PUTs that need a new data key (SSE-KMS without a bucket key) and of
    // GETs of the cached objects.
    let mut failed_keys = Vec::new();
    let load_deadline = Instant::now() + Duration::from_secs(90);
    for round in 0..12usize {
        assert!(
            Instant::now() < load_deadline,
            "load loop over its time budget"
        );
        let key = format!("during-{round}");
        let t0 = Instant::now();
        let err = s3
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id("tenant")
            .body(pseudo_random(16 * KIB, round as u64).into())
            .send()
            .await
            .expect_err("PUT needing a new data key must fail while the KMS is down");
        let took = t0.elapsed();
        assert!(
            took < FAIL_FAST,
            "PUT {key} took {took:?}: not failing fast"
        );
        assert_eq!(err_status(&err), Some(503), "{}", err_text(&err));
        assert_eq!(err_code(&err), "ServiceUnavailable", "{}", err_text(&err));
        let text = err_text(&err);
        assert!(
            text.contains("key management service (vault)"),
            "the message names the KMS: {text}"
        );
        failed_keys.push(key);

        let (key, body) = &stored[round % stored.len()];
        assert_same_bytes(&get_bytes(&s3, &bucket, key).await, body, key);
    }

    // Nothing of a failed PUT exists: HEAD says 404 and the listing does not show it.
    for key in &failed_keys {
        let err = s3
            .head_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .expect_err("failed PUT left an object");
        assert_eq!(err_status(&err), Some(404), "HEAD {key}");
    }
    let listed: BTreeSet<String> = s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    let want: BTreeSet<String> = stored.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(listed, want, "exactly the objects stored before the outage");

    // The KMS returns; Coffer recovers by itself (the breaker probes after its cool-down).
    bao.restart().await;
    let body = pseudo_random(12 * KIB, 999);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let r = s3
            .put_object()
            .bucket(&bucket)
            .key("after")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id("tenant")
            .body(body.clone().into())
            .send()
            .await;
        match r {
            Ok(_) => break,
            Err(e) => {
                assert_eq!(err_status(&e), Some(503), "{}", err_text(&e));
                assert!(
                    Instant::now() < deadline && attempts < 200,
                    "PUTs did not recover after the KMS returned: {}",
                    err_text(&e)
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
    assert_same_bytes(&get_bytes(&s3, &bucket, "after").await, &body, "after");
    for (key, body) in &stored {
        assert_same_bytes(&get_bytes(&s3, &bucket, key).await, body, key);
    }
}
