# dmsbridge container image: one static binary on a minimal non-root base.
#
#   docker build -t dmsbridge --build-arg VERSION=$(git describe --tags --always) .
#   docker run --rm dmsbridge --version
#   docker run --rm -v $PWD/my.yaml:/config.yaml:ro dmsbridge      # runs /config.yaml
#
# Both base images are build arguments so that a CI without registry access can pass locally
# imported images (tests/docker.sh does this). No `# syntax=` line on purpose: it would make
# BuildKit pull a frontend image. Works with the legacy builder and with BuildKit.
ARG GO_IMAGE=golang:1.27
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
# Module download settings are passed through so a corporate proxy / private module setup works.
# An ARG that is not passed stays empty, and Go treats an empty value as its default.
ARG GOPROXY
ARG GOSUMDB
ARG GOPRIVATE
ARG GONOSUMDB
WORKDIR /src
# Dependencies first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG DATE=unknown
# Static (no cgo), reproducible paths, stripped; time zone data compiled in (timetzdata) so
# time zone conversions work on a base image without /usr/share/zoneinfo.
RUN CGO_ENABLED=0 go build -trimpath -tags timetzdata \
      -ldflags "-s -w -X main.Version=${VERSION} -X main.DateBuilt=${DATE}" \
      -o /out/dmsbridge ./cmd/dmsbridge
# The runtime file tree, assembled here because COPY cannot skip a missing source:
#   /etc/ssl/certs/ca-certificates.crt  CA bundle of the builder (TLS to AWS endpoints)
#   /app/config/                        everything under config/: the shipped pipelines, the
#                                       reference table definition and the demo's sample data
#   /config.yaml                        config/local.yaml, the default pipeline (the embedded demo)
#   /app                                the working directory, writable by the non-root user, so
#                                       the shipped configs' relative paths (config/..., ./checkpoints,
#                                       ./dead-letter.jsonl) work unchanged; all of /app is group 0
#                                       with the owner's rights, since OpenShift runs an image as an
#                                       arbitrary user id in group 0, not as its USER
#   /app/checkpoints                    the state directory: the reference pipeline's checkpoints and
#                                       its dead letter (DEAD_LETTER_PATH below), owned by the non-root
#                                       user, so a named volume mounted there starts writable and keeps
#                                       both across containers, also with a read-only root file system
RUN mkdir -p /out/etc/ssl/certs /out/app/config /out/app/checkpoints \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ca-certificates.crt \
 && if [ -d config ]; then cp -R config/. /out/app/config/; fi \
 && if [ -f config/local.yaml ]; then cp config/local.yaml /out/config.yaml; fi \
 && chmod -R a+rX /out \
 && chown -R 65532:0 /out/app \
 && chmod -R g=u /out/app

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/ /
WORKDIR /app
# config/local.yaml reads its sample data from ${DMSBRIDGE_CONFIG_DIR}/sample.
ENV DMSBRIDGE_CONFIG_DIR=/app/config
# The shipped pipelines' dead letter goes to the state volume, next to the checkpoints: the
# checkpoint moves past a dead-lettered row, so the file holding that row must outlive the container
# as the checkpoint does, and the container may write nowhere else (read-only root file system).
ENV DEAD_LETTER_PATH=/app/checkpoints/dead-letter.jsonl
# Numeric, so Kubernetes runAsNonRoot can verify it without an /etc/passwd lookup.
USER 65532:65532
# Benthos HTTP server: /ping, /ready, /metrics (disable or move with the `http` config section).
EXPOSE 4195
ENTRYPOINT ["/dmsbridge"]
CMD ["run", "/config.yaml"]
