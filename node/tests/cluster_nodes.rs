//! Clusters of real `coffer` processes on loopback (made by scripts/local-cluster.sh): any node
//! serves S3, reads and lists are linearizable from every node, and the cluster rides out
//! killed nodes and a killed leader.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use common::cluster::{put_eventually, LocalCluster};
use common::*;

/// The member ids in a `GET /api/v1/cluster` answer.
fn member_ids(status: &serde_json::Value) -> Vec<u64> {
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_u64().unwrap())
        .collect()
}

async fn keys(client: &Client, bucket: &str) -> BTreeSet<String> {
    let out = client
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("LIST {bucket}: {}", err_text(&e)));
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// PUT through node 1, GET byte-identical through every node, LIST on every node right after
/// a PUT and a DELETE, and no plaintext under any node's directory.
async fn smoke(c: &LocalCluster, erasure: &str) {
    let st = c.status(1).await;
    assert_eq!(st["erasure"], erasure, "{st}");
    assert_eq!(st["layout_nodes"], c.n, "{st}");
    let first = c.client(1);
    let bucket = bucket_name("smoke");
    create_bucket(&first, &bucket).await;
    let marker = b"COFFER-CLUSTER-PLAINTEXT-MARKER!";
    let mut big = pseudo_random(3 * MIB + 12_345, 7);
    big[1000..1000 + marker.len()].copy_from_slice(marker);
    let small = marker.repeat(40);
    put_bytes(&first, &bucket, "big", &big).await;
    put_bytes(&first, &bucket, "small", &small).await;
    let part1 = pseudo_random(5 * MIB, 8);
    let part2 = pseudo_random(700 * KIB, 9);
    multipart_put(&first, &bucket, "multi", &[&part1, &part2]).await;
    let multi: Vec<u8> = [part1.as_slice(), part2.as_slice()].concat();
    for i in 1..=c.n {
        let client = c.client(i);
        assert_same_bytes(&get_bytes(&client, &bucket, "big").await, &big, "big");
        assert_same_bytes(&get_bytes(&client, &bucket, "small").await, &small, "small");
        assert_same_bytes(&get_bytes(&client, &bucket, "multi").await, &multi, "multi");
        let range = get_range(&client, &bucket, "multi", "bytes=5242000-5243999").await;
        assert_same_bytes(&range, &multi[5_242_000..5_244_000], "range over parts");
    }
    // Linearizable LIST from every node right after each acknowledged write.
    for round in 0..3 {
        let writer = c.client(round % c.n + 1);
        let key = format!("listed-{round}");
        put_bytes(&writer, &bucket, &key, b"x").await;
        for i in 1..=c.n {
            assert!(
                keys(&c.client(i), &bucket).await.contains(&key),
                "node {i} does not list {key} right after its PUT"
            );
        }
        writer
            .delete_object()
            .bucket(&bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
        for i in 1..=c.n {
            assert!(
                !keys(&c.client(i), &bucket).await.contains(&key),
                "node {i} still lists {key} after its DELETE"
            );
            let e = c
                .client(i)
                .get_object()
                .bucket(&bucket)
                .key(&key)
                .send()
                .await
                .unwrap_err();
            assert_eq!(err_code(&e), "NoSuchKey");
        }
    }
    // Conditional writes go through Raft: of racing If-None-Match PUTs on different nodes,
    // exactly one wins.
    let racers = (1..=c.n).map(|i| {
        let (client, bucket) = (c.client(i), bucket.clone());
        async move {
            client
                .put_object()
                .bucket(&bucket)
                .key("race")
                .if_none_match("*")
                .body(aws_sdk_s3::primitives::ByteStream::from(pseudo_random(
                    256 * KIB,
                    i as u64,
                )))
                .send()
                .await
        }
    });
    let results = futures::future::join_all(racers).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "exactly one conditional PUT wins");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(err_status(r), Some(412) | Some(409)),
            "a losing conditional PUT: {}",
            err_text(r)
        );
    }
    // Shards are spread: every node's drive holds some.
    for i in 1..=c.n {
        let shards = TestServer::files_under(&c.root().join(format!("node{i}")))
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("/shards/"))
            .count();
        assert!(shards > 0, "node {i} holds no shard");
    }
    // Encryption at rest on every node: no plaintext in shards, Raft log or state.
    for path in TestServer::files_under(&c.root()) {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker),
            "plaintext found in {}",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_nodes_three_plus_two_serve_from_every_node() {
    let c = LocalCluster::start(5, 1);
    smoke(&c, "3+2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_nodes_from_the_script_are_two_plus_two() {
    let c = LocalCluster::start(4, 1);
    smoke(&c, "2+2").await;
}

/// Waits (bounded) until node `i` answers health.
async fn until_serving(c: &LocalCluster, i: usize, bound: Duration) {
    let until = Instant::now() + bound;
    loop {
        let r = http_request(&c.admin_addr(i), "GET", "/api/v1/health", &[], b"").await;
        if r.is_ok_and(|r| r.status == 200) {
            return;
        }
        assert!(
            Instant::now() < until,
            "node {i} not serving within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A PUT that must be refused with 503 within 12 s (no quorum, so nothing may wait for it).
async fn put_refused_fast(client: &Client, bucket: &str, key: &str) {
    let t = Instant::now();
    let e = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(
            b"refused".to_vec(),
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_status(&e), Some(503), "PUT {key}: {}", err_text(&e));
    assert!(
        t.elapsed() < Duration::from_secs(12),
        "PUT {key} took {:?}",
        t.elapsed()
    );
}

/// Five single-drive nodes are a 3 + 2 set whose write quorum is 4 (k + 1, so an acknowledged
/// write always has one shard of margin): one node down keeps writing, two down keep reading
/// and refuse writes, three down refuse both, and all of it heals when the nodes return.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_nodes_write_with_one_down_read_with_two_and_fail_fast_with_three() {
    let c = LocalCluster::start(5, 1);
    let st = c.status(1).await;
    assert_eq!(st["erasure"], "3+2", "{st}");
    let bucket = bucket_name("loss");
    create_bucket(&c.client(1), &bucket).await;
    let before = pseudo_random(2 * MIB + 77, 1);
    put_bytes(&c.client(1), &bucket, "before", &before).await;

    // One follower: 4 of 5 shards remain, the write quorum.
    let leader = c.leader(1).await.expect("a leader") as usize;
    let follower = (1..=5).find(|&i| i != leader).unwrap();
    c.kill(follower);
    let alive: Vec<usize> = (1..=5).filter(|&i| i != follower).collect();
    let during = pseudo_random(MIB + 5, 2);
    put_eventually(&c.client(alive[0]), &bucket, "during", &during).await;
    for &i in &alive {
        let client = c.client(i);
        assert_same_bytes(
            &get_bytes(&client, &bucket, "during").await,
            &during,
            "during",
        );
    }

    // Then the leader: Raft keeps a majority and reads keep 3 of 5 shards, but a write could
    // only be acknowledged with zero margin, so it is refused.
    c.kill(leader);
    let alive: Vec<usize> = alive.into_iter().filter(|&i| i != leader).collect();
    for &i in &alive {
        let client = c.client(i);
        let until = Instant::now() + Duration::from_secs(30);
        // A new leader takes a moment; reads must come back by themselves.
        let got = loop {
            match client
                .get_object()
                .bucket(&bucket)
                .key("before")
                .send()
                .await
            {
                Ok(out) => break out.body.collect().await.unwrap().into_bytes().to_vec(),
                Err(e) => {
                    assert!(Instant::now() < until, "GET before: {}", err_text(&e));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        assert_same_bytes(&got, &before, "before");
        assert_same_bytes(
            &get_bytes(&client, &bucket, "during").await,
            &during,
            "during",
        );
        assert!(keys(&client, &bucket).await.contains("during"));
        put_refused_fast(&client, &bucket, "refused-two-down").await;
    }

    // A third node: no Raft majority, too few shards. PUT and GET fail with 503, fast.
    c.kill(alive[0]);
    let left: Vec<usize> = alive[1..].to_vec();
    for &i in &left {
        let client = c.client(i);
        put_refused_fast(&client, &bucket, "refused-three-down").await;
        let t = Instant::now();
        let e = client
            .get_object()
            .bucket(&bucket)
            .key("before")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_status(&e), Some(503), "{}", err_text(&e));
        assert!(
            t.elapsed() < Duration::from_secs(12),
            "GET took {:?}",
            t.elapsed()
        );
    }

    // Back: service returns by itself; the refused PUTs never show up.
    for i in [alive[0], leader, follower] {
        c.restart(i);
    }
    for i in 1..=5 {
        until_serving(&c, i, Duration::from_secs(30)).await;
    }
    let client = c.client(left[0]);
    put_eventually(&client, &bucket, "after", b"back").await;
    for i in 1..=5 {
        let client = c.client(i);
        let listed = keys(&client, &bucket).await;
        assert!(
            !listed.iter().any(|k| k.starts_with("refused")),
            "a refused PUT is visible on node {i}: {listed:?}"
        );
        assert!(listed.contains("after") && listed.contains("during"));
        assert_same_bytes(
            &get_bytes(&client, &bucket, "before").await,
            &before,
            "before",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_leader_under_load_loses_no_acknowledged_put() {
    let c = Arc::new(LocalCluster::start(5, 1));
    let bucket = bucket_name("leaderkill");
    create_bucket(&c.client(1), &bucket).await;
    let leader = c.leader(1).await.expect("a leader") as usize;
    // Clients on the other nodes (a client of the killed node just loses its server).
    let others: Vec<usize> = (1..=5).filter(|&i| i != leader).collect();
    let acked = Arc::new(std::sync::Mutex::new(Vec::<(String, u64)>::new()));
    let total = 200usize;
    let clients = 4usize;
    let mut tasks = Vec::new();
    for w in 0..clients {
        // No client-side retries: a leader change must be invisible apart from latency.
        let client = c.client(others[w % others.len()]);
        let (bucket, acked) = (bucket.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for j in 0..total / clients {
                let key = format!("k-{w}-{j}");
                let seed = (w * 1000 + j) as u64;
                let body = pseudo_random(16 * KIB + j * 97, seed);
                let r = tokio::time::timeout(
                    Duration::from_secs(60),
                    client
                        .put_object()
                        .bucket(&bucket)
                        .key(&key)
                        .body(aws_sdk_s3::primitives::ByteStream::from(body))
                        .send(),
                )
                .await;
                match r {
                    Ok(Ok(_)) => acked.lock().unwrap().push((key, seed)),
                    Ok(Err(e)) => eprintln!("PUT {key} failed: {}", err_text(&e)),
                    Err(_) => eprintln!("PUT {key} timed out"),
                }
            }
        }));
    }
    // Kill the leader once the load is under way.
    let until = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 40 {
        assert!(Instant::now() < until, "load did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let now_leader = c.leader(others[0]).await;
    assert_eq!(
        now_leader,
        Some(leader as u64),
        "leadership moved under load"
    );
    c.kill(leader);
    let killed_at = Instant::now();
    // A new leader serves within a few seconds.
    let mut new_leader = None;
    while killed_at.elapsed() < Duration::from_secs(15) {
        let r = c.admin(others[0], "GET", "/api/v1/cluster", b"").await;
        if r.status == 200 {
            let s: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            if let Some(l) = s["leader"].as_u64().filter(|l| *l as usize != leader) {
                new_leader = Some(l);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elected = killed_at.elapsed();
    assert!(new_leader.is_some(), "no new leader within 15 s");
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(
        acked.len(),
        total,
        "PUTs through surviving nodes failed during the leader change"
    );
    eprintln!(
        "new leader {new_leader:?} after {elected:?}; {} of {total} PUTs acknowledged",
        acked.len()
    );
    // Every acknowledged PUT is readable, from every live node.
    for &i in &others {
        let client = c.client(i);
        for (key, seed) in &acked {
            let j: usize = key.rsplit('-').next().unwrap().parse().unwrap();
            let want = pseudo_random(16 * KIB + j * 97, *seed);
            assert_same_bytes(&get_bytes(&client, &bucket, key).await, &want, key);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_from_another_ca_cannot_join() {
    let c = LocalCluster::start(3, 1);
    let dir = tempfile::tempdir().unwrap();
    let bin = coffer_bin();
    let certs = dir.path().join("certs");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&bin)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    run(&["certs", "ca", "--out", certs.to_str().unwrap()]);
    run(&[
        "certs",
        "node",
        "--ca",
        certs.to_str().unwrap(),
        "--name",
        "rogue",
        "--node-id",
        "9",
        "--ip",
        "127.0.0.1",
        "--out",
        certs.to_str().unwrap(),
    ]);
    let quic1 = format!("1@127.0.0.1:{}", c.base_port + 12);
    let mut child = std::process::Command::new(&bin)
        .args(["server", "--data"])
        .arg(dir.path().join("data"))
        .args(["--s3-addr", &format!("127.0.0.1:{}", free_port())])
        .args(["--admin-addr", &format!("127.0.0.1:{}", free_port())])
        .args(["--cluster-listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--cluster-cert")
        .arg(certs.join("rogue.pem"))
        .arg("--cluster-key")
        .arg(certs.join("rogue.key"))
        .arg("--cluster-ca")
        .arg(certs.join("ca.pem"))
        .args(["--peers", &quic1])
        .env("COFFER_ROOT_USER", "rogueuser")
        .env("COFFER_ROOT_PASSWORD", "rogue-password-123")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    for i in 1..=3 {
        let st = c.status(i).await;
        let ids = member_ids(&st);
        assert_eq!(ids, vec![1, 2, 3], "node {i} lists {ids:?}");
    }
    // Still trying, never admitted; the cluster serves on.
    assert!(child.try_wait().unwrap().is_none() || !child.wait().unwrap().success());
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("joined the cluster"), "{log}");
    let after = bucket_name("after");
    create_bucket(&c.client(2), &after).await;
    put_bytes(&c.client(2), &after, "k", b"v").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_api_removes_and_adds_nodes() {
    let c = LocalCluster::start(3, 1);
    let ids = member_ids;
    // Bad input is a 400, never a 5xx.
    for (method, path, body) in [
        ("DELETE", "/api/v1/cluster/nodes/zero", &b""[..]),
        ("DELETE", "/api/v1/cluster/nodes/0", b""),
        ("POST", "/api/v1/cluster/nodes", b"{\"id\":4}"),
        (
            "POST",
            "/api/v1/cluster/nodes",
            b"{\"id\":4,\"addr\":\"nohost\"}",
        ),
        ("POST", "/api/v1/cluster/nodes", b"not json"),
    ] {
        let r = c.admin(2, method, path, body).await;
        assert_eq!(r.status, 400, "{method} {path}: {}", r.brief());
    }
    // Without the token: refused.
    let r = http_request(&c.admin_addr(1), "GET", "/api/v1/cluster", &[], b"")
        .await
        .unwrap();
    assert_eq!(r.status, 401, "{}", r.brief());

    // Remove node 3 through a node that may not lead (forwarded to the leader).
    let r = c.admin(2, "DELETE", "/api/v1/cluster/nodes/3", b"").await;
    assert_eq!(r.status, 200, "{}", r.brief());
    for i in [1, 2] {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let st = c.status(i).await;
            if ids(&st) == vec![1, 2] {
                break;
            }
            assert!(
                Instant::now() < until,
                "node {i} still lists {:?}",
                ids(&st)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Writes go on with two voters.
    let bucket = bucket_name("members");
    create_bucket(&c.client(1), &bucket).await;
    put_bytes(&c.client(2), &bucket, "k", b"two voters").await;

    // Add it back (it is still running) by id and address.
    let body = format!(
        "{{\"id\":3,\"addr\":\"127.0.0.1:{}\"}}",
        c.base_port + 3 * 10 + 2
    );
    let r = c
        .admin(1, "POST", "/api/v1/cluster/nodes", body.as_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", r.brief());
    let st: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(ids(&st), vec![1, 2, 3], "{st}");
    let voters = st["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["role"] != "learner")
        .count();
    assert_eq!(voters, 3, "{st}");
    let got = get_bytes(&c.client(3), &bucket, "k").await;
    assert_eq!(got, b"two voters");
    // Its drives are back in the layout: new objects span three nodes again.
    let until = Instant::now() + Duration::from_secs(10);
    while c.status(1).await["layout_nodes"] != 3 {
        assert!(Instant::now() < until, "node 3 not back in the layout");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
