"""Acceptance 3 through Python: presigned URLs, authentication failures, digest and XML errors.

Raw requests are signed with botocore's S3SigV4Auth so that the body is exactly what the test
means (malformed XML, a wrong Content-MD5). Every status is recorded; conftest fails a test that
saw a 5xx.
"""

from __future__ import annotations

import base64
import hashlib
import time

import pytest
import requests
from botocore import UNSIGNED
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import pseudo_random

MIB = 1024 * 1024


def record(coffer, r: requests.Response, what: str) -> requests.Response:
    coffer.statuses.add(r.status_code, what)
    return r


def xml_code(r: requests.Response) -> str | None:
    t = r.text
    if "<Code>" not in t:
        return None
    return t.split("<Code>", 1)[1].split("</Code>", 1)[0]


def signed(coffer, method: str, path: str, body: bytes = b"", headers=None, params=None,
           secret: str | None = None) -> requests.Response:
    req = AWSRequest(
        method=method, url=coffer.endpoint + path, data=body, headers=dict(headers or {}),
        params=params or {},
    )
    creds = Credentials(coffer.access_key, secret or coffer.secret_key)
    S3SigV4Auth(creds, "s3", coffer.region).add_auth(req)
    p = req.prepare()
    r = requests.request(p.method, p.url, headers=dict(p.headers.items()), data=p.body, timeout=120)
    return record(coffer, r, f"signed {method} {path}")


def client_error(fn, *args, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as e:
        fn(*args, **kwargs)
    return e.value


def code(e: ClientError) -> str:
    return e.response.get("Error", {}).get("Code", "")


def http_status(e: ClientError) -> int:
    return e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)


def test_presigned_get_and_put(coffer, s3, bucket):
    body = pseudo_random(200_000, 1)
    s3.put_object(Bucket=bucket, Key="get-me", Body=body)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "get-me"},
                                    ExpiresIn=600)
    r = record(coffer, requests.get(url, timeout=60), "presigned GET")
    assert r.status_code == 200, r.text[:500]
    assert r.content == body

    put_body = pseudo_random(70_000, 2)
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "put-me"},
                                    ExpiresIn=600)
    r = record(coffer, requests.put(url, data=put_body, timeout=60), "presigned PUT")
    assert r.status_code == 200, r.text[:500]
    assert s3.get_object(Bucket=bucket, Key="put-me")["Body"].read() == put_body


def test_expired_presigned_url(coffer, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret contents")
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"},
                                        ExpiresIn=1)
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "k"},
                                        ExpiresIn=1)
    time.sleep(2)
    r = record(coffer, requests.get(get_url, timeout=60), "expired presigned GET")
    assert r.status_code == 403, r.text[:500]
    assert xml_code(r) == "AccessDenied", r.text[:500]
    assert b"secret contents" not in r.content
    r = record(coffer, requests.put(put_url, data=b"overwrite", timeout=60), "expired presigned PUT")
    assert r.status_code == 403, r.text[:500]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"secret contents"


def test_wrong_secret_and_unknown_key(coffer, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    bad = coffer.client(secret_key="definitely-not-the-secret-0000000")
    e = client_error(bad.get_object, Bucket=bucket, Key="k")
    assert code(e) == "SignatureDoesNotMatch" and http_status(e) == 403
    e = client_error(bad.put_object, Bucket=bucket, Key="k", Body=b"evil")
    assert code(e) == "SignatureDoesNotMatch"
    unknown = coffer.client(access_key="NOSUCHACCESSKEY00000")
    e = client_error(unknown.list_buckets)
    assert code(e) == "InvalidAccessKeyId" and http_status(e) == 403
    e = client_error(unknown.get_object, Bucket=bucket, Key="k")
    assert code(e) == "InvalidAccessKeyId"
    r = signed(coffer, "GET", f"/{bucket}/k", secret="another-wrong-secret")
    assert r.status_code == 403 and xml_code(r) == "SignatureDoesNotMatch", r.text[:500]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"


def test_anonymous_is_denied(coffer, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"private")
    for method, path, data in [
        ("GET", "/", None),
        ("GET", f"/{bucket}", None),
        ("GET", f"/{bucket}?list-type=2", None),
        ("GET", f"/{bucket}/k", None),
        ("PUT", f"/{bucket}/anon", b"anonymous"),
        ("DELETE", f"/{bucket}/k", None),
    ]:
        r = record(coffer, requests.request(method, coffer.endpoint + path, data=data, timeout=60),
                   f"anonymous {method} {path}")
        assert r.status_code == 403, (method, path, r.status_code, r.text[:500])
        assert xml_code(r) == "AccessDenied", (method, path, r.text[:500])
    unsigned = coffer_unsigned_client(coffer)
    e = client_error(unsigned.get_object, Bucket=bucket, Key="k")
    assert code(e) == "AccessDenied" and http_status(e) == 403
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"private"


def coffer_unsigned_client(coffer):
    import boto3

    c = boto3.session.Session().client(
        "s3",
        endpoint_url=coffer.endpoint,
        config=Config(
            signature_version=UNSIGNED,
            region_name=coffer.region,
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )
    c.meta.events.register(
        "after-call.s3",
        lambda http_response, model, **_: coffer.statuses.add(
            http_response.status_code, f"unsigned {model.name}"
        ),
    )
    return c


def test_bad_content_md5_stores_nothing(coffer, s3, bucket):
    body = pseudo_random(100_000, 5)
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    right = base64.b64encode(hashlib.md5(body).digest()).decode()

    r = signed(coffer, "PUT", f"/{bucket}/bad", body, headers={"Content-MD5": wrong})
    assert r.status_code == 400 and xml_code(r) == "BadDigest", r.text[:500]
    e = client_error(s3.head_object, Bucket=bucket, Key="bad")
    assert http_status(e) == 404

    r = signed(coffer, "PUT", f"/{bucket}/good", body, headers={"Content-MD5": right})
    assert r.status_code == 200, r.text[:500]
    r = signed(coffer, "PUT", f"/{bucket}/good", b"replacement", headers={"Content-MD5": wrong})
    assert r.status_code == 400 and xml_code(r) == "BadDigest", r.text[:500]
    assert s3.get_object(Bucket=bucket, Key="good")["Body"].read() == body

    # The same through boto3's own parameter.
    e = client_error(s3.put_object, Bucket=bucket, Key="bad2", Body=body, ContentMD5=wrong)
    assert code(e) == "BadDigest", e.response
    e = client_error(s3.head_object, Bucket=bucket, Key="bad2")
    assert http_status(e) == 404


def _upload_two_parts(s3, bucket, key, sizes=(5 * MIB, 10)):
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etags = []
    for n, size in enumerate(sizes, start=1):
        p = pseudo_random(size, 8 + n)
        etags.append(s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n, Body=p)["ETag"])
    return up, etags


@pytest.mark.parametrize(
    "xml",
    [
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>",
        b"this is not xml at all",
        b"<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>x</ETag></Part>"
        b"</CompleteMultipartUpload>",
        b"",
    ],
    ids=["truncated", "not-xml", "bad-number", "empty"],
)
def test_malformed_complete_multipart_xml(coffer, s3, bucket, xml):
    up, etags = _upload_two_parts(s3, bucket, "mpu")
    r = signed(coffer, "POST", f"/{bucket}/mpu", xml, params={"uploadId": up})
    assert r.status_code == 400, (r.status_code, r.text[:500])
    if xml in (b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>", b"this is not xml at all"):
        assert xml_code(r) == "MalformedXML", r.text[:500]
    else:
        assert xml_code(r) in ("MalformedXML", "InvalidPart", "InvalidRequest",
                               "InvalidArgument"), r.text[:500]
    e = client_error(s3.head_object, Bucket=bucket, Key="mpu")
    assert http_status(e) == 404
    # The upload is still there and can be completed properly afterwards.
    parts = [{"PartNumber": n, "ETag": t} for n, t in enumerate(etags, start=1)]
    s3.complete_multipart_upload(Bucket=bucket, Key="mpu", UploadId=up,
                                 MultipartUpload={"Parts": parts})
    assert s3.head_object(Bucket=bucket, Key="mpu")["ContentLength"] == 5 * MIB + 10


def test_complete_with_wrong_parts(coffer, s3, bucket):
    up, etags = _upload_two_parts(s3, bucket, "mpu2", sizes=(5 * MIB, 5 * MIB, 10))
    bad_etag = [{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'},
                {"PartNumber": 2, "ETag": etags[1]}, {"PartNumber": 3, "ETag": etags[2]}]
    e = client_error(s3.complete_multipart_upload, Bucket=bucket, Key="mpu2", UploadId=up,
                     MultipartUpload={"Parts": bad_etag})
    assert code(e) == "InvalidPart", e.response
    # Every part but the last is 5 MiB, so the order is the only thing wrong.
    out_of_order = [{"PartNumber": 2, "ETag": etags[1]}, {"PartNumber": 1, "ETag": etags[0]},
                    {"PartNumber": 3, "ETag": etags[2]}]
    e = client_error(s3.complete_multipart_upload, Bucket=bucket, Key="mpu2", UploadId=up,
                     MultipartUpload={"Parts": out_of_order})
    assert code(e) == "InvalidPartOrder", e.response
    small_first = s3.create_multipart_upload(Bucket=bucket, Key="mpu3")["UploadId"]
    t1 = s3.upload_part(Bucket=bucket, Key="mpu3", UploadId=small_first, PartNumber=1,
                        Body=b"tiny")["ETag"]
    t2 = s3.upload_part(Bucket=bucket, Key="mpu3", UploadId=small_first, PartNumber=2,
                        Body=b"tiny too")["ETag"]
    e = client_error(s3.complete_multipart_upload, Bucket=bucket, Key="mpu3", UploadId=small_first,
                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": t1},
                                                {"PartNumber": 2, "ETag": t2}]})
    assert code(e) == "EntityTooSmall", e.response
    e = client_error(s3.complete_multipart_upload, Bucket=bucket, Key="mpu2", UploadId="nope",
                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etags[0]}]})
    assert code(e) == "NoSuchUpload", e.response
