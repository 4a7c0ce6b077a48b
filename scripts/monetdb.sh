#!/usr/bin/env bash
# A real MonetDB server for the tests and for users without a MonetDB package.
#
# Usage: scripts/monetdb.sh build|start|stop|url|status
#   build   build MonetDB from source once into a cache outside the repository (reused while the
#           source tarball's sha256 is unchanged); a lock file keeps two builds from running at once
#   start   build if needed, start mserver5 on 127.0.0.1 (a free port, or the one this state dir
#           used last), wait until pymonetdb can connect, print the monetdb:// URL
#   stop    stop the server started from this state dir
#   url     print the URL of the running server (exit 1 when none runs)
#   status  say whether it runs
# Env:
#   DLPROV_MONETDB_SOURCE  the source tarball (default: the first monetdb/MonetDB-11.45.17.tar.xz found
#                          in a folder beside the repository)
#   DLPROV_CACHE           cache root (default: ~/.cache/dlprov); the build goes to
#                          $DLPROV_CACHE/monetdb-<sha256 prefix of the tarball>
#   DLPROV_MONETDB_STATE   the server's state dir: database, log, pid, port
#                          (default: $DLPROV_CACHE/monetdb-state)
#   DLPROV_MONETDB_DB      database name (default: dlprov)
#   DLPROV_MONETDB_PORT    port to listen on (default: the last one of this state dir, else free)
#   DLPROV_MONETDB_JOBS    build jobs (default: the number of CPUs)
#   DLPROV_MONETDB_READY_S readiness deadline in seconds (default: 180)
# Any other MonetDB (Debian/Fedora packages, the docker compose file) works as well: point the
# store at it with a monetdb://user:password@host:port/database URL.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
TARBALL="MonetDB-11.45.17.tar.xz"
beside() { for f in "$REPO"/../*/monetdb/"$TARBALL"; do [ -f "$f" ] && { echo "$f"; return; }; done; echo "$REPO/../monetdb/$TARBALL"; }
SOURCE="${DLPROV_MONETDB_SOURCE:-$(beside)}"
CACHE="${DLPROV_CACHE:-$HOME/.cache/dlprov}"
STATE="${DLPROV_MONETDB_STATE:-$CACHE/monetdb-state}"
DB="${DLPROV_MONETDB_DB:-dlprov}"
JOBS="${DLPROV_MONETDB_JOBS:-$(nproc 2>/dev/null || echo 2)}"
READY_S="${DLPROV_MONETDB_READY_S:-180}"

log() { printf '\033[1m[monetdb]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[monetdb] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }

# Debian packages the build needs (MonetDB's own build documentation lists them)
BUILD_DEBS=(bison libssl-dev libpcre3-dev zlib1g-dev liblz4-dev libbz2-dev liblzma-dev
  libxml2-dev libreadline-dev pkg-config ninja-build libcurl4-openssl-dev uuid-dev cmake xz-utils)
CMAKE_FLAGS=(-DCMAKE_BUILD_TYPE=Release -DRELEASE_VERSION=ON -DTESTING=OFF -DASSERT=OFF
  -DSTRICT=OFF -DPY3INTEGRATION=OFF -DRINTEGRATION=OFF -DFITS=OFF -DGEOM=OFF -DNETCDF=OFF
  -DSHP=OFF -DODBC=OFF -DCINTEGRATION=OFF)

python_bin() {
  if [ -x "$REPO/.venv/bin/python" ]; then echo "$REPO/.venv/bin/python"; else echo python3; fi
}

prefix() {
  [ -f "$SOURCE" ] || die "MonetDB source not found: $SOURCE
  set DLPROV_MONETDB_SOURCE to a MonetDB source tarball (e.g. MonetDB-11.45.17.tar.xz from
  https://www.monetdb.org/downloads/sources/), or use any MonetDB server with a monetdb:// URL"
  local sum
  sum="$(sha256sum "$SOURCE" | cut -c1-16)"
  echo "$CACHE/monetdb-$sum"
}

install_debs() {
  local missing=() p
  for p in "${BUILD_DEBS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 \
    || die "build packages missing (${missing[*]}) and apt-get is unavailable: install them, or point DLProv at an existing MonetDB"
  log "installing the build packages: ${missing[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null \
    && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

cmd_build() {
  local pfx; pfx="$(prefix)"
  [ -x "$pfx/bin/mserver5" ] && [ -f "$pfx/.built" ] && { echo "$pfx"; return 0; }
  mkdir -p "$CACHE"
  exec 9>"$pfx.lock"
  if ! flock -n 9; then
    log "another build of $pfx is running; waiting for it"
    flock 9
  fi
  if [ -x "$pfx/bin/mserver5" ] && [ -f "$pfx/.built" ]; then echo "$pfx"; return 0; fi
  install_debs
  local work="$pfx.work" start; start=$(date +%s)
  rm -rf "$pfx"
  if [ -f "$work/build/build.ninja" ]; then
    log "resuming the interrupted build in $work"
  else
    rm -rf "$work"; mkdir -p "$work/build"
    log "unpacking $(basename "$SOURCE") into $work"
    tar -xJf "$SOURCE" -C "$work" || die "could not unpack $SOURCE"
    local src; src="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'MonetDB*' | head -1)"
    [ -n "$src" ] || die "$SOURCE holds no MonetDB-* folder"
    log "configuring (CMake, Ninja, Release) into $pfx"
    cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_INSTALL_PREFIX="$pfx" "${CMAKE_FLAGS[@]}" \
      >"$work/configure.log" 2>&1 || { tail -30 "$work/configure.log" >&2; rm -f "$work/build/build.ninja"; die "cmake failed (log: $work/configure.log)"; }
  fi
  log "building with $JOBS jobs (3-4 min on 2 quiet cores, 7-8 under load; log: $work/build.log)"
  ninja -C "$work/build" -j "$JOBS" install >"$work/build.log" 2>&1 \
    || { tail -30 "$work/build.log" >&2; die "the build failed (log: $work/build.log)"; }
  [ -x "$pfx/bin/mserver5" ] || die "the build finished but $pfx/bin/mserver5 is missing"
  touch "$pfx/.built"
  rm -rf "$work"
  log "built MonetDB into $pfx in $(( $(date +%s) - start ))s"
  echo "$pfx"
}

# alive: exists and is not a zombie (a killed server nobody has reaped yet)
alive() { kill -0 "$1" 2>/dev/null && ! grep -qE '^[0-9]+ \(.*\) Z' "/proc/$1/stat" 2>/dev/null; }
pid_alive() { [ -f "$STATE/mserver5.pid" ] && alive "$(cat "$STATE/mserver5.pid")"; }
url_of() { echo "monetdb://monetdb:monetdb@127.0.0.1:$1/$DB"; }

free_port() {
  "$(python_bin)" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

port_free() {
  "$(python_bin)" -c "import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(('127.0.0.1',$1))
except OSError: sys.exit(1)"
}

wait_ready() { # PORT PID: a real connection and query, up to READY_S seconds
  "$(python_bin)" - "$1" "$2" "$DB" "$READY_S" <<'EOF'
import logging, os, sys, time
import pymonetdb
logging.getLogger("pymonetdb").setLevel(logging.CRITICAL)  # "could not connect" while it starts
port, pid, db, limit = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
deadline, last = time.monotonic() + limit, None
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        zombie = True
    if zombie:
        sys.exit(f"mserver5 (pid {pid}) exited before accepting connections")
    try:
        conn = pymonetdb.connect(hostname="127.0.0.1", port=port, database=db,
                                 username="monetdb", password="monetdb", connect_timeout=5)
        cur = conn.cursor(); cur.execute("SELECT 1"); cur.fetchall(); conn.close()
        sys.exit(0)
    except Exception as exc:  # not up yet: refused, reset, or still loading the catalog
        last = exc
        time.sleep(0.2)  # poll interval while waiting on the server, not a fixed wait
sys.exit(f"mserver5 did not accept connections on 127.0.0.1:{port} within {limit:.0f}s: {last}")
EOF
}

cmd_start() {
  local pfx; pfx="$(cmd_build)"
  mkdir -p "$STATE"
  if pid_alive && [ -f "$STATE/port" ]; then
    local port; port="$(cat "$STATE/port")"
    if wait_ready "$port" "$(cat "$STATE/mserver5.pid")"; then url_of "$port"; return 0; fi
  fi
  local port="${DLPROV_MONETDB_PORT:-}"
  if [ -z "$port" ] && [ -f "$STATE/port" ] && port_free "$(cat "$STATE/port")"; then
    port="$(cat "$STATE/port")"
  fi
  [ -n "$port" ] || port="$(free_port)"
  echo "$port" >"$STATE/port"
  log "starting mserver5 on 127.0.0.1:$port (database $DB in $STATE, log $STATE/mserver5.log)"
  # setsid: the server outlives this script and the caller's terminal
  setsid "$pfx/bin/mserver5" --dbpath="$STATE/$DB" --set mapi_listenaddr=127.0.0.1 \
    --set mapi_port="$port" --set monet_daemon=yes >>"$STATE/mserver5.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$STATE/mserver5.pid"
  if ! wait_ready "$port" "$pid"; then
    tail -20 "$STATE/mserver5.log" >&2 || true
    kill "$pid" 2>/dev/null || true
    die "mserver5 did not come up (log: $STATE/mserver5.log)"
  fi
  url_of "$port" | tee "$STATE/url"
}

cmd_stop() {
  if ! pid_alive; then log "no server runs from $STATE"; rm -f "$STATE/mserver5.pid"; return 0; fi
  local pid; pid="$(cat "$STATE/mserver5.pid")"
  kill -TERM "$pid"
  local i
  for i in $(seq 1 600); do  # up to 60 s for a clean shutdown (it flushes its write-ahead log)
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then log "mserver5 $pid ignored SIGTERM for 60s; killing it"; kill -KILL "$pid"; fi
  rm -f "$STATE/mserver5.pid"
  log "stopped mserver5 (pid $pid)"
}

cmd_url() {
  pid_alive && [ -f "$STATE/port" ] || die "no MonetDB server runs from $STATE (start one: scripts/monetdb.sh start)"
  url_of "$(cat "$STATE/port")"
}

case "${1:-}" in
  build) cmd_build ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  url) cmd_url ;;
  status) if pid_alive; then echo "running: $(cmd_url)"; else echo "stopped"; exit 1; fi ;;
  -h|--help|"") sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ] ;;
  *) die "unknown command '$1' (usage: $0 build|start|stop|url|status)" ;;
esac
