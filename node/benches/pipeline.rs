//! Throughput of the single-node data path (SegmentWriter / SegmentReader over real drive
//! directories, fsync included) with each cipher and each SSE mode, against the same pipeline
//! with a no-op cipher that exists only in this file; plus each primitive's single-core
//! throughput measured in the same run, and the pipeline's efficiency against the bound they give.
//!
//! `cargo bench -p coffer-node --bench pipeline [-- --quick]`
//!
//! Set `COFFER_BENCH_DIR` to put the drive directories somewhere other than the system temp dir.
//! Objects are written one after another (one stream at a time), in chunks of [`CHUNK`] bytes as
//! a request body would deliver them; GET reads them back package by package right after the
//! PUT (so from the page cache) and copies each into `Bytes` as the service's GET stream does;
//! "GET cold" reads them again after the drive files were dropped from the page cache (from the
//! device, as most GETs of a data set larger than memory are).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use coffer_crypto::{
    derive_kek, derive_stream_key, derive_stream_key_for, open_package, seal_key, unseal_key,
    CipherSuite, Encryptor, OsEntropy, SecretKey, StreamBinding, PACKAGE_SIZE, TAG_LEN,
};
use coffer_erasure::{Codec, ErasureConfig, DEFAULT_BLOCK_SIZE};
use coffer_node::drive::{DataId, Drive};
use coffer_node::manifest::Segment;
use coffer_node::pipeline::{PackageOpener, SegmentReader, SegmentWriter, StreamSealer};
use coffer_node::seams::FsDriveIo;
use coffer_node::shards::{local_stores, ShardTargets};
use md5::{Digest, Md5};

const MIB: usize = 1 << 20;
/// Plaintext chunk fed to the writer per call (a typical network read).
const CHUNK: usize = 256 * 1024;
const GET_TARGET: f64 = 0.90;
const PUT_TARGET: f64 = 0.85;

// ---------------------------------------------------------------------------------------------
// The no-op cipher: same package framing as the STREAM format (64 KiB packages, each followed
// by a 16-byte tag, one package held back until the end is known), but it copies plaintext and
// the tag is zeros. Sizes, block boundaries and shard files match the real cipher's exactly.

#[path = "support/noop.rs"]
mod noop;
use noop::{NoopOpener, NoopSealer};
#[path = "support/page_cache.rs"]
mod page_cache;

// ---------------------------------------------------------------------------------------------
// Set-up.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// SSE-S3: the ETag is the plaintext MD5, computed on its own thread.
    S3,
    /// SSE-KMS and SSE-C: no MD5 (the only pipeline difference between the modes).
    KmsOrC,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::S3 => "SSE-S3 (MD5)",
            Mode::KmsOrC => "SSE-KMS / SSE-C",
        }
    }
}

#[derive(Clone, Copy)]
enum Cipher {
    Real(CipherSuite),
    Noop,
}

struct Layout {
    cfg: ErasureConfig,
    drives: Vec<Arc<Drive>>,
    _dir: tempfile::TempDir,
}

fn layout(data: usize, parity: usize) -> Layout {
    let dir = match std::env::var_os("COFFER_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
    let drives = (0..data + parity)
        .map(|i| {
            let root = dir.path().join(format!("drive{i}"));
            std::fs::create_dir_all(&root).expect("drive dir");
            Arc::new(Drive::open(i, &root, Arc::new(FsDriveIo)).expect("open drive"))
        })
        .collect();
    Layout {
        cfg: ErasureConfig::new(data, parity, DEFAULT_BLOCK_SIZE).expect("erasure config"),
        drives,
        _dir: dir,
    }
}

/// What a GET needs to find an object's key again.
struct Stored {
    seg: Segment,
    sealed_oek: Vec<u8>,
    context: Vec<u8>,
    binding: StreamBinding,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn fill(buf: &mut [u8], mut s: u64) {
    for b in buf.chunks_mut(8) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let n = b.len();
        b.copy_from_slice(&s.to_le_bytes()[..n]);
    }
}

/// The KMS data key's plaintext (the KMS round trip itself is not part of the data path).
fn data_key() -> SecretKey {
    SecretKey::from_bytes([0x42; 32])
}

/// PUTs `count` objects of `size` bytes, one after another; returns the elapsed time.
async fn put_all(
    l: &Layout,
    cipher: Cipher,
    mode: Mode,
    body: &Bytes,
    size: usize,
    count: usize,
    out: &mut Vec<Stored>,
) -> Duration {
    let t = Instant::now();
    for _ in 0..count {
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&n.to_le_bytes());
        id[8..].copy_from_slice(b"benchpip");
        let data_id = DataId(id);
        let mut salt = [0u8; 32];
        salt[..8].copy_from_slice(&n.to_le_bytes());
        let name = format!("obj-{n}");
        let binding = StreamBinding::new("bench", &name, "", 0);
        let placement = coffer_erasure::place(n, l.drives.len(), l.cfg.width()).expect("place");
        let with_md5 = mode == Mode::S3;
        let mut sealed_oek = Vec::new();
        let context = format!("bench/{name}").into_bytes();
        let body = body.slice(..size);
        let written = match cipher {
            Cipher::Real(suite) => {
                // Per-object key work of a PUT: a fresh object key sealed under a KEK derived
                // from the data key (what KeyService::seal_new does after the KMS call).
                let oek = SecretKey::from_bytes(salt);
                let kek = derive_kek(&data_key(), &context);
                sealed_oek = seal_key(&kek, &oek, &context, &OsEntropy);
                let mut w = SegmentWriter::start(
                    data_id,
                    salt,
                    &oek,
                    suite,
                    &binding,
                    with_md5,
                    l.cfg,
                    ShardTargets::local(placement, &l.drives),
                )
                .expect("start");
                feed(&mut w, &body).await;
                w.finish().await.expect("finish")
            }
            Cipher::Noop => {
                let mut w = SegmentWriter::start_with(
                    data_id,
                    salt,
                    NoopSealer::new(),
                    coffer_crypto::STREAM_FORMAT_VERSION,
                    0,
                    with_md5,
                    l.cfg,
                    ShardTargets::local(placement, &l.drives),
                )
                .expect("start");
                feed(&mut w, &body).await;
                w.finish().await.expect("finish")
            }
        };
        assert!(written.failed_shards.is_empty());
        assert_eq!(written.md5.is_some(), with_md5);
        out.push(Stored {
            seg: written.segment,
            sealed_oek,
            context,
            binding,
        });
    }
    t.elapsed()
}

async fn feed<S: StreamSealer>(w: &mut SegmentWriter<S>, body: &Bytes) {
    let mut off = 0;
    while off < body.len() {
        let end = (off + CHUNK).min(body.len());
        w.write(body.slice(off..end)).await.expect("write");
        off = end;
    }
}

/// GETs every stored object in full; returns the elapsed time. `check` compares the first
/// object's bytes with `body`.
async fn get_all(
    l: &Layout,
    cipher: Cipher,
    stored: &[Stored],
    body: &Bytes,
    check: bool,
) -> Duration {
    let t = Instant::now();
    for (i, s) in stored.iter().enumerate() {
        let check = check && i == 0;
        match cipher {
            Cipher::Real(suite) => {
                // Per-object key work of a GET: KEK, unseal the object key, derive the stream key.
                let kek = derive_kek(&data_key(), &s.context);
                let oek = unseal_key(&kek, &s.sealed_oek, &s.context).expect("unseal");
                let salt: [u8; 32] = s.seg.salt.as_slice().try_into().expect("salt");
                let key =
                    derive_stream_key_for(s.seg.stream_version, &oek, suite, &salt, &s.binding)
                        .expect("stream key");
                let r = SegmentReader::new(
                    s.seg.clone(),
                    key,
                    &local_stores(&s.seg, &l.drives).expect("stores"),
                )
                .expect("reader");
                drain(r, body, check).await;
            }
            Cipher::Noop => {
                let r = SegmentReader::new(
                    s.seg.clone(),
                    NoopOpener,
                    &local_stores(&s.seg, &l.drives).expect("stores"),
                )
                .expect("reader");
                drain(r, body, check).await;
            }
        }
    }
    t.elapsed()
}

/// `COFFER_BENCH_GET=serial` reads package by package in the reader task (the GET path before
/// it was pipelined, copying each package into `Bytes` as the service then did); otherwise the
/// packages come from [`SegmentReader::packages`] (opening overlapped with reading), handed on
/// without a copy, as the service's GET stream does now.
fn serial_get() -> bool {
    std::env::var("COFFER_BENCH_GET").is_ok_and(|v| v == "serial")
}

async fn drain<O: PackageOpener>(mut r: SegmentReader<O>, body: &Bytes, check: bool) {
    let mut total = 0usize;
    let count = r.package_count();
    if serial_get() {
        for i in 0..count {
            let plain = r.read_package(i).await.expect("read package");
            let b = Bytes::copy_from_slice(&plain);
            if check {
                assert_eq!(&b[..], &body[total..total + b.len()], "package {i} differs");
            }
            total += b.len();
            black_box(b);
        }
    } else {
        let mut packages = r.packages(0, count - 1);
        while let Some(plain) = packages.next().await.expect("read package") {
            let b = Bytes::from(plain);
            if check {
                assert_eq!(&b[..], &body[total..total + b.len()], "package differs");
            }
            total += b.len();
            black_box(b);
        }
    }
    black_box(total);
}

fn remove_all(l: &Layout, stored: Vec<Stored>) {
    for s in stored {
        let id = DataId::from_hex(&s.seg.data_id).expect("id");
        for (shard, &d) in s.seg.drives.iter().enumerate() {
            l.drives[d].remove(id, shard).expect("remove shard");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Primitives, single core.

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn mibs(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / MIB as f64 / d.as_secs_f64()
}

/// Median MiB/s of `reps` runs of `f`, each processing `bytes` bytes (one warm-up run first).
fn rate(reps: usize, bytes: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut v: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            mibs(bytes, t.elapsed())
        })
        .collect();
    median(&mut v)
}

/// Median µs of `f` over `n` calls, batched.
fn micros(n: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        })
        .collect();
    median(&mut v)
}

fn seal_via_seam<S: StreamSealer>(mut s: S, data: &[u8], out: &mut Vec<u8>) {
    for c in data.chunks(CHUNK) {
        s.push(c, out).expect("push");
    }
    s.finish(out).expect("finish");
}

struct Prims {
    md5: f64,
    crc: f64,
    seal: Vec<(CipherSuite, f64)>,
    open: Vec<(CipherSuite, f64)>,
    /// Per layout name: RS encode (data split + parity), per plaintext MiB.
    rs_encode: Vec<(&'static str, f64)>,
    /// Per layout name: healthy-path reconstruct (all data shards present).
    rs_rebuild: Vec<(&'static str, f64)>,
    put_key_us: f64,
    get_key_us: f64,
}

fn primitives(quick: bool, layouts: &[(&'static str, usize, usize)]) -> Prims {
    let len = if quick { 16 * MIB } else { 32 * MIB };
    let reps = if quick { 5 } else { 9 };
    let mut data = vec![0u8; len];
    fill(&mut data, 0x9E37_79B9_7F4A_7C15);
    let oek = SecretKey::from_bytes([7; 32]);
    let binding = StreamBinding::new("bench", "prim", "", 0);

    println!(
        "## Primitives (single core, {} MiB buffers, median of {reps})\n",
        len / MIB
    );
    println!("| primitive | MiB/s |\n|---|---:|");
    let md5 = rate(reps, len, || {
        let mut h = Md5::new();
        for c in data.chunks(CHUNK) {
            h.update(c);
        }
        black_box(h.finalize());
    });
    println!("| MD5 (md-5, {} KiB updates) | {md5:.0} |", CHUNK / 1024);
    let crc = rate(reps, len, || {
        for c in data.chunks(MIB) {
            black_box(coffer_erasure::checksum(c));
        }
    });
    println!("| CRC32C bitrot hash (1 MiB pieces) | {crc:.0} |");

    let mut seal = Vec::new();
    let mut open = Vec::new();
    let mut sealed = Vec::with_capacity(len + len / PACKAGE_SIZE * TAG_LEN + TAG_LEN);
    for suite in CipherSuite::ALL {
        let key = || derive_stream_key(&oek, suite, &[1; 32], &binding);
        // Direct and through the seam, alternated so contention hits both alike.
        let (mut direct, mut seam) = (Vec::new(), Vec::new());
        for i in 0..=2 * reps {
            let t = Instant::now();
            sealed.clear();
            if i % 2 == 0 {
                let mut enc = Encryptor::new(key());
                for c in data.chunks(CHUNK) {
                    enc.push(c, &mut sealed).expect("push");
                }
                enc.finish(&mut sealed).expect("finish");
            } else {
                seal_via_seam(Encryptor::new(key()), &data, &mut sealed);
            }
            let r = mibs(len, t.elapsed());
            // The first run is a warm-up.
            if i > 0 {
                if i % 2 == 0 {
                    direct.push(r)
                } else {
                    seam.push(r)
                }
            }
        }
        let s = median(&mut direct);
        let via = median(&mut seam);
        let k = key();
        let packages = sealed.len().div_ceil(PACKAGE_SIZE + TAG_LEN);
        let o = rate(reps, len, || {
            for (i, p) in sealed.chunks(PACKAGE_SIZE + TAG_LEN).enumerate() {
                black_box(open_package(&k, i as u64, i + 1 == packages, p).expect("open"));
            }
        });
        println!("| {} seal (Encryptor::push) | {s:.0} |", suite.name());
        println!(
            "| {} seal through the StreamSealer seam | {via:.0} ({:+.1}%) |",
            suite.name(),
            (via / s - 1.0) * 100.0
        );
        println!("| {} open (open_package) | {o:.0} |", suite.name());
        seal.push((suite, s));
        open.push((suite, o));
    }

    let mut rs_encode = Vec::new();
    let mut rs_rebuild = Vec::new();
    for &(name, d, p) in layouts {
        let cfg = ErasureConfig::new(d, p, DEFAULT_BLOCK_SIZE).expect("cfg");
        let codec = Codec::new(cfg).expect("codec");
        let mut shards = Vec::new();
        let enc = rate(reps, len, || {
            for b in data.chunks(DEFAULT_BLOCK_SIZE) {
                codec.encode_into(b, &mut shards).expect("encode");
                black_box(&shards);
            }
        });
        let mut outs: Vec<Vec<u8>> = vec![Vec::with_capacity(MIB + 64); cfg.width()];
        let framed = rate(reps, len, || {
            for b in data.chunks(DEFAULT_BLOCK_SIZE) {
                outs.iter_mut().for_each(Vec::clear);
                codec.encode_framed(b, &mut outs).expect("encode");
                black_box(&outs);
            }
        });
        codec
            .encode_into(&data[..DEFAULT_BLOCK_SIZE], &mut shards)
            .expect("encode");
        let blocks = len / DEFAULT_BLOCK_SIZE;
        // The primitive alone: the data shards present (parity absent), output buffer reused.
        let mut present: Vec<Option<Vec<u8>>> = vec![None; cfg.width()];
        for (i, slot) in present.iter_mut().take(d).enumerate() {
            *slot = Some(shards[i].clone());
        }
        let mut block = Vec::with_capacity(DEFAULT_BLOCK_SIZE);
        let mut spares = Vec::new();
        let healthy = rate(reps, len, || {
            for _ in 0..blocks {
                block.clear();
                codec
                    .reconstruct_data_into(
                        &mut present,
                        DEFAULT_BLOCK_SIZE,
                        &mut spares,
                        &mut block,
                    )
                    .expect("rebuild");
                black_box(&block);
            }
        });
        println!("| RS encode {name} (encode_into, per data MiB) | {enc:.0} |");
        println!("| RS encode + frame + CRC32C {name} (encode_framed, as the writer calls it) | {framed:.0} |");
        println!("| RS reconstruct {name}, healthy (data shards present; concatenates the data shards) | {healthy:.0} |");
        if p > 0 {
            let mut degraded_in = present.clone();
            degraded_in[d] = Some(shards[d].clone());
            let degraded = rate(reps, len, || {
                for _ in 0..blocks {
                    let mut s = degraded_in.clone();
                    s[0] = None;
                    block.clear();
                    codec
                        .reconstruct_data_into(&mut s, DEFAULT_BLOCK_SIZE, &mut spares, &mut block)
                        .expect("rebuild");
                    black_box(&block);
                }
            });
            println!("| RS reconstruct {name}, degraded (shard 0 missing, parity 0 used; includes cloning the shard list; not on the measured path) | {degraded:.0} |");
        }
        rs_encode.push((name, enc));
        rs_rebuild.push((name, healthy));
    }

    let dk = data_key();
    let context = b"bench/obj-1".to_vec();
    let sealed_oek = seal_key(&derive_kek(&dk, &context), &oek, &context, &OsEntropy);
    let put_key_us = micros(2000, || {
        let kek = derive_kek(&dk, &context);
        black_box(seal_key(&kek, &oek, &context, &OsEntropy));
        black_box(derive_stream_key(
            &oek,
            CipherSuite::Aes256Gcm,
            &[1; 32],
            &binding,
        ));
    });
    let get_key_us = micros(2000, || {
        let kek = derive_kek(&dk, &context);
        let k = unseal_key(&kek, &sealed_oek, &context).expect("unseal");
        black_box(derive_stream_key(
            &k,
            CipherSuite::Aes256Gcm,
            &[1; 32],
            &binding,
        ));
    });
    println!(
        "\nPer-object key work (outside the KMS call): PUT derive_kek + seal_key + derive_stream_key \
         = {put_key_us:.1} µs; GET derive_kek + unseal_key + derive_stream_key = {get_key_us:.1} µs.\n"
    );
    Prims {
        md5,
        crc,
        seal,
        open,
        rs_encode,
        rs_rebuild,
        put_key_us,
        get_key_us,
    }
}

fn lookup<K: PartialEq + Copy>(v: &[(K, f64)], k: K) -> f64 {
    v.iter()
        .find(|(x, _)| *x == k)
        .map(|(_, r)| *r)
        .expect("measured")
}

// ---------------------------------------------------------------------------------------------

struct Row {
    op: &'static str,
    layout: &'static str,
    size: usize,
    count: usize,
    suite: CipherSuite,
    mode: Mode,
    real: f64,
    noop: f64,
    cfg: ErasureConfig,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let layouts_spec: [(&'static str, usize, usize); 2] =
        [("1 drive (1+0)", 1, 0), ("4 drives (2+2)", 2, 2)];
    let started = Instant::now();
    let prims = primitives(quick, &layouts_spec);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // (size, count, A/B pairs)
    let sizes: [(usize, usize, usize); 2] = if quick {
        [(MIB, 16, 2), (64 * MIB, 1, 2)]
    } else {
        [(MIB, 64, 5), (64 * MIB, 4, 3)]
    };
    let max_len = sizes.iter().map(|s| s.0).max().unwrap_or(MIB);
    let mut raw = vec![0u8; max_len];
    fill(&mut raw, 0x2545_F491_4F6C_DD1D);
    let body = Bytes::from(raw);

    let mut rows = Vec::new();
    for &(lname, d, p) in &layouts_spec {
        let l = layout(d, p);
        for &(size, count, pairs) in &sizes {
            for suite in CipherSuite::ALL {
                for mode in [Mode::S3, Mode::KmsOrC] {
                    let ciphers = [Cipher::Real(suite), Cipher::Noop];
                    // Warm-up (and correctness check) of both variants, untimed.
                    for &c in &ciphers {
                        let mut st = Vec::new();
                        rt.block_on(put_all(&l, c, mode, &body, size, 1, &mut st));
                        rt.block_on(get_all(&l, c, &st, &body, true));
                        remove_all(&l, st);
                    }
                    let (mut put, mut get, mut cold) =
                        ([vec![], vec![]], [vec![], vec![]], [vec![], vec![]]);
                    for rep in 0..pairs * 2 {
                        // A B B A A B ...: drift hits both variants alike.
                        let which = (rep + rep / 2) % 2;
                        let c = ciphers[which];
                        let mut st = Vec::with_capacity(count);
                        let tp = rt.block_on(put_all(&l, c, mode, &body, size, count, &mut st));
                        let tg = rt.block_on(get_all(&l, c, &st, &body, false));
                        let evicted = page_cache::evict_tree(l._dir.path());
                        assert!(evicted >= (size * count) as u64, "shard files not found");
                        let tc = rt.block_on(get_all(&l, c, &st, &body, false));
                        remove_all(&l, st);
                        put[which].push(mibs(size * count, tp));
                        get[which].push(mibs(size * count, tg));
                        cold[which].push(mibs(size * count, tc));
                    }
                    for (op, v) in [
                        ("PUT", &mut put),
                        ("GET", &mut get),
                        ("GET cold", &mut cold),
                    ] {
                        let [a, b] = v;
                        rows.push(Row {
                            op,
                            layout: lname,
                            size,
                            count,
                            suite,
                            mode,
                            real: median(a),
                            noop: median(b),
                            cfg: l.cfg,
                        });
                    }
                    eprintln!(
                        "[{:>5.1}s] done {lname} {} MiB {} {}",
                        started.elapsed().as_secs_f64(),
                        size / MIB,
                        suite.name(),
                        mode.name()
                    );
                }
            }
        }
    }

    println!("## Pipeline throughput (MiB/s, median; real cipher vs no-op cipher)\n");
    println!("Objects written sequentially, {} KiB body chunks, fsync per shard; GET right after PUT (page cache); GET cold after POSIX_FADV_DONTNEED on every drive file (from the device). {} A/B pairs per cell.\n", CHUNK / 1024, if quick { "2" } else { "5 (1 MiB) / 3 (64 MiB)" });
    println!("| op | layout | object | cipher | mode | real | no-op | ratio | target | |");
    println!("|---|---|---|---|---|---:|---:|---:|---:|---|");
    let ops = ["PUT", "GET", "GET cold"];
    let mut misses = [0usize; 3];
    for (k, op) in ops.iter().enumerate() {
        for r in rows.iter().filter(|r| r.op == *op) {
            let target = if *op == "PUT" { PUT_TARGET } else { GET_TARGET };
            let ratio = r.real / r.noop;
            let ok = ratio >= target;
            misses[k] += usize::from(!ok);
            println!(
                "| {} | {} | {} MiB ×{} | {} | {} | {:.0} | {:.0} | {:.3} | {:.2} | {} |",
                r.op,
                r.layout,
                r.size / MIB,
                r.count,
                r.suite.name(),
                r.mode.name(),
                r.real,
                r.noop,
                ratio,
                target,
                if ok { "ok" } else { "MISS" }
            );
        }
    }

    println!("\n## Pipeline efficiency (achieved ÷ bound from the primitives above)\n");
    println!(
        "PUT critical path (the writer task, serial): AEAD seal → RS encode → CRC32C over all \
         width/data shards, plus the per-object key work; MD5 runs on its own blocking thread \
         in parallel (SSE-S3 only); shard writes + fsync run on one blocking thread per shard \
         (I/O, not a primitive: not in the bound). Serial bound = 1/Σ(1/stage) including MD5; \
         parallel bound = min(MD5, 1/Σ(1/other stages)).\n\
         GET critical path (the reader task, serial): read shards (blocking pool, I/O; not in \
         the bound) → CRC32C over the data shards read → reconstruct (healthy: concatenate \
         the data shards) → AEAD open, plus the per-object key work. With the pipelined GET \
         (default) AEAD open runs on its own thread, so parallel bound = min(open, 1/Σ(other \
         stages)); with COFFER_BENCH_GET=serial nothing overlaps and serial = parallel bound. Copies outside these primitives (body → package buffer, \
         package → Bytes) are not in the bound. No-op rows use the same bound without AEAD and \
         key work.\n"
    );
    println!("| op | layout | object | cipher | mode | serial bound | parallel bound | real | eff. serial | eff. parallel | no-op bound | no-op eff. |");
    println!("|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
    // Cold reads are bound by the device, which is not a primitive measured here.
    for r in rows.iter().filter(|r| r.op != "GET cold") {
        let width = r.cfg.width() as f64 / r.cfg.data as f64;
        let obj_mib = r.size as f64 / MIB as f64;
        let (aead, key_us, rs) = if r.op == "PUT" {
            (
                lookup(&prims.seal, r.suite),
                prims.put_key_us,
                lookup(&prims.rs_encode, r.layout),
            )
        } else {
            (
                lookup(&prims.open, r.suite),
                prims.get_key_us,
                lookup(&prims.rs_rebuild, r.layout),
            )
        };
        // Seconds per MiB of each stage.
        let crc_s = if r.op == "PUT" { width } else { 1.0 } / prims.crc;
        let rest = 1.0 / rs + crc_s;
        let cipher_s = 1.0 / aead + key_us * 1e-6 / obj_mib;
        let md5 = r.op == "PUT" && r.mode == Mode::S3;
        let bound = |with_cipher: bool| {
            let crit = rest + if with_cipher { cipher_s } else { 0.0 };
            if md5 {
                (1.0 / (crit + 1.0 / prims.md5), prims.md5.min(1.0 / crit))
            } else if r.op == "GET" && with_cipher && !serial_get() {
                // Opening runs on its own thread, overlapped with reading/CRC/rebuild.
                (1.0 / crit, (1.0 / cipher_s).min(1.0 / rest))
            } else {
                (1.0 / crit, 1.0 / crit)
            }
        };
        let (serial, parallel) = bound(true);
        let (_, noop_parallel) = bound(false);
        println!(
            "| {} | {} | {} MiB | {} | {} | {serial:.0} | {parallel:.0} | {:.0} | {:.2} | {:.2} | {noop_parallel:.0} | {:.2} |",
            r.op,
            r.layout,
            r.size / MIB,
            r.suite.name(),
            r.mode.name(),
            r.real,
            r.real / serial,
            r.real / parallel,
            r.noop / noop_parallel,
        );
    }
    println!(
        "\nBelow target, of {} cells each: PUT {}, GET {}, GET cold {}; total run {:.0} s.",
        rows.len() / ops.len(),
        misses[0],
        misses[1],
        misses[2],
        started.elapsed().as_secs_f64()
    );
}
