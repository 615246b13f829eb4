//! Acceptance 7: the admin API's bucket encryption default and S3's Get/Put/DeleteBucketEncryption
//! are two views of one setting; the bearer token is required (401 without it or with a wrong
//! one). Also: health and Prometheus metrics on the admin listener.

mod common;

use aws_sdk_s3::types::{
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule,
};
use aws_sdk_s3::Client;
use common::*;

fn enc_path(bucket: &str) -> String {
    format!("/api/v1/buckets/{bucket}/encryption")
}

/// Minimal JSON field extraction, enough for `{"enabled":true,"algorithm":"AES256",...}`.
fn json_field(body: &str, field: &str) -> Option<String> {
    let key = format!("\"{field}\"");
    let at = body.find(&key)? + key.len();
    let rest = body[at..].trim_start().strip_prefix(':')?.trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        return Some(s[..s.find('"')?].to_string());
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim().to_string())
}

/// The S3 view: Some((algorithm, kms key id)) or None when the bucket has no configuration.
async fn s3_encryption(s3: &Client, bucket: &str) -> Option<(String, Option<String>)> {
    match s3.get_bucket_encryption().bucket(bucket).send().await {
        Ok(out) => {
            let rule = out
                .server_side_encryption_configuration
                .as_ref()
                .and_then(|c| c.rules().first().cloned())
                .expect("a configuration with a rule");
            let d = rule
                .apply_server_side_encryption_by_default
                .expect("a default in the rule");
            Some((d.sse_algorithm.as_str().to_string(), d.kms_master_key_id))
        }
        Err(e) => {
            assert_eq!(
                err_code(&e),
                "ServerSideEncryptionConfigurationNotFoundError",
                "{}",
                err_text(&e)
            );
            assert_eq!(err_status(&e), Some(404));
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_default_shows_in_s3() {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let bucket = bucket_name("enc-admin");
    create_bucket(&s3, &bucket).await;

    let r = server.admin("GET", &enc_path(&bucket), b"").await;
    assert_eq!(r.status, 200, "{}", r.brief());
    assert_eq!(
        json_field(&r.text(), "enabled").as_deref(),
        Some("false"),
        "{}",
        r.brief()
    );

    let r = server
        .admin(
            "PUT",
            &enc_path(&bucket),
            br#"{"enabled":true,"algorithm":"AES256"}"#,
        )
        .await;
    assert!(
        r.status == 200 || r.status == 204,
        "admin PUT: {} {}",
        r.status,
        r.brief()
    );
    let r = server.admin("GET", &enc_path(&bucket), b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        json_field(&r.text(), "enabled").as_deref(),
        Some("true"),
        "{}",
        r.brief()
    );
    assert_eq!(
        json_field(&r.text(), "algorithm").as_deref(),
        Some("AES256"),
        "{}",
        r.brief()
    );
    let (alg, _) = s3_encryption(&s3, &bucket)
        .await
        .expect("S3 sees the admin default");
    assert_eq!(alg, "AES256");

    // Objects written under the default say so.
    let out = s3
        .put_object()
        .bucket(&bucket)
        .key("k")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"v"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT: {}", err_text(&e)));
    assert_eq!(
        out.server_side_encryption,
        Some(ServerSideEncryption::Aes256)
    );
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption,
        Some(ServerSideEncryption::Aes256)
    );

    // Deleting through the admin API removes it from the S3 view too.
    let r = server.admin("DELETE", &enc_path(&bucket), b"").await;
    assert!(
        r.status == 200 || r.status == 204,
        "admin DELETE: {} {}",
        r.status,
        r.brief()
    );
    let r = server.admin("GET", &enc_path(&bucket), b"").await;
    assert_eq!(
        json_field(&r.text(), "enabled").as_deref(),
        Some("false"),
        "{}",
        r.brief()
    );
    // S3 may report "none" or the cluster-wide SSE-S3 default (as AWS does today).
    if let Some((alg, _)) = s3_encryption(&s3, &bucket).await {
        assert_eq!(
            alg, "AES256",
            "after admin DELETE only the cluster default may show"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_default_shows_in_admin() {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let bucket = bucket_name("enc-s3");
    create_bucket(&s3, &bucket).await;

    let conf = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(
                    ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(ServerSideEncryption::Aes256)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .build()
        .unwrap();
    s3.put_bucket_encryption()
        .bucket(&bucket)
        .server_side_encryption_configuration(conf)
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutBucketEncryption: {}", err_text(&e)));
    let r = server.admin("GET", &enc_path(&bucket), b"").await;
    assert_eq!(r.status, 200, "{}", r.brief());
    assert_eq!(
        json_field(&r.text(), "enabled").as_deref(),
        Some("true"),
        "{}",
        r.brief()
    );
    assert_eq!(
        json_field(&r.text(), "algorithm").as_deref(),
        Some("AES256"),
        "{}",
        r.brief()
    );

    s3.delete_bucket_encryption()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteBucketEncryption: {}", err_text(&e)));
    let r = server.admin("GET", &enc_path(&bucket), b"").await;
    assert_eq!(
        json_field(&r.text(), "enabled").as_deref(),
        Some("false"),
        "{}",
        r.brief()
    );

    // SSE-KMS through the admin API: the local KMS may refuse an unknown key id (a 4xx), but if
    // it accepts, S3 must show exactly that algorithm and key.
    let r = server
        .admin(
            "PUT",
            &enc_path(&bucket),
            br#"{"enabled":true,"algorithm":"aws:kms","kms_key_id":"coffer-test-key"}"#,
        )
        .await;
    assert!(
        r.status < 500,
        "admin PUT aws:kms: {} {}",
        r.status,
        r.brief()
    );
    if r.status < 300 {
        let (alg, key) = s3_encryption(&s3, &bucket)
            .await
            .expect("S3 sees the KMS default");
        assert_eq!(alg, "aws:kms");
        assert!(
            key.as_deref()
                .is_some_and(|k| k.contains("coffer-test-key")),
            "KMS key id in S3 view: {key:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_needs_the_bearer_token() {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let bucket = bucket_name("enc-auth");
    create_bucket(&s3, &bucket).await;
    let addr = server.admin_addr();
    let path = enc_path(&bucket);
    let body: &[u8] = br#"{"enabled":true,"algorithm":"AES256"}"#;
    let wrong = "Bearer not-the-admin-token";
    let s3_key_as_token = format!("Bearer {SECRET_KEY}");
    let almost = format!("Bearer {}x", ADMIN_TOKEN);
    let no_scheme = ADMIN_TOKEN.to_string();
    let bad_headers: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("Authorization", wrong)],
        vec![("Authorization", s3_key_as_token.as_str())],
        vec![("Authorization", almost.as_str())],
        vec![("Authorization", no_scheme.as_str())],
        vec![("Authorization", "Bearer ")],
    ];
    for headers in &bad_headers {
        for (method, b) in [("GET", &b""[..]), ("PUT", body), ("DELETE", &b""[..])] {
            let mut h = headers.clone();
            if !b.is_empty() {
                h.push(("Content-Type", "application/json"));
            }
            let r = http_request(&addr, method, &path, &h, b).await.unwrap();
            assert_eq!(r.status, 401, "{method} with {headers:?}: {}", r.brief());
        }
    }
    // None of that changed anything.
    let r = server.admin("GET", &path, b"").await;
    assert_eq!(
        json_field(&r.text(), "enabled").as_deref(),
        Some("false"),
        "{}",
        r.brief()
    );

    // The S3 credentials are not an admin token, and the admin token is not an S3 credential.
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let r = http_request(
        &server.s3_addr(),
        "GET",
        "/",
        &[("Authorization", bearer.as_str())],
        b"",
    )
    .await
    .unwrap();
    assert!(
        (400..500).contains(&r.status),
        "bearer token on the S3 port: {}",
        r.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_errors_health_and_metrics() {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let bucket = bucket_name("adm");
    create_bucket(&s3, &bucket).await;
    put_bytes(&s3, &bucket, "k", b"v").await;

    // Unknown bucket and bad JSON: 4xx, not 5xx.
    let r = server
        .admin(
            "PUT",
            &enc_path("no-such-bucket-xyz"),
            br#"{"enabled":true,"algorithm":"AES256"}"#,
        )
        .await;
    assert!(
        (400..500).contains(&r.status),
        "unknown bucket: {} {}",
        r.status,
        r.brief()
    );
    let r = server
        .admin("GET", &enc_path("no-such-bucket-xyz"), b"")
        .await;
    assert!(
        r.status < 500,
        "GET for unknown bucket: {} {}",
        r.status,
        r.brief()
    );
    let bad_bodies: [&[u8]; 3] = [
        b"{not json",
        br#"{"enabled":true,"algorithm":"ROT13"}"#,
        b"[]",
    ];
    for bad in bad_bodies {
        let r = server.admin("PUT", &enc_path(&bucket), bad).await;
        assert!(
            (400..500).contains(&r.status),
            "bad body {:?}: {}",
            String::from_utf8_lossy(bad),
            r.status
        );
    }

    let r = http_request(&server.admin_addr(), "GET", "/api/v1/health", &[], b"")
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    // The contract does not say whether /metrics needs the token: accept either.
    let mut r = http_request(&server.admin_addr(), "GET", "/metrics", &[], b"")
        .await
        .unwrap();
    if r.status == 401 {
        r = server.admin("GET", "/metrics", b"").await;
    }
    assert_eq!(r.status, 200, "{}", r.brief());
    let text = r.text();
    assert!(
        text.contains("# TYPE") || text.contains("# HELP") || text.contains("# EOF"),
        "metrics are Prometheus text: {}",
        &text[..text.len().min(500)]
    );
    assert!(
        !text.contains(ADMIN_TOKEN) && !text.contains(SECRET_KEY),
        "metrics leak a secret"
    );
}
