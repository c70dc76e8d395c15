#!/usr/bin/env bash
# The whole test suite: brings up what the tests need, builds once, runs the
# README walkthroughs against the real binaries, then every Rust test.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
target_dir=${CARGO_TARGET_DIR:-$root/target}
export CARGO_TARGET_DIR=$target_dir

log() { printf '== %s\n' "$*" >&2; }

# --- Postgres -----------------------------------------------------------------
pg_up() { pg_isready -q -h "$1" -p "$2" 2>/dev/null || (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
ensure_postgres() {
  if [ -n "${TEST_DATABASE_URL:-}" ]; then log "Postgres: using TEST_DATABASE_URL"; return; fi
  if pg_up 127.0.0.1 5432; then log "Postgres: reusing 127.0.0.1:5432"; return; fi
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    log "Postgres: starting the local cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 50); do pg_up 127.0.0.1 5432 && return; sleep 0.2; done
  fi
  local bin; bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  if [ -z "$bin" ]; then log "Postgres: not installed (apt-get install postgresql)"; exit 1; fi
  local dir port; dir=$(mktemp -d /tmp/ec-pg.XXXXXX); port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  log "Postgres: throwaway server on port $port in $dir"
  local as=(); [ "$(id -u)" = 0 ] && { chown -R postgres "$dir"; as=(runuser -u postgres --); }
  "${as[@]}" "$bin/initdb" -q -A trust -U postgres -D "$dir/data" >/dev/null
  "${as[@]}" "$bin/pg_ctl" -s -D "$dir/data" -l "$dir/log" -o "-h 127.0.0.1 -p $port -k $dir" -w start
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

# --- Redis --------------------------------------------------------------------
ensure_redis() {
  if [ -n "${TEST_REDIS_URL:-}" ]; then log "Redis: using TEST_REDIS_URL"; return; fi
  if (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then log "Redis: reusing 127.0.0.1:6379"; return; fi
  if ! command -v redis-server >/dev/null; then log "Redis: not installed (apt-get install redis-server)"; exit 1; fi
  log "Redis: starting on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && return; sleep 0.1; done
  log "Redis did not start"; exit 1
}

# --- A Redis Cluster of three masters (the stats service's cluster mode) ------------
cluster_ok() { [ "$(redis-cli -p "$1" cluster info 2>/dev/null | tr -d '\r' | grep -c '^cluster_state:ok$')" = 1 ]; }
ensure_redis_cluster() {
  if [ -n "${TEST_REDIS_CLUSTER_URLS:-}" ]; then log "Redis Cluster: using TEST_REDIS_CLUSTER_URLS"; return; fi
  local ports=(7100 7101 7102) port ok=1
  for port in "${ports[@]}"; do cluster_ok "$port" || ok=0; done
  if [ "$ok" = 1 ]; then log "Redis Cluster: reusing 127.0.0.1:7100-7102"; return; fi
  local dir=/tmp/ec-redis-cluster
  log "Redis Cluster: starting three masters on 127.0.0.1:7100-7102 (in $dir)"
  for port in "${ports[@]}"; do redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; done
  rm -rf "$dir"
  for port in "${ports[@]}"; do
    mkdir -p "$dir/$port"
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file "$dir/$port/nodes.conf" --dir "$dir/$port" \
      --save "" --appendonly no --daemonize yes --logfile "$dir/$port/log" >/dev/null
  done
  for port in "${ports[@]}"; do
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  redis-cli --cluster create 127.0.0.1:7100 127.0.0.1:7101 127.0.0.1:7102 \
    --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 \
    || { log "redis-cli --cluster create failed: $(cat "$dir/create.log")"; exit 1; }
  for _ in $(seq 100); do
    ok=1; for port in "${ports[@]}"; do cluster_ok "$port" || ok=0; done
    [ "$ok" = 1 ] && return; sleep 0.2
  done
  log "the Redis Cluster did not become ok"; exit 1
}

# --- NATS with JetStream (the durable mode's tests) ------------------------------
ensure_nats() {
  if [ -n "${TEST_NATS_URL:-}" ]; then log "NATS: using TEST_NATS_URL"; return; fi
  if (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then log "NATS: reusing 127.0.0.1:4222"; return; fi
  local bin; bin=$(command -v nats-server || ls /usr/sbin/nats-server 2>/dev/null || true)
  if [ -z "$bin" ]; then log "NATS: not installed (apt-get install nats-server)"; exit 1; fi
  local dir; dir=$(mktemp -d /tmp/ec-nats.XXXXXX)
  log "NATS: starting with JetStream on 127.0.0.1:4222 (store in $dir)"
  setsid "$bin" -js -a 127.0.0.1 -p 4222 -sd "$dir" >"$dir/log" 2>&1 < /dev/null &
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && return; sleep 0.1; done
  log "NATS did not start: $(cat "$dir/log")"; exit 1
}

ensure_postgres
ensure_redis
ensure_redis_cluster
ensure_nats

# --- Build once ---------------------------------------------------------------
log "building (target dir: $target_dir)"
cargo build --workspace --all-targets --locked

# --- README walkthrough with a reflection-only client --------------------------
venv="$target_dir/python-venv"
wanted=$(sha256sum tests/python/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$venv/requirements.sha256" 2>/dev/null)" != "$wanted" ]; then
  log "installing the Python test clients into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
  echo "$wanted" > "$venv/requirements.sha256"
fi
log "Kubernetes manifests (offline)"
"$venv/bin/python" tests/python/check_manifests.py deploy "$target_dir/debug"
log "README walkthroughs: the one command (demo included), then the services on their own"
"$venv/bin/python" tests/python/readme_walkthrough.py README.md \
  "$target_dir/debug/eventconnectors" "$target_dir/debug/control-plane" "$target_dir/debug/data-plane"

# --- The web console, used in headless Chromium ------------------------------------
ensure_chromium() {
  if [ -n "${CHROMIUM:-}" ]; then return; fi
  if ! command -v chromium >/dev/null; then
    log "Chromium: installing Debian's chromium"
    local sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get install -y -q chromium >/dev/null 2>&1 \
      || { "${sudo[@]}" apt-get update -q >/dev/null && "${sudo[@]}" apt-get install -y -q chromium >/dev/null; } \
      || { log "Chromium: cannot install (apt-get install chromium)"; exit 1; }
  fi
  CHROMIUM=$(command -v chromium); export CHROMIUM
}
ensure_chromium
console_dir="$target_dir/console-test"
wanted=$(cat tests/console/package.json tests/console/package-lock.json | sha256sum | cut -d' ' -f1)
if [ "$(cat "$console_dir/lock.sha256" 2>/dev/null)" != "$wanted" ]; then
  log "installing playwright-core into $console_dir"
  rm -rf "$console_dir" && mkdir -p "$console_dir"
  cp tests/console/package.json tests/console/package-lock.json "$console_dir/"
  (cd "$console_dir" && npm ci --no-audit --no-fund --silent)
  echo "$wanted" > "$console_dir/lock.sha256"
fi
log "web console in headless Chromium (screenshots: $target_dir/console-screenshots)"
node tests/console/console.mjs "$target_dir/debug/eventconnectors" "$console_dir/node_modules" \
  "$target_dir/console-screenshots"

# --- Rust tests -----------------------------------------------------------------
log "Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
