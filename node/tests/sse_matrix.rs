//! Round trips through aws-sdk-s3 for every combination of SSE mode (SSE-S3, SSE-KMS, SSE-C) ×
//! data cipher (AES256, CHACHA20-POLY1305: one bucket per cipher, set through the admin API) ×
//! layout (single part of 0 B .. 1 MiB + 7, multipart 5 MiB + 5 MiB + 100 KiB) × read (whole
//! object, ranges that start, end and span 64 KiB package and part boundaries), plus one 64 MiB
//! SSE-S3 object per cipher.
//!
//! What S3 clients see is checked first (bytes, Content-Length, Content-Range, ETag, the SSE
//! response headers), the admin object view (cipher, segments) last. Every assertion names its
//! combination. One test per mode (nextest runs each test in its own process, so each starts its
//! own server); the loops inside are fixed lists.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use common::*;

const SINGLE_SIZES: [usize; 6] = [0, 1, 65535, 65536, 65537, MIB + 7];
const PART_SIZES: [usize; 3] = [5 * MIB, 5 * MIB, 100 * KIB];

/// What a GET answered.
struct Got {
    sse: SseHeaders,
    content_length: Option<i64>,
    content_range: Option<String>,
    e_tag: Option<String>,
    body: Vec<u8>,
}

async fn get(
    s3: &Client,
    bucket: &str,
    key: &str,
    sse: &Sse,
    range: Option<&str>,
    what: &str,
) -> Got {
    let mut req = sse.get(s3.get_object().bucket(bucket).key(key));
    if let Some(r) = range {
        req = req.range(r);
    }
    let out = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: GET failed: {}", err_text(&e)));
    let headers = SseHeaders::from(&out);
    let content_length = out.content_length;
    let content_range = out.content_range.clone();
    let e_tag = out.e_tag.clone();
    let body = out
        .body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{what}: GET body failed: {e}"))
        .into_bytes()
        .to_vec();
    Got {
        sse: headers,
        content_length,
        content_range,
        e_tag,
        body,
    }
}

/// (Range header, first, last): `first..=last` is what S3 must return (end clipped to the
/// object). Ranges end at, start at and span each boundary; plus first and last byte, an open
/// range, a range past the end and a suffix range.
fn range_cases(
    size: usize,
    boundaries: &[usize],
    extra: &[(usize, usize)],
) -> Vec<(String, usize, usize)> {
    let mut out: Vec<(String, usize, usize)> = Vec::new();
    if size == 0 {
        return out;
    }
    let last = size - 1;
    let mut add = |first: usize, end: Option<usize>| {
        if first > last {
            return;
        }
        let header = match end {
            Some(e) => format!("bytes={first}-{e}"),
            None => format!("bytes={first}-"),
        };
        let end = end.map_or(last, |e| e.min(last));
        if !out.iter().any(|(h, _, _)| *h == header) {
            out.push((header, first, end));
        }
    };
    add(0, Some(0)); // first byte
    add(last, Some(last)); // last byte
    for &b in boundaries.iter().filter(|&&b| b > 0 && b < size) {
        add(b - 1, Some(b)); // across the boundary: 65535-65536, 131071-131072, parts
        add(b, Some(b + PACKAGE - 1)); // exactly one package starting at the boundary
        add(b.saturating_sub(3), Some(b + PACKAGE + 3)); // more than one package
    }
    for &(first, end) in extra {
        add(first, Some(end));
    }
    // Open range from just before the last boundary inside the object (or the middle).
    let open_from = boundaries
        .iter()
        .rev()
        .find(|&&b| b > 0 && b < size)
        .map_or(size / 2, |&b| b - 1);
    add(open_from, None);
    // End past the object: S3 clips it.
    add(size.saturating_sub(PACKAGE + 5).max(1), Some(size + 1000));
    // Suffix range: the last 70000 bytes (more than a package; the whole object when smaller).
    out.push(("bytes=-70000".into(), size.saturating_sub(70000), last));
    out
}

/// HEAD, whole GET, every range, the unsatisfiable range, and the admin view.
#[allow(clippy::too_many_arguments)]
async fn check_object(
    server: &TestServer,
    s3: &Client,
    bucket: &str,
    key: &str,
    sse: &Sse,
    cipher: &str,
    body: &[u8],
    etag: &str,
    boundaries: &[usize],
    extra_ranges: &[(usize, usize)],
    part_sizes: Option<&[usize]>,
    label: &str,
) {
    let size = body.len();
    let head = sse
        .head(s3.head_object().bucket(bucket).key(key))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{label}: HEAD failed: {}", err_text(&e)));
    assert_eq!(
        head.content_length,
        Some(size as i64),
        "{label}: HEAD Content-Length is the plaintext size"
    );
    assert_eq!(head.e_tag.as_deref(), Some(etag), "{label}: HEAD ETag");
    sse.check(&SseHeaders::from(&head), true, &format!("{label}: HEAD"));

    let got = get(s3, bucket, key, sse, None, label).await;
    assert_same_bytes(&got.body, body, &format!("{label}: whole GET"));
    assert_eq!(
        got.content_length,
        Some(size as i64),
        "{label}: GET Content-Length"
    );
    assert_eq!(got.e_tag.as_deref(), Some(etag), "{label}: GET ETag");
    sse.check(&got.sse, true, &format!("{label}: GET"));

    for (header, first, last) in range_cases(size, boundaries, extra_ranges) {
        let what = format!("{label}: GET {header}");
        let got = get(s3, bucket, key, sse, Some(&header), &what).await;
        assert_same_bytes(&got.body, &body[first..=last], &what);
        assert_eq!(
            got.content_range.as_deref(),
            Some(format!("bytes {first}-{last}/{size}").as_str()),
            "{what}: Content-Range"
        );
        assert_eq!(
            got.content_length,
            Some((last + 1 - first) as i64),
            "{what}: Content-Length"
        );
        sse.check(&got.sse, true, &what);
    }

    // A range starting at the end is unsatisfiable (for the empty object, bytes=0-0 is).
    let header = if size == 0 {
        "bytes=0-0".to_string()
    } else {
        format!("bytes={size}-")
    };
    let err = sse
        .get(s3.get_object().bucket(bucket).key(key).range(&header))
        .send()
        .await
        .expect_err(&format!("{label}: GET {header} must be unsatisfiable"));
    assert_eq!(
        (err_status(&err), err_code(&err).as_str()),
        (Some(416), "InvalidRange"),
        "{label}: GET {header}: {}",
        err_text(&err)
    );

    check_admin_view(
        server, bucket, key, sse, cipher, size, etag, part_sizes, label,
    )
    .await;
}

#[allow(clippy::too_many_arguments)]
async fn check_admin_view(
    server: &TestServer,
    bucket: &str,
    key: &str,
    sse: &Sse,
    cipher: &str,
    size: usize,
    etag: &str,
    part_sizes: Option<&[usize]>,
    label: &str,
) {
    let v = object_view(server, bucket, key).await;
    assert_eq!(
        v["size"].as_u64(),
        Some(size as u64),
        "{label}: admin size: {v}"
    );
    assert_eq!(
        json_str(&v, "etag").trim_matches('"'),
        etag.trim_matches('"'),
        "{label}: admin etag: {v}"
    );
    assert_eq!(
        json_str(&v, "sse"),
        sse.admin_label(),
        "{label}: admin sse: {v}"
    );
    assert_eq!(
        json_str(&v, "cipher"),
        cipher,
        "{label}: the admin view reports the bucket's cipher: {v}"
    );
    match sse {
        Sse::Kms => assert!(
            json_str(&v, "kms_key_id").ends_with(KMS_KEY_ID),
            "{label}: admin kms_key_id: {v}"
        ),
        Sse::Customer(_) => assert!(v["kms_key_id"].is_null(), "{label}: admin kms_key_id: {v}"),
        Sse::S3 => {}
    }
    let segs = v["segments"]
        .as_array()
        .unwrap_or_else(|| panic!("{label}: admin view without segments: {v}"));
    let parts: Vec<u64> = segs
        .iter()
        .map(|s| s["part"].as_u64().unwrap_or(u64::MAX))
        .collect();
    let plain: Vec<u64> = segs
        .iter()
        .map(|s| s["plain_len"].as_u64().unwrap_or(u64::MAX))
        .collect();
    match part_sizes {
        None => {
            // An empty object may be stored with no segment at all.
            assert!(
                segs.len() == 1 || (size == 0 && segs.is_empty()),
                "{label}: a single-part object has one segment: {v}"
            );
            assert!(parts.iter().all(|&p| p == 0), "{label}: part 0: {v}");
            assert_eq!(
                plain.iter().sum::<u64>(),
                size as u64,
                "{label}: segment plain_len: {v}"
            );
        }
        Some(sizes) => {
            let want: Vec<u64> = (1..=sizes.len() as u64).collect();
            assert_eq!(parts, want, "{label}: segment part numbers: {v}");
            let want: Vec<u64> = sizes.iter().map(|&s| s as u64).collect();
            assert_eq!(plain, want, "{label}: segment plain_len per part: {v}");
        }
    }
    let is_hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    let mut ids: Vec<&str> = segs.iter().map(|s| json_str(s, "data_id")).collect();
    assert!(ids.iter().all(|id| is_hex(id)), "{label}: data ids: {v}");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        segs.len(),
        "{label}: data ids differ per segment: {v}"
    );
    for s in segs {
        let plain_len = s["plain_len"].as_u64().unwrap_or(0);
        let sealed_len = s["sealed_len"].as_u64().unwrap_or(0);
        if plain_len > 0 {
            assert!(sealed_len > plain_len, "{label}: no room for a tag: {s}");
        }
        if sse.customer().is_some() {
            assert!(
                s["nonce_prefix"].is_null() && s["key_check"].is_null(),
                "{label}: SSE-C key facts must not be shown: {s}"
            );
        } else {
            assert!(
                is_hex(json_str(s, "nonce_prefix")),
                "{label}: nonce_prefix: {s}"
            );
            assert!(is_hex(json_str(s, "key_check")), "{label}: key_check: {s}");
        }
    }
    if sse.customer().is_none() && segs.len() > 1 {
        let mut prefixes: Vec<&str> = segs.iter().map(|s| json_str(s, "nonce_prefix")).collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        assert_eq!(
            prefixes.len(),
            segs.len(),
            "{label}: nonce prefixes per part: {v}"
        );
    }
}

fn is_single_etag(etag: &str) -> bool {
    let inner = etag.strip_prefix('"').and_then(|e| e.strip_suffix('"'));
    inner.is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

async fn single_part(
    server: &TestServer,
    s3: &Client,
    bucket: &str,
    sse: &Sse,
    cipher: &str,
    size: usize,
) {
    let label = format!("{sse} / {cipher} / single part {size} B");
    let key = format!("single/{size}");
    let body = pseudo_random(size, 1000 + size as u64);
    let put = sse
        .put(s3.put_object().bucket(bucket).key(&key))
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{label}: PUT failed: {}", err_text(&e)));
    sse.check(&SseHeaders::from(&put), true, &format!("{label}: PUT"));
    let etag = put.e_tag.clone().unwrap_or_default();
    assert!(is_single_etag(&etag), "{label}: single-part ETag {etag:?}");
    if *sse == Sse::S3 {
        assert_eq!(
            etag,
            format!("\"{}\"", md5_hex(&body)),
            "{label}: SSE-S3 ETag is the MD5"
        );
    } else if size > 0 {
        assert_ne!(
            etag.trim_matches('"'),
            md5_hex(&body),
            "{label}: an SSE-KMS/SSE-C ETag must not reveal the plaintext MD5"
        );
    }
    check_object(
        server,
        s3,
        bucket,
        &key,
        sse,
        cipher,
        &body,
        &etag,
        &[PACKAGE, 2 * PACKAGE, MIB],
        &[],
        None,
        &label,
    )
    .await;
}

async fn multipart(server: &TestServer, s3: &Client, bucket: &str, sse: &Sse, cipher: &str) {
    let label = format!("{sse} / {cipher} / multipart 5 MiB + 5 MiB + 100 KiB");
    let key = "multi/three-parts";
    let parts: Vec<Vec<u8>> = PART_SIZES
        .iter()
        .enumerate()
        .map(|(i, &n)| pseudo_random(n, 2000 + i as u64))
        .collect();
    let body = parts.concat();

    let created = sse
        .create(s3.create_multipart_upload().bucket(bucket).key(key))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{label}: CreateMultipartUpload failed: {}", err_text(&e)));
    sse.check(
        &SseHeaders::from(&created),
        true,
        &format!("{label}: CreateMultipartUpload"),
    );
    let upload_id = created.upload_id.clone().expect("upload id");
    let mut done = Vec::new();
    let mut etags = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = sse
            .part(
                s3.upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(n),
            )
            .body(ByteStream::from(part.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{label}: UploadPart {n} failed: {}", err_text(&e)));
        if sse.customer().is_some() {
            // (SSE-S3/KMS headers are not echoed on UploadPart.)
            sse.check(
                &SseHeaders::from(&out),
                true,
                &format!("{label}: UploadPart {n}"),
            );
        }
        let etag = out.e_tag.clone().unwrap_or_default();
        assert!(is_single_etag(&etag), "{label}: part {n} ETag {etag:?}");
        if *sse == Sse::S3 {
            assert_eq!(
                etag,
                format!("\"{}\"", md5_hex(part)),
                "{label}: part {n} ETag"
            );
        }
        done.push(CompletedPart::builder().part_number(n).e_tag(&etag).build());
        etags.push(etag);
    }

    let listed = s3
        .list_parts()
        .bucket(bucket)
        .key(key)
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{label}: ListParts failed: {}", err_text(&e)));
    let listed: Vec<(Option<i32>, Option<i64>, Option<String>)> = listed
        .parts()
        .iter()
        .map(|p| (p.part_number, p.size, p.e_tag.clone()))
        .collect();
    let want: Vec<(Option<i32>, Option<i64>, Option<String>)> = PART_SIZES
        .iter()
        .zip(&etags)
        .enumerate()
        .map(|(i, (&n, e))| (Some(i as i32 + 1), Some(n as i64), Some(e.clone())))
        .collect();
    assert_eq!(listed, want, "{label}: ListParts (plaintext sizes)");

    let out = s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("{label}: CompleteMultipartUpload failed: {}", err_text(&e)));
    // CompleteMultipartUpload has no SSE-C response headers.
    sse.check(
        &SseHeaders::from(&out),
        false,
        &format!("{label}: CompleteMultipartUpload"),
    );
    let etag = out.e_tag.clone().unwrap_or_default();
    let (hash, count) = etag
        .trim_matches('"')
        .split_once('-')
        .unwrap_or_else(|| panic!("{label}: multipart ETag {etag:?} has no part count"));
    assert!(
        etag.starts_with('"')
            && etag.ends_with('"')
            && count == "3"
            && hash.len() == 32
            && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "{label}: multipart ETag {etag:?}"
    );
    if *sse == Sse::S3 {
        let digests: Vec<u8> = parts
            .iter()
            .flat_map(|p| hex::decode(md5_hex(p)).unwrap())
            .collect();
        assert_eq!(hash, md5_hex(&digests), "{label}: composite ETag");
    }

    let p1 = PART_SIZES[0];
    let p2 = p1 + PART_SIZES[1];
    check_object(
        server,
        s3,
        bucket,
        key,
        sse,
        cipher,
        &body,
        &etag,
        &[PACKAGE, 2 * PACKAGE, p1, p1 + PACKAGE, p2],
        // Spanning all three parts; exactly the first part and one byte more.
        &[(p1 - 10, p2 + 10), (0, p1)],
        Some(&PART_SIZES),
        &label,
    )
    .await;
}

fn bucket_for(cipher: &str) -> String {
    bucket_name(if cipher == CHACHA {
        "mx-chacha"
    } else {
        "mx-aes"
    })
}

async fn mode_matrix(sse: Sse) {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    for cipher in CIPHERS {
        let bucket = bucket_for(cipher);
        create_cipher_bucket(&server, &s3, &bucket, cipher).await;
        for size in SINGLE_SIZES {
            single_part(&server, &s3, &bucket, &sse, cipher, size).await;
        }
        multipart(&server, &s3, &bucket, &sse, cipher).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_s3_every_cipher_size_layout_and_range() {
    mode_matrix(Sse::S3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_kms_every_cipher_size_layout_and_range() {
    mode_matrix(Sse::Kms).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_c_every_cipher_size_layout_and_range() {
    mode_matrix(Sse::Customer(CustomerKey::from_seed(4242))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_mib_sse_s3_per_cipher() {
    let server = TestServer::start(ServerOpts::default()).await;
    let s3 = server.client();
    let size = 64 * MIB;
    let body = pseudo_random(size, 64);
    let md5 = md5_hex(&body);
    let sse = Sse::S3;
    for cipher in CIPHERS {
        let label = format!("SSE-S3 / {cipher} / single part 64 MiB");
        let bucket = bucket_for(cipher);
        create_cipher_bucket(&server, &s3, &bucket, cipher).await;
        let key = "big/sixty-four-mib";
        let put = sse
            .put(s3.put_object().bucket(&bucket).key(key))
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{label}: PUT failed: {}", err_text(&e)));
        sse.check(&SseHeaders::from(&put), true, &format!("{label}: PUT"));
        let etag = put.e_tag.clone().unwrap_or_default();
        assert_eq!(etag, format!("\"{md5}\""), "{label}: ETag is the MD5");

        let head = s3
            .head_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{label}: HEAD failed: {}", err_text(&e)));
        assert_eq!(
            head.content_length,
            Some(size as i64),
            "{label}: HEAD Content-Length"
        );
        assert_eq!(
            head.e_tag.as_deref(),
            Some(etag.as_str()),
            "{label}: HEAD ETag"
        );
        sse.check(&SseHeaders::from(&head), true, &format!("{label}: HEAD"));

        let got = get(&s3, &bucket, key, &sse, None, &label).await;
        assert_eq!(
            got.content_length,
            Some(size as i64),
            "{label}: GET Content-Length"
        );
        assert_eq!(md5_hex(&got.body), md5, "{label}: MD5 of the whole GET");
        assert_same_bytes(&got.body, &body, &format!("{label}: whole GET"));
        sse.check(&got.sse, true, &format!("{label}: GET"));
        drop(got);

        let last = size - 1;
        let ranges = [
            (
                format!("bytes={}-{}", PACKAGE - 1, PACKAGE + 1),
                PACKAGE - 1,
                PACKAGE + 1,
            ),
            (
                format!("bytes={}-{}", 32 * MIB - 5, 32 * MIB + PACKAGE),
                32 * MIB - 5,
                32 * MIB + PACKAGE,
            ),
            ("bytes=-70000".to_string(), size - 70000, last),
            (format!("bytes={last}-{last}"), last, last),
        ];
        for (header, first, end) in ranges {
            let what = format!("{label}: GET {header}");
            let got = get(&s3, &bucket, key, &sse, Some(&header), &what).await;
            assert_same_bytes(&got.body, &body[first..=end], &what);
            assert_eq!(
                got.content_range.as_deref(),
                Some(format!("bytes {first}-{end}/{size}").as_str()),
                "{what}: Content-Range"
            );
        }
        check_admin_view(
            &server, &bucket, key, &sse, cipher, size, &etag, None, &label,
        )
        .await;
    }
}
