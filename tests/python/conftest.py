"""Fixtures for the Python end-to-end tests.

The server binary comes from $COFFER_BIN (scripts/test.sh builds it and sets it). One server is
started per test module on free loopback ports in a temporary directory and stopped with SIGTERM
afterwards. Every HTTP status the S3 clients see is recorded, and each test fails if any of them
was a 5xx.
"""

from __future__ import annotations

import base64
import os
import random
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import boto3
import pytest
import requests
from botocore.config import Config

ACCESS_KEY = "coffertestroot"
SECRET_KEY = "coffer-test-secret-key-0123456789"
ADMIN_TOKEN = "coffer-test-admin-token-0123456789abcdef"
REGION = "us-east-1"

HEALTH_TIMEOUT_S = 30
STOP_TIMEOUT_S = 20


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def coffer_bin() -> Path:
    value = os.environ.get("COFFER_BIN", "")
    if not value:
        pytest.exit(
            "COFFER_BIN is not set: point it at the coffer server binary "
            "(scripts/test.sh builds it with `cargo build --release -p coffer-node`)",
            returncode=2,
        )
    path = Path(value)
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.exit(f"COFFER_BIN={value} is not an executable file", returncode=2)
    return path


@dataclass
class StatusLog:
    """HTTP status codes seen by the clients, with what they were for."""

    entries: list[tuple[int, str]] = field(default_factory=list)

    def add(self, status: int, what: str) -> None:
        self.entries.append((status, what))

    def server_errors(self) -> list[tuple[int, str]]:
        return [(s, w) for (s, w) in self.entries if s >= 500]


@dataclass
class Coffer:
    bin: Path
    root: Path
    data_dir: Path
    s3_port: int
    admin_port: int
    kms_key: bytes
    statuses: StatusLog
    proc: subprocess.Popen | None = None
    generation: int = 0
    # HTTPS: the server's TLS flags go in extra_args; the health check trusts ca_bundle.
    extra_args: list[str] = field(default_factory=list)
    ca_bundle: Path | None = None

    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    admin_token: str = ADMIN_TOKEN
    region: str = REGION

    @property
    def scheme(self) -> str:
        return "https" if self.ca_bundle is not None else "http"

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.s3_port}"

    @property
    def admin_endpoint(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.admin_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            COFFER_ROOT_USER=self.access_key,
            COFFER_ROOT_PASSWORD=self.secret_key,
            COFFER_ADMIN_TOKEN=self.admin_token,
            COFFER_KMS_LOCAL_KEY=base64.b64encode(self.kms_key).decode(),
        )
        return env

    def start(self) -> None:
        """Starts the server and waits for health; if it exits at once because a port was taken
        meanwhile, retries on fresh ports (three attempts in all)."""
        for attempt in range(1, 4):
            early_exit = self._start_once()
            if early_exit is None:
                return
            logs = "".join(
                (self.root / f"{n}.{self.generation}.log").read_text(errors="replace")
                for n in ("stdout", "stderr")
            ).lower()
            if ("in use" in logs or "addrinuse" in logs) and attempt < 3:
                self.s3_port, self.admin_port = free_port(), free_port()
                continue
            self.dump_logs()
            pytest.fail(f"coffer exited during start-up with status {early_exit}")

    def _start_once(self) -> int | None:
        """None when healthy; the exit status if the process ended during start-up."""
        assert self.proc is None
        self.generation += 1
        out = open(self.root / f"stdout.{self.generation}.log", "wb")
        err = open(self.root / f"stderr.{self.generation}.log", "wb")
        cmd = [
            str(self.bin),
            "server",
            "--data",
            str(self.data_dir),
            "--s3-addr",
            f"127.0.0.1:{self.s3_port}",
            "--admin-addr",
            f"127.0.0.1:{self.admin_port}",
            "--audit-log",
            str(self.root / "audit.log"),
            *self.extra_args,
        ]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=self.env(), cwd=self.root
        )
        out.close()
        err.close()
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        last = "no answer"
        tls = None if self.ca_bundle is None else ssl.create_default_context(cafile=str(self.ca_bundle))
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                return code
            try:
                with urllib.request.urlopen(
                    f"{self.admin_endpoint}/api/v1/health", timeout=2, context=tls
                ) as r:
                    if r.status == 200:
                        return None
                    last = f"status {r.status}"
            except Exception as e:  # noqa: BLE001 - any failure means "not ready yet"
                last = repr(e)
            time.sleep(0.1)
        self.dump_logs()
        self.kill()
        pytest.fail(f"coffer not healthy within {HEALTH_TIMEOUT_S}s: {last}")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=10)
        self.proc = None
        return code

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def server_errors_since(self, start: int) -> list[tuple[int, str]]:
        return [e for e in self.statuses.entries[start:] if e[0] >= 500]

    def dump_logs(self) -> None:
        for g in range(1, self.generation + 1):
            for name in (f"stdout.{g}.log", f"stderr.{g}.log"):
                p = self.root / name
                text = p.read_text(errors="replace") if p.exists() else ""
                print(f"===== {p} =====\n{text[-20000:]}")

    def client(
        self,
        access_key: str | None = None,
        secret_key: str | None = None,
        verify: str | bool | None = None,
        **config,
    ):
        """A boto3 S3 client: path-style, us-east-1, no retries; statuses are recorded.
        `verify`: a CA bundle path for HTTPS (None: the one the server was started with, or
        boto3's default bundle for a plain-HTTP server)."""
        cfg = Config(
            region_name=self.region,
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=10,
            read_timeout=300,
            **config,
        )
        c = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            verify=str(self.ca_bundle) if verify is None and self.ca_bundle else verify,
            config=cfg,
        )
        statuses = self.statuses

        def record(http_response, model, **_kwargs):
            if http_response is not None:
                statuses.add(http_response.status_code, f"boto3 {model.name}")

        c.meta.events.register("after-call.s3", record)
        return c


@pytest.fixture(scope="module")
def coffer(tmp_path_factory) -> Coffer:
    root = tmp_path_factory.mktemp("coffer")
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
    )
    server.start()
    yield server
    code = server.stop()
    if code not in (0, None):
        server.dump_logs()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Fails (as a test failure, not an error) any test during which a client saw a 5xx or the
    server died."""
    server = item.funcargs.get("coffer")
    start = len(server.statuses.entries) if isinstance(server, Coffer) else 0
    result = yield  # re-raises if the test itself failed
    if isinstance(server, Coffer):
        bad = server.server_errors_since(start)
        if bad:
            server.dump_logs()
            raise AssertionError(f"server errors seen: {bad}")
        if server.proc is not None and server.proc.poll() is not None:
            server.dump_logs()
            raise AssertionError(f"coffer died during the test (status {server.proc.returncode})")
    return result


@pytest.fixture
def s3(coffer):
    return coffer.client()


@pytest.fixture
def bucket(s3):
    name = f"py-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    return name


def pseudo_random(n: int, seed: int) -> bytes:
    """Deterministic pseudo-random bytes (the same on every run)."""
    return random.Random(seed).randbytes(n)


# ---- Admin API helpers (used by the SSE tests) ----------------------------------------------

ADMIN_TIMEOUT_S = 60


def admin_request(server: Coffer, method: str, path: str, body=None, auth: bool = True):
    """One admin API request (JSON body if given); the status is recorded like S3 statuses, so a
    5xx from the admin API fails the test too."""
    headers = {"Authorization": f"Bearer {server.admin_token}"} if auth else {}
    r = requests.request(method, server.admin_endpoint + path, json=body, headers=headers,
                         timeout=ADMIN_TIMEOUT_S)
    server.statuses.add(r.status_code, f"admin {method} {path}")
    return r


def admin_path(*segments: str) -> str:
    """`/api/v1/buckets/...` with each segment percent-encoded ('/' kept inside object keys)."""
    return "/api/v1/buckets/" + "/".join(quote(s, safe="/") for s in segments)


def put_bucket_encryption(server: Coffer, bucket: str, cfg: dict):
    return admin_request(server, "PUT", admin_path(bucket, "encryption"), cfg)


def object_view(server: Coffer, bucket: str, key: str) -> dict:
    """The admin view of an object's encryption layout; fails the test unless 200 JSON."""
    r = admin_request(server, "GET", admin_path(bucket, "objects", key))
    assert r.status_code == 200, f"admin object view {bucket}/{key}: {r.status_code} {r.text[:500]}"
    return r.json()


def upload_view(server: Coffer, bucket: str, upload_id: str) -> dict:
    """The admin view of a multipart upload in progress; fails the test unless 200 JSON."""
    r = admin_request(server, "GET", admin_path(bucket, "uploads", upload_id))
    assert r.status_code == 200, f"admin upload view {upload_id}: {r.status_code} {r.text[:500]}"
    return r.json()


def metrics_text(server: Coffer) -> str:
    r = requests.get(server.admin_endpoint + "/metrics", timeout=ADMIN_TIMEOUT_S)
    server.statuses.add(r.status_code, "admin GET /metrics")
    assert r.status_code == 200, r.text[:500]
    return r.text
