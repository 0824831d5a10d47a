# Multi-stage build of every verdict binary. The final image holds only the
# binaries; NATS and ClickHouse run as their own containers
# (docker-compose.yml), so `verdict up` finds them answering and starts
# neither itself.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -o /out/verdict ./services/verdict && \
    CGO_ENABLED=0 go build -trimpath -o /out/ingest ./services/ingest

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
ENV VERDICT_HTTP_ADDR=0.0.0.0:8080 \
    VERDICT_DATA_DIR=/var/lib/verdict
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/verdict"]
CMD ["up"]
