"""The Docker Compose scenario of scripts/compose-test.sh (which builds the image, sets the
environment and always runs `compose down -v`): real containers, real boto3 clients.

1. `compose up -d` -> every node healthy within 60 s, a four-node cluster formed.
2. The image holds no private key and no secret (docker history, every layer's files).
3. Writes through one node are read back byte for byte through every node.
4. `compose kill` one node -> reads and writes go on; `compose start` it -> healing completes.
5. `docker network disconnect` one node, write, reconnect it -> it catches up and serves.
6. No plaintext marker on any node's volumes.

Environment (set by compose-test.sh): COMPOSE_PROJECT_NAME, COFFER_IMAGE, COFFER_SECRETS_DIR,
COFFER_NODEi_S3_PORT / COFFER_NODEi_ADMIN_PORT, COMPOSE (the compose command).
"""

import hashlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
import time
import urllib.request

import boto3
from botocore.config import Config

NODES = 4
PROJECT = os.environ["COMPOSE_PROJECT_NAME"]
IMAGE = os.environ["COFFER_IMAGE"]
SECRETS = os.environ["COFFER_SECRETS_DIR"]
COMPOSE = shlex.split(os.environ.get("COMPOSE", "docker-compose"))
MARKER = b"COFFER-COMPOSE-PLAINTEXT-MARKER-7d1f"
# A PEM private key block with a body (libraries hold the bare label as a string).
PEM_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n[A-Za-z0-9+/=]{40,}")
CHECKS = []


def log(msg):
    print(f"[compose {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    CHECKS.append(what)
    log(f"ok: {what}")


def run(*args, check_rc=True, capture=True, timeout=300, env=None):
    r = subprocess.run(
        list(args), capture_output=capture, timeout=timeout, env={**os.environ, **(env or {})}
    )
    if check_rc and r.returncode != 0:
        out = (r.stdout or b"").decode(errors="replace") + (r.stderr or b"").decode(errors="replace")
        raise RuntimeError(f"{' '.join(args)} exited {r.returncode}: {out[-2000:]}")
    return r


def compose(*args, **kw):
    return run(*COMPOSE, *args, **kw)


def secret(name):
    with open(os.path.join(SECRETS, name)) as f:
        return f.read().strip()


def s3_port(i):
    return int(os.environ[f"COFFER_NODE{i}_S3_PORT"])


def admin_port(i):
    return int(os.environ[f"COFFER_NODE{i}_ADMIN_PORT"])


def container(i):
    return compose("ps", "-q", f"node-{i}").stdout.decode().strip()


def health_of(i):
    cid = container(i)
    if not cid:
        return "missing"
    r = run("docker", "inspect", "-f", "{{.State.Health.Status}}", cid, check_rc=False)
    return r.stdout.decode().strip() or "unknown"


def admin(i, path, timeout=3):
    req = urllib.request.Request(
        f"http://127.0.0.1:{admin_port(i)}{path}",
        headers={"Authorization": "Bearer " + secret("admin-token")},
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def status(i):
    try:
        return admin(i, "/api/v1/cluster")
    except Exception:
        return None


def s3(i):
    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{s3_port(i)}",
        aws_access_key_id=secret("root-user"),
        aws_secret_access_key=secret("root-password"),
        region_name="us-east-1",
        config=Config(
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
            s3={"addressing_style": "path"},
        ),
    )


def wait_until(what, pred, bound):
    end = time.monotonic() + bound
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"not within {bound}s: {what}")
        time.sleep(0.5)


def payload(name, size):
    """Deterministic bytes that start with the plaintext marker."""
    out = bytearray(MARKER)
    seed = name.encode()
    while len(out) < size:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[:size])


def formed(i, members):
    s = status(i)
    if not s or not s.get("leader"):
        return None
    voters = {n["id"] for n in s["nodes"] if n["role"] in ("leader", "voter")}
    if voters != set(members) or s["layout_nodes"] != NODES:
        return None
    return s


def leader_of(live):
    for i in live:
        s = status(i)
        if s and s.get("leader"):
            return s["leader"]
    return None


def heal_stats(live):
    leader = leader_of(live)
    if leader is None or leader not in live:
        return None, None
    s = status(leader)
    return leader, (s or {}).get("heal")


def wait_healed(live, bound):
    """Two heal passes on the same leader after now, the last with nothing degraded."""
    start = {}

    def done():
        leader, h = heal_stats(live)
        if not h:
            return None
        first = start.setdefault(leader, h["passes"])
        if h["passes"] >= first + 2 and h["degraded_objects"] == 0:
            return h
        return None

    return wait_until("healed to full redundancy", done, bound)


def step_up():
    t0 = time.monotonic()
    compose("up", "-d", timeout=180)
    wait_until(
        "all nodes healthy",
        lambda: all(health_of(i) == "healthy" for i in range(1, NODES + 1)),
        90,
    )
    took = time.monotonic() - t0
    log(f"healthy {took:.1f}s after `up -d`")
    check(took < 60, f"all {NODES} nodes healthy within 60 s of `up -d` ({took:.1f} s)")
    members = list(range(1, NODES + 1))
    for i in members:
        wait_until(f"node {i} sees a formed cluster", lambda i=i: formed(i, members), 60)
    s = status(1)
    check(
        all(n["reachable"] for n in s["nodes"]),
        f"four voters, layout of 4 nodes and {s['total_drives']} drives, erasure {s['erasure']}",
    )


def scan_layers(needles):
    """Every file of every layer of IMAGE, and its history, for any of `needles`."""
    hist = run("docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", IMAGE).stdout
    for n in needles:
        check(n not in hist, f"image history free of {needle_name(n)}")
    saved = run("docker", "save", IMAGE, timeout=300).stdout
    outer = tarfile.open(fileobj=io.BytesIO(saved))
    files = 0
    private_key_files = []
    hits = []
    for m in outer.getmembers():
        if not m.isfile():
            continue
        data = outer.extractfile(m).read()
        if m.name.endswith("layer.tar") or m.name.startswith("blobs/"):
            try:
                layer = tarfile.open(fileobj=io.BytesIO(data))
            except tarfile.ReadError:
                continue
            for f in layer.getmembers():
                if not f.isfile():
                    continue
                body = layer.extractfile(f).read()
                files += 1
                # Libraries embed self-test keys (gnutls does): a baked-in key would be a file
                # of its own, and ours are also searched for by content below.
                if not body.startswith(b"\x7fELF") and PEM_PRIVATE_KEY.search(body):
                    private_key_files.append(f.name)
                for n in needles:
                    if n in body:
                        hits.append((f.name, needle_name(n)))
        else:
            for n in needles:
                if n in data:
                    hits.append((m.name, needle_name(n)))
    check(files > 100, f"image layers scanned ({files} files)")
    check(
        not private_key_files,
        f"no private key file in any image layer {private_key_files[:5]}",
    )
    check(not hits, f"no secret in any image layer or config {hits[:5]}")


NEEDLE_NAMES = {}


def needle_name(n):
    return NEEDLE_NAMES.get(n, "a needle")


def step_image_has_no_secrets():
    needles = {}
    for name in ("kms-root-key", "root-password", "admin-token", "openbao-token"):
        needles[name] = secret(name).encode()
    # The nodes' private keys and the CA key live in volumes: read them through a container.
    keys = run(
        "docker", "run", "--rm", "--user", "root", "--entrypoint", "sh",
        "-v", f"{PROJECT}_ca:/ca:ro",
        *[a for i in range(1, NODES + 1) for a in ("-v", f"{PROJECT}_node-{i}-certs:/n{i}:ro")],
        IMAGE,
        "-c", "cat /ca/ca-key.pem /n*/node-*.key",
    ).stdout
    for line in keys.splitlines():
        # A long base64 line of a PEM body is unique to that key.
        if len(line) >= 60 and not line.startswith(b"-----"):
            needles[f"private key line {len(needles)}"] = line
    for name, value in needles.items():
        NEEDLE_NAMES[value] = name
    check(len(needles) >= 6, f"{len(needles)} secret needles collected")
    scan_layers(list(needles.values()))


def step_write_read_everywhere(bucket):
    c1 = s3(1)
    c1.create_bucket(Bucket=bucket)
    objects = {
        "small.txt": payload("small", 1000),
        "three-mib.bin": payload("three", 3 * 1024 * 1024 + 17),
    }
    for k, v in objects.items():
        c1.put_object(Bucket=bucket, Key=k, Body=v)
    mpu = c1.create_multipart_upload(Bucket=bucket, Key="multipart.bin")
    parts, body = [], b""
    for n, size in ((1, 5 * 1024 * 1024), (2, 700 * 1024)):
        data = payload(f"part{n}", size)
        body += data
        r = c1.upload_part(
            Bucket=bucket, Key="multipart.bin", PartNumber=n, UploadId=mpu["UploadId"], Body=data
        )
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    c1.complete_multipart_upload(
        Bucket=bucket, Key="multipart.bin", UploadId=mpu["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    objects["multipart.bin"] = body
    for i in range(1, NODES + 1):
        c = s3(i)
        for k, v in objects.items():
            got = c.get_object(Bucket=bucket, Key=k)["Body"].read()
            assert got == v, f"node {i}: {k} differs"
        r = c.get_object(Bucket=bucket, Key="multipart.bin", Range="bytes=5242000-5243999")
        assert r["Body"].read() == body[5242000:5244000], f"node {i}: cross-part range differs"
        listed = {o["Key"] for o in c.list_objects_v2(Bucket=bucket).get("Contents", [])}
        assert listed == set(objects), f"node {i} lists {listed}"
    check(True, "PUT and multipart via node 1; GET, range and LIST byte-identical via all 4")
    return objects


def read_all(bucket, objects, nodes, what):
    for i in nodes:
        c = s3(i)
        for k, v in objects.items():
            got = c.get_object(Bucket=bucket, Key=k)["Body"].read()
            assert got == v, f"node {i}: {k} differs"
    check(True, what)


def step_kill_and_heal(bucket, objects):
    victim = 2
    compose("kill", f"node-{victim}")
    live = [i for i in range(1, NODES + 1) if i != victim]
    log(f"killed node-{victim}")
    written = {}
    for n, i in enumerate(live * 2):
        k = f"while-node{victim}-down-{n}.bin"
        v = payload(k, 200_000 + n)
        s3(i).put_object(Bucket=bucket, Key=k, Body=v)
        written[k] = v
    check(True, f"{len(written)} PUTs through nodes {live} with node-{victim} down")
    objects.update(written)
    read_all(bucket, objects, live, f"every object reads on nodes {live} with node-{victim} down")
    healed_before = wait_until("heal statistics from the leader", lambda: heal_stats(live)[1], 30)[
        "shards_healed"
    ]
    compose("start", f"node-{victim}")
    wait_until(f"node-{victim} healthy again", lambda: health_of(victim) == "healthy", 60)
    everyone = list(range(1, NODES + 1))
    h = wait_healed(everyone, 120)
    check(
        h["shards_healed"] > healed_before,
        f"after node-{victim} restarts: healed ({h['shards_healed']} shards), 0 degraded",
    )
    read_all(bucket, objects, [victim], f"node-{victim} serves every object after healing")


def network_name():
    return f"{PROJECT}_default"


def step_partition_and_catch_up(bucket, objects):
    victim = 4
    cid = container(victim)
    run("docker", "network", "disconnect", network_name(), cid)
    log(f"node-{victim} disconnected from {network_name()}")
    live = [1, 2, 3]
    written = {}
    for n in range(6):
        k = f"while-node{victim}-cut-{n}.bin"
        v = payload(k, 100_000 + n)
        s3(live[n % 3]).put_object(Bucket=bucket, Key=k, Body=v)
        written[k] = v
    check(True, f"{len(written)} PUTs with node-{victim} cut off")
    s3(1).delete_object(Bucket=bucket, Key="small.txt")
    objects.pop("small.txt")
    objects.update(written)
    run("docker", "network", "connect", "--alias", f"node-{victim}", network_name(), cid)
    log(f"node-{victim} reconnected")

    def caught_up():
        try:
            c = s3(victim)
            listed = set()
            for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                listed |= {o["Key"] for o in page.get("Contents", [])}
            return listed == set(objects)
        except Exception:
            return False

    wait_until(f"node-{victim} lists what was written while it was cut off", caught_up, 60)
    check(True, f"node-{victim} caught up: its LIST matches (new keys present, deleted gone)")
    read_all(bucket, written, [victim], f"node-{victim} reads the objects written while cut off")
    h = wait_healed(list(range(1, NODES + 1)), 120)
    check(h["degraded_objects"] == 0, "healed again after the partition")


def step_vault_profile():
    """The same cluster with the Vault provider against the profile's OpenBao server."""
    compose("down", "-v", timeout=180)
    env = {"COFFER_KMS": "vault"}
    if os.environ.get("COFFER_OPENBAO_IMAGE"):
        env["COFFER_OPENBAO_IMAGE"] = os.environ["COFFER_OPENBAO_IMAGE"]
    t0 = time.monotonic()
    compose("--profile", "vault", "up", "-d", timeout=180, env=env)
    wait_until(
        "all nodes healthy with the Vault provider",
        lambda: all(health_of(i) == "healthy" for i in range(1, NODES + 1)),
        120,
    )
    members = list(range(1, NODES + 1))
    for i in members:
        wait_until(f"node {i} sees a formed cluster", lambda i=i: formed(i, members), 60)
    log(f"vault profile healthy {time.monotonic() - t0:.1f}s after `up -d`")
    for i in members:
        k = admin(i, "/api/v1/kms/status")
        check(
            k["provider"] == "vault" and k["healthy"],
            f"node {i}: KMS provider vault, healthy ({k.get('default_key')})",
        )
    bucket = "compose-vault"
    s3(1).create_bucket(Bucket=bucket)
    v = payload("vault", 2 * 1024 * 1024 + 3)
    s3(2).put_object(Bucket=bucket, Key="k", Body=v)
    read_all(bucket, {"k": v}, members, "with Vault: PUT via node 2, byte-identical GET via all 4")


def step_no_plaintext_on_volumes():
    mounts = []
    for i in range(1, NODES + 1):
        for v in ("data", "drive-1", "drive-2"):
            mounts += ["-v", f"{PROJECT}_node-{i}-{v}:/scan/node-{i}-{v}:ro"]
    r = run(
        "docker", "run", "--rm", "--user", "root", "--entrypoint", "sh", *mounts, IMAGE,
        "-c", f"find /scan -type f | wc -l; grep -rlaF '{MARKER.decode()}' /scan || true",
    )
    lines = r.stdout.decode().split()
    files = int(lines[0])
    check(files > 20, f"volumes of all nodes scanned ({files} files)")
    check(lines[1:] == [], f"no plaintext marker on any volume {lines[1:5]}")


def main():
    t0 = time.monotonic()
    steps = [("up", step_up), ("image", step_image_has_no_secrets)]
    bucket = "compose-test"
    for name, fn in steps:
        log(f"== {name}")
        fn()
    log("== write and read on every node")
    objects = step_write_read_everywhere(bucket)
    log("== kill a node, write, restart it, heal")
    step_kill_and_heal(bucket, objects)
    log("== cut a node off the network, write, reconnect")
    step_partition_and_catch_up(bucket, objects)
    log("== plaintext scan")
    step_no_plaintext_on_volumes()
    log("== profile vault: OpenBao as the KMS")
    step_vault_profile()
    log(f"compose scenario passed: {len(CHECKS)} checks in {time.monotonic() - t0:.0f}s")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the script's exit status is the verdict; show why
        log(f"FAILED: {type(e).__name__}: {e}")
        sys.exit(1)
