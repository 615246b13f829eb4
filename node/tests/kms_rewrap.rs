//! The re-wrap job against a real OpenBao (issue 4, acceptance 1's end and acceptance 5):
//! after rotations, `coffer admin rewrap` moves every object's data key to the newest key
//! version without touching data; raising `min_decryption_version` then leaves every object
//! readable; `--to-key` moves SSE-KMS objects to another key; running it again changes nothing;
//! and a job killed halfway resumes from its Raft checkpoint after a restart.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::kms::{put_kms, vault_env, version_of, Bao};
use common::sse::{admin_json, CustomerKey, Sse};
use common::*;
use futures::StreamExt as _;
use serde_json::Value;

/// Runs `coffer admin rewrap` against `server` (stderr is a file: the plain-line progress).
fn rewrap_cli(server: &TestServer, bucket: &str, extra: &[&str]) -> (bool, String) {
    let out = server
        .root_dir()
        .join(format!("rewrap-{}.log", std::process::id()));
    let status = Command::new(coffer_bin())
        .args(["admin", "rewrap", "--bucket", bucket, "--admin-url"])
        .arg(format!("http://{}", server.admin_addr()))
        .args(extra)
        .env("COFFER_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&out).unwrap())
        .status()
        .expect("run coffer admin rewrap");
    let log = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        !log.contains(ADMIN_TOKEN),
        "the CLI printed the token: {log}"
    );
    (status.success(), log)
}

async fn job(server: &TestServer, bucket: &str) -> Value {
    admin_json(server, &format!("/api/v1/buckets/{bucket}/rewrap")).await
}

async fn set_min_decryption_version(bao: &Bao, key: &str, version: u64) {
    let body = format!("{{\"min_decryption_version\":{version}}}");
    let r = bao
        .api(
            "POST",
            &format!("/v1/transit/keys/{key}/config"),
            body.as_bytes(),
        )
        .await;
    assert!(r.status / 100 == 2, "config {key}: {}", r.brief());
}

/// `coffer_kms_calls_total{operation="<op>"}` summed over the other labels.
async fn kms_calls(server: &TestServer, op: &str) -> u64 {
    let r = server.admin("GET", "/metrics", b"").await;
    let want = format!("operation=\"{op}\"");
    r.text()
        .lines()
        .filter(|l| l.starts_with("coffer_kms_calls_total{") && l.contains(&want))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrap_then_min_decryption_version_keeps_every_object_readable() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    for k in ["coffer-sse", "tenant-a", "tenant-b", "tenant-c"] {
        bao.create_key(k, true).await;
    }
    let mut server = TestServer::start(ServerOpts {
        extra_env: vault_env(&bao, "coffer-sse"),
        ..Default::default()
    })
    .await;
    let s3 = server.client();
    let bucket = bucket_name("rewrap");
    create_bucket(&s3, &bucket).await;

    // (key, SSE-KMS key or None for SSE-S3, body)
    let mut objects: Vec<(String, Option<&str>, Vec<u8>)> = Vec::new();
    for i in 0..3u64 {
        let body = pseudo_random(3 * KIB + i as usize, i);
        put_bytes(&s3, &bucket, &format!("s3-{i}"), &body).await;
        objects.push((format!("s3-{i}"), None, body));
    }
    for (i, k) in ["tenant-a", "tenant-a", "tenant-b"].into_iter().enumerate() {
        let body = pseudo_random(70 * KIB, 10 + i as u64);
        let key = format!("kms-{i}");
        put_kms(&s3, &bucket, &key, k, &body).await;
        objects.push((key, Some(k), body));
    }
    let parts = [pseudo_random(5 * MIB, 20), pseudo_random(KIB, 21)];
    let upload = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key("kms-multipart")
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .ssekms_key_id("tenant-b")
        .send()
        .await
        .unwrap();
    let mut done = Vec::new();
    for (n, body) in parts.iter().enumerate() {
        let p = s3
            .upload_part()
            .bucket(&bucket)
            .key("kms-multipart")
            .upload_id(upload.upload_id().unwrap())
            .part_number(n as i32 + 1)
            .body(body.clone().into())
            .send()
            .await
            .unwrap();
        done.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(n as i32 + 1)
                .e_tag(p.e_tag().unwrap())
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket(&bucket)
        .key("kms-multipart")
        .upload_id(upload.upload_id().unwrap())
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap();
    objects.push(("kms-multipart".into(), Some("tenant-b"), parts.concat()));
    let ssec = CustomerKey::from_seed(7);
    let ssec_body = pseudo_random(2 * KIB, 30);
    Sse::Customer(ssec.clone())
        .put(s3.put_object().bucket(&bucket).key("ssec"))
        .body(ssec_body.clone().into())
        .send()
        .await
        .unwrap();
    let heads_before = heads(&s3, &bucket, &objects).await;

    for k in ["coffer-sse", "tenant-a", "tenant-b"] {
        bao.rotate(k).await;
    }
    let (ok, log) = rewrap_cli(&server, &bucket, &[]);
    assert!(ok, "coffer admin rewrap failed:\n{log}");
    assert!(log.contains("re-wrap started"), "{log}");
    assert!(log.contains("re-wrap done"), "{log}");
    let j = job(&server, &bucket).await;
    assert_eq!(j["state"], "done", "{j}");
    assert_eq!(j["rewrapped"], objects.len() as u64, "{j}");
    assert_eq!(j["skipped"], 1, "the SSE-C object has no KMS key: {j}");
    for (key, kms_key, _) in &objects {
        let (id, version) = version_of(&server, &bucket, key).await;
        assert_eq!(id, kms_key.unwrap_or("coffer-sse"), "{key}");
        assert_eq!(version, 2, "{key} re-wrapped under version 2");
    }
    // Size, ETag and Last-Modified do not change: the object's bytes were not touched.
    assert_eq!(heads(&s3, &bucket, &objects).await, heads_before);

    // Idempotent: a second run finds every object current.
    let (ok, log) = rewrap_cli(&server, &bucket, &[]);
    assert!(ok, "second run failed:\n{log}");
    let j = job(&server, &bucket).await;
    assert_eq!(j["rewrapped"], 0, "{j}");
    assert_eq!(j["current"], objects.len() as u64, "{j}");

    // Version 1 can no longer decrypt anything. A restart empties the data-key cache, so every
    // read below is unwrapped by OpenBao.
    for k in ["coffer-sse", "tenant-a", "tenant-b"] {
        set_min_decryption_version(&bao, k, 2).await;
    }
    server.restart().await;
    let s3 = server.client();
    for (key, _, body) in &objects {
        assert_same_bytes(&get_bytes(&s3, &bucket, key).await, body, key);
    }
    let got = Sse::Customer(ssec.clone())
        .get(s3.get_object().bucket(&bucket).key("ssec"))
        .send()
        .await
        .unwrap();
    assert_same_bytes(
        &got.body.collect().await.unwrap().into_bytes(),
        &ssec_body,
        "ssec",
    );

    // The bucket's key changes: --to-key moves the SSE-KMS objects, SSE-S3 stays on the default.
    let (ok, log) = rewrap_cli(&server, &bucket, &["--to-key", "tenant-c"]);
    assert!(ok, "--to-key run failed:\n{log}");
    for (key, kms_key, _) in &objects {
        // tenant-c was never rotated; coffer-sse was, and SSE-S3 objects stay on it.
        let want = if kms_key.is_some() {
            ("tenant-c", 1)
        } else {
            ("coffer-sse", 2)
        };
        assert_eq!(
            version_of(&server, &bucket, key).await,
            (want.0.to_string(), want.1),
            "{key}"
        );
    }
    // The old keys are no longer needed for the SSE-KMS objects: retire their versions too.
    for k in ["tenant-a", "tenant-b"] {
        bao.rotate(k).await;
        set_min_decryption_version(&bao, k, 3).await;
    }
    server.restart().await;
    let s3 = server.client();
    for (key, _, body) in &objects {
        assert_same_bytes(&get_bytes(&s3, &bucket, key).await, body, key);
    }

    // Bad requests are the operator's errors, never 5xx.
    let r = server
        .admin(
            "POST",
            &format!("/api/v1/buckets/{bucket}/rewrap"),
            br#"{"to_key":"no-such-key"}"#,
        )
        .await;
    assert_eq!(r.status / 100, 4, "{}", r.brief());
    let r = server
        .admin("POST", "/api/v1/buckets/no-such-bucket/rewrap", b"")
        .await;
    assert_eq!(r.status, 404, "{}", r.brief());
    let r = server
        .admin("GET", "/api/v1/buckets/no-such-bucket/rewrap", b"")
        .await;
    assert_eq!(r.status, 404, "{}", r.brief());
}

async fn heads(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    objects: &[(String, Option<&str>, Vec<u8>)],
) -> Vec<(String, Option<i64>, Option<String>, Option<String>)> {
    let mut out = Vec::new();
    for (key, _, _) in objects {
        let h = s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        out.push((
            key.clone(),
            h.content_length(),
            h.e_tag().map(str::to_owned),
            h.last_modified().map(|t| t.to_string()),
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrap_killed_halfway_resumes_from_its_checkpoint() {
    const N: usize = 320;
    let Some(bao) = Bao::start().await else {
        return;
    };
    bao.create_key("coffer-sse", true).await;
    bao.create_key("tenant", true).await;
    let mut server = TestServer::start(ServerOpts {
        extra_env: vault_env(&bao, "coffer-sse"),
        ..Default::default()
    })
    .await;
    let s3 = server.client();
    let bucket = bucket_name("resume");
    create_bucket(&s3, &bucket).await;
    // SSE-KMS without a bucket key: one data key per object, so one KMS re-wrap each.
    let bodies: Vec<Vec<u8>> = (0..N).map(|i| pseudo_random(512 + i, i as u64)).collect();
    futures::stream::iter(bodies.iter().enumerate())
        .for_each_concurrent(8, |(i, body)| {
            let (s3, bucket) = (s3.clone(), bucket.clone());
            async move { put_kms(&s3, &bucket, &format!("obj-{i:04}"), "tenant", body).await }
        })
        .await;
    bao.rotate("tenant").await;

    // Throttled so that the kill surely lands halfway.
    let r = server
        .admin(
            "POST",
            &format!("/api/v1/buckets/{bucket}/rewrap"),
            br#"{"max_per_second": 80}"#,
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.brief());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let j = job(&server, &bucket).await;
        assert_eq!(j["state"], "running", "finished before the kill: {j}");
        if j["scanned"].as_u64().unwrap() >= (N as u64) / 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {j}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill_9();

    // The restarted node resumes the job by itself, from the checkpoint.
    server.restart().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let first = loop {
        let j = job(&server, &bucket).await;
        if j["runs"] == 2 {
            break j;
        }
        assert!(
            Instant::now() < deadline,
            "not resumed after the restart: {j}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        first["after"]
            .as_str()
            .is_some_and(|a| a.starts_with("obj-")),
        "a checkpoint was taken before the kill: {first}"
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    let done = loop {
        let j = job(&server, &bucket).await;
        if j["state"] == "done" {
            break j;
        }
        assert_ne!(j["state"], "failed", "{j}");
        assert!(Instant::now() < deadline, "did not finish: {j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done["scanned"], N as u64, "{done}");
    assert_eq!(
        done["rewrapped"].as_u64().unwrap() + done["current"].as_u64().unwrap(),
        N as u64,
        "{done}"
    );
    // This process re-wrapped only what the first one had not checkpointed.
    let second_run = kms_calls(&server, "rewrap_data_key").await;
    assert!(
        second_run > 0 && second_run < (N as u64) * 2 / 3,
        "the second run re-wrapped {second_run} of {N}: it did not start from its checkpoint"
    );
    for i in 0..N {
        let key = format!("obj-{i:04}");
        assert_eq!(
            version_of(&server, &bucket, &key).await,
            ("tenant".into(), 2),
            "{key}"
        );
    }
    set_min_decryption_version(&bao, "tenant", 2).await;
    server.restart().await;
    let s3 = server.client();
    for (i, body) in bodies.iter().enumerate() {
        let key = format!("obj-{i:04}");
        assert_same_bytes(&get_bytes(&s3, &bucket, &key).await, body, &key);
    }
}

/// The built-in provider: keys created and rotated through the admin API live in Raft, so they
/// survive a restart; rotation puts new objects under the new version at once (the cache is
/// told), and the re-wrap job moves the old ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_keys_survive_restarts_rotate_and_rewrap() {
    let mut server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let bucket = bucket_name("local");
    create_bucket(&s3, &bucket).await;
    let r = server
        .admin("POST", "/api/v1/kms/keys", br#"{"key_id":"tenant-local"}"#)
        .await;
    assert_eq!(r.status, 201, "{}", r.brief());
    let old = pseudo_random(9 * KIB, 1);
    put_kms(&s3, &bucket, "kms-old", "tenant-local", &old).await;
    let s3_old = pseudo_random(4 * KIB, 2);
    put_bytes(&s3, &bucket, "s3-old", &s3_old).await;

    // Before the registry lived in Raft, a created key was gone after a restart.
    server.restart().await;
    let s3 = server.client();
    assert_same_bytes(&get_bytes(&s3, &bucket, "kms-old").await, &old, "kms-old");
    let keys = admin_json(&server, "/api/v1/kms/keys").await;
    assert!(keys["keys"].to_string().contains("tenant-local"), "{keys}");

    for k in ["tenant-local", "coffer-default"] {
        let r = server
            .admin("POST", &format!("/api/v1/kms/keys/{k}/rotate"), b"")
            .await;
        assert_eq!(r.status, 200, "rotate {k}: {}", r.brief());
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["current_version"], 2, "{v}");
    }
    // New objects use version 2 at once, also SSE-S3 (its cached bucket key was dropped).
    put_kms(&s3, &bucket, "kms-new", "tenant-local", b"new").await;
    put_bytes(&s3, &bucket, "s3-new", b"new s3").await;
    assert_eq!(version_of(&server, &bucket, "kms-new").await.1, 2);
    assert_eq!(version_of(&server, &bucket, "s3-new").await.1, 2);
    assert_eq!(version_of(&server, &bucket, "kms-old").await.1, 1);

    let (ok, log) = rewrap_cli(&server, &bucket, &[]);
    assert!(ok, "{log}");
    for key in ["kms-old", "kms-new", "s3-old", "s3-new"] {
        assert_eq!(version_of(&server, &bucket, key).await.1, 2, "{key}");
    }
    let j = job(&server, &bucket).await;
    assert_eq!(
        (j["rewrapped"].as_u64(), j["current"].as_u64()),
        (Some(2), Some(2)),
        "{j}"
    );

    // The rotation survives a restart too, and everything reads.
    server.restart().await;
    let s3 = server.client();
    let d = admin_json(&server, "/api/v1/kms/keys/tenant-local").await;
    assert_eq!(d["current_version"], 2, "{d}");
    assert_same_bytes(&get_bytes(&s3, &bucket, "kms-old").await, &old, "kms-old");
    assert_same_bytes(&get_bytes(&s3, &bucket, "s3-old").await, &s3_old, "s3-old");
    assert_same_bytes(&get_bytes(&s3, &bucket, "kms-new").await, b"new", "kms-new");
}
