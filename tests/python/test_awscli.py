"""Acceptance 2 (AWS CLI half): `aws s3 cp`, `aws s3 ls`, `aws s3api ...` against the real binary.

The CLI is the one installed in the same venv as this Python (awscli v1 from PyPI). It runs with
its own config and credentials files in a temp dir, so the machine's AWS config is never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import pseudo_random

MIB = 1024 * 1024
AWS = Path(sys.executable).parent / "aws"
CLI_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def cli_env(coffer, tmp_path_factory):
    if not AWS.exists():
        pytest.fail(f"AWS CLI not found at {AWS}; install tests/python/requirements.txt")
    d = tmp_path_factory.mktemp("awscli")
    config = d / "config"
    config.write_text(
        "[default]\n"
        f"region = {coffer.region}\n"
        "output = json\n"
        "retry_mode = standard\n"
        "max_attempts = 1\n"
        "s3 =\n"
        "    addressing_style = path\n"
    )
    creds = d / "credentials"
    creds.write_text(
        "[default]\n"
        f"aws_access_key_id = {coffer.access_key}\n"
        f"aws_secret_access_key = {coffer.secret_key}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(creds),
        AWS_ACCESS_KEY_ID=coffer.access_key,
        AWS_SECRET_ACCESS_KEY=coffer.secret_key,
        AWS_DEFAULT_REGION=coffer.region,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_PAGER="",
    )
    return env


def aws(coffer, env, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(AWS), "--endpoint-url", coffer.endpoint, "--region", coffer.region, *args]
    p = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL
    )
    if "(500)" in p.stderr or "InternalError" in p.stderr:
        coffer.statuses.add(500, f"aws {' '.join(args)}: {p.stderr.strip()}")
    if check and p.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def md5_file(p: Path) -> str:
    return hashlib.md5(p.read_bytes()).hexdigest()


def test_cli_core_scenario(coffer, cli_env, tmp_path):
    bucket = f"cli-{uuid.uuid4().hex[:20]}"
    aws(coffer, cli_env, "s3", "mb", f"s3://{bucket}")
    ls = aws(coffer, cli_env, "s3", "ls").stdout
    assert bucket in ls

    small = tmp_path / "small.bin"
    small.write_bytes(pseudo_random(1, 1))
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    medium = tmp_path / "medium.bin"
    medium.write_bytes(pseudo_random(5 * MIB + 1, 2))
    large = tmp_path / "large.bin"  # above the CLI's 8 MiB threshold: a multipart upload
    large.write_bytes(pseudo_random(20 * MIB + 7, 3))
    for f in (small, empty, medium, large):
        aws(coffer, cli_env, "s3", "cp", str(f), f"s3://{bucket}/files/{f.name}")

    ls = aws(coffer, cli_env, "s3", "ls", f"s3://{bucket}/files/").stdout
    sizes = {line.split()[-1]: int(line.split()[-2]) for line in ls.splitlines() if line.strip()}
    assert sizes == {
        "small.bin": 1,
        "empty.bin": 0,
        "medium.bin": 5 * MIB + 1,
        "large.bin": 20 * MIB + 7,
    }, ls

    down = tmp_path / "down"
    down.mkdir()
    for f in (small, empty, medium, large):
        target = down / f.name
        aws(coffer, cli_env, "s3", "cp", f"s3://{bucket}/files/{f.name}", str(target))
        assert md5_file(target) == md5_file(f), f.name

    # s3api put-object / head-object / get-object.
    body = tmp_path / "api.bin"
    body.write_bytes(pseudo_random(300_000, 4))
    out = json.loads(
        aws(
            coffer,
            cli_env,
            "s3api",
            "put-object",
            "--bucket",
            bucket,
            "--key",
            "api/obj.bin",
            "--body",
            str(body),
            "--metadata",
            "colour=teal",
        ).stdout
    )
    assert out["ETag"].strip('"') == md5_file(body)
    head = json.loads(
        aws(coffer, cli_env, "s3api", "head-object", "--bucket", bucket, "--key", "api/obj.bin").stdout
    )
    assert head["ContentLength"] == 300_000
    assert head["Metadata"] == {"colour": "teal"}
    got = tmp_path / "api.out"
    aws(
        coffer,
        cli_env,
        "s3api",
        "get-object",
        "--bucket",
        bucket,
        "--key",
        "api/obj.bin",
        "--range",
        "bytes=65530-65545",
        str(got),
    )
    assert got.read_bytes() == body.read_bytes()[65530:65546]

    # Copy and delete.
    aws(coffer, cli_env, "s3", "cp", f"s3://{bucket}/api/obj.bin", f"s3://{bucket}/api/copy.bin")
    aws(coffer, cli_env, "s3", "cp", f"s3://{bucket}/api/copy.bin", str(tmp_path / "copy.out"))
    assert md5_file(tmp_path / "copy.out") == md5_file(body)
    aws(coffer, cli_env, "s3", "rm", f"s3://{bucket}/api/obj.bin")
    p = aws(coffer, cli_env, "s3api", "head-object", "--bucket", bucket, "--key", "api/obj.bin", check=False)
    assert p.returncode != 0 and ("404" in p.stderr or "Not Found" in p.stderr), p.stderr


def test_cli_recursive_and_paginated_listing(coffer, cli_env, tmp_path):
    bucket = f"cli-{uuid.uuid4().hex[:20]}"
    aws(coffer, cli_env, "s3", "mb", f"s3://{bucket}")
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    names = []
    for i in range(30):
        rel = f"sub/f{i:02d}.txt" if i % 2 else f"f{i:02d}.txt"
        (src / rel).write_bytes(f"file {i}\n".encode() * (i + 1))
        names.append(rel)
    aws(coffer, cli_env, "s3", "cp", "--recursive", str(src), f"s3://{bucket}/tree/")

    # --page-size forces several ListObjectsV2 pages.
    ls = aws(
        coffer, cli_env, "s3", "ls", "--recursive", "--page-size", "7", f"s3://{bucket}/tree/"
    ).stdout
    listed = sorted(line.split()[-1] for line in ls.splitlines() if line.strip())
    assert listed == sorted(f"tree/{n}" for n in names)

    # Without --recursive: one PRE line for the sub "directory".
    ls = aws(coffer, cli_env, "s3", "ls", f"s3://{bucket}/tree/").stdout
    assert "PRE sub/" in ls

    out = json.loads(
        aws(
            coffer,
            cli_env,
            "s3api",
            "list-objects-v2",
            "--bucket",
            bucket,
            "--prefix",
            "tree/sub/",
            "--page-size",
            "4",
        ).stdout
    )
    assert len(out["Contents"]) == 15

    dst = tmp_path / "back"
    aws(coffer, cli_env, "s3", "cp", "--recursive", f"s3://{bucket}/tree/", str(dst))
    for n in names:
        assert (dst / n).read_bytes() == (src / n).read_bytes(), n

    aws(coffer, cli_env, "s3", "rm", "--recursive", f"s3://{bucket}/tree/")
    ls = aws(coffer, cli_env, "s3", "ls", "--recursive", f"s3://{bucket}/", check=False)
    assert ls.stdout.strip() == ""
    aws(coffer, cli_env, "s3", "rb", f"s3://{bucket}")
