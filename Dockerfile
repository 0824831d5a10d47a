# Multi-stage build of every verdict binary: verdict (the CLI and `verdict
# up`), ingest, notifier, rules and gateway. The final image holds only the binaries; NATS
# and ClickHouse run as their own containers (docker-compose.yml), so
# `verdict up` finds them answering and starts neither itself.
#
#   docker build --build-arg REVISION=$(git rev-parse HEAD) --build-arg VERSION=$(git describe --always) -t verdict .
#
# VERSION and REVISION end up in verdict_build_info: the build context has no
# .git (.dockerignore), so the Go toolchain cannot stamp them itself.
FROM golang:1.26-bookworm AS build
ARG VERSION=""
ARG REVISION=""
WORKDIR /src
# Modules first, so the download layer is cached while only code changes.
COPY go.work go.work.sum ./
COPY pkg/go.mod pkg/go.sum pkg/
COPY schemas/go.mod schemas/
COPY services/verdict/go.mod services/verdict/go.sum services/verdict/
COPY services/ingest/go.mod services/ingest/go.sum services/ingest/
COPY services/notifier/go.mod services/notifier/go.sum services/notifier/
COPY services/rules/go.mod services/rules/go.sum services/rules/
COPY services/gateway/go.mod services/gateway/go.sum services/gateway/
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/root/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    ldflags="-s -w -X github.com/verdictlabs/verdict/pkg/web.Version=${VERSION} -X github.com/verdictlabs/verdict/pkg/web.Revision=${REVISION}"; \
    for s in verdict ingest notifier rules gateway; do \
        CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o /out/bin/$s ./services/$s; \
    done; \
    mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bin/ /usr/local/bin/
# The data directory belongs to the nonroot user (65532); a named volume
# mounted there starts with this ownership.
COPY --from=build --chown=65532:65532 /out/data /var/lib/verdict
ENV VERDICT_HTTP_ADDR=0.0.0.0:8080 \
    VERDICT_DATA_DIR=/var/lib/verdict
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/verdict"]
CMD ["up"]
