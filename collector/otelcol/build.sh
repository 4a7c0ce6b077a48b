#!/usr/bin/env bash
# Build the DLProv OpenTelemetry Collector (collector/otelcol/build/otelcol-dlprov) from the Go
# module proxy with the OpenTelemetry Collector Builder (ocb), pinned below.
#
# Usage: collector/otelcol/build.sh [--force]
#   --force (or OTELCOL_FORCE_BUILD=1)  rebuild even when the binary is up to date
# Env: GO (go executable; default: go on PATH, else /usr/local/go/bin/go),
#      OTELCOL_LDFLAGS (default "-s -w": strip symbols, ~30% smaller binary).
# Idempotent: skips the build when the binary exists, is newer than builder-config.yaml and this
# script, and answers --version. A cold build (empty Go module and build caches) takes about
# 2-3 minutes on 2 cores; a warm one about 1 minute.
set -euo pipefail

OCB_VERSION=v0.165.0 # must equal the go.opentelemetry.io/collector/* v0.x versions in the manifest

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MANIFEST="$HERE/builder-config.yaml"
BUILD_DIR="$HERE/build"
GOBIN_DIR="$BUILD_DIR/bin"
BINARY="$BUILD_DIR/otelcol-dlprov"
LDFLAGS="${OTELCOL_LDFLAGS:--s -w}"

log() { printf '\033[1m[otelcol]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[otelcol] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }

FORCE="${OTELCOL_FORCE_BUILD:-0}"
case "${1:-}" in
  --force) FORCE=1 ;;
  "") ;;
  -h|--help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument '$1' (usage: $0 [--force])" ;;
esac

[ -f "$MANIFEST" ] || die "builder manifest not found: $MANIFEST"

verify() {
  "$BINARY" --version >/dev/null 2>&1 || return 1
  local comps
  comps="$("$BINARY" components 2>&1)" || return 1
  local c
  for c in 'name: otlp$' 'name: memory_limiter' 'name: batch' 'name: otlp_http' 'name: debug' \
           'name: file_storage' 'name: health_check' 'scheme: env'; do
    grep -Eq "$c" <<<"$comps" || { log "component missing from $BINARY: ${c%\$}"; return 1; }
  done
}

if [ "$FORCE" != 1 ] && [ -x "$BINARY" ] && [ "$BINARY" -nt "$MANIFEST" ] \
   && [ "$BINARY" -nt "${BASH_SOURCE[0]}" ] && verify; then
  log "up to date: $BINARY ($("$BINARY" --version))"
  echo "$BINARY"
  exit 0
fi

# --- Go ----------------------------------------------------------------------------------------
GO="${GO:-}"
if [ -z "$GO" ]; then
  if command -v go >/dev/null 2>&1; then GO="$(command -v go)"
  elif [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go
  else die "Go is not installed (no 'go' on PATH nor /usr/local/go/bin/go); the collector is built from source"
  fi
fi
GOVER="$("$GO" env GOVERSION 2>/dev/null)" || die "'$GO env GOVERSION' failed: is $GO a Go toolchain?"
case "$GOVER" in
  go1.2[4-9]*|go1.[3-9][0-9]*) ;;
  *) die "Go >= 1.24 is needed to build collector $OCB_VERSION (found $GOVER at $GO)" ;;
esac
export PATH="$(dirname "$GO"):$PATH"  # ocb runs 'go' from PATH

# --- builder (ocb) -----------------------------------------------------------------------------
mkdir -p "$GOBIN_DIR"
OCB="$GOBIN_DIR/builder"
if [ ! -x "$OCB" ] || ! "$OCB" version 2>&1 | grep -q "$OCB_VERSION"; then
  log "installing the OpenTelemetry Collector Builder $OCB_VERSION into $GOBIN_DIR ($GOVER)"
  GOBIN="$GOBIN_DIR" "$GO" install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION" \
    || die "could not install go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION from the Go module proxy ($("$GO" env GOPROXY))"
fi

# --- the collector -----------------------------------------------------------------------------
log "building $BINARY from $(basename "$MANIFEST") with ocb $OCB_VERSION (ldflags: '$LDFLAGS')"
start=$(date +%s)
rm -f "$BINARY"
# output_path in the manifest is relative to this directory; ocb itself runs 'go build -trimpath'.
( cd "$HERE" && "$OCB" --config "$MANIFEST" --ldflags="$LDFLAGS" ) \
  || die "the Collector Builder failed (see above). A 'module ... not found' or version conflict means the manifest mixes releases: keep every go.opentelemetry.io/collector module at $OCB_VERSION (v1 modules at the matching v1.x) and contrib at the matching release"
[ -x "$BINARY" ] || die "the builder finished but $BINARY was not produced (check output_path in $MANIFEST)"
verify || die "$BINARY was built but does not run or lacks components (see above)"
log "built $("$BINARY" --version) in $(( $(date +%s) - start ))s"
echo "$BINARY"
