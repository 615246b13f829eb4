//! Acceptance 6: four drive directories (erasure 2+2). Losing one drive's shard files, or a flipped
//! byte in a shard file, never changes what GET returns. The tests do not assume shard file
//! names: a shard file is a regular file under a drive directory that the upload created or
//! changed.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::Client;
use common::*;

/// Bytes at the start of a shard file that may be a header; corruption goes well past them.
const SHARD_HEADER: u64 = 64;

type Snapshot = BTreeMap<PathBuf, (u64, Option<SystemTime>)>;

fn snapshot(dir: &Path) -> Snapshot {
    TestServer::files_under(dir)
        .into_iter()
        .filter_map(|p| {
            let md = fs::metadata(&p).ok()?;
            Some((p, (md.len(), md.modified().ok())))
        })
        .collect()
}

/// Files under `dir` that are new since `before`; if there are none, the ones that changed.
/// (New files are preferred so that a per-drive index or format file that every write touches is
/// not taken for a shard.)
fn changed_since(dir: &Path, before: &Snapshot) -> Vec<PathBuf> {
    let now = snapshot(dir);
    let new: Vec<PathBuf> = now
        .keys()
        .filter(|p| !before.contains_key(*p))
        .cloned()
        .collect();
    if !new.is_empty() {
        return new;
    }
    now.into_iter()
        .filter(|(p, meta)| before.get(p) != Some(meta))
        .map(|(p, _)| p)
        .collect()
}

/// Uploads `body` under `key` and returns, per drive, the shard files the upload wrote.
async fn put_and_find_shards(
    server: &TestServer,
    s3: &Client,
    bucket: &str,
    key: &str,
    body: &[u8],
) -> Vec<Vec<PathBuf>> {
    let before: Vec<Snapshot> = server.drive_dirs.iter().map(|d| snapshot(d)).collect();
    put_bytes(s3, bucket, key, body).await;
    let shards: Vec<Vec<PathBuf>> = server
        .drive_dirs
        .iter()
        .zip(&before)
        .map(|(d, b)| changed_since(d, b))
        .collect();
    for (i, files) in shards.iter().enumerate() {
        assert!(
            !files.is_empty(),
            "no file under drive {} changed when {key} was uploaded (a 2+2 layout puts a shard on \
             every drive); files there: {:?}",
            i + 1,
            TestServer::files_under(&server.drive_dirs[i])
        );
    }
    shards
}

fn largest(files: &[PathBuf]) -> PathBuf {
    files
        .iter()
        .max_by_key(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .cloned()
        .expect("at least one file")
}

/// Flips one byte well past the header; returns the offset and original byte.
fn flip_byte(path: &Path) -> (u64, u8) {
    let len = fs::metadata(path).expect("shard metadata").len();
    assert!(
        len > 2 * SHARD_HEADER,
        "shard file {} is only {len} bytes",
        path.display()
    );
    let offset = SHARD_HEADER + (len - SHARD_HEADER) / 2;
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open shard");
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut b = [0u8; 1];
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&[b[0] ^ 0x5A]).unwrap();
    f.sync_all().unwrap();
    (offset, b[0])
}

fn restore_byte(path: &Path, offset: u64, byte: u8) {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open shard");
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&[byte]).unwrap();
    f.sync_all().unwrap();
}

/// GET must be byte-identical; an error is a failure too, and wrong bytes are the worst one.
async fn assert_get_identical(s3: &Client, bucket: &str, key: &str, body: &[u8], when: &str) {
    let got = get_bytes(s3, bucket, key).await;
    assert_same_bytes(&got, body, &format!("{key} {when}"));
    let a = 3 * PACKAGE - 10;
    let got = get_range(s3, bucket, key, &format!("bytes={a}-{}", a + 100)).await;
    assert_same_bytes(&got, &body[a..=a + 100], &format!("range of {key} {when}"));
}

async fn four_drive_server() -> (TestServer, Client, String) {
    let server = TestServer::start(ServerOpts::with_drives(4)).await;
    let s3 = server.client();
    let bucket = bucket_name("ec");
    create_bucket(&s3, &bucket).await;
    (server, s3, bucket)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_drive_shards_are_rebuilt_from_the_rest() {
    let (server, s3, bucket) = four_drive_server().await;
    let body = pseudo_random(3 * MIB + 12_345, 61);
    let shards = put_and_find_shards(&server, &s3, &bucket, "obj", &body).await;
    let other = pseudo_random(700 * KIB, 62);
    put_bytes(&s3, &bucket, "other", &other).await;

    // Remove drive 1's shard files of "obj" (whatever they are called).
    for f in &shards[0] {
        fs::remove_file(f).unwrap_or_else(|e| panic!("remove {}: {e}", f.display()));
    }
    assert_get_identical(&s3, &bucket, "obj", &body, "with drive 1's shards removed").await;
    assert_get_identical(
        &s3,
        &bucket,
        "other",
        &other,
        "after another object lost a drive",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_drive_in_turn_can_lose_its_shards() {
    let (server, s3, bucket) = four_drive_server().await;
    for drive in 0..4 {
        let key = format!("obj-{drive}");
        let body = pseudo_random(2 * MIB + 999, 70 + drive as u64);
        let shards = put_and_find_shards(&server, &s3, &bucket, &key, &body).await;
        for f in &shards[drive] {
            fs::remove_file(f).unwrap();
        }
        assert_get_identical(
            &s3,
            &bucket,
            &key,
            &body,
            &format!("without drive {}", drive + 1),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_any_shard_is_caught() {
    let (server, s3, bucket) = four_drive_server().await;
    let body = pseudo_random(3 * MIB + 54_321, 81);
    let shards = put_and_find_shards(&server, &s3, &bucket, "obj", &body).await;
    // Corrupt each drive's largest shard file in turn (so data shards, not only parity, are hit).
    for (drive, files) in shards.iter().enumerate() {
        let target = largest(files);
        let (offset, byte) = flip_byte(&target);
        assert_get_identical(
            &s3,
            &bucket,
            "obj",
            &body,
            &format!("with a flipped byte at {offset} of {}", target.display()),
        )
        .await;
        // The server may have healed the file already; put the byte back only if it did not.
        let mut now = [0u8; 1];
        let healed = fs::File::open(&target)
            .and_then(|mut f| {
                f.seek(SeekFrom::Start(offset))?;
                f.read_exact(&mut now)
            })
            .map(|_| now[0] == byte)
            .unwrap_or(true);
        if !healed {
            restore_byte(&target, offset, byte);
        }
        eprintln!("drive {} corruption check passed", drive + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_missing_and_one_corrupt_shard_still_read() {
    // 2+2 tolerates two bad shards: drive 1 loses its files, drive 2's shard has a flipped byte.
    let (server, s3, bucket) = four_drive_server().await;
    let body = pseudo_random(2 * MIB + 4321, 91);
    let shards = put_and_find_shards(&server, &s3, &bucket, "obj", &body).await;
    for f in &shards[0] {
        fs::remove_file(f).unwrap();
    }
    flip_byte(&largest(&shards[1]));
    assert_get_identical(
        &s3,
        &bucket,
        "obj",
        &body,
        "with one shard missing and one corrupt",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_bad_shards_is_an_error_not_wrong_bytes() {
    // Three of four shards corrupt: no quorum. The server must not return wrong bytes; an error
    // (or a cut-short body) is the only acceptable answer.
    let (server, s3, bucket) = four_drive_server().await;
    let body = pseudo_random(MIB + 17, 95);
    let shards = put_and_find_shards(&server, &s3, &bucket, "obj", &body).await;
    for files in shards.iter().take(3) {
        flip_byte(&largest(files));
    }
    match s3.get_object().bucket(&bucket).key("obj").send().await {
        Ok(out) => {
            if let Ok(data) = out.body.collect().await {
                let data = data.into_bytes();
                assert!(
                    data.as_ref() == body.as_slice(),
                    "GET returned {} bytes that differ from what was stored (md5 {} vs {})",
                    data.len(),
                    md5_hex(&data),
                    md5_hex(&body)
                );
            }
        }
        Err(e) => eprintln!("GET failed as it may: {}", err_text(&e)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_rebuilds_lost_shards_by_itself() {
    let (server, s3, bucket) = four_drive_server().await;
    let body = pseudo_random(2 * MIB + 321, 99);
    let shards = put_and_find_shards(&server, &s3, &bucket, "obj", &body).await;
    let lost = shards[0].clone();
    assert!(!lost.is_empty());
    for f in &lost {
        fs::remove_file(f).unwrap();
    }
    // No read wakes it: the healer's pass (every 5 s) finds them.
    let until = Instant::now() + Duration::from_secs(30);
    while !lost.iter().all(|f| f.exists()) {
        assert!(Instant::now() < until, "not rebuilt: {lost:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The admin API tells the operator: the node alone reports its healer like a cluster's
    // leader does, and membership changes are refused as not available alone.
    let heal = loop {
        let r = server.admin("GET", "/api/v1/cluster", b"").await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let status: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(status["alone"], true, "{status}");
        assert_eq!(
            status["drives"].as_array().map(Vec::len),
            Some(4),
            "{status}"
        );
        let heal = status["heal"].clone();
        if heal["shards_healed"].as_u64() >= Some(lost.len() as u64)
            && heal["degraded_objects"].as_u64() == Some(0)
            && heal["objects_checked"].as_u64() >= Some(1)
        {
            break heal;
        }
        assert!(Instant::now() < until, "heal figures: {heal}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(heal["heal_failures"], 0, "{heal}");
    let r = server
        .admin(
            "POST",
            "/api/v1/cluster/nodes",
            br#"{"id":2,"addr":"127.0.0.1:1"}"#,
        )
        .await;
    assert_eq!(r.status, 501, "{}", String::from_utf8_lossy(&r.body));
    // The rebuilt shards are right: with two other drives' shards gone, they and drive 4's
    // are all that is left (k = 2).
    for files in &shards[1..3] {
        for f in files {
            fs::remove_file(f).unwrap();
        }
    }
    assert_get_identical(
        &s3,
        &bucket,
        "obj",
        &body,
        "from the rebuilt shards and drive 4",
    )
    .await;
}
