# dmsbridge: build, test, benchmark, lint and package.
# `make test` starts the real S3 (versitygw) and Kinesis (kinesalite; kinesis-mock for CBOR) servers itself and stops them after.

SHELL        := /bin/bash
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
DATE         ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS      := -s -w -X main.Version=$(VERSION) -X main.DateBuilt=$(DATE)
BIN          := bin/dmsbridge
GO           ?= go
# Everything is built and tested with Go 1.27.3, which the go command fetches from the module proxy
# the first time (about 76 MB): the standard library of Go 1.26.8 (this machine's) has
# vulnerabilities reachable from dmsbridge (govulncheck: net/http, crypto/tls, crypto/x509, os,
# mime/multipart) fixed only in later releases. `make GOTOOLCHAIN=local ...` uses the machine's Go.
export GOTOOLCHAIN := go1.27.3
# -race: every test runs under Go's race detector (needs cgo, i.e. a C compiler such as gcc).
TESTFLAGS    ?= -count=1 -race -timeout 20m
# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can fail a target with a bare
# "context deadline exceeded" at the deadline on a loaded machine (golang/go#75804, fixed in Go 1.27;
# kept so that `make GOTOOLCHAIN=local fuzz` works on Go 1.26 too).
FUZZTIME     ?= 100000x
STATICCHECK  := .cache/test-tools/staticcheck-v0.8.2-$(GOTOOLCHAIN)/staticcheck

.PHONY: all build run-demo test test-unit fuzz bench bench-e2e lint docs docs-check docker clean services-start services-stop

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/dmsbridge

# The embedded default: a local directory in the DMS layout -> JSON lines on stdout.
run-demo: build
	$(BIN) run config/local.yaml

# Unit, integration and end-to-end tests against the real servers, under the race detector, then a
# bounded fuzz run.
test: build
	tests/services.sh run $(GO) test $(TESTFLAGS) ./...
	$(MAKE) --no-print-directory fuzz

# Each fuzz target for FUZZTIME executions (seed corpora under testdata/fuzz are also run by `go test`).
fuzz:
	@set -e; for pkg in $$($(GO) list ./plugins/...); do \
	  list=$$($(GO) test -list '^Fuzz' $$pkg); \
	  for f in $$(echo "$$list" | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

bench: build
	tests/services.sh run $(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./plugins/...

bench-e2e: build
	tests/services.sh run tests/bench-e2e.sh

lint: build
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@[ -x $(STATICCHECK) ] || GOBIN=$(CURDIR)/$(dir $(STATICCHECK)) $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	$(STATICCHECK) ./...
	$(BIN) lint --skip-env-var-check $$(find config -name '*.yaml' ! -name '*_benthos_test.yaml' ! -path 'config/sample/*')

docs: build
	$(GO) run ./cmd/gendocs docs/components

docs-check: build
	@tmp=$$(mktemp -d); $(GO) run ./cmd/gendocs $$tmp; \
	if ! diff -r $$tmp docs/components >/dev/null; then echo "docs/components is stale: run make docs"; diff -r $$tmp docs/components | head -20; rm -rf $$tmp; exit 1; fi; rm -rf $$tmp

# Builds the image without a registry, runs the demo and the reference pipeline in it against the
# real servers (host network), checks the output, tears everything down.
docker:
	tests/services.sh run tests/docker.sh

services-start:
	tests/services.sh start

services-stop:
	tests/services.sh stop

clean:
	rm -rf bin
