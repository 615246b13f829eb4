"""Acceptance 2 (boto3 half): the core S3 scenario through boto3 against the real binary."""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from conftest import pseudo_random

KIB = 1024
MIB = 1024 * 1024
PACKAGE = 64 * KIB


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def get(s3, bucket: str, key: str, **kw) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


def error_code(e: ClientError) -> str:
    return e.response.get("Error", {}).get("Code", "")


def status(e: ClientError) -> int:
    return e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)


@pytest.mark.parametrize(
    "key,size",
    [("empty", 0), ("one", 1), ("five-mib-plus-one", 5 * MIB + 1), ("sixty-four-mib", 64 * MIB)],
)
def test_put_get_head_sizes(s3, bucket, key, size):
    body = pseudo_random(size, size)
    out = s3.put_object(Bucket=bucket, Key=key, Body=body)
    assert out["ETag"].strip('"') == md5(body)
    got = get(s3, bucket, key)
    assert len(got) == size and md5(got) == md5(body)
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == size
    assert head["ETag"] == out["ETag"]


def test_ranges(s3, bucket):
    size = 5 * PACKAGE + 777
    body = pseudo_random(size, 7)
    s3.put_object(Bucket=bucket, Key="obj", Body=body)
    last = size - 1
    cases = {
        "bytes=0-0": body[0:1],
        f"bytes={last}-{last}": body[last:],
        "bytes=-1": body[-1:],
        "bytes=65530-65545": body[65530:65546],
        f"bytes={PACKAGE}-{2 * PACKAGE - 1}": body[PACKAGE : 2 * PACKAGE],
        f"bytes={PACKAGE - 1}-{3 * PACKAGE}": body[PACKAGE - 1 : 3 * PACKAGE + 1],
        f"bytes={4 * PACKAGE + 5}-": body[4 * PACKAGE + 5 :],
    }
    for rng, want in cases.items():
        r = s3.get_object(Bucket=bucket, Key="obj", Range=rng)
        got = r["Body"].read()
        assert got == want, f"range {rng}: {len(got)} bytes, want {len(want)}"
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert r["ContentRange"].endswith(f"/{size}")


def test_transfer_manager_multipart(s3, bucket):
    """upload_fileobj / download_fileobj split into parts and ranged GETs."""
    body = pseudo_random(20 * MIB + 3, 11)
    cfg = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=5 * MIB, max_concurrency=4)
    s3.upload_fileobj(io.BytesIO(body), bucket, "managed.bin", Config=cfg)
    head = s3.head_object(Bucket=bucket, Key="managed.bin")
    assert head["ContentLength"] == len(body)
    assert head["ETag"].strip('"').endswith("-5")
    out = io.BytesIO()
    s3.download_fileobj(bucket, "managed.bin", out, Config=cfg)
    assert md5(out.getvalue()) == md5(body)


def test_listing_prefix_delimiter_pagination(s3, bucket):
    keys = [f"list/a/{i:04d}" for i in range(1000)] + [f"list/b/{i:04d}" for i in range(50)]
    keys.append("other/x")
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=k.encode()), keys))
    expected = sorted(k for k in keys if k.startswith("list/"))
    assert len(expected) == 1050

    first = s3.list_objects_v2(Bucket=bucket, Prefix="list/")
    assert first["KeyCount"] == 1000 and first["IsTruncated"] is True
    second = s3.list_objects_v2(
        Bucket=bucket, Prefix="list/", ContinuationToken=first["NextContinuationToken"]
    )
    assert second["KeyCount"] == 50 and not second["IsTruncated"]
    assert [o["Key"] for o in first["Contents"] + second["Contents"]] == expected

    pages = list(
        s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix="list/", PaginationConfig={"PageSize": 100}
        )
    )
    assert len(pages) == 11
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == expected

    v1 = list(
        s3.get_paginator("list_objects").paginate(
            Bucket=bucket, Prefix="list/", PaginationConfig={"PageSize": 400}
        )
    )
    assert [o["Key"] for p in v1 for o in p.get("Contents", [])] == expected

    d = s3.list_objects_v2(Bucket=bucket, Prefix="list/", Delimiter="/")
    assert [p["Prefix"] for p in d.get("CommonPrefixes", [])] == ["list/a/", "list/b/"]
    assert not d.get("Contents")
    d = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in d.get("CommonPrefixes", [])] == ["list/", "other/"]
    o = s3.list_objects_v2(Bucket=bucket, Prefix="other/")["Contents"]
    assert [(x["Key"], x["Size"]) for x in o] == [("other/x", 7)]


def test_copy_and_delete(s3, bucket):
    body = pseudo_random(3 * PACKAGE + 5, 21)
    s3.put_object(Bucket=bucket, Key="src", Body=body, Metadata={"colour": "teal"})
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert get(s3, bucket, "dst") == body
    assert s3.head_object(Bucket=bucket, Key="dst")["Metadata"] == {"colour": "teal"}
    s3.copy_object(
        Bucket=bucket,
        Key="dst2",
        CopySource=f"{bucket}/src",
        Metadata={"colour": "red"},
        MetadataDirective="REPLACE",
    )
    assert s3.head_object(Bucket=bucket, Key="dst2")["Metadata"] == {"colour": "red"}
    assert get(s3, bucket, "dst2") == body

    s3.delete_object(Bucket=bucket, Key="src")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="src")
    assert error_code(e.value) == "NoSuchKey" and status(e.value) == 404
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="src")
    assert status(e.value) == 404
    s3.delete_object(Bucket=bucket, Key="src")  # deleting a missing key is fine

    out = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "dst"}, {"Key": "dst2"}, {"Key": "nope"}]}
    )
    assert not out.get("Errors"), out
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    s3.delete_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=bucket)
    assert status(e.value) == 404


def test_multipart_three_parts_and_abort(s3, bucket):
    parts = [pseudo_random(5 * MIB, 31), pseudo_random(5 * MIB, 32), pseudo_random(1, 33)]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mpu")
    done = []
    for n, p in enumerate(parts, start=1):
        r = s3.upload_part(Bucket=bucket, Key="mpu", UploadId=up["UploadId"], PartNumber=n, Body=p)
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    listed = s3.list_parts(Bucket=bucket, Key="mpu", UploadId=up["UploadId"])
    assert [p["Size"] for p in listed["Parts"]] == [5 * MIB, 5 * MIB, 1]
    out = s3.complete_multipart_upload(
        Bucket=bucket, Key="mpu", UploadId=up["UploadId"], MultipartUpload={"Parts": done}
    )
    assert out["ETag"].strip('"').endswith("-3")
    whole = b"".join(parts)
    assert md5(get(s3, bucket, "mpu")) == md5(whole)
    a, b = 5 * MIB - 8, 5 * MIB + 8
    assert get(s3, bucket, "mpu", Range=f"bytes={a}-{b}") == whole[a : b + 1]

    up = s3.create_multipart_upload(Bucket=bucket, Key="aborted")
    s3.upload_part(
        Bucket=bucket, Key="aborted", UploadId=up["UploadId"], PartNumber=1, Body=parts[0]
    )
    ids = [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    assert up["UploadId"] in ids
    s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=up["UploadId"])
    ids = [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    assert up["UploadId"] not in ids
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="aborted", UploadId=up["UploadId"])
    assert error_code(e.value) == "NoSuchUpload"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="aborted")
    assert status(e.value) == 404


def test_unversioned_bucket_versioning_calls(s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"alpha")
    v = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in v
    out = s3.list_object_versions(Bucket=bucket)
    versions = out.get("Versions", [])
    assert [x["Key"] for x in versions] == ["a"]
    assert versions[0]["VersionId"] == "null" and versions[0]["IsLatest"] is True


def test_unconfigured_bucket_settings_read_as_absent(s3, bucket):
    # What Terraform's aws_s3_bucket reads on every refresh: S3's answers for a bucket that
    # never had these settings, not 501s.
    absent = {
        "get_bucket_tagging": "NoSuchTagSet",
        "get_bucket_policy": "NoSuchBucketPolicy",
        "get_bucket_cors": "NoSuchCORSConfiguration",
        "get_bucket_website": "NoSuchWebsiteConfiguration",
        "get_bucket_lifecycle_configuration": "NoSuchLifecycleConfiguration",
        "get_bucket_replication": "ReplicationConfigurationNotFoundError",
        "get_object_lock_configuration": "ObjectLockConfigurationNotFoundError",
    }
    for call, code in absent.items():
        with pytest.raises(ClientError) as e:
            getattr(s3, call)(Bucket=bucket)
        assert (error_code(e.value), status(e.value)) == (code, 404), call
        with pytest.raises(ClientError) as e:
            getattr(s3, call)(Bucket=bucket + "-missing")
        assert (error_code(e.value), status(e.value)) == ("NoSuchBucket", 404), call
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert acl["Owner"]["ID"] == "coffer"
    assert [(g["Grantee"]["Type"], g["Grantee"]["ID"], g["Permission"]) for g in acl["Grants"]] == [
        ("CanonicalUser", "coffer", "FULL_CONTROL")
    ]
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=bucket)
    assert "Status" not in s3.get_bucket_accelerate_configuration(Bucket=bucket)
    assert s3.get_bucket_request_payment(Bucket=bucket)["Payer"] == "BucketOwner"
    with pytest.raises(ClientError) as e:
        s3.get_bucket_acl(Bucket=bucket + "-missing")
    assert error_code(e.value) == "NoSuchBucket"


def test_bucket_encryption_roundtrip(s3, bucket):
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    got = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert got["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    out = s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert out.get("ServerSideEncryption") == "AES256"
