"""Server-side encryption behaviour beyond plain round trips: SSE-C error codes, the data cipher
setting of the admin API, SSE-KMS encryption context and bucket keys, data-key caching, ETags,
CopyObject re-sealing, re-uploaded parts, plaintext sizes and encrypted user metadata.

AWS error codes are what S3 returns; admin views come from `GET /api/v1/buckets/{b}/objects/{k}`
and `GET /api/v1/buckets/{b}/uploads/{id}`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import (
    admin_path,
    admin_request,
    metrics_text,
    object_view,
    pseudo_random,
    put_bucket_encryption,
    upload_view,
)

KIB = 1024
MIB = 1024 * KIB
KMS_KEY_ID = "coffer-default"
CHACHA = "CHACHA20-POLY1305"

KEY1 = pseudo_random(32, 901)
KEY2 = pseudo_random(32, 902)
STR_KEY = "0123456789abcdefghijklmnopqrstuv"  # 32 ASCII characters: boto3 accepts str keys too


def md5_b64(key: bytes | str) -> str:
    raw = key.encode() if isinstance(key, str) else key
    return base64.b64encode(hashlib.md5(raw).digest()).decode()


def md5_hex(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def ssec(key: bytes | str) -> dict:
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def copy_ssec(key: bytes | str) -> dict:
    return {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": key}


def write_sse(mode: str) -> dict:
    if mode == "SSE-S3":
        return {"ServerSideEncryption": "AES256"}
    if mode == "SSE-KMS":
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KMS_KEY_ID}
    return ssec(KEY1)


def read_sse(mode: str) -> dict:
    return ssec(KEY1) if mode == "SSE-C" else {}


def client_error(fn, *args, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as e:
        fn(*args, **kwargs)
    return e.value


def code(e: ClientError) -> str:
    return e.response.get("Error", {}).get("Code", "")


def http_status(e: ClientError) -> int:
    return e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)


def assert_no_such_key(s3, bucket: str, key: str) -> None:
    e = client_error(s3.get_object, Bucket=bucket, Key=key)
    assert code(e) == "NoSuchKey" and http_status(e) == 404, e.response


def new_bucket(s3, prefix: str = "sse") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    return name


def cipher_bucket(coffer, s3, cipher: str, **extra) -> str:
    name = new_bucket(s3, "chacha" if cipher == CHACHA else "aes")
    cfg = {"enabled": True, "algorithm": "AES256", "cipher": cipher, **extra}
    r = put_bucket_encryption(coffer, name, cfg)
    assert r.status_code == 200, f"admin PUT {cfg}: {r.status_code} {r.text[:500]}"
    return name


def get_encryption(coffer, bucket: str) -> dict:
    r = admin_request(coffer, "GET", admin_path(bucket, "encryption"))
    assert r.status_code == 200, r.text[:500]
    return r.json()


def data_ids(view: dict) -> list[str]:
    return [s["data_id"] for s in view["segments"]]


def multipart(s3, bucket: str, key: str, parts: list[bytes], create: dict, part_kw: dict):
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    done = []
    for n, p in enumerate(parts, start=1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n, Body=p, **part_kw)
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    return up, done


# ---- admin API: the data cipher -------------------------------------------------------------


def test_admin_bucket_cipher_settings(coffer, s3):
    bucket = new_bucket(s3)
    path = admin_path(bucket, "encryption")

    r = put_bucket_encryption(coffer, bucket, {"enabled": True, "algorithm": "AES256"})
    assert r.status_code == 200, r.text[:500]
    got = get_encryption(coffer, bucket)
    assert got["enabled"] is True and got["algorithm"] == "AES256", got
    assert got.get("cipher") == "AES256", f"AES-256-GCM is the default cipher: {got}"

    # The shorthand: SSE-S3 with the ChaCha20-Poly1305 data cipher.
    r = put_bucket_encryption(coffer, bucket, {"enabled": True, "algorithm": CHACHA})
    assert r.status_code == 200, r.text[:500]
    got = get_encryption(coffer, bucket)
    assert got["enabled"] is True, got
    assert got["algorithm"] == "AES256" and got["cipher"] == CHACHA, got

    # A contradiction is refused and changes nothing.
    r = put_bucket_encryption(coffer, bucket,
                              {"enabled": True, "algorithm": CHACHA, "cipher": "AES256"})
    assert r.status_code == 400, (r.status_code, r.text[:500])
    r = put_bucket_encryption(coffer, bucket,
                              {"enabled": True, "algorithm": "AES256", "cipher": "DES"})
    assert r.status_code == 400, (r.status_code, r.text[:500])
    assert get_encryption(coffer, bucket)["cipher"] == CHACHA

    cfg = {"enabled": True, "algorithm": "aws:kms", "kms_key_id": KMS_KEY_ID, "cipher": CHACHA,
           "bucket_key_enabled": True}
    r = put_bucket_encryption(coffer, bucket, cfg)
    assert r.status_code == 200, r.text[:500]
    got = get_encryption(coffer, bucket)
    assert got["algorithm"] == "aws:kms" and got["cipher"] == CHACHA, got
    assert str(got["kms_key_id"]).endswith(KMS_KEY_ID), got
    assert got["bucket_key_enabled"] is True, got

    r = admin_request(coffer, "PUT", path, {"enabled": False})
    assert r.status_code == 200, r.text[:500]
    assert get_encryption(coffer, bucket)["enabled"] is False


def test_cipher_applies_to_objects_written_afterwards(coffer, s3):
    bucket = new_bucket(s3)
    r = put_bucket_encryption(coffer, bucket, {"enabled": True, "algorithm": "AES256"})
    assert r.status_code == 200, r.text[:500]
    before = pseudo_random(70_000, 11)
    s3.put_object(Bucket=bucket, Key="before", Body=before)

    r = put_bucket_encryption(coffer, bucket, {"enabled": True, "algorithm": CHACHA})
    assert r.status_code == 200, r.text[:500]
    after = pseudo_random(70_001, 12)
    s3.put_object(Bucket=bucket, Key="after", Body=after)
    s3.put_object(Bucket=bucket, Key="after-kms", Body=after, ServerSideEncryption="aws:kms")
    s3.put_object(Bucket=bucket, Key="after-ssec", Body=after, **ssec(KEY1))

    assert s3.get_object(Bucket=bucket, Key="before")["Body"].read() == before
    assert s3.get_object(Bucket=bucket, Key="after")["Body"].read() == after
    assert s3.get_object(Bucket=bucket, Key="after-kms")["Body"].read() == after
    assert s3.get_object(Bucket=bucket, Key="after-ssec", **ssec(KEY1))["Body"].read() == after

    v = object_view(coffer, bucket, "before")
    assert (v["sse"], v["cipher"]) == ("AES256", "AES256"), v
    v = object_view(coffer, bucket, "after")
    assert (v["sse"], v["cipher"]) == ("AES256", CHACHA), v
    v = object_view(coffer, bucket, "after-kms")
    assert (v["sse"], v["cipher"]) == ("aws:kms", CHACHA), v
    v = object_view(coffer, bucket, "after-ssec")
    assert (v["sse"], v["cipher"]) == ("SSE-C", CHACHA), v
    assert all(s["key_check"] is None and s["nonce_prefix"] is None for s in v["segments"]), v

    # A missing key is a JSON 404 from the object route itself (not the unknown-route fallback).
    r = admin_request(coffer, "GET", admin_path(bucket, "objects", "no/such/key"))
    assert r.status_code == 404, (r.status_code, r.text[:500])
    assert r.json().get("error") == "NoSuchKey", r.text[:500]
    # The view needs the admin token like every other bucket route.
    r = admin_request(coffer, "GET", admin_path(bucket, "objects", "after"), auth=False)
    assert r.status_code == 401, (r.status_code, r.text[:500])


# ---- SSE-C errors -----------------------------------------------------------------------------


def test_ssec_get_and_head_errors(coffer, s3, bucket):
    body = pseudo_random(100_000, 21)
    s3.put_object(Bucket=bucket, Key="c", Body=body, **ssec(KEY1))

    e = client_error(s3.get_object, Bucket=bucket, Key="c")
    assert http_status(e) == 400 and code(e) == "InvalidRequest", e.response
    e = client_error(s3.head_object, Bucket=bucket, Key="c")
    assert http_status(e) == 400, e.response

    e = client_error(s3.get_object, Bucket=bucket, Key="c", **ssec(KEY2))
    assert http_status(e) == 403 and code(e) == "AccessDenied", e.response
    e = client_error(s3.head_object, Bucket=bucket, Key="c", **ssec(KEY2))
    assert http_status(e) == 403, e.response
    e = client_error(s3.get_object, Bucket=bucket, Key="c", Range="bytes=0-9", **ssec(KEY2))
    assert http_status(e) == 403, e.response

    # The right key with an MD5 that does not match it (boto3 sends both as given).
    mismatch = {"SSECustomerAlgorithm": "AES256",
                "SSECustomerKey": base64.b64encode(KEY1).decode(),
                "SSECustomerKeyMD5": md5_b64(KEY2)}
    e = client_error(s3.get_object, Bucket=bucket, Key="c", **mismatch)
    assert http_status(e) == 400 and code(e) == "InvalidArgument", e.response
    e = client_error(s3.head_object, Bucket=bucket, Key="c", **mismatch)
    assert http_status(e) == 400, e.response

    assert s3.get_object(Bucket=bucket, Key="c", **ssec(KEY1))["Body"].read() == body


def test_ssec_put_with_mismatched_md5_stores_nothing(coffer, s3, bucket):
    mismatch = {"SSECustomerAlgorithm": "AES256",
                "SSECustomerKey": base64.b64encode(KEY1).decode(),
                "SSECustomerKeyMD5": md5_b64(KEY2)}
    e = client_error(s3.put_object, Bucket=bucket, Key="bad-md5", Body=b"data", **mismatch)
    assert http_status(e) == 400, e.response
    assert_no_such_key(s3, bucket, "bad-md5")
    e = client_error(s3.create_multipart_upload, Bucket=bucket, Key="bad-md5-mpu", **mismatch)
    assert http_status(e) == 400, e.response


def test_ssec_key_for_a_non_ssec_object(coffer, s3, bucket):
    s3.put_object(Bucket=bucket, Key="plain", Body=b"not customer encrypted",
                  ServerSideEncryption="AES256")
    e = client_error(s3.get_object, Bucket=bucket, Key="plain", **ssec(KEY1))
    assert http_status(e) == 400, e.response
    e = client_error(s3.head_object, Bucket=bucket, Key="plain", **ssec(KEY1))
    assert http_status(e) == 400, e.response
    assert s3.get_object(Bucket=bucket, Key="plain")["Body"].read() == b"not customer encrypted"


def test_ssec_upload_part_errors(coffer, s3, bucket):
    key = "mpu-c"
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, **ssec(KEY1))["UploadId"]
    part = pseudo_random(300_000, 22)
    e = client_error(s3.upload_part, Bucket=bucket, Key=key, UploadId=up, PartNumber=1,
                     Body=part)
    assert http_status(e) == 400, e.response
    e = client_error(s3.upload_part, Bucket=bucket, Key=key, UploadId=up, PartNumber=1,
                     Body=part, **ssec(KEY2))
    assert http_status(e) == 403, e.response
    assert s3.list_parts(Bucket=bucket, Key=key, UploadId=up).get("Parts", []) == []

    r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=1, Body=part, **ssec(KEY1))
    assert r["SSECustomerKeyMD5"] == md5_b64(KEY1)
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1,
                                                             "ETag": r["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key=key, **ssec(KEY1))["Body"].read() == part


def test_ssec_copy_source_errors(coffer, s3, bucket):
    body = pseudo_random(150_000, 23)
    s3.put_object(Bucket=bucket, Key="src", Body=body, **ssec(KEY1))
    src = {"Bucket": bucket, "Key": "src"}

    e = client_error(s3.copy_object, Bucket=bucket, Key="dst", CopySource=src)
    assert http_status(e) == 400, e.response
    assert_no_such_key(s3, bucket, "dst")
    e = client_error(s3.copy_object, Bucket=bucket, Key="dst", CopySource=src, **copy_ssec(KEY2))
    assert http_status(e) == 403, e.response
    assert_no_such_key(s3, bucket, "dst")
    mismatch = {"CopySourceSSECustomerAlgorithm": "AES256",
                "CopySourceSSECustomerKey": base64.b64encode(KEY1).decode(),
                "CopySourceSSECustomerKeyMD5": md5_b64(KEY2)}
    e = client_error(s3.copy_object, Bucket=bucket, Key="dst", CopySource=src, **mismatch)
    assert http_status(e) == 400, e.response
    assert_no_such_key(s3, bucket, "dst")

    s3.copy_object(Bucket=bucket, Key="dst", CopySource=src, **copy_ssec(KEY1))
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == body


# ---- SSE-KMS encryption context and bucket keys (NEW) ----------------------------------------


def b64json(value) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def decode_context(value: str | None) -> dict:
    assert value, "no encryption context returned"
    return json.loads(base64.b64decode(value))


def test_kms_encryption_context_round_trip(coffer, s3, bucket):
    body = pseudo_random(80_000, 31)
    ctx = b64json({"project": "x"})
    put = s3.put_object(Bucket=bucket, Key="ctx", Body=body, ServerSideEncryption="aws:kms",
                        SSEKMSKeyId=KMS_KEY_ID, SSEKMSEncryptionContext=ctx)
    assert put["ServerSideEncryption"] == "aws:kms"
    # S3 may add its own pairs (e.g. aws:s3:arn); ours must be there unchanged.
    assert decode_context(put.get("SSEKMSEncryptionContext")).items() >= {"project": "x"}.items()

    # S3's GetObject and HeadObject carry no context header; the stored context must still
    # unwrap the data key, so a successful read proves it was kept and bound.
    got = s3.get_object(Bucket=bucket, Key="ctx")
    assert got["Body"].read() == body
    assert got["ServerSideEncryption"] == "aws:kms"
    head = s3.head_object(Bucket=bucket, Key="ctx")
    assert head["ServerSideEncryption"] == "aws:kms"
    mpu = s3.create_multipart_upload(Bucket=bucket, Key="ctx-mpu", ServerSideEncryption="aws:kms",
                                     SSEKMSEncryptionContext=ctx)
    assert decode_context(mpu.get("SSEKMSEncryptionContext")).get("project") == "x"
    s3.abort_multipart_upload(Bucket=bucket, Key="ctx-mpu", UploadId=mpu["UploadId"])
    assert s3.get_object(Bucket=bucket, Key="ctx", Range="bytes=70000-70010")["Body"].read() \
        == body[70000:70011]


@pytest.mark.parametrize(
    "context",
    ["not base64 at all!", base64.b64encode(b"not json").decode(), b64json(["project", "x"]),
     b64json("project")],
    ids=["not-base64", "not-json", "json-array", "json-string"],
)
def test_kms_encryption_context_malformed(coffer, s3, bucket, context):
    e = client_error(s3.put_object, Bucket=bucket, Key="bad-ctx", Body=b"data",
                     ServerSideEncryption="aws:kms", SSEKMSEncryptionContext=context)
    assert http_status(e) == 400 and code(e) == "InvalidArgument", e.response
    assert_no_such_key(s3, bucket, "bad-ctx")


def test_bucket_key_enabled(coffer, s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="bk", Body=b"bucket key", ServerSideEncryption="aws:kms",
                        SSEKMSKeyId=KMS_KEY_ID, BucketKeyEnabled=True)
    assert put["ServerSideEncryption"] == "aws:kms"
    assert put.get("BucketKeyEnabled") is True, put
    head = s3.head_object(Bucket=bucket, Key="bk")
    assert head.get("BucketKeyEnabled") is True, head
    got = s3.get_object(Bucket=bucket, Key="bk")
    assert got["Body"].read() == b"bucket key"
    assert got.get("BucketKeyEnabled") is True, got

    # Without the header (and no bucket default) the object does not claim a bucket key.
    s3.put_object(Bucket=bucket, Key="no-bk", Body=b"x", ServerSideEncryption="aws:kms")
    assert s3.head_object(Bucket=bucket, Key="no-bk").get("BucketKeyEnabled") is not True


# ---- data-key generations (NEW) -------------------------------------------------------------

SAMPLE = re.compile(r"^coffer_kms_calls_total\{([^}]*)\}\s+(\S+)")


def generate_data_key_calls(text: str) -> tuple[float, bool]:
    """Sum of coffer_kms_calls_total{operation="generate_data_key"} over the other labels, and
    whether any such sample was present."""
    total, seen = 0.0, False
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and 'operation="generate_data_key"' in m.group(1):
            total += float(m.group(2))
            seen = True
    return total, seen


def test_data_key_generations_are_cached(coffer, s3):
    bucket = new_bucket(s3, "dk")
    before, _ = generate_data_key_calls(metrics_text(coffer))  # absent = 0
    keys = [f"small/{i:04d}" for i in range(1000)]

    def put(k: str) -> None:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode(), ServerSideEncryption="AES256")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, keys))
    after, seen = generate_data_key_calls(metrics_text(coffer))
    assert seen, "no coffer_kms_calls_total{operation=\"generate_data_key\"} sample in /metrics"
    assert after >= 1, "SSE-S3 objects were written, so at least one data key was generated"
    assert after - before <= 2, f"1000 SSE-S3 PUTs generated {after - before} data keys"

    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    assert sum(p.get("KeyCount", 0) for p in pages) == 1000
    for k in (keys[0], keys[499], keys[-1]):
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == k.encode()


# ---- ETags ------------------------------------------------------------------------------------


def test_etag_sse_s3_is_plaintext_md5(coffer, s3, bucket):
    body = pseudo_random(200_001, 41)
    for key, kw in [("default", {}), ("explicit", {"ServerSideEncryption": "AES256"})]:
        put = s3.put_object(Bucket=bucket, Key=key, Body=body, **kw)
        assert put["ETag"] == f'"{md5_hex(body)}"'
        assert s3.head_object(Bucket=bucket, Key=key)["ETag"] == put["ETag"]


@pytest.mark.parametrize("mode", ["SSE-KMS", "SSE-C"])
def test_etag_kms_and_ssec_are_not_plaintext_md5(coffer, s3, bucket, mode):
    body = pseudo_random(200_002, 42)
    put = s3.put_object(Bucket=bucket, Key="k", Body=body, **write_sse(mode))
    etag = put["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag), etag
    assert etag.strip('"') != md5_hex(body), "an SSE-KMS/SSE-C ETag must not reveal the MD5"
    assert s3.head_object(Bucket=bucket, Key="k", **read_sse(mode))["ETag"] == etag
    got = s3.get_object(Bucket=bucket, Key="k", **read_sse(mode))
    assert got["ETag"] == etag and got["Body"].read() == body


@pytest.mark.parametrize("mode", ["SSE-S3", "SSE-KMS", "SSE-C"])
def test_multipart_plaintext_sizes_and_etag(coffer, s3, bucket, mode):
    parts = [pseudo_random(5 * MIB, 43), pseudo_random(12_345, 44)]
    key = f"mpu/{mode}"
    up, done = multipart(s3, bucket, key, parts, write_sse(mode), read_sse(mode))
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=up)
    assert [p["Size"] for p in listed["Parts"]] == [5 * MIB, 12_345]
    out = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up,
                                       MultipartUpload={"Parts": done})
    assert re.fullmatch(r'"[0-9a-f]{32}-2"', out["ETag"]), out["ETag"]
    head = s3.head_object(Bucket=bucket, Key=key, **read_sse(mode))
    assert head["ContentLength"] == 5 * MIB + 12_345
    assert head["ETag"] == out["ETag"]
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=key)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listing] == [(key, 5 * MIB + 12_345)]


# ---- CopyObject re-seal (NEW) -----------------------------------------------------------------


def test_copy_in_place_new_ssec_key(coffer, s3, bucket):
    parts = [pseudo_random(5 * MIB, 51), pseudo_random(1000, 52)]
    body = b"".join(parts)
    key = "reseal/ssec"
    up, done = multipart(s3, bucket, key, parts, {**ssec(KEY1), "Metadata": {"colour": "teal"}},
                         ssec(KEY1))
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up,
                                 MultipartUpload={"Parts": done})
    before = object_view(coffer, bucket, key)

    out = s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key},
                         MetadataDirective="COPY", **copy_ssec(KEY1), **ssec(STR_KEY))
    assert out["SSECustomerAlgorithm"] == "AES256"
    assert out["SSECustomerKeyMD5"] == md5_b64(STR_KEY)

    got = s3.get_object(Bucket=bucket, Key=key, **ssec(STR_KEY))
    assert got["Body"].read() == body
    assert got["Metadata"] == {"colour": "teal"}
    assert got["SSECustomerKeyMD5"] == md5_b64(STR_KEY)
    assert s3.head_object(Bucket=bucket, Key=key, **ssec(STR_KEY))["ContentLength"] == len(body)
    e = client_error(s3.get_object, Bucket=bucket, Key=key, **ssec(KEY1))
    assert http_status(e) == 403, e.response

    after = object_view(coffer, bucket, key)
    assert after["sse"] == "SSE-C"
    assert data_ids(after) == data_ids(before), "re-sealing must not rewrite the data"
    assert [s["plain_len"] for s in after["segments"]] == [5 * MIB, 1000]


def test_copy_in_place_sse_s3_to_kms(coffer, s3, bucket):
    body = pseudo_random(300_000, 53)
    key = "reseal/s3-to-kms"
    s3.put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="AES256",
                  Metadata={"colour": "red"})
    before = object_view(coffer, bucket, key)
    assert before["sse"] == "AES256"

    out = s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key},
                         MetadataDirective="COPY", ServerSideEncryption="aws:kms",
                         SSEKMSKeyId=KMS_KEY_ID)
    assert out["ServerSideEncryption"] == "aws:kms"
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert str(head.get("SSEKMSKeyId", "")).endswith(KMS_KEY_ID), head
    assert head["Metadata"] == {"colour": "red"}
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body

    after = object_view(coffer, bucket, key)
    assert after["sse"] == "aws:kms" and str(after["kms_key_id"]).endswith(KMS_KEY_ID), after
    assert data_ids(after) == data_ids(before), "re-sealing must not rewrite the data"


def test_copy_to_another_key_reencrypts_under_destination_settings(coffer, s3):
    aes = cipher_bucket(coffer, s3, "AES256")
    chacha = cipher_bucket(coffer, s3, CHACHA)
    body = pseudo_random(200_000, 54)
    s3.put_object(Bucket=aes, Key="src", Body=body, ServerSideEncryption="AES256")
    s3.put_object(Bucket=aes, Key="src-c", Body=body, **ssec(KEY1))
    src = object_view(coffer, aes, "src")
    assert src["cipher"] == "AES256"

    s3.copy_object(Bucket=aes, Key="same-bucket", CopySource={"Bucket": aes, "Key": "src"})
    v = object_view(coffer, aes, "same-bucket")
    assert set(data_ids(v)).isdisjoint(data_ids(src)), "a copy to another key is new data"
    assert s3.get_object(Bucket=aes, Key="same-bucket")["Body"].read() == body

    s3.copy_object(Bucket=chacha, Key="dst", CopySource={"Bucket": aes, "Key": "src"})
    v = object_view(coffer, chacha, "dst")
    assert v["cipher"] == CHACHA and v["sse"] == "AES256", v
    assert set(data_ids(v)).isdisjoint(data_ids(src))
    assert s3.get_object(Bucket=chacha, Key="dst")["Body"].read() == body

    s3.copy_object(Bucket=chacha, Key="dst-c", CopySource={"Bucket": aes, "Key": "src-c"},
                   **copy_ssec(KEY1), **ssec(KEY2))
    v = object_view(coffer, chacha, "dst-c")
    assert v["cipher"] == CHACHA and v["sse"] == "SSE-C", v
    assert s3.get_object(Bucket=chacha, Key="dst-c", **ssec(KEY2))["Body"].read() == body


# ---- re-uploaded part (NEW) -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["SSE-S3", "SSE-KMS"])
def test_reuploaded_part_gets_fresh_key_and_nonce(coffer, s3, bucket, mode):
    key = f"reupload/{mode}"
    first, second = pseudo_random(5 * MIB, 61), pseudo_random(5 * MIB, 62)
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, **write_sse(mode))["UploadId"]
    r1 = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=1, Body=first)
    v1 = upload_view(coffer, bucket, up)
    assert (v1["bucket"], v1["key"], v1["upload_id"]) == (bucket, key, up), v1
    assert v1["sse"] == {"SSE-S3": "AES256", "SSE-KMS": "aws:kms"}[mode], v1
    assert v1["cipher"] == "AES256", v1
    assert [p["part"] for p in v1["parts"]] == [1], v1
    p1 = v1["parts"][0]
    assert p1["size"] == 5 * MIB and p1["plain_len"] == 5 * MIB, p1
    assert p1["etag"].strip('"') == r1["ETag"].strip('"'), p1

    r = admin_request(coffer, "GET", admin_path(bucket, "uploads", up), auth=False)
    assert r.status_code == 401, (r.status_code, r.text[:500])

    r2 = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=1, Body=second)
    v2 = upload_view(coffer, bucket, up)
    assert [p["part"] for p in v2["parts"]] == [1], v2
    p2 = v2["parts"][0]
    assert p2["etag"].strip('"') == r2["ETag"].strip('"'), p2
    for field in ("data_id", "nonce_prefix", "key_check"):
        assert p1[field] and p2[field], (field, p1, p2)
        assert p1[field] != p2[field], f"re-uploaded part reuses its {field}: {p1[field]}"

    e = client_error(s3.complete_multipart_upload, Bucket=bucket, Key=key, UploadId=up,
                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r1["ETag"]}]})
    assert code(e) == "InvalidPart", e.response
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r2["ETag"]}]})
    got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(second).digest()


# ---- user metadata ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["SSE-S3", "SSE-KMS", "SSE-C"])
def test_user_metadata_round_trip(coffer, s3, bucket, mode):
    meta = {"marker": "x" * 40}
    s3.put_object(Bucket=bucket, Key="m", Body=b"meta", Metadata=meta, **write_sse(mode))
    assert s3.head_object(Bucket=bucket, Key="m", **read_sse(mode))["Metadata"] == meta
    got = s3.get_object(Bucket=bucket, Key="m", **read_sse(mode))
    assert got["Metadata"] == meta and got["Body"].read() == b"meta"
    copy_kw = {**copy_ssec(KEY1), **ssec(KEY1)} if mode == "SSE-C" else write_sse(mode)
    s3.copy_object(Bucket=bucket, Key="m-copy", CopySource={"Bucket": bucket, "Key": "m"},
                   **copy_kw)
    assert s3.head_object(Bucket=bucket, Key="m-copy", **read_sse(mode))["Metadata"] == meta


def disk_forms(b: bytes) -> list[bytes]:
    """`b` as it could appear in a file: raw, hex, or inside a base64 string at any alignment."""
    forms = [b, b.hex().encode(), b.hex().upper().encode()]
    for shift in range(3):
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            e = enc(bytes(shift) + b)
            first_group, end_group = (shift + 2) // 3, (shift + len(b)) // 3
            forms.append(e[4 * first_group : 4 * end_group])
    return forms


def files_containing(root: Path, needles: list[bytes]) -> dict[bytes, list[str]]:
    """For each needle, the files under `root` holding it in any of its `disk_forms`."""
    forms = {n: disk_forms(n) for n in needles}
    hits: dict[bytes, list[str]] = {n: [] for n in needles}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            try:
                data = p.read_bytes()
            except OSError:  # removed meanwhile
                continue
            for n, fs in forms.items():
                if any(f in data for f in fs):
                    hits[n].append(str(p))
    return hits


def test_user_metadata_is_not_stored_in_plaintext(coffer, s3, bucket):
    """Stored encrypted: the values never reach the data directory in any plain encoding. The
    object keys (stored in the clear for listing) are the positive control that the scan sees
    what was written."""
    objects = {}
    for mode in ("SSE-S3", "SSE-KMS", "SSE-C"):
        key = f"plainkeycontrol{uuid.uuid4().hex}"
        marker = f"secretmetadatamarker{uuid.uuid4().hex}"
        s3.put_object(Bucket=bucket, Key=key, Body=b"m", Metadata={"marker": marker},
                      **write_sse(mode))
        objects[key] = (mode, marker)
    keys = [k.encode() for k in objects]
    markers = [m.encode() for _mode, m in objects.values()]
    deadline = time.monotonic() + 15
    while True:
        hits = files_containing(coffer.data_dir, keys + markers)
        missing = [k.decode() for k in keys if not hits[k]]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not missing, f"positive control: keys {missing} not found under {coffer.data_dir}"
    for key, (mode, marker) in objects.items():
        assert not hits[marker.encode()], (
            f"{mode} user metadata stored in plaintext in {hits[marker.encode()]}"
        )
        head = s3.head_object(Bucket=bucket, Key=key, **read_sse(mode))
        assert head["Metadata"] == {"marker": marker}
