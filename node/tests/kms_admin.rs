//! The admin KMS API against a real OpenBao: status, create, list, describe, rotate through
//! `/api/v1/kms/...`, and what a rotation done there means for objects (old ones readable,
//! new ones under the new version); errors as JSON with the right status, never a secret.

mod common;

use common::kms::{put_kms, vault_env, version_of, Bao};
use common::*;
use serde_json::Value;

fn json(r: &RawResponse) -> Value {
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&r.body)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_kms_api_creates_describes_and_rotates_vault_keys() {
    let Some(mut bao) = Bao::start().await else {
        return;
    };
    bao.create_key("coffer-sse", true).await;
    let server = TestServer::start(ServerOpts {
        extra_env: vault_env(&bao, "coffer-sse"),
        ..Default::default()
    })
    .await;

    let status = server.admin("GET", "/api/v1/kms/status", b"").await;
    assert_eq!(status.status, 200);
    let status = json(&status);
    assert_eq!(status["provider"], "vault");
    assert_eq!(status["healthy"], true);
    assert_eq!(status["default_key"], "coffer-sse");
    assert_eq!(status["capabilities"]["rotate"], true);

    // Create through Coffer: a derived transit key (Coffer needs the context bound).
    let made = server
        .admin("POST", "/api/v1/kms/keys", br#"{"key_id":"tenant-x"}"#)
        .await;
    assert_eq!(made.status, 201, "{}", String::from_utf8_lossy(&made.body));
    assert_eq!(json(&made)["current_version"], 1);
    let again = server
        .admin("POST", "/api/v1/kms/keys", br#"{"key_id":"tenant-x"}"#)
        .await;
    assert_eq!(again.status, 409);
    let bad = server.admin("POST", "/api/v1/kms/keys", b"{}").await;
    assert_eq!(bad.status, 400);
    let keys = json(&server.admin("GET", "/api/v1/kms/keys", b"").await);
    let listed: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        listed.contains(&"tenant-x") && listed.contains(&"coffer-sse"),
        "{keys}"
    );

    let s3 = server.client();
    let bucket = bucket_name("kmsadmin");
    create_bucket(&s3, &bucket).await;
    let old = pseudo_random(40 * KIB, 1);
    put_kms(&s3, &bucket, "old", "tenant-x", &old).await;
    assert_eq!(version_of(&server, &bucket, "old").await.1, 1);

    let rotated = server
        .admin("POST", "/api/v1/kms/keys/tenant-x/rotate", b"")
        .await;
    assert_eq!(
        rotated.status,
        200,
        "{}",
        String::from_utf8_lossy(&rotated.body)
    );
    let rotated = json(&rotated);
    assert_eq!(rotated["current_version"], 2);
    assert_eq!(bao.latest_version("tenant-x").await, 2);
    let described = json(&server.admin("GET", "/api/v1/kms/keys/tenant-x", b"").await);
    assert_eq!(described["current_version"], 2);
    assert_eq!(described["versions"], serde_json::json!([1, 2]));

    let new = pseudo_random(9 * KIB, 2);
    put_kms(&s3, &bucket, "new", "tenant-x", &new).await;
    assert_eq!(version_of(&server, &bucket, "new").await.1, 2);
    assert_same_bytes(&get_bytes(&s3, &bucket, "old").await, &old, "old");
    assert_same_bytes(&get_bytes(&s3, &bucket, "new").await, &new, "new");

    // Unknown key → 404, unknown route → 404, no token → 401; bodies are JSON errors.
    for (method, path) in [
        ("GET", "/api/v1/kms/keys/no-such-key"),
        ("POST", "/api/v1/kms/keys/no-such-key/rotate"),
        ("POST", "/api/v1/kms/keys/tenant-x/explode"),
    ] {
        let r = server.admin(method, path, b"").await;
        assert_eq!(r.status, 404, "{method} {path}");
        assert!(json(&r)["error"].is_string());
    }
    let anon = http_request(&server.admin_addr(), "GET", "/api/v1/kms/status", &[], b"")
        .await
        .unwrap();
    assert_eq!(anon.status, 401);

    // With OpenBao gone the status says so (naming the provider, never the token).
    bao.stop();
    let down = server.admin("GET", "/api/v1/kms/status", b"").await;
    assert_eq!(down.status, 200);
    let down_json = json(&down);
    assert_eq!(down_json["healthy"], false, "{down_json}");
    let token = vault_env(&bao, "coffer-sse")
        .into_iter()
        .find(|(k, _)| k == "COFFER_KMS_VAULT_TOKEN")
        .map(|(_, v)| v)
        .unwrap();
    assert!(!String::from_utf8_lossy(&down.body).contains(&token));
}
