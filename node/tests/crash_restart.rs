//! Acceptance 5: everything survives a restart; `kill -9` in the middle of a 64 MiB upload leaves
//! that object absent or complete (never partial) and every other object intact.

mod common;

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::Client;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIG: usize = 64 * MIB;

struct Stored {
    bucket: String,
    key: String,
    body: Vec<u8>,
}

/// A mix of objects: tiny, package-spanning, multi-MiB single PUT, and multipart.
async fn store_mix(s3: &Client, bucket: &str, seed: u64) -> Vec<Stored> {
    let mut out = Vec::new();
    for (i, size) in [0usize, 1, 200 * KIB + 3, 5 * MIB + 1]
        .into_iter()
        .enumerate()
    {
        let key = format!("mix/obj-{i}");
        let body = pseudo_random(size, seed + i as u64);
        put_bytes(s3, bucket, &key, &body).await;
        out.push(Stored {
            bucket: bucket.to_string(),
            key,
            body,
        });
    }
    let p1 = pseudo_random(5 * MIB, seed + 10);
    let p2 = pseudo_random(5 * MIB, seed + 11);
    let p3 = pseudo_random(1, seed + 12);
    multipart_put(s3, bucket, "mix/multipart", &[&p1, &p2, &p3]).await;
    out.push(Stored {
        bucket: bucket.to_string(),
        key: "mix/multipart".into(),
        body: [p1, p2, p3].concat(),
    });
    out
}

async fn check_all(s3: &Client, stored: &[Stored], when: &str) {
    for o in stored {
        let got = get_bytes(s3, &o.bucket, &o.key).await;
        assert_same_bytes(&got, &o.body, &format!("{}/{} {when}", o.bucket, o.key));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_everything() {
    let mut server = TestServer::start(ServerOpts::default()).await;
    let bucket = bucket_name("restart");
    let stored = {
        let s3 = server.client();
        create_bucket(&s3, &bucket).await;
        let stored = store_mix(&s3, &bucket, 500).await;
        check_all(&s3, &stored, "before restart").await;
        stored
    };

    let graceful = server.stop().await;
    assert!(graceful, "SIGTERM ends the server with exit status 0");
    server.restart().await;
    let s3 = server.client();
    check_all(&s3, &stored, "after graceful restart").await;
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListObjectsV2 after restart: {}", err_text(&e)));
    let mut keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key.clone())
        .collect();
    keys.sort();
    let mut want: Vec<String> = stored.iter().map(|o| o.key.clone()).collect();
    want.sort();
    assert_eq!(keys, want);

    // Writes after a restart work, and survive an unclean stop too.
    put_bytes(&s3, &bucket, "after/restart", b"written after restart").await;
    server.kill_9();
    server.restart_on_new_ports().await;
    let s3 = server.client();
    check_all(&s3, &stored, "after kill -9 and restart").await;
    assert_eq!(
        get_bytes(&s3, &bucket, "after/restart").await,
        b"written after restart"
    );
}

/// After a crash: the object is absent, or present with exactly the intended bytes.
async fn assert_absent_or_complete(s3: &Client, bucket: &str, key: &str, body: &[u8]) -> bool {
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(head) => {
            assert_eq!(
                head.content_length,
                Some(body.len() as i64),
                "{key} exists after the crash but with the wrong length"
            );
            let got = get_bytes(s3, bucket, key).await;
            assert_same_bytes(&got, body, &format!("{key} after the crash"));
            true
        }
        Err(e) => {
            assert_eq!(
                err_status(&e),
                Some(404),
                "{key} after the crash: {}",
                err_text(&e)
            );
            let err = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .expect_err("HEAD said 404, GET must agree");
            assert_eq!(err_code(&err), "NoSuchKey", "{}", err_text(&err));
            false
        }
    }
}

/// Sends a presigned PUT by hand: the head and then `send_bytes` bytes of the body.
async fn raw_presigned_put(
    server: &TestServer,
    bucket: &str,
    key: &str,
    body: &[u8],
    send_bytes: usize,
) -> tokio::net::TcpStream {
    let presigned = server
        .presign_client()
        .put_object()
        .bucket(bucket)
        .key(key)
        .presigned(PresigningConfig::expires_in(Duration::from_secs(900)).unwrap())
        .await
        .expect("presign PUT");
    let (addr, path) = split_url(presigned.uri());
    let headers: Vec<(String, String)> = presigned
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let hdr_refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let head = request_head(&addr, "PUT", &path, &hdr_refs, body.len());
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write head");
    for chunk in body[..send_bytes].chunks(MIB) {
        let written = tokio::time::timeout(Duration::from_secs(60), stream.write_all(chunk))
            .await
            .expect("server stopped reading the body for 60 s");
        if let Err(e) = written {
            // The server answered (and closed) before taking the body: show what it said.
            let mut answer = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
            panic!(
                "presigned PUT refused mid-body ({e}): {}",
                String::from_utf8_lossy(&answer)
            );
        }
    }
    stream.flush().await.expect("flush");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_big_upload_is_all_or_nothing() {
    let mut server = TestServer::start(ServerOpts::default()).await;
    let bucket = bucket_name("crash");
    let stored = {
        let s3 = server.client();
        create_bucket(&s3, &bucket).await;
        store_mix(&s3, &bucket, 900).await
    };
    let big = pseudo_random(BIG, 4242);

    // 1. Half the body sent, then kill -9: the server cannot have the object.
    let conn = raw_presigned_put(&server, &bucket, "big/half", &big, BIG / 2).await;
    assert!(
        server.is_running(),
        "server died on its own during the upload"
    );
    server.kill_9();
    drop(conn);
    server.restart_on_new_ports().await;
    let s3 = server.client();
    let present = assert_absent_or_complete(&s3, &bucket, "big/half", &big).await;
    assert!(
        !present,
        "an object whose body was only half sent must not exist"
    );
    check_all(&s3, &stored, "after kill -9 mid-body").await;

    // 2. The whole body sent, kill -9 before the answer: absent or complete, either is fine.
    let conn = raw_presigned_put(&server, &bucket, "big/full", &big, BIG).await;
    server.kill_9();
    drop(conn);
    server.restart_on_new_ports().await;
    let s3 = server.client();
    assert_absent_or_complete(&s3, &bucket, "big/full", &big).await;
    check_all(&s3, &stored, "after kill -9 after the body").await;

    // 3. The SDK uploading, killed at a few points in time.
    for (round, delay_ms) in [150u64, 600, 1500].into_iter().enumerate() {
        let key = format!("big/sdk-{round}");
        let s3 = server.client();
        let upload = {
            let (s3, bucket, key, big) = (s3.clone(), bucket.clone(), key.clone(), big.clone());
            tokio::spawn(async move {
                s3.put_object()
                    .bucket(&bucket)
                    .key(&key)
                    .body(aws_sdk_s3::primitives::ByteStream::from(big))
                    .send()
                    .await
                    .is_ok()
            })
        };
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        server.kill_9();
        let acknowledged = tokio::time::timeout(Duration::from_secs(60), upload)
            .await
            .expect("client did not notice the dead server in 60 s")
            .unwrap_or(false);
        server.restart_on_new_ports().await;
        let s3 = server.client();
        let present = assert_absent_or_complete(&s3, &bucket, &key, &big).await;
        if acknowledged {
            assert!(
                present,
                "{key} was acknowledged with 200 but is gone after the crash"
            );
        }
        check_all(&s3, &stored, &format!("after kill -9 in SDK round {round}")).await;
    }

    // A listing never shows a partial object.
    let listed = s3_list_all(&server.client(), &bucket).await;
    for (key, size) in listed {
        if key.starts_with("big/") {
            assert_eq!(size, BIG as i64, "listed {key} with a partial size");
        }
    }

    // And the server still takes the big object after all that.
    let s3 = server.client();
    put_bytes(&s3, &bucket, "big/final", &big).await;
    let got = get_bytes(&s3, &bucket, "big/final").await;
    assert_same_bytes(&got, &big, "64 MiB after the crashes");
}

async fn s3_list_all(s3: &Client, bucket: &str) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..100 {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListObjectsV2: {}", err_text(&e)));
        out.extend(
            page.contents()
                .iter()
                .map(|o| (o.key.clone().unwrap_or_default(), o.size.unwrap_or(-1))),
        );
        if page.is_truncated != Some(true) {
            break;
        }
        token = page.next_continuation_token.clone();
    }
    out
}
