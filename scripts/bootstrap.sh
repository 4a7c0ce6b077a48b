#!/usr/bin/env bash
# Bootstrap .venv from nothing: Python packages, the embedded MonetDB (monetdbe 0.11, retagged),
# and Debian's graphviz when `dot` is missing. Usage: scripts/bootstrap.sh [EXTRAS]
# EXTRAS is a comma list of pyproject extras (default: keras,dev).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-keras,dev}"
PY="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
MONETDBE_VERSION=0.11
log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }
die() { printf '\033[31m[bootstrap] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }

"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11+ is needed ($PY is $("$PY" -V 2>&1))"

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV with $("$PY" -V)"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
"$VPY" -m pip install --quiet --upgrade pip setuptools wheel

# --- embedded MonetDB -------------------------------------------------------------------------
if "$VPY" scripts/check_monetdbe.py >/dev/null 2>&1; then
  log "monetdbe $MONETDBE_VERSION already installed and working"
else
  log "installing monetdbe $MONETDBE_VERSION: PyPI has a real embedded MonetDB only in the cp310 wheel;"
  log "its extension uses the stable ABI (abi3), so we retag it cp310-abi3 for Python $("$VPY" -c 'import sys;print("%d.%d"%sys.version_info[:2])')"
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  "$VPY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.10 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d "$tmp/dl" "monetdbe==$MONETDBE_VERSION" || die "could not download monetdbe $MONETDBE_VERSION (cp310 wheel) from PyPI"
  whl="$(ls "$tmp"/dl/monetdbe-"$MONETDBE_VERSION"-cp310-cp310-*.whl 2>/dev/null | head -n1)"
  [ -n "$whl" ] || die "the monetdbe $MONETDBE_VERSION cp310 wheel was not found in the download"
  # The wheel also ships a top-level 'tests' package that would shadow ours: drop it.
  "$VPY" scripts/repack_monetdbe.py "$whl" "$tmp/out" || die "could not retag $whl"
  fixed="$(ls "$tmp"/out/monetdbe-*abi3*.whl | head -n1)"
  "$VPY" -m pip uninstall --quiet --yes monetdbe >/dev/null 2>&1 || true
  log "installing $(basename "$fixed")"
  "$VPY" -m pip install --quiet "$fixed" || die "pip refused the retagged wheel $fixed"
  "$VPY" scripts/check_monetdbe.py || die "monetdbe installed but an embedded database could not be opened (see above)"
fi

# --- Debian packages the project needs beside Python ------------------------------------------
# debian_install PACKAGE WHY: install it with apt-get, or warn where there is no apt-get
debian_install() {
  if command -v apt-get >/dev/null 2>&1; then
    log "installing $1 from Debian ($2)"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq >/dev/null && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null \
      || die "apt-get install $1 failed"
  else
    log "WARNING: $1 is not installed and apt-get is unavailable: $2 will fail with a clear error"
  fi
}

command -v dot >/dev/null 2>&1 || debian_install graphviz "PNG/SVG provenance graphs"
command -v dot >/dev/null 2>&1 && log "graphviz: $(dot -V 2>&1)"

# chromium: the dashboard tests drive it with Playwright (never a downloaded browser)
if [[ ",$EXTRAS," == *",dev,"* && ",$EXTRAS," == *",collector,"* ]] && ! command -v chromium >/dev/null 2>&1; then
  debian_install chromium "the dashboard tests' headless browser"
fi

# --- the project ------------------------------------------------------------------------------
# Three distributions share the dlprov_otel namespace: the core (.), integrations/ and
# collector/. EXTRAS names the core's extras, the frameworks (keras, torch, transformers) and `collector`.
core=(); fw=(); targets=()
IFS=',' read -ra wanted <<< "$EXTRAS"
for e in "${wanted[@]}"; do
  case "$e" in
    keras|torch|transformers) fw+=("$e") ;;
    collector) ;;
    "") ;;
    *) core+=("$e") ;;
  esac
done
join() { local IFS=','; echo "$*"; }
targets+=(-e ".[$(join "${core[@]}")]")
targets+=(-e "./integrations[$(join "${fw[@]}")]")
[[ ",$EXTRAS," == *",collector,"* ]] && targets+=(-e "./collector")
log "installing dlprov-otel, dlprov-otel-integrations[$(join "${fw[@]}")]$([[ ",$EXTRAS," == *",collector,"* ]] && echo ", dlprov-otel-collector") (editable)"
# compat mode puts the three source roots on sys.path, so the regular dlprov_otel package
# is found first and extend_path adds the other two (a meta-path finder would lose to them)
"$VPY" -m pip install --quiet --config-settings editable_mode=compat "${targets[@]}"
"$VPY" scripts/check_monetdbe.py
# an editable install compiles no bytecode (a wheel's does): compile it now, or every process
# would compile what it imports where PYTHONDONTWRITEBYTECODE is set (~30 ms per import of the SDK)
"$VPY" -m compileall -q dlprov_otel integrations/src collector/src >/dev/null
log "ready: $VENV ($("$VPY" -c 'import dlprov_otel; print("dlprov_otel", dlprov_otel.__version__)'))"
