#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (FUZZTIME, default 30s each).
# Seed corpora live in each package's testdata/fuzz/<Target>/ and in f.Add
# calls; `go test` alone replays them as regression tests.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-30s}"
targets=(
  "./plugins/dmscsv FuzzSplit"
  "./plugins/dmsjson FuzzAppendString"
  "./plugins/tabledef FuzzParse"
  "./plugins/tabledef FuzzParseInvariants"
  "./plugins/csvjson FuzzProcessRow"
)
for t in "${targets[@]}"; do
  set -- $t
  echo "== $1 $2 ($FUZZTIME)"
  go test "$1" -run '^$' -fuzz "^$2\$" -fuzztime "$FUZZTIME"
done
