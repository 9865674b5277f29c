#!/usr/bin/env bash
# Starts and stops the real S3 and Kinesis servers that dmsbridge's tests talk to, on loopback:
#   S3:      versitygw v1.8.0 (posix backend in a fresh temp dir, SigV4 checked against the root key)
#   Kinesis: kinesalite 3.3.3 (npm, pinned by tests/package-lock.json, installed with npm ci)
#   Kinesis in CBOR: kinesis-local 0.6.2 (kinesis-mock, npm, same lock file): kinesalite truncates
#            CBOR answers over 16 KiB, so the tests of `protocol: cbor` talk to this one
#
# Usage:
#   tests/services.sh start        install if needed, start, wait until ready, write .cache/services.env
#   tests/services.sh stop         stop exactly the processes this script started (pids in .cache/services/)
#   tests/services.sh status       say what runs
#   tests/services.sh run CMD...   start, run CMD with the env exported, then stop what this run
#                                  started (not servers that already answered); exit code of CMD
#
# If a server already answers on its port (another checkout's services, say), it is reused and
# never stopped by this checkout. Ports: S3_PORT (7070), KINESIS_PORT (4567), KINESIS_MOCK_PORT (4570; it
# also opens a TLS port, KINESIS_MOCK_PORT+1, which the tests do not use).
set -euo pipefail

VERSITYGW_VERSION=v1.8.0
KINESALITE_VERSION=3.3.3
KINESIS_LOCAL_VERSION=0.6.2

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${DMSBRIDGE_CACHE:-$ROOT/.cache}
TOOLS=${TOOLS:-$CACHE/test-tools}
STATE=$CACHE/services
S3_PORT=${S3_PORT:-7070}
KINESIS_PORT=${KINESIS_PORT:-4567}
KINESIS_MOCK_PORT=${KINESIS_MOCK_PORT:-4570}
ACCESS_KEY=testkey
SECRET_KEY=testsecret
VERSITYGW=$TOOLS/versitygw-$VERSITYGW_VERSION/versitygw
KINESIS_LOCAL=$ROOT/tests/node_modules/kinesis-local

log() { echo "services: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 secs=$2 pid=${3:-} end=$((SECONDS + $2))
  until port_open "$port"; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      log "process $pid died before port $port opened"; return 1
    fi
    ((SECONDS < end)) || { log "port $port not open after ${secs}s"; return 1; }
    sleep 0.1
  done
}

install() {
  if [ ! -x "$VERSITYGW" ]; then
    command -v go >/dev/null || { log "go is required to install versitygw"; exit 1; }
    log "installing versitygw $VERSITYGW_VERSION (go install; ~2 min on a cold module cache)"
    GOBIN=$(dirname "$VERSITYGW") GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
  fi
  local have="" have_mock=""
  [ -f "$ROOT/tests/node_modules/kinesalite/package.json" ] &&
    have=$(node -p "require('$ROOT/tests/node_modules/kinesalite/package.json').version" 2>/dev/null || true)
  [ -f "$KINESIS_LOCAL/package.json" ] &&
    have_mock=$(node -p "require('$KINESIS_LOCAL/package.json').version" 2>/dev/null || true)
  if [ "$have" != "$KINESALITE_VERSION" ] || [ "$have_mock" != "$KINESIS_LOCAL_VERSION" ]; then
    command -v npm >/dev/null || { log "node and npm are required to install kinesalite and kinesis-local"; exit 1; }
    log "installing kinesalite $KINESALITE_VERSION and kinesis-local $KINESIS_LOCAL_VERSION (npm ci)"
    npm ci --prefix "$ROOT/tests" --no-audit --no-fund --loglevel=error >&2
  fi
}

write_env() {
  mkdir -p "$CACHE"
  cat >"$CACHE/services.env" <<ENV
export S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export KINESIS_ENDPOINT=http://127.0.0.1:$KINESIS_PORT
export KINESIS_MOCK_ENDPOINT=http://127.0.0.1:$KINESIS_MOCK_PORT
export AWS_ACCESS_KEY_ID=$ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
ENV
}

STARTED=()  # what this invocation started (run stops only these)

start() {
  install
  mkdir -p "$STATE"
  if port_open "$S3_PORT"; then
    log "S3 port $S3_PORT already answers: reusing it"
  else
    local data; data=$(mktemp -d "${TMPDIR:-/tmp}/dmsbridge-s3.XXXXXX")
    ROOT_ACCESS_KEY_ID=$ACCESS_KEY ROOT_SECRET_ACCESS_KEY=$SECRET_KEY \
      "$VERSITYGW" --port "127.0.0.1:$S3_PORT" --quiet posix "$data" >"$STATE/versitygw.log" 2>&1 &
    echo "$! $data" >"$STATE/versitygw.pid"
    STARTED+=(versitygw)
    wait_port "$S3_PORT" 30 "$!" || { cat "$STATE/versitygw.log" >&2; exit 1; }
    log "versitygw $VERSITYGW_VERSION on 127.0.0.1:$S3_PORT (pid $!)"
  fi
  if port_open "$KINESIS_PORT"; then
    log "Kinesis port $KINESIS_PORT already answers: reusing it"
  else
    # Through tests/kinesalite-server.js: plain kinesalite 3.3.3 exits when a client aborts a request.
    node "$ROOT/tests/kinesalite-server.js" --port "$KINESIS_PORT" --createStreamMs 0 --deleteStreamMs 0 --updateStreamMs 0 \
      --shardLimit 1000 >"$STATE/kinesalite.log" 2>&1 &
    echo "$!" >"$STATE/kinesalite.pid"
    STARTED+=(kinesalite)
    wait_port "$KINESIS_PORT" 30 "$!" || { cat "$STATE/kinesalite.log" >&2; exit 1; }
    log "kinesalite $KINESALITE_VERSION on 127.0.0.1:$KINESIS_PORT (pid $!)"
  fi
  if port_open "$KINESIS_MOCK_PORT"; then
    log "Kinesis (CBOR) port $KINESIS_MOCK_PORT already answers: reusing it"
  else
    # Streams become ACTIVE 500 ms after CreateStream (tests wait for it); 1000 shards allowed.
    KINESIS_MOCK_CERT_PATH=$KINESIS_LOCAL/server.json KINESIS_MOCK_PLAIN_PORT=$KINESIS_MOCK_PORT \
      KINESIS_MOCK_TLS_PORT=$((KINESIS_MOCK_PORT + 1)) SHARD_LIMIT=1000 LOG_LEVEL=WARN \
      node "$KINESIS_LOCAL/main.js" >"$STATE/kinesis-mock.log" 2>&1 &
    echo "$!" >"$STATE/kinesis-mock.pid"
    STARTED+=(kinesis-mock)
    wait_port "$KINESIS_MOCK_PORT" 60 "$!" || { cat "$STATE/kinesis-mock.log" >&2; exit 1; }
    log "kinesis-local $KINESIS_LOCAL_VERSION (kinesis-mock) on 127.0.0.1:$KINESIS_MOCK_PORT (pid $!)"
  fi
  write_env
  log "environment written to $CACHE/services.env"
}

stop_one() {
  local name=$1 file=$STATE/$1.pid
  [ -f "$file" ] || return 0
  local pid data
  read -r pid data <"$file" || true
  if [ -n "${pid:-}" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    log "stopped $name (pid $pid)"
  fi
  [ -n "${data:-}" ] && [ -d "$data" ] && rm -rf "$data"
  rm -f "$file"
}

stop() {
  stop_one kinesis-mock
  stop_one kinesalite
  stop_one versitygw
}

status() {
  for s in versitygw kinesalite kinesis-mock; do
    if [ -f "$STATE/$s.pid" ] && kill -0 "$(cut -d' ' -f1 "$STATE/$s.pid")" 2>/dev/null; then
      echo "$s: running (pid $(cut -d' ' -f1 "$STATE/$s.pid"))"
    else
      echo "$s: not started by this checkout"
    fi
  done
  port_open "$S3_PORT" && echo "S3 port $S3_PORT: open" || echo "S3 port $S3_PORT: closed"
  port_open "$KINESIS_PORT" && echo "Kinesis port $KINESIS_PORT: open" || echo "Kinesis port $KINESIS_PORT: closed"
  port_open "$KINESIS_MOCK_PORT" && echo "Kinesis (CBOR) port $KINESIS_MOCK_PORT: open" || echo "Kinesis (CBOR) port $KINESIS_MOCK_PORT: closed"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  install) install ;;
  run)
    shift
    [ $# -gt 0 ] || { echo "usage: $0 run CMD..." >&2; exit 2; }
    # Stop only what this run started: servers that already answered (another checkout's, or an
    # earlier `start`) are left alone.
    trap 'for s in "${STARTED[@]}"; do stop_one "$s"; done' EXIT
    start
    # shellcheck disable=SC1091
    source "$CACHE/services.env"
    set +e
    "$@"
    code=$?
    set -e
    exit $code
    ;;
  *) echo "usage: $0 start|stop|status|install|run CMD..." >&2; exit 2 ;;
esac
