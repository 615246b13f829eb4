//! Healing in clusters of real `coffer` processes on loopback: nodes that were down are healed
//! back to full redundancy (parts of uploads in progress too), and the shards of a node removed
//! for good move to the others.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{put_eventually, LocalCluster};
use common::*;

/// Shard files under every node's directory, by data id.
fn shard_files(c: &LocalCluster) -> std::collections::BTreeMap<String, Vec<std::path::PathBuf>> {
    let mut by_id: std::collections::BTreeMap<String, Vec<std::path::PathBuf>> = Default::default();
    for path in TestServer::files_under(&c.root()) {
        let s = path.to_string_lossy();
        if !s.contains("/shards/") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some((id, _)) = name.split_once('.') {
            by_id.entry(id.to_owned()).or_default().push(path.clone());
        }
    }
    by_id
}

/// The leader's heal statistics once two passes have completed, after `since` (leader id,
/// its pass count then), with no degraded object (bounded). Pass counts are per node: when the
/// leadership moves (restarted nodes can trigger an election), the new leader's count at first
/// sight is the baseline.
async fn healed(c: &LocalCluster, since: (u64, u64), bound: Duration) -> serde_json::Value {
    let until = Instant::now() + bound;
    let (mut baseline_leader, mut baseline) = since;
    loop {
        if let Some(l) = c.leader(1).await {
            let s = c.status(l as usize).await;
            let h = &s["heal"];
            let passes = h["passes"].as_u64().unwrap_or(0);
            if l != baseline_leader {
                (baseline_leader, baseline) = (l, passes);
            }
            if passes >= baseline + 2
                && h["degraded_objects"].as_u64() == Some(0)
                && h["degraded_parts"].as_u64() == Some(0)
            {
                return h.clone();
            }
            assert!(Instant::now() < until, "not healed within {bound:?}: {h}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A node removed for good (dead, then taken out with the admin API): the healer rebuilds its
/// shards on the other nodes and records the new placement, so every object is back to four
/// shards without it and survives losing two more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shards_of_a_removed_node_move_to_the_others() {
    let c = LocalCluster::start(4, 1);
    let bucket = bucket_name("moved");
    create_bucket(&c.client(1), &bucket).await;
    let mut objects = Vec::new();
    for i in 0..6u64 {
        let body = pseudo_random(200 * KIB + (i as usize) * 300 * KIB, 300 + i);
        put_bytes(&c.client(1), &bucket, &format!("o{i}"), &body).await;
        objects.push((format!("o{i}"), body));
    }
    let part1 = pseudo_random(5 * MIB, 310);
    let part2 = pseudo_random(70 * KIB, 311);
    multipart_put(&c.client(1), &bucket, "multi", &[&part1, &part2]).await;
    objects.push(("multi".into(), [part1, part2].concat()));
    let gone = c.root().join("node4");
    let elsewhere = |c: &LocalCluster| {
        let mut files = shard_files(c);
        for f in files.values_mut() {
            f.retain(|p| !p.starts_with(&gone));
        }
        files
    };
    let before = elsewhere(&c);
    assert!(before.values().all(|f| f.len() == 3), "{before:?}");

    c.kill(4);
    // Through node 1, retried while a new leader may still be elected.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let r = c.admin(1, "DELETE", "/api/v1/cluster/nodes/4", b"").await;
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < until, "removing node 4: {}", r.brief());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let until = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let files = elsewhere(&c);
        if files.len() == before.len() && files.values().all(|f| f.len() == 4) {
            break files;
        }
        assert!(Instant::now() < until, "shards not moved: {files:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Two of the four gone (the parity): every object still reads, from every remaining node.
    // Without the move only one shard would be left.
    for (n, files) in after.values().enumerate() {
        std::fs::remove_file(&files[n % 4]).unwrap();
        std::fs::remove_file(&files[(n + 1) % 4]).unwrap();
    }
    for i in 1..=3 {
        let client = c.client(i);
        for (key, body) in &objects {
            assert_same_bytes(&get_bytes(&client, &bucket, key).await, body, key);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarted_nodes_are_healed_to_full_redundancy() {
    let c = LocalCluster::start(5, 1);
    let bucket = bucket_name("heal");
    create_bucket(&c.client(1), &bucket).await;
    // One node out: writes go on with 4 of 5 shards (the write quorum of 3+2).
    c.kill(5);
    let writer = c.client(1);
    let mut objects = Vec::new();
    for i in 0..12u64 {
        let body = pseudo_random(100 * KIB + (i as usize) * 150 * KIB, 100 + i);
        put_eventually(&writer, &bucket, &format!("o{i}"), &body).await;
        objects.push((format!("o{i}"), body));
    }
    let part1 = pseudo_random(5 * MIB, 200);
    let part2 = pseudo_random(33 * KIB, 201);
    multipart_put(&writer, &bucket, "multi", &[&part1, &part2]).await;
    objects.push(("multi".into(), [part1, part2].concat()));
    // An upload left in progress: its part is healed too, before it completes.
    let pending = writer
        .create_multipart_upload()
        .bucket(&bucket)
        .key("pending")
        .send()
        .await
        .unwrap();
    let upload_id = pending.upload_id().unwrap().to_owned();
    let pending_body = pseudo_random(700 * KIB, 202);
    let part = writer
        .upload_part()
        .bucket(&bucket)
        .key("pending")
        .upload_id(&upload_id)
        .part_number(1)
        .body(aws_sdk_s3::primitives::ByteStream::from(
            pending_body.clone(),
        ))
        .send()
        .await
        .unwrap();
    let pending_etag = part.e_tag().unwrap().to_owned();
    // Written below full redundancy: 4 of 5 shards each.
    let before = shard_files(&c);
    assert!(before.values().all(|f| f.len() == 4), "{before:?}");
    let leader = c.leader(1).await.unwrap() as usize;
    let passes = c.status(leader).await["heal"]["passes"]
        .as_u64()
        .unwrap_or(0);
    c.restart(5);
    let stats = healed(&c, (leader as u64, passes), Duration::from_secs(60)).await;
    // Heal counters are per node: only the leader that did all the healing has them all.
    if c.leader(1).await == Some(leader as u64) {
        assert!(
            stats["shards_healed"].as_u64().unwrap() >= before.len() as u64,
            "{stats}"
        );
    }
    let after = shard_files(&c);
    assert!(
        after.values().all(|f| f.len() == 5),
        "not fully healed: {after:?}"
    );
    assert_eq!(after.len(), before.len(), "{after:?}");
    // Full redundancy again, the pending part's too: losing two healthy shards (the parity) per
    // segment loses nothing.
    for (n, files) in after.values().enumerate() {
        std::fs::remove_file(&files[n % files.len()]).unwrap();
        std::fs::remove_file(&files[(n + 1) % files.len()]).unwrap();
    }
    let done = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .parts(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(1)
                .e_tag(pending_etag)
                .build(),
        )
        .build();
    writer
        .complete_multipart_upload()
        .bucket(&bucket)
        .key("pending")
        .upload_id(&upload_id)
        .multipart_upload(done)
        .send()
        .await
        .unwrap();
    objects.push(("pending".into(), pending_body));
    for i in 1..=5 {
        let client = c.client(i);
        for (key, body) in &objects {
            assert_same_bytes(&get_bytes(&client, &bucket, key).await, body, key);
        }
    }
}
