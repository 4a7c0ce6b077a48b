# syntax=docker/dockerfile:1
# The DLProv OpenTelemetry Collector: built with the OpenTelemetry Collector Builder from the same
# manifest as collector/otelcol/build.sh, run with collector/otelcol/config.yaml. From the repo root:
#   docker build -f docker/otelcol.Dockerfile -t otelcol-dlprov:0.1.0 .
# OCB_VERSION must equal OCB_VERSION in collector/otelcol/build.sh (tests/test_docker_files.py).
FROM golang:1.26-bookworm AS build
ARG OCB_VERSION=v0.165.0
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
RUN go install "go.opentelemetry.io/collector/cmd/builder@${OCB_VERSION}"
WORKDIR /src
COPY collector/otelcol/builder-config.yaml ./
# output_path (./build) is relative to this directory.
RUN builder --config builder-config.yaml --ldflags="-s -w" \
 && ./build/otelcol-dlprov components >/dev/null

FROM alpine:3.22
RUN addgroup -S -g 10001 otelcol \
 && adduser -S -D -H -u 10001 -G otelcol otelcol \
 && mkdir -p /var/lib/otelcol/queue \
 && chown -R otelcol:otelcol /var/lib/otelcol
COPY --from=build /src/build/otelcol-dlprov /usr/local/bin/otelcol-dlprov
COPY collector/otelcol/config.yaml /etc/otelcol-dlprov/config.yaml
ENV OTELCOL_BIND_HOST=0.0.0.0 \
    OTELCOL_STORAGE_DIR=/var/lib/otelcol/queue \
    DLPROV_COLLECTOR_ENDPOINT=http://dlprov-collector:4318
USER otelcol
VOLUME ["/var/lib/otelcol"]
EXPOSE 4317 4318 13133
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD wget -q -O /dev/null http://127.0.0.1:13133/ || exit 1
ENTRYPOINT ["/usr/local/bin/otelcol-dlprov"]
CMD ["--config", "/etc/otelcol-dlprov/config.yaml"]
