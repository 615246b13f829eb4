"""Round trips through boto3 for every combination of SSE mode (SSE-S3, SSE-KMS, SSE-C) × data
cipher (AES256, CHACHA20-POLY1305; one bucket per cipher, set through the admin API) × layout
(single part of 0 B .. 1 MiB + 7, multipart 5 MiB + 5 MiB + 100 KiB) × read (whole object, ranges
that start, end and span 64 KiB package and part boundaries), plus one 64 MiB SSE-S3 object per
cipher.

Every test checks what S3 clients see (bytes, Content-Length, Content-Range, ETag quoting, the SSE
response headers on PUT/GET/HEAD, ListParts sizes) first and the admin object view (cipher,
segments) last, so a failure in the admin view means everything before it passed.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import object_view, pseudo_random, put_bucket_encryption

KIB = 1024
MIB = 1024 * KIB
PACKAGE = 64 * KIB  # plaintext bytes per stream package

MODES = ["SSE-S3", "SSE-KMS", "SSE-C"]
CIPHERS = ["AES256", "CHACHA20-POLY1305"]
SINGLE_SIZES = [0, 1, 65535, 65536, 65537, MIB + 7]
PART_SIZES = [5 * MIB, 5 * MIB, 100 * KIB]

KMS_KEY_ID = "coffer-default"
SSEC_KEY = pseudo_random(32, 4242)
SSEC_KEY_MD5 = base64.b64encode(hashlib.md5(SSEC_KEY).digest()).decode()

# Admin view: "sse" label per mode.
SSE_LABEL = {"SSE-S3": "AES256", "SSE-KMS": "aws:kms", "SSE-C": "SSE-C"}
HEX = re.compile(r"[0-9a-f]+")
SINGLE_ETAG = re.compile(r'"[0-9a-f]{32}"')


def md5_hex(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def error_code(e: ClientError) -> str:
    return e.response.get("Error", {}).get("Code", "")


def status(e: ClientError) -> int:
    return e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)


# ---- buckets ------------------------------------------------------------------------------

_buckets: dict[tuple[int, str], str] = {}
_configured: set[tuple[int, str]] = set()


def cipher_bucket(coffer, s3, cipher: str) -> str:
    """The module's bucket whose default data cipher is `cipher` (created on first use).

    The AES bucket is configured without a "cipher" field (AES256 is the default); the ChaCha
    bucket sets "cipher" explicitly with SSE-S3 as the default algorithm. Requests in the matrix
    always name their SSE mode, so the default algorithm never decides the mode."""
    slot = (id(coffer), cipher)
    if slot not in _buckets:
        name = f"mx-{'aes' if cipher == 'AES256' else 'chacha'}-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=name)
        _buckets[slot] = name
    name = _buckets[slot]
    if slot not in _configured:
        cfg = {"enabled": True, "algorithm": "AES256"}
        if cipher != "AES256":
            cfg["cipher"] = cipher
        r = put_bucket_encryption(coffer, name, cfg)
        assert r.status_code == 200, f"admin PUT encryption {cfg}: {r.status_code} {r.text[:500]}"
        _configured.add(slot)
    return name


# ---- SSE request/response helpers ---------------------------------------------------------


def write_sse(mode: str) -> dict:
    if mode == "SSE-S3":
        return {"ServerSideEncryption": "AES256"}
    if mode == "SSE-KMS":
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KMS_KEY_ID}
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": SSEC_KEY}


def read_sse(mode: str) -> dict:
    if mode == "SSE-C":
        return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": SSEC_KEY}
    return {}


def check_sse(resp: dict, mode: str, what: str, customer_headers: bool = True) -> None:
    """The SSE response headers of PUT/GET/HEAD/UploadPart/... for `mode`."""
    if mode == "SSE-S3":
        assert resp.get("ServerSideEncryption") == "AES256", (what, resp)
        assert "SSEKMSKeyId" not in resp, (what, resp)
        assert "SSECustomerAlgorithm" not in resp, (what, resp)
    elif mode == "SSE-KMS":
        assert resp.get("ServerSideEncryption") == "aws:kms", (what, resp)
        assert str(resp.get("SSEKMSKeyId", "")).endswith(KMS_KEY_ID), (what, resp)
        assert "SSECustomerAlgorithm" not in resp, (what, resp)
    else:
        assert "ServerSideEncryption" not in resp, (what, resp)
        if customer_headers:
            assert resp.get("SSECustomerAlgorithm") == "AES256", (what, resp)
            assert resp.get("SSECustomerKeyMD5") == SSEC_KEY_MD5, (what, resp)


# ---- ranges -------------------------------------------------------------------------------


def range_cases(size: int, boundaries: list[int]) -> list[tuple[str, int, int]]:
    """(Range header, first, last) with `first..=last` what S3 must return (end clipped)."""
    if size == 0:
        return []
    last = size - 1
    out: dict[str, tuple[int, int]] = {}

    def add(first: int, end: int | None = None) -> None:
        """bytes=first-end (end may lie past the object; S3 clips it); None = open range."""
        first = max(0, first)
        if first > last:
            return
        header = f"bytes={first}-" if end is None else f"bytes={first}-{end}"
        out[header] = (first, last if end is None else min(end, last))

    add(0, 0)  # first byte
    add(last, last)  # last byte
    add(0)  # open range from the start
    add(size // 2)  # open range from the middle
    add(1, size + 1000)  # end past the object
    for b in boundaries:
        if not 0 < b < size:
            continue
        add(b - 1, b - 1)  # ends at a boundary
        add(b, b)  # starts at a boundary
        add(b - 1, b)
        add(b - 1, b + 1)  # 65535..65537 for the first package boundary
        add(b - 3, b + PACKAGE + 3)  # spans more than one package
        if size - b <= 2 * MIB:  # open ranges across a boundary, where they stay small
            add(b - 1)
    cases = [(h, f, e) for h, (f, e) in out.items()]
    # Suffix ranges: the last byte, and 70000 bytes (more than a package; clipped when larger).
    cases.append(("bytes=-1", last, last))
    cases.append(("bytes=-70000", max(0, size - 70000), last))
    return cases


def check_ranges(s3, bucket: str, key: str, mode: str, body: bytes,
                 boundaries: list[int]) -> None:
    size = len(body)
    for header, first, end in range_cases(size, boundaries):
        r = s3.get_object(Bucket=bucket, Key=key, Range=header, **read_sse(mode))
        got = r["Body"].read()
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206, header
        assert got == body[first : end + 1], (
            f"range {header}: {len(got)} bytes, want {end + 1 - first} from {first}"
        )
        assert r["ContentRange"] == f"bytes {first}-{end}/{size}", (header, r["ContentRange"])
        assert r["ContentLength"] == end + 1 - first, header
        check_sse(r, mode, f"GET {header}")
    # A range starting at or past the end is unsatisfiable.
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={size}-", **read_sse(mode))
    assert status(e.value) == 416 and error_code(e.value) == "InvalidRange", e.value.response


# ---- admin view ---------------------------------------------------------------------------


def check_admin_view(coffer, bucket: str, key: str, mode: str, cipher: str, size: int,
                     etag: str, part_sizes: list[int] | None) -> dict:
    v = object_view(coffer, bucket, key)
    assert v["bucket"] == bucket and v["key"] == key, v
    assert v["size"] == size, v
    assert v["etag"].strip('"') == etag.strip('"'), v
    assert v["sse"] == SSE_LABEL[mode], v
    assert v["cipher"] == cipher, v
    if mode == "SSE-KMS":
        assert str(v["kms_key_id"]).endswith(KMS_KEY_ID), v
    if mode == "SSE-C":
        assert v["kms_key_id"] is None, v
    segs = v["segments"]
    if part_sizes is None:
        # An empty object may be stored with no segment at all (the contract leaves it open).
        assert len(segs) == 1 or (size == 0 and segs == []), segs
        assert [s["part"] for s in segs] == [0] * len(segs), segs
        assert sum(s["plain_len"] for s in segs) == size, segs
    else:
        assert [s["part"] for s in segs] == list(range(1, len(part_sizes) + 1)), segs
        assert [s["plain_len"] for s in segs] == part_sizes, segs
    assert len({s["data_id"] for s in segs}) == len(segs), "data ids must differ per segment"
    for s in segs:
        assert HEX.fullmatch(s["data_id"]), s
        assert isinstance(s["stream_version"], int), s
        assert s["sealed_len"] >= s["plain_len"], s
        if s["plain_len"] > 0:
            assert s["sealed_len"] > s["plain_len"], f"no room for an auth tag: {s}"
        if mode == "SSE-C":
            assert s["nonce_prefix"] is None and s["key_check"] is None, s
        else:
            assert HEX.fullmatch(s["nonce_prefix"] or ""), s
            assert HEX.fullmatch(s["key_check"] or ""), s
    if mode != "SSE-C" and len(segs) > 1:
        assert len({s["nonce_prefix"] for s in segs}) == len(segs), segs
    return v


# ---- tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SINGLE_SIZES, ids=[f"{n}B" for n in SINGLE_SIZES])
@pytest.mark.parametrize("cipher", CIPHERS)
@pytest.mark.parametrize("mode", MODES)
def test_single_part(coffer, s3, mode, cipher, size):
    bucket = cipher_bucket(coffer, s3, cipher)
    key = f"single/{mode}/{size}"
    body = pseudo_random(size, 1000 + size)

    put = s3.put_object(Bucket=bucket, Key=key, Body=body, **write_sse(mode))
    check_sse(put, mode, "PUT")
    etag = put["ETag"]
    assert SINGLE_ETAG.fullmatch(etag), f"single-part ETag must be 32 quoted hex digits: {etag}"
    if mode == "SSE-S3":
        assert etag == f'"{md5_hex(body)}"'

    head = s3.head_object(Bucket=bucket, Key=key, **read_sse(mode))
    assert head["ContentLength"] == size
    assert head["ETag"] == etag
    check_sse(head, mode, "HEAD")

    got = s3.get_object(Bucket=bucket, Key=key, **read_sse(mode))
    data = got["Body"].read()
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert len(data) == size and data == body
    assert got["ContentLength"] == size
    assert got["ETag"] == etag
    check_sse(got, mode, "GET")

    if size == 0:
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-0", **read_sse(mode))
        assert status(e.value) == 416 and error_code(e.value) == "InvalidRange"
    else:
        check_ranges(s3, bucket, key, mode, body, [PACKAGE, 2 * PACKAGE, MIB])

    check_admin_view(coffer, bucket, key, mode, cipher, size, etag, None)


@pytest.mark.parametrize("cipher", CIPHERS)
@pytest.mark.parametrize("mode", MODES)
def test_multipart(coffer, s3, mode, cipher):
    bucket = cipher_bucket(coffer, s3, cipher)
    key = f"multi/{mode}/three-parts"
    parts = [pseudo_random(n, 2000 + i) for i, n in enumerate(PART_SIZES)]
    body = b"".join(parts)
    total = len(body)

    up = s3.create_multipart_upload(Bucket=bucket, Key=key, **write_sse(mode))
    check_sse(up, mode, "CreateMultipartUpload")
    upload_id = up["UploadId"]
    done = []
    for n, p in enumerate(parts, start=1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=p,
                           **read_sse(mode))
        check_sse(r, mode, f"UploadPart {n}")
        assert re.fullmatch(r'"[0-9a-f]{32}"', r["ETag"]), r["ETag"]
        if mode == "SSE-S3":
            assert r["ETag"] == f'"{md5_hex(p)}"'
        done.append({"PartNumber": n, "ETag": r["ETag"]})

    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3]
    assert [p["Size"] for p in listed["Parts"]] == PART_SIZES, "ListParts reports plaintext sizes"
    assert [p["ETag"] for p in listed["Parts"]] == [d["ETag"] for d in done]

    out = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                       MultipartUpload={"Parts": done})
    etag = out["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}-3"', etag), etag
    if mode != "SSE-C":  # CompleteMultipartUpload has no SSE-C response headers
        check_sse(out, mode, "CompleteMultipartUpload")
    if mode == "SSE-S3":
        composite = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
        assert etag == f'"{composite}-3"'

    head = s3.head_object(Bucket=bucket, Key=key, **read_sse(mode))
    assert head["ContentLength"] == total
    assert head["ETag"] == etag
    check_sse(head, mode, "HEAD")

    got = s3.get_object(Bucket=bucket, Key=key, **read_sse(mode))
    data = got["Body"].read()
    assert got["ContentLength"] == total and got["ETag"] == etag
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(body).hexdigest()
    check_sse(got, mode, "GET")

    p1, p2 = PART_SIZES[0], PART_SIZES[0] + PART_SIZES[1]
    boundaries = [PACKAGE, 2 * PACKAGE, p1, p1 + PACKAGE, p2, p2 + PACKAGE]
    check_ranges(s3, bucket, key, mode, body, boundaries)
    # Spanning all three parts, and exactly the first part plus one byte.
    for first, end in [(p1 - 10, p2 + 10), (0, p1)]:
        r = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={first}-{end}", **read_sse(mode))
        assert r["Body"].read() == body[first : end + 1], (first, end)
        assert r["ContentRange"] == f"bytes {first}-{end}/{total}"

    check_admin_view(coffer, bucket, key, mode, cipher, total, etag, PART_SIZES)


@pytest.mark.parametrize("cipher", CIPHERS)
def test_sixty_four_mib_sse_s3(coffer, s3, cipher):
    bucket = cipher_bucket(coffer, s3, cipher)
    key = "big/sixty-four-mib"
    size = 64 * MIB
    body = pseudo_random(size, 64)
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="AES256")
    check_sse(put, "SSE-S3", "PUT")
    assert put["ETag"] == f'"{md5_hex(body)}"'
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == size and head["ETag"] == put["ETag"]
    check_sse(head, "SSE-S3", "HEAD")
    got = s3.get_object(Bucket=bucket, Key=key)
    assert hashlib.sha256(got["Body"].read()).hexdigest() == hashlib.sha256(body).hexdigest()
    check_sse(got, "SSE-S3", "GET")
    last = size - 1
    for first, end in [(0, 0), (PACKAGE - 1, PACKAGE + 1), (32 * MIB - 5, 32 * MIB + PACKAGE),
                       (last - PACKAGE, last), (last, last)]:
        r = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={first}-{end}")
        assert r["Body"].read() == body[first : end + 1], (first, end)
        assert r["ContentRange"] == f"bytes {first}-{end}/{size}"
    r = s3.get_object(Bucket=bucket, Key=key, Range="bytes=-70000")
    assert r["Body"].read() == body[-70000:]
    check_admin_view(coffer, bucket, key, "SSE-S3", cipher, size, put["ETag"], None)
