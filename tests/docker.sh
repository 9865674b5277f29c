#!/usr/bin/env bash
# tests/docker.sh: build the repo's Dockerfile without any registry, run the image, check it, tear down.
#
# Needs root, Debian apt (docker.io and busybox-static), the Go toolchain on the host and the Go
# module proxy. What it does (recipe and pitfalls: docs of the spike in /work/shared/spec/docker.md):
#   1. installs docker.io with apt-get when `dockerd` is missing (services are kept from starting);
#   2. starts a PRIVATE dockerd (own socket, data root and exec root in a mktemp dir) with
#      --bridge=none --iptables=false --ip-forward=false --ip-masq=false: no docker0, no iptables
#      rules, no sysctl change on the host; builds and containers therefore use --network host;
#   3. makes the two base images with `docker import` from local tarballs, no pull:
#        dmsbridge-test/golang:<go version>  busybox-static + the host's GOROOT + CA bundle
#        dmsbridge-test/runtime              only /etc/passwd, /etc/group, /tmp, /home/nonroot
#      (no CA bundle and no zoneinfo, so the test proves the Dockerfile and -tags timetzdata
#      provide them);
#   4. `docker build --network host` of the repo's Dockerfile with those images as build args;
#   5. checks the image: numeric non-root USER, entrypoint/cmd/port, CA bundle present, size;
#      `docker run IMAGE --version` prints the version and date passed to the build; running the
#      pipeline DOCKER_TEST_CONFIG prints exactly DOCKER_TEST_EXPECT on stdout (byte comparison,
#      no normalisation) and exits 0; the image's default command (the demo); with the test servers,
#      the reference pipeline as README's "Docker" deployment runs it (read-only root file system,
#      state volume on /app/checkpoints, one bad row), twice: the second container repeats nothing,
#      and the volume holds the checkpoint and the bad row's dead letter; then as an arbitrary user
#      in group 0 (as OpenShift runs images) on a fresh volume;
#   6. tears everything down (containers, dockerd by pid, mounts, temp dir) and checks the host is
#      as before: no process of ours left, no docker0, ip_forward unchanged.
#
# Environment:
#   DOCKER_TEST_CONFIG  pipeline to run, mounted read-only at /pipeline.yaml and run with
#                       `run /pipeline.yaml` (default tests/docker/pipeline.yaml; relative paths are
#                       relative to the repo root). Set it to the empty string to run the image's
#                       own default command instead (`run /config.yaml`, the embedded demo).
#   DOCKER_TEST_EXPECT  expected stdout of that run (default tests/docker/expected.txt).
#   DOCKER_TEST_RUN_ARGS extra `docker run` arguments for that run, word-split
#                       (e.g. "-e DMSBRIDGE_MODE=full-load").
#   DOCKER_TEST_NORMALISE a sed -E script applied to the run's stdout before the byte comparison
#                       (default none), e.g. 's/"timestamp":"[^"]*"/"timestamp":"T"/g'.
#   DOCKER_TEST_BUILDKIT 1 (default) builds with BuildKit, 0 with the legacy builder.
#   DOCKER_TEST_TMPFS   1 (default) puts dockerd's data root on a tmpfs (RAM, at most
#                       DOCKER_TEST_TMPFS_SIZE, default 8g; a run uses about 1 GB), 0 on disk in the temp dir.
#   DOCKER_TEST_KEEP    1 keeps the temp dir (logs) after a failure; dockerd is stopped regardless.
#   VERSION, DATE       version/date stamped into the binary (default: like the Makefile).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CONFIG=${DOCKER_TEST_CONFIG-tests/docker/pipeline.yaml}
EXPECT=${DOCKER_TEST_EXPECT:-tests/docker/expected.txt}
BUILDKIT=${DOCKER_TEST_BUILDKIT:-1}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
DATE=${DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
IMAGE=dmsbridge:docker-test
RUNTIME_IMAGE=dmsbridge-test/runtime
BUILD_TIMEOUT=${DOCKER_TEST_BUILD_TIMEOUT:-1200}
TMPFS=${DOCKER_TEST_TMPFS:-1}
TMPFS_SIZE=${DOCKER_TEST_TMPFS_SIZE:-8g}

T0=$SECONDS
STEP_NAME= STEP_T=0 SUMMARY=()
log() { echo "[docker] $*"; }
fail() { echo "[docker] FAIL: $*" >&2; exit 1; }
step_end() { [ -z "$STEP_NAME" ] || { SUMMARY+=("$(printf '%5ss  %s' $((SECONDS - STEP_T)) "$STEP_NAME")"); log "    done in $((SECONDS - STEP_T))s"; }; STEP_NAME=; }
step() { step_end; STEP_NAME=$*; STEP_T=$SECONDS; log "==> $*"; }

[ "$(id -u)" = 0 ] || fail "must run as root (starts a private dockerd)"
abs() { case $1 in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }
[ -z "$CONFIG" ] || { CONFIG=$(abs "$CONFIG"); [ -f "$CONFIG" ] || fail "DOCKER_TEST_CONFIG $CONFIG: no such file"; }
EXPECT=$(abs "$EXPECT"); [ -f "$EXPECT" ] || fail "DOCKER_TEST_EXPECT $EXPECT: no such file"
command -v go >/dev/null || fail "go is required on the host (its GOROOT becomes the builder image)"

# ---------------------------------------------------------------------------------------------
step "docker.io present"
if ! command -v dockerd >/dev/null; then
  # Keep the package's init scripts from starting a system dockerd (with bridge and iptables).
  POLICY_ADDED=no
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; POLICY_ADDED=yes; fi
  log "    installing docker.io with apt-get"
  apt_ok=yes
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io; } >/tmp/docker-test-apt.log 2>&1 || apt_ok=no
  [ "$POLICY_ADDED" = no ] || rm -f /usr/sbin/policy-rc.d
  [ "$apt_ok" = yes ] || { tail -20 /tmp/docker-test-apt.log; fail "apt-get install docker.io failed (log /tmp/docker-test-apt.log)"; }
  rm -f /tmp/docker-test-apt.log
fi
# The docker.io package's own client (20.10) drives BuildKit without a buildx plugin; a newer CLI
# first on PATH may lack buildx and refuse DOCKER_BUILDKIT=1.
DOCKER=$(dpkg -L docker.io 2>/dev/null | grep -m1 '/bin/docker$' || true)
[ -x "${DOCKER:-}" ] || DOCKER=$(command -v docker) || fail "no docker client found"
log "    $("$DOCKER" --version), $(dockerd --version)"

# ---------------------------------------------------------------------------------------------
# Host state that must be the same afterwards.
W=$(mktemp -d /tmp/dmsbridge-docker.XXXXXX)
export DOCKER_HOST=unix://$W/docker.sock DOCKER_CONFIG=$W/client
IPFWD_BEFORE=$(cat /proc/sys/net/ipv4/ip_forward)
BR_BEFORE=$(ip link show docker0 >/dev/null 2>&1 && echo yes || echo no)
RUNC_BEFORE=$([ -e /run/runc ] && echo yes || echo no)
KEY_BEFORE=$([ -e /etc/docker/key.json ] && echo yes || echo no)
CGROUP_BEFORE=$(ls -d /sys/fs/cgroup/*/docker 2>/dev/null | tr '\n' ' ' || true)
DOCKERD_PID=
TORN_DOWN=no
BUILT=no  # after a successful build, failures are the image's, not the daemon's

our_pids() { # processes whose command line names our temp dir (dockerd, containerd, shims)
  local p
  for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF "$W/" && echo "${p#/proc/}"
  done
  return 0
}

teardown() {
  [ "$TORN_DOWN" = no ] || return 0
  TORN_DOWN=yes
  set +e
  local t=$SECONDS
  if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    local ids; ids=$("$DOCKER" ps -aq 2>/dev/null)
    [ -z "$ids" ] || "$DOCKER" rm -f $ids >/dev/null 2>&1
    kill -TERM "$DOCKERD_PID"             # its managed containerd exits with it
    for _ in $(seq 1 150); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$DOCKERD_PID" 2>/dev/null && { log "    dockerd did not stop in 15s, killing it"; kill -KILL "$DOCKERD_PID"; sleep 0.5; }
  fi
  local p; for p in $(our_pids); do kill -KILL "$p" 2>/dev/null; done
  awk -v w="$W/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r | xargs -r umount -l
  [ "$BR_BEFORE" = yes ] || ip link delete docker0 2>/dev/null
  [ "$(cat /proc/sys/net/ipv4/ip_forward)" = "$IPFWD_BEFORE" ] || sysctl -qw net.ipv4.ip_forward="$IPFWD_BEFORE"
  local d; for d in /sys/fs/cgroup/*/docker; do  # empty cgroup-v1 dirs dockerd created
    [ -d "$d" ] || continue; case " $CGROUP_BEFORE " in *" $d "*) continue ;; esac
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  [ "$RUNC_BEFORE" = yes ] || rmdir /run/runc 2>/dev/null   # BuildKit's runc state dir, empty now
  [ "$KEY_BEFORE" = yes ] || rm -f /etc/docker/key.json      # dockerd 20.10 writes it if missing
  log "    dockerd and its processes stopped, host state restored in $((SECONDS - t))s"
  t=$SECONDS
  if [ "${DOCKER_TEST_KEEP:-0}" = 1 ] && [ "${1:-}" != ok ]; then log "    kept $W (logs)"; else rm -rf "$W"; fi
  log "    temp dir (images, build cache) removed in $((SECONDS - t))s"
  set -e
}
on_exit() {
  local rc=$?
  if [ "$TORN_DOWN" = no ]; then
    [ $rc = 0 ] || [ "$BUILT" = yes ] || { log "failed; dockerd log tail:"; tail -15 "$W/dockerd.log" 2>/dev/null | sed 's/^/    /'; }
    teardown fail
  fi
  exit $rc
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
step "private dockerd (no bridge, no iptables), data in $W"
mkdir -p "$W/client" "$W/root"; echo '{}' >"$W/daemon.json"
# The data root (images, module and build caches: a few GB of small files) lives on a tmpfs by
# default: faster on a busy disk, and teardown is an unmount instead of a long rm -rf.
if [ "$TMPFS" = 1 ]; then
  mount -t tmpfs -o "size=$TMPFS_SIZE,mode=0710" dmsbridge-docker-test "$W/root" || fail "cannot mount a tmpfs on $W/root (set DOCKER_TEST_TMPFS=0)"
  log "    data root on tmpfs (size limit $TMPFS_SIZE)"
fi
dockerd --host "unix://$W/docker.sock" --data-root "$W/root" --exec-root "$W/exec" \
  --pidfile "$W/docker.pid" --config-file "$W/daemon.json" \
  --bridge=none --iptables=false --ip-forward=false --ip-masq=false >"$W/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 1 300); do
  "$DOCKER" info >/dev/null 2>&1 && break
  kill -0 "$DOCKERD_PID" 2>/dev/null || fail "dockerd exited: $(tail -5 "$W/dockerd.log")"
  sleep 0.2
done
"$DOCKER" info >/dev/null 2>&1 || fail "dockerd did not answer within 60s"
log "    dockerd pid $DOCKERD_PID, storage driver $("$DOCKER" info -f '{{.Driver}}')"

# ---------------------------------------------------------------------------------------------
GOROOT_HOST=$(go env GOROOT)
GOVER=$(go env GOVERSION); GOVER=${GOVER#go}
GO_IMAGE=dmsbridge-test/golang:$GOVER
step "base images from local tarballs ($GO_IMAGE from $GOROOT_HOST, $RUNTIME_IMAGE)"
(cd "$W" && apt-get download -q busybox-static >/dev/null 2>&1) \
  || { apt-get update -q >/dev/null 2>&1 && (cd "$W" && apt-get download -q busybox-static >/dev/null 2>&1); } \
  || fail "apt-get download busybox-static failed"
dpkg-deb -x "$W"/busybox-static_*.deb "$W/bb"; BB=$W/bb/bin/busybox
R=$W/rootfs-golang
mkdir -p "$R"/{bin,usr/bin,usr/local,etc/ssl/certs,tmp,root,go/bin,go/src,go/pkg}
chmod 1777 "$R/tmp"; chmod 777 "$R"/go "$R"/go/*
cp "$BB" "$R/bin/busybox"
for a in $("$BB" --list); do [ "$a" = busybox ] || ln -s busybox "$R/bin/$a"; done
ln -s /bin/env "$R/usr/bin/env"
cp -L /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$R/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$R/etc/group"
printf 'hosts: files dns\n' >"$R/etc/nsswitch.conf"
# GOROOT goes in as usr/local/go straight from the host (no copy): the second -C/transform pair.
tar --numeric-owner --owner=0 --group=0 -cf - -C "$R" . \
    -C "$(dirname "$GOROOT_HOST")" --transform "flags=rh;s,^$(basename "$GOROOT_HOST")\(/\|\$\),usr/local/go\1," \
    "$(basename "$GOROOT_HOST")" |
  "$DOCKER" import \
    --change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV GOPATH=/go' --change 'ENV GOTOOLCHAIN=local' \
    --change 'WORKDIR /go' --change 'CMD ["/bin/sh"]' - "$GO_IMAGE" >/dev/null
S=$W/rootfs-runtime
mkdir -p "$S"/{etc,tmp,home/nonroot}
chmod 1777 "$S/tmp"; chown 65532:65532 "$S/home/nonroot"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$S/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$S/etc/group"
tar -C "$S" --numeric-owner -cf - . |
  "$DOCKER" import --change 'USER 65532:65532' --change 'WORKDIR /home/nonroot' - "$RUNTIME_IMAGE" >/dev/null
rm -rf "$R" "$S" "$W/bb" "$W"/busybox-static_*.deb
"$DOCKER" run --rm --network host "$GO_IMAGE" go version | grep -q "go$GOVER" || fail "builder image: go version does not run"
log "    $("$DOCKER" images --format '{{.Repository}}:{{.Tag}}={{.Size}}' | tr '\n' ' ')"

# ---------------------------------------------------------------------------------------------
step "docker build --network host (BuildKit=$BUILDKIT) of $ROOT/Dockerfile, VERSION=$VERSION"
BUILD_ARGS=(--build-arg "GO_IMAGE=$GO_IMAGE" --build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE"
  --build-arg "VERSION=$VERSION" --build-arg "DATE=$DATE"
  --build-arg "GOPROXY=$(go env GOPROXY)" --build-arg "GOSUMDB=$(go env GOSUMDB)"
  --build-arg "GOPRIVATE=$(go env GOPRIVATE)" --build-arg "GONOSUMDB=$(go env GONOSUMDB)")
PROGRESS=(); [ "$BUILDKIT" != 1 ] || PROGRESS=(--progress=plain)
if ! DOCKER_BUILDKIT=$BUILDKIT timeout "$BUILD_TIMEOUT" "$DOCKER" build "${PROGRESS[@]}" --network host \
     "${BUILD_ARGS[@]}" -t "$IMAGE" "$ROOT" >"$W/build.log" 2>&1; then
  tail -40 "$W/build.log" | sed 's/^/    /' || true
  fail "docker build failed (or exceeded ${BUILD_TIMEOUT}s)"
fi
if [ "$BUILDKIT" = 1 ]; then  # per-step times from BuildKit's plain progress
  awk '$1 ~ /^#[0-9]+$/ && $2 ~ /^\[/ && !($1 in name) { n = $0; sub(/^#[0-9]+ /, "", n); name[$1] = substr(n, 1, 80) }
       $1 ~ /^#[0-9]+$/ && $2 == "DONE" && ($1 in name) && $3 + 0 >= 0.5 { printf "[docker]     %7s  %s\n", $3, name[$1] }' "$W/build.log"
fi

# ---------------------------------------------------------------------------------------------
BUILT=yes
step "image metadata: non-root user, entrypoint, command, port, size"
inspect() { "$DOCKER" image inspect -f "$1" "$IMAGE"; }
user=$(inspect '{{.Config.User}}')
[ "$user" = 65532:65532 ] || fail "Config.User is '$user', want numeric non-root 65532:65532"
[ "$(inspect '{{json .Config.Entrypoint}}')" = '["/dmsbridge"]' ] || fail "Entrypoint is $(inspect '{{json .Config.Entrypoint}}')"
[ "$(inspect '{{json .Config.Cmd}}')" = '["run","/config.yaml"]' ] || fail "Cmd is $(inspect '{{json .Config.Cmd}}')"
inspect '{{json .Config.ExposedPorts}}' | grep -q '"4195/tcp"' || fail "port 4195 is not exposed"
inspect '{{json .Config.Env}}' | grep -q '"DMSBRIDGE_CONFIG_DIR=/app/config"' || fail "DMSBRIDGE_CONFIG_DIR is not /app/config"
SIZE=$(inspect '{{.Size}}')
log "    user $user, entrypoint /dmsbridge, cmd run /config.yaml, expose 4195/tcp"
log "    image size: $SIZE bytes ($(( (SIZE + 524288) / 1048576 )) MiB)"

step "files in the image: /dmsbridge, CA bundle, /app/checkpoints"
CID=$("$DOCKER" create --network none "$IMAGE")
"$DOCKER" cp "$CID:/etc/ssl/certs/ca-certificates.crt" - | tar -xOf - >"$W/ca.crt" || fail "no /etc/ssl/certs/ca-certificates.crt in the image"
"$DOCKER" cp "$CID:/dmsbridge" - | tar -tvf - >"$W/bin.lst" || fail "no /dmsbridge in the image"
"$DOCKER" cp "$CID:/app/checkpoints" - | tar --numeric-owner -tvf - >"$W/ck.lst" || fail "no /app/checkpoints in the image"
"$DOCKER" rm "$CID" >/dev/null
# a named volume mounted on /app/checkpoints starts with this owner: the non-root user, and group 0
# with the owner's rights (OpenShift runs the image as an arbitrary user in group 0)
grep -Eq '^drwxrwx[r-][w-][x-] 65532/0 .* checkpoints/?$' "$W/ck.lst" || fail "/app/checkpoints is not a directory of 65532, writable by group 0: $(head -1 "$W/ck.lst")"
n=$(grep -c 'BEGIN CERTIFICATE' "$W/ca.crt" || true)
[ "$n" -gt 10 ] || fail "CA bundle in the image has $n certificates"
log "    CA bundle: $n certificates; binary: $(awk '{print $1, $3, $NF}' "$W/bin.lst")"

# ---------------------------------------------------------------------------------------------
step "docker run $IMAGE --version"
"$DOCKER" run --rm --network host "$IMAGE" --version >"$W/version.out" 2>"$W/version.err" \
  || { cat "$W/version.err"; fail "--version exited non-zero"; }
printf 'Version: %s\nDate: %s\n' "$VERSION" "$DATE" >"$W/version.want"
if ! cmp -s "$W/version.want" "$W/version.out"; then
  diff -u "$W/version.want" "$W/version.out" | sed 's/^/    /' || true  # diff exits 1: keep set -e off it
  fail "--version output differs"
fi
sed 's/^/    /' "$W/version.out"

# ---------------------------------------------------------------------------------------------
# run_check NAME EXPECT NORMALISE DOCKER-RUN-ARGS...: runs the image (host network), compares stdout.
run_check() {
  local name=$1 expect=$2 normalise=$3; shift 3
  local rc=0
  timeout 120 "$DOCKER" run --rm --network host "$@" >"$W/$name.out" 2>"$W/$name.err" || rc=$?
  if [ $rc != 0 ]; then
    sed 's/^/    stderr: /' "$W/$name.err" | tail -20 || true; fail "$name: the pipeline exited with status $rc"
  fi
  if [ -n "$normalise" ]; then
    sed -E "$normalise" "$W/$name.out" >"$W/$name.norm" || fail "$name: bad sed script"
    mv "$W/$name.norm" "$W/$name.out"; log "    stdout normalised with sed -E '$normalise'"
  fi
  if ! cmp -s "$expect" "$W/$name.out"; then
    log "    stdout differs from $expect (- expected, + got):"
    diff -u "$expect" "$W/$name.out" | head -40 | sed 's/^/    /' || true  # diff exits 1: keep set -e off it
    sed 's/^/    stderr: /' "$W/$name.err" | tail -10
    fail "$name: pipeline output differs"
  fi
  log "    stdout equals $expect ($(wc -l <"$W/$name.out") lines, $(wc -c <"$W/$name.out") bytes)"
}

if [ -n "$CONFIG" ]; then
  step "docker run $IMAGE run /pipeline.yaml ($CONFIG mounted read-only)"
  run_check pipeline "$EXPECT" "${DOCKER_TEST_NORMALISE:-}" ${DOCKER_TEST_RUN_ARGS:-} -v "$CONFIG:/pipeline.yaml:ro" "$IMAGE" run /pipeline.yaml
fi

step "docker run $IMAGE: the default command, the embedded demo (full load only, so it ends)"
run_check demo "$ROOT/tests/docker/demo-full-load.golden.jsonl" 's/"timestamp":"[0-9T:.Z-]+"/"timestamp":"T"/g' \
  -e DMSBRIDGE_MODE=full-load "$IMAGE"

# The reference pipeline against the real test servers, when they run (tests/services.sh).
if [ -n "${S3_ENDPOINT:-}" ] && [ -n "${KINESIS_ENDPOINT:-}" ]; then
  # As README's "Docker" deployment says, and as a hardened Kubernetes pod runs it: read-only root
  # file system, the state volume on /app/checkpoints. The data set has one bad row (an extra
  # full-load file): its dead letter must land on the volume, the only place the container can
  # write and the only one that outlives it. A second container on the same volume then finds the
  # full load done in the checkpoint and writes nothing again. KINESIS_PROTOCOL=json: kinesalite
  # truncates CBOR answers over 16 KiB (the config's CBOR is tested on kinesis-mock in tests/e2e).
  step "docker run --read-only -v STATE:/app/checkpoints $IMAGE run config/s3-to-kinesis.yaml against versitygw and kinesalite, twice"
  ref=dmsb-docker-$(date +%s)-$$
  printf '2026-01-01 00:00:00,10.1000/dmsbridge.bad,1,not-a-number,badbadbad0\n' >"$W/bad_row.csv"
  (cd "$ROOT" && go run ./tests/refdata/cmd/refcheck prepare -bucket "$ref" -stream "$ref" -shards 2 -scale 0.02 \
    -manifest "$W/manifest.jsonl" -put schema01/table01/zz_bad_row.csv="$W/bad_row.csv") || fail "could not prepare the reference data set"
  "$DOCKER" volume create dmsbridge-state >/dev/null
  for run in 1 2; do
    rc=0
    timeout 120 "$DOCKER" run --name "ref$run" --network host --read-only -v dmsbridge-state:/app/checkpoints \
      -e BUCKET="$ref" -e STREAM="$ref" -e DMSBRIDGE_MODE=full-load \
      -e S3_ENDPOINT -e KINESIS_ENDPOINT -e S3_FORCE_PATH_STYLE=true -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY \
      -e AWS_REGION -e HTTP_ADDRESS=127.0.0.1:0 -e KINESIS_SHARD_RECORDS_PER_SECOND=100000 \
      -e KINESIS_SHARD_BYTES_PER_SECOND=104857600 -e LOG_LEVEL=WARN -e KINESIS_PROTOCOL=json \
      "$IMAGE" run config/s3-to-kinesis.yaml >"$W/ref$run.out" 2>&1 || rc=$?
    if [ $rc != 0 ]; then
      "$DOCKER" logs "ref$run" 2>&1 | tail -8 | cut -c1-400 | sed 's/^/    /' || true
      fail "run $run of the reference pipeline (read-only root, state volume) did not exit 0 within 120s (status $rc)"
    fi
    "$DOCKER" rm "ref$run" >/dev/null
    (cd "$ROOT" && go run ./tests/refdata/cmd/refcheck verify -stream "$ref" -manifest "$W/manifest.jsonl" -phase full-load) \
      >"$W/verify$run.out" 2>&1 || { sed 's/^/    /' "$W/verify$run.out"; fail "run $run: the records on Kinesis do not match the manifest"; }
    sed 's/^/    /' "$W/verify$run.out"
    grep -q 'duplicates 0,' "$W/verify$run.out" || fail "run $run: records written twice (the checkpoint on the volume was not used)"
  done
  # What the volume holds once both containers are gone (read with the builder image's busybox).
  "$DOCKER" run --rm --network none -v dmsbridge-state:/state "$GO_IMAGE" \
    sh -c 'ls -A /state; echo ---; cat /state/dead-letter.jsonl' >"$W/state.out" 2>&1 || true
  sed -n '/^---$/q;s/^/    volume: /p' "$W/state.out"
  grep -Eq '^aws_s3_dms-.*\.json$' "$W/state.out" || fail "no checkpoint file on the state volume: $(cat "$W/state.out")"
  dl=$(sed '1,/^---$/d' "$W/state.out")
  [ "$(printf '%s\n' "$dl" | grep -c .)" = 1 ] && printf '%s' "$dl" | grep -q '"s3_key":"schema01/table01/zz_bad_row.csv"' \
    && printf '%s' "$dl" | grep -q 'not-a-number' \
    || fail "the state volume does not hold the bad row's dead letter (one line naming zz_bad_row.csv): $dl"
  log "    the bad row's dead letter is on the state volume: $(printf '%s' "$dl" | cut -c1-160)..."

  # OpenShift (restricted SCC) runs an image as an arbitrary user id in group 0, not as its USER:
  # the state directory must be writable through group 0. Fresh volume, own data set.
  step "docker run --user 1000650000:0 (arbitrary user, group 0, as OpenShift runs images) --read-only, fresh state volume"
  ref=dmsb-docker-uid-$(date +%s)-$$
  (cd "$ROOT" && go run ./tests/refdata/cmd/refcheck prepare -bucket "$ref" -stream "$ref" -shards 1 -scale 0.005 \
    -manifest "$W/manifest-uid.jsonl") || fail "could not prepare the data set"
  rc=0
  timeout 120 "$DOCKER" run --name refuid --network host --user 1000650000:0 --read-only -v dmsbridge-state-uid:/app/checkpoints \
    -e BUCKET="$ref" -e STREAM="$ref" -e DMSBRIDGE_MODE=full-load \
    -e S3_ENDPOINT -e KINESIS_ENDPOINT -e S3_FORCE_PATH_STYLE=true -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY \
    -e AWS_REGION -e HTTP_ADDRESS=127.0.0.1:0 -e KINESIS_SHARD_RECORDS_PER_SECOND=100000 \
    -e KINESIS_SHARD_BYTES_PER_SECOND=104857600 -e LOG_LEVEL=WARN -e KINESIS_PROTOCOL=json \
    "$IMAGE" run config/s3-to-kinesis.yaml >"$W/refuid.out" 2>&1 || rc=$?
  if [ $rc != 0 ]; then
    "$DOCKER" logs refuid 2>&1 | tail -4 | cut -c1-300 | sed 's/^/    /' || true
    fail "the reference pipeline as user 1000650000:0 did not exit 0 within 120s (status $rc)"
  fi
  "$DOCKER" rm refuid >/dev/null
  (cd "$ROOT" && go run ./tests/refdata/cmd/refcheck verify -stream "$ref" -manifest "$W/manifest-uid.jsonl" -phase full-load) \
    >"$W/verify-uid.out" 2>&1 || { sed 's/^/    /' "$W/verify-uid.out"; fail "user 1000650000:0: the records on Kinesis do not match the manifest"; }
  sed 's/^/    /' "$W/verify-uid.out"
  "$DOCKER" run --rm --network none -v dmsbridge-state-uid:/state "$GO_IMAGE" ls -ln /state >"$W/state-uid.out" 2>&1 || true
  grep -Eq ' 1000650000 +0 .* aws_s3_dms-.*\.json$' "$W/state-uid.out" || fail "no checkpoint of user 1000650000 on the volume: $(cat "$W/state-uid.out")"
  log "    checkpoint saved by user 1000650000: $(grep -E 'aws_s3_dms-' "$W/state-uid.out")"
elif [ "${DOCKER_TEST_SKIP_REF:-}" = 1 ]; then
  log "    DOCKER_TEST_SKIP_REF=1: reference pipeline not run"
else
  fail "S3_ENDPOINT/KINESIS_ENDPOINT unset: the reference pipeline cannot run (make docker runs this script under tests/services.sh; DOCKER_TEST_SKIP_REF=1 skips that part on purpose)"
fi

# ---------------------------------------------------------------------------------------------
[ "$TMPFS" != 1 ] || log "    data root usage: $(df -h --output=used "$W/root" | tail -1 | tr -d ' ')"
step "teardown and host check"
pid=$DOCKERD_PID
teardown ok
problems=()
kill -0 "$pid" 2>/dev/null && problems+=("dockerd $pid still running")
left=$(our_pids); [ -z "$left" ] || problems+=("processes left: $left")
[ "$BR_BEFORE" = yes ] || ! ip link show docker0 >/dev/null 2>&1 || problems+=("docker0 exists")
[ "$(cat /proc/sys/net/ipv4/ip_forward)" = "$IPFWD_BEFORE" ] || problems+=("ip_forward changed")
! grep -qF "$W/" /proc/mounts || problems+=("mounts left under $W")
[ ! -e "$W" ] || problems+=("$W still exists")
[ ${#problems[@]} = 0 ] || fail "host not clean: ${problems[*]}"
log "    dockerd $pid stopped, no process/mount/temp dir left, no docker0, ip_forward=$IPFWD_BEFORE"
step_end

log "summary (total $((SECONDS - T0))s):"
printf '[docker]   %s\n' "${SUMMARY[@]}"
log "image size $SIZE bytes; PASS"
