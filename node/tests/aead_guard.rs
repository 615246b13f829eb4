//! The AEAD tag is the end-to-end guard: when a shard block is corrupted *and its CRC32C is
//! rewritten to match* (so bitrot detection passes), the package fails authentication, and the
//! node must rebuild the block from other shards rather than return wrong bytes or give up.

mod common;

use std::fs;
use std::path::PathBuf;

use common::*;

/// Shard file header length (docs/format/shards.md).
const HEADER: usize = 48;

fn shard_files(server: &TestServer, suffix: &str) -> Vec<PathBuf> {
    server
        .drive_dirs
        .iter()
        .flat_map(|d| TestServer::files_under(d))
        .filter(|p| p.to_string_lossy().ends_with(suffix) && p.to_string_lossy().contains("shards"))
        .collect()
}

/// Flips a byte inside the first block of `path` and rewrites that block's CRC32C.
fn corrupt_with_valid_crc(path: &PathBuf, block_frame_len: usize) {
    let mut bytes = fs::read(path).unwrap();
    let data_start = HEADER + 4;
    let data_end = (HEADER + block_frame_len).min(bytes.len());
    bytes[data_start + 100] ^= 0x5a;
    let crc = crc32c::crc32c(&bytes[data_start..data_end]);
    bytes[HEADER..HEADER + 4].copy_from_slice(&crc.to_le_bytes());
    fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_shard_with_valid_checksum_is_caught_by_the_tag() {
    let server = TestServer::start(ServerOpts::with_drives(4)).await;
    let s3 = server.client();
    let bucket = bucket_name("aead");
    create_bucket(&s3, &bucket).await;
    // One erasure block (under 1 MiB sealed), so each shard file holds a single frame.
    let body = pseudo_random(300 * 1024, 42);
    put_bytes(&s3, &bucket, "obj", &body).await;

    // Data shard 0 is read first on every GET: corrupt it so that its checksum still passes.
    let shard0 = shard_files(&server, ".0");
    assert_eq!(
        shard0.len(),
        1,
        "exactly one data shard 0 expected: {shard0:?}"
    );
    let frame_len = fs::metadata(&shard0[0]).unwrap().len() as usize - HEADER;
    corrupt_with_valid_crc(&shard0[0], frame_len);

    let got = get_bytes(&s3, &bucket, "obj").await;
    assert_same_bytes(
        &got,
        &body,
        "GET after a CRC-valid corruption of data shard 0",
    );
    let ranged = get_range(&s3, &bucket, "obj", "bytes=70000-140000").await;
    assert_same_bytes(
        &ranged,
        &body[70000..=140000],
        "ranged GET after the corruption",
    );
    // The tag, not the checksum, caught it: the node says so in its log.
    let log = fs::read_to_string(server.root_dir().join("stderr.1.log"))
        .or_else(|_| fs::read_to_string(server.root_dir().join("stderr.0.log")))
        .unwrap();
    assert!(
        log.contains("failed authentication"),
        "expected the AEAD retry in the log:\n{log}"
    );

    // Corrupt a second shard the same way: 2 of 4 shards now lie, which leaves exactly the
    // other two — still k = 2, so the object must still read back correctly.
    let shard1 = shard_files(&server, ".1");
    corrupt_with_valid_crc(&shard1[0], frame_len);
    let got = get_bytes(&s3, &bucket, "obj").await;
    assert_same_bytes(&got, &body, "GET with two CRC-valid corrupt shards");
}
