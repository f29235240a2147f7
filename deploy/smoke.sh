#!/usr/bin/env bash
# deploy/smoke.sh: the image on a real container engine, end to end. Not part of `make test`
# (it takes many minutes); run it as root on a Debian 12 host with podman, runc and debootstrap
# (`apt-get install podman runc debootstrap`), from a checkout with `make setup` done.
#
# 1. Makes a base root filesystem with debootstrap (Debian 12 + its Python 3.11; registries
#    cannot be pulled from everywhere, so the Dockerfile takes its base as PYTHON_IMAGE) and
#    imports it into podman.
# 2. Builds the repository's Dockerfile FROM it.
# 3. Starts on the host: SeaweedFS (S3) and `t2m up --queues video,llm` (Temporal, PostgreSQL, a
#    video/llm worker) on free loopback ports.
# 4. Runs the API and a render worker as containers, with exactly the documented privileges
#    (API: uid 10001, no capability, no-new-privileges, read-only root; render worker: uid 0, the
#    nine jail capabilities, the default seccomp profile, no-new-privileges, AppArmor unconfined,
#    read-only root), host networking (to reach the host's loopback services).
# 5. Makes one video through the containerised API and prints the times and the image size.
# Everything it started is stopped at the end; the images stay (`podman rmi` them).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${T2M_SMOKE_DIR:-/tmp/t2m-smoke}
BASE=localhost/t2m-base:bookworm
IMAGE=localhost/t2m:smoke
PY=$ROOT/.venv/bin/python
PODMAN=(podman --runtime runc)
JAIL_CAPS=SYS_ADMIN,NET_ADMIN,SETUID,SETGID,SETPCAP,CHOWN,FOWNER,DAC_OVERRIDE,KILL
BUILD_ID=smoke  # host worker and container workers: one Worker Versioning build
export T2M_BUILD_ID=$BUILD_ID

step() { printf '[smoke %4ss] %s\n' "$SECONDS" "$*"; }
mkdir -p "$WORK"

# --- 1. base image --------------------------------------------------------------------------------
if ! podman image exists "$BASE"; then
  if [ ! -x "$WORK/rootfs/usr/bin/apt-get" ]; then
    step "debootstrap bookworm"
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase \
      --include=ca-certificates,libssl3,libffi8,libsqlite3-0,libbz2-1.0,liblzma5,libreadline8,libncursesw6,zlib1g,libuuid1,libgdbm6 \
      bookworm "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log"
  fi
  # Python as the official python:3.11-slim-bookworm image has it: a CPython built into
  # /usr/local, with its headers. Here the one this checkout's venv runs on (Debian's own 3.11.2
  # is older than requirements.lock allows: a locked package needs >= 3.11.5).
  prefix=$("$PY" -c 'import sys; print(sys.base_prefix)')
  step "Python $("$PY" -c 'import platform; print(platform.python_version())') from $prefix"
  tar -C "$prefix" --exclude=lib/python3.11/site-packages --exclude=lib/python3.11/test \
    --exclude='*.a' --exclude=__pycache__ -c . | tar -C "$WORK/rootfs/usr/local" -x
  mkdir -p "$WORK/rootfs/usr/local/lib/python3.11/site-packages"
  ln -sf python3 "$WORK/rootfs/usr/local/bin/python"
  # Its sysconfig names the prefix it was built for (headers for C extensions): point that there.
  mkdir -p "$WORK/rootfs$(dirname "$prefix")" && ln -sfn /usr/local "$WORK/rootfs$prefix"
  chroot "$WORK/rootfs" ldconfig
  # This host's trust store and pip's use of it (an HTTPS proxy may re-sign PyPI's certificates).
  cp /etc/ssl/certs/ca-certificates.crt "$WORK/rootfs/etc/ssl/certs/ca-certificates.crt"
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$WORK/rootfs/etc/pip.conf"
  rm -rf "$WORK/rootfs/var/lib/apt/lists/"* "$WORK/rootfs/var/cache/apt/archives/"*.deb
  tar -C "$WORK/rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
  rm -rf "$WORK/rootfs"
fi
step "base image $BASE: $(podman image inspect --format '{{.Size}}' "$BASE" | numfmt --to=iec)"

# --- 2. the image ----------------------------------------------------------------------------------
step "podman build"
build_start=$SECONDS
"${PODMAN[@]}" build --build-arg PYTHON_IMAGE="$BASE" -t "$IMAGE" "$ROOT" >"$WORK/build.log" 2>&1 \
  || { tail -40 "$WORK/build.log"; exit 1; }
step "built $IMAGE in $((SECONDS - build_start)) s: $(podman image inspect --format '{{.Size}}' "$IMAGE" | numfmt --to=iec)"

# --- 3. host services ------------------------------------------------------------------------------
pids=()
containers=()
cleanup() {
  local rc=$?
  if [ "$rc" != 0 ]; then
    for c in "${containers[@]}"; do echo "--- $c"; "${PODMAN[@]}" logs "$c" 2>&1 | tail -20; done
  fi
  for c in "${containers[@]}"; do "${PODMAN[@]}" rm -f -t 30 "$c" >/dev/null 2>&1 || true; done
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

rm -rf "$WORK/run" && mkdir -p "$WORK/run"
step "SeaweedFS on the host"
(cd "$ROOT" && exec "$PY" -c '
import json, signal, sys, time
from pathlib import Path
from tests.seaweed import SeaweedFS
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # run `finally`: stop the server
s = SeaweedFS(Path(sys.argv[1]), bucket="t2m-smoke")
s.start(); s.create_bucket(s.bucket)
Path(sys.argv[1], "env.json").write_text(json.dumps(s.env))
try:
    while True: time.sleep(3600)
finally:
    s.stop()
' "$WORK/run") &
pids+=($!)
for _ in $(seq 120); do [ -f "$WORK/run/env.json" ] && break; sleep 0.5; done
eval "$("$PY" -c 'import json,sys; [print(f"export {k}={v}") for k, v in json.load(open(sys.argv[1])).items()]' "$WORK/run/env.json")"

free_port() { "$PY" -c 'from tests.helpers import free_port; print(free_port())'; }
cd "$ROOT"
TEMPORAL_PORT=$(free_port); UI_PORT=$(free_port); HOST_API_PORT=$(free_port); API_PORT=$(free_port)
export T2M_DATA_DIR=$WORK/run/data T2M_STORAGE_URL=s3://t2m-smoke/smoke
export T2M_TEMPORAL_ADDRESS=127.0.0.1:$TEMPORAL_PORT T2M_TEMPORAL_UI_PORT=$UI_PORT
export T2M_API_PORT=$HOST_API_PORT T2M_SECRET_KEY=smoke-$RANDOM-$RANDOM-$RANDOM
step "t2m up --queues video,llm (Temporal $T2M_TEMPORAL_ADDRESS)"
"$ROOT/.venv/bin/t2m" up --queues video,llm >"$WORK/t2m-up.log" 2>&1 &
pids+=($!)
for _ in $(seq 240); do grep -q "Temporal Web UI" "$WORK/t2m-up.log" 2>/dev/null && break; sleep 0.5; done
grep -q "Temporal Web UI" "$WORK/t2m-up.log" || { tail -30 "$WORK/t2m-up.log"; exit 1; }
# The embedded PostgreSQL's URL (a Unix socket, with the password t2m up set).
DB_URL=$("$PY" -c '
import asyncio, sys
from pathlib import Path
from t2m.catalog.db import start_embedded
print(asyncio.run(start_embedded(Path(sys.argv[1])))[1])
' "$T2M_DATA_DIR")
SOCKET_DIR=$("$PY" -c 'import sys, urllib.parse as u; print(u.parse_qs(u.urlsplit(sys.argv[1]).query)["host"][0])' "$DB_URL")
# The API container runs as uid 10001: let it reach the socket (the server wants a password).
chmod o+x "$SOCKET_DIR"
step "host services up (PostgreSQL socket $SOCKET_DIR)"

# --- 4. the containers -----------------------------------------------------------------------------
# Limits at or below the host's: podman's defaults (RLIMIT_NOFILE 1048576) are above this host's
# hard limits, which a container without CAP_SYS_RESOURCE may not raise.
common=(--network host --read-only --ulimit nofile=16384:16384 --ulimit nproc=16384:16384 --env T2M_TEMPORAL_ADDRESS --env T2M_TEMPORAL_NAMESPACE=t2m
  --env T2M_STORAGE_URL --env T2M_BUILD_ID --env AWS_ENDPOINT_URL --env AWS_ACCESS_KEY_ID
  --env AWS_SECRET_ACCESS_KEY --env AWS_REGION --env T2M_WORKER_DRAIN_S=100)
"${PODMAN[@]}" rm -f --ignore t2m-smoke-render t2m-smoke-api >/dev/null  # an earlier run's
# The render worker first, alone: its jail self-test has a 20 s wall limit, which a host busy
# starting the API too can exceed on two cores.
step "render worker container (uid 0, caps $JAIL_CAPS, no-new-privileges, default seccomp)"
"${PODMAN[@]}" run -d --name t2m-smoke-render "${common[@]}" \
  --user 0:0 --cap-drop ALL --cap-add "$JAIL_CAPS" \
  --security-opt no-new-privileges --security-opt apparmor=unconfined \
  --tmpfs /tmp:rw,exec,size=4g --tmpfs /run/t2m-jail:rw,size=1m --tmpfs /var/lib/t2m:rw \
  --env T2M_RENDER_CONCURRENCY=2 \
  "$IMAGE" t2m worker --queues render >/dev/null
containers+=(t2m-smoke-render)

for _ in $(seq 120); do
  "${PODMAN[@]}" logs t2m-smoke-render 2>&1 | grep -q "worker serving\|refusing" && break; sleep 1
done
"${PODMAN[@]}" logs t2m-smoke-render 2>&1 | tail -3
"${PODMAN[@]}" logs t2m-smoke-render 2>&1 | grep -q "worker serving .*-render" \
  || { echo "render worker did not serve the render queue"; exit 1; }
step "render worker: the jail self-test passed inside the container"
step "API container (uid 10001, no capability, no-new-privileges)"
"${PODMAN[@]}" run -d --name t2m-smoke-api "${common[@]}" \
  --cap-drop ALL --security-opt no-new-privileges \
  --tmpfs /tmp:rw --tmpfs /var/lib/t2m:rw,mode=1777 \
  -v "$SOCKET_DIR:$SOCKET_DIR" --env T2M_DATABASE_URL="$DB_URL" --env T2M_SECRET_KEY \
  "$IMAGE" uvicorn --factory api.main:create_app --host 127.0.0.1 --port "$API_PORT" \
  --no-access-log >/dev/null
containers+=(t2m-smoke-api)
"${PODMAN[@]}" exec t2m-smoke-render sh -c 'id; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/1/status'
sleep 5
"${PODMAN[@]}" exec t2m-smoke-api sh -c 'id; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/1/status; cat /proc/1/cmdline | tr "\0" " "; echo'

# --- 5. one video ----------------------------------------------------------------------------------
KEY=$(T2M_DATABASE_URL=$DB_URL "$ROOT/.venv/bin/t2m" keys create --user smoke --admin | tail -1)
"$PY" - "$API_PORT" "$KEY" <<'EOF'
import sys, time
import httpx
port, key = sys.argv[1], sys.argv[2].split()[-1]
api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
for _ in range(120):
    try:
        if api.get("/readyz").status_code == 200:
            break
    except httpx.TransportError:
        pass
    time.sleep(1)
print("readyz:", api.get("/readyz").json())
print("anonymous, Host localhost:", api.get("/api/v1/jobs", headers={"Host": "localhost"}).status_code)
auth = {"Authorization": f"Bearer {key}"}
started = time.monotonic()
body = {"configuration": {"topic": "Why the sky is blue", "model": "offline/templates", "quality": "low"}}
r = api.post("/api/v1/videos/generate", json=body, headers=auth)
assert r.status_code == 201, r.text
job = r.json()["job_id"]
while True:
    s = api.get(f"/api/v1/videos/jobs/{job}/status", headers=auth).json()
    if s["status"] in ("completed", "failed", "cancelled"):
        break
    assert time.monotonic() - started < 900, s
    time.sleep(1)
print(f"job {job}: {s['status']} in {time.monotonic() - started:.1f} s")
assert s["status"] == "completed", s
url = api.get(f"/api/v1/videos/jobs/{job}/video-url", headers=auth).json()
print("video:", url["metadata"])
EOF
step "health: $(curl -s "http://127.0.0.1:$API_PORT/health")"
step "one video made by the containerised API and render worker"
