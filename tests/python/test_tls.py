"""Issue 5, acceptance 1 (boto3 and AWS CLI halves): HTTPS with a CA made by `coffer certs`.

A CA and a node certificate (localhost, 127.0.0.1) are made with the real binary; the server of
this module serves the S3 and admin APIs over HTTPS with them. boto3 with `verify=<ca.pem>` and
the AWS CLI with `--ca-bundle` do a round trip; clients that do not trust the CA are refused
during the TLS handshake.
"""

from __future__ import annotations

import hashlib
import secrets
import subprocess
import uuid
from pathlib import Path

import botocore.exceptions
import pytest

from conftest import Coffer, StatusLog, coffer_bin, free_port, pseudo_random
from test_awscli import aws, cli_env  # noqa: F401 - cli_env is a fixture used by name

MIB = 1024 * 1024
CERTS_TIMEOUT_S = 60


def coffer_certs(*args: str) -> None:
    p = subprocess.run(
        [str(coffer_bin()), "certs", *args],
        capture_output=True,
        text=True,
        timeout=CERTS_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    assert p.returncode == 0, f"coffer certs {' '.join(args)}: {p.stdout}{p.stderr}"


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("certs")
    coffer_certs("ca", "--out", str(d / "ca"))
    coffer_certs(
        "node", "--ca", str(d / "ca"), "--name", "node1",
        "--dns", "localhost", "--ip", "127.0.0.1", "--out", str(d / "tls"),
    )
    # A second CA that signed nothing the server holds: trusting only it must fail.
    coffer_certs("ca", "--out", str(d / "other"))
    return {
        "ca": d / "ca" / "ca.pem",
        "cert": d / "tls" / "node1.pem",
        "key": d / "tls" / "node1.key",
        "other_ca": d / "other" / "ca.pem",
    }


@pytest.fixture(scope="module")
def coffer(tmp_path_factory, certs) -> Coffer:
    """This module's server: HTTPS on both listeners (overrides conftest's plain-HTTP one)."""
    root = tmp_path_factory.mktemp("coffer-tls")
    data = root / "data"
    data.mkdir()
    server = Coffer(
        bin=coffer_bin(),
        root=root,
        data_dir=data,
        s3_port=free_port(),
        admin_port=free_port(),
        kms_key=secrets.token_bytes(32),
        statuses=StatusLog(),
        extra_args=["--tls-cert", str(certs["cert"]), "--tls-key", str(certs["key"])],
        ca_bundle=certs["ca"],
    )
    server.start()
    yield server
    code = server.stop()
    if code not in (0, None):
        server.dump_logs()


def test_endpoints_are_https(coffer):
    assert coffer.endpoint.startswith("https://127.0.0.1:")
    assert coffer.admin_endpoint.startswith("https://")


def test_boto3_round_trip_trusting_the_coffer_ca(coffer, certs):
    s3 = coffer.client(verify=str(certs["ca"]))
    bucket = f"tls-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=bucket)
    small = pseudo_random(3 * MIB + 17, 1)
    s3.put_object(Bucket=bucket, Key="small", Body=small)
    got = s3.get_object(Bucket=bucket, Key="small")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert got["Body"].read() == small
    ranged = s3.get_object(Bucket=bucket, Key="small", Range="bytes=65530-65545")["Body"].read()
    assert ranged == small[65530:65546]

    # Multipart through s3transfer (several connections at once, all over TLS).
    big = pseudo_random(20 * MIB + 5, 2)
    src = Path(coffer.root) / "big.bin"
    src.write_bytes(big)
    from boto3.s3.transfer import TransferConfig

    tc = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=3)
    s3.upload_file(str(src), bucket, "big", Config=tc)
    dst = Path(coffer.root) / "big.out"
    s3.download_file(bucket, "big", str(dst), Config=tc)
    assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(big).digest()

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["big", "small"]
    for k in keys:
        s3.delete_object(Bucket=bucket, Key=k)
    s3.delete_bucket(Bucket=bucket)


def test_boto3_not_trusting_the_ca_is_refused(coffer, certs, monkeypatch):
    # boto3's own bundle (no AWS_CA_BUNDLE from the environment to muddy it).
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    for verify in (True, str(certs["other_ca"])):
        s3 = coffer.client(verify=verify)
        with pytest.raises(botocore.exceptions.SSLError) as e:
            s3.list_buckets()
        assert "CERTIFICATE_VERIFY_FAILED" in str(e.value), str(e.value)
    # The refusals did not hurt the server: a trusting client still works.
    assert coffer.client(verify=str(certs["ca"])).list_buckets()["ResponseMetadata"][
        "HTTPStatusCode"
    ] == 200


def test_aws_cli_with_ca_bundle(coffer, certs, cli_env, tmp_path):  # noqa: F811
    bucket = f"tls-cli-{uuid.uuid4().hex[:16]}"
    ca = str(certs["ca"])
    aws(coffer, cli_env, "--ca-bundle", ca, "s3", "mb", f"s3://{bucket}")
    src = tmp_path / "up.bin"
    src.write_bytes(pseudo_random(9 * MIB + 3, 3))
    aws(coffer, cli_env, "--ca-bundle", ca, "s3", "cp", str(src), f"s3://{bucket}/up.bin")
    dst = tmp_path / "down.bin"
    aws(coffer, cli_env, "--ca-bundle", ca, "s3", "cp", f"s3://{bucket}/up.bin", str(dst))
    assert dst.read_bytes() == src.read_bytes()
    assert "up.bin" in aws(coffer, cli_env, "--ca-bundle", ca, "s3", "ls", f"s3://{bucket}").stdout

    # Without the CA bundle the CLI fails certificate validation.
    p = aws(coffer, cli_env, "s3", "ls", f"s3://{bucket}", check=False)
    assert p.returncode != 0
    assert "SSL validation failed" in p.stderr or "CERTIFICATE_VERIFY_FAILED" in p.stderr, p.stderr
    aws(coffer, cli_env, "--ca-bundle", ca, "s3", "rb", f"s3://{bucket}", "--force")
