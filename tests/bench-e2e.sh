#!/usr/bin/env bash
# make bench-e2e: the reference data set from versitygw through dmsbridge into an
# immediately-acknowledging Kinesis endpoint (tests/acksink) and into kinesalite, next to the same job
# built only from Benthos core components (tests/bench/baseline-core.yaml), in one run. Prints rows/s,
# CPU seconds per million rows and peak RSS, rewrites the results section of docs/benchmarks.md and
# the chart docs/bench-e2e.svg. Run through `make bench-e2e` (tests/services.sh run starts the servers
# and exports S3_ENDPOINT, KINESIS_ENDPOINT and the credentials).
#
# Exits non-zero when a run fails (record count differs, dead-letter rows, a process dies or times
# out), never because a performance target is missed: that is printed as MISSED.
# Extra arguments go to the measuring program, e.g. `tests/bench-e2e.sh -runs 1 -md '' -svg ''`
# (see `go run ./tests/bench/cmd/bench-e2e -h`).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
: "${S3_ENDPOINT:?not set: run through tests/services.sh run (make bench-e2e)}"
: "${KINESIS_ENDPOINT:?not set: run through tests/services.sh run (make bench-e2e)}"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-e2e.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
GO=${GO:-go}
[ -x bin/dmsbridge ] || make --no-print-directory build
"$GO" build -o "$WORK/acksink" ./tests/acksink/cmd/acksink
CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w" -o "$WORK/benthos-core" ./tests/bench/cmd/benthos-core
"$GO" build -o "$WORK/bench-e2e" ./tests/bench/cmd/bench-e2e
"$WORK/bench-e2e" -root "$ROOT" -work "$WORK" -dmsbridge bin/dmsbridge -core "$WORK/benthos-core" \
  -acksink "$WORK/acksink" "$@"
