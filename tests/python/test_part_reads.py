"""GetObject / HeadObject by partNumber through boto3: a multipart object's parts by ordinal
(1..=PartsCount, whatever part numbers the upload used), a single-part object as part 1, the
error codes S3 gives past the end or together with a Range, and an SSE-C object."""

from __future__ import annotations

import base64
import hashlib

import botocore.exceptions
import pytest

from conftest import pseudo_random

MIB = 1024 * 1024


def error_of(excinfo) -> tuple[str, int]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def multipart(s3, bucket: str, key: str, parts: dict[int, bytes], **extra) -> str:
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
    done = []
    for n, body in parts.items():
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n, Body=body, **extra)["ETag"]
        done.append({"PartNumber": n, "ETag": etag})
    return s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=up, MultipartUpload={"Parts": done}
    )["ETag"]


def test_multipart_parts_by_ordinal(s3, bucket):
    # Part numbers 2, 5, 9: the object's parts are 1, 2, 3 in that order.
    bodies = {2: pseudo_random(5 * MIB, 1), 5: pseudo_random(5 * MIB + 17, 2), 9: pseudo_random(1234, 3)}
    etag = multipart(s3, bucket, "mp", bodies)
    whole = b"".join(bodies.values())
    start = 0
    for ordinal, body in enumerate(bodies.values(), start=1):
        end = start + len(body) - 1
        got = s3.get_object(Bucket=bucket, Key="mp", PartNumber=ordinal)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["ContentRange"] == f"bytes {start}-{end}/{len(whole)}"
        assert got["ContentLength"] == len(body)
        assert got["PartsCount"] == 3
        assert got["ETag"] == etag
        assert got["Body"].read() == body
        head = s3.head_object(Bucket=bucket, Key="mp", PartNumber=ordinal)
        assert head["ContentLength"] == len(body)
        assert head["ContentRange"] == f"bytes {start}-{end}/{len(whole)}"
        assert head["PartsCount"] == 3
        start = end + 1
    # Without partNumber there is no PartsCount (as AWS).
    assert "PartsCount" not in s3.head_object(Bucket=bucket, Key="mp")
    for call in (s3.get_object, s3.head_object):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call(Bucket=bucket, Key="mp", PartNumber=4)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="mp", PartNumber=4)
    assert error_of(e) == ("InvalidPartNumber", 416)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="mp", PartNumber=1, Range="bytes=0-9")
    assert error_of(e) == ("InvalidRequest", 400)


def test_single_part_object_is_part_one(s3, bucket):
    body = pseudo_random(300_000, 4)
    s3.put_object(Bucket=bucket, Key="one", Body=body)
    got = s3.get_object(Bucket=bucket, Key="one", PartNumber=1)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes 0-{len(body) - 1}/{len(body)}"
    assert got["Body"].read() == body
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="one", PartNumber=2)
    assert error_of(e) == ("InvalidPartNumber", 416)


def test_sse_c_part_read_needs_the_key(s3, bucket):
    raw = bytes(range(32))
    key = {
        "SSECustomerAlgorithm": "AES256",
        "SSECustomerKey": base64.b64encode(raw).decode(),
        "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(raw).digest()).decode(),
    }
    bodies = {1: pseudo_random(5 * MIB, 5), 2: pseudo_random(70_000, 6)}
    multipart(s3, bucket, "ssec", bodies, **key)
    got = s3.get_object(Bucket=bucket, Key="ssec", PartNumber=2, **key)
    assert got["Body"].read() == bodies[2]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="ssec", PartNumber=2)
    assert error_of(e) == ("InvalidRequest", 400)


def test_list_multipart_uploads_pages_with_markers(s3, bucket):
    """Seven uploads over four keys, listed two at a time with the next markers, and through
    boto3's paginator: every upload exactly once, in key then upload-id order."""
    keys = ["a", "b", "b", "b", "c/1", "c/2", "d"]
    made = sorted(
        (k, s3.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"]) for k in keys
    )
    seen = []
    kwargs = {}
    for _ in range(10):  # bounded: 7 uploads at 2 per page is 4 pages
        page = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2, **kwargs)
        seen += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
        if not page["IsTruncated"]:
            break
        kwargs = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}
    assert seen == made
    paged = [
        (u["Key"], u["UploadId"])
        for p in s3.get_paginator("list_multipart_uploads").paginate(
            Bucket=bucket, PaginationConfig={"PageSize": 3}
        )
        for u in p.get("Uploads", [])
    ]
    assert paged == made
    # A key marker alone skips every upload of that key; the prefix still applies.
    after_b = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="b")["Uploads"]
    assert [u["Key"] for u in after_b] == ["c/1", "c/2", "d"]
    in_c = s3.list_multipart_uploads(Bucket=bucket, Prefix="c/", KeyMarker="c/1")["Uploads"]
    assert [u["Key"] for u in in_c] == ["c/2"]
    for k, up in made:
        s3.abort_multipart_upload(Bucket=bucket, Key=k, UploadId=up)
