# Sourced by scripts/test.sh: make sure a PostgreSQL and a Redis answer, and export
# TEST_DATABASE_URL and TEST_REDIS_URL. Uses, in order: the variables if set, the local servers
# on 127.0.0.1:5432 / :6379 if they answer, else installs (Debian) and starts private ones on
# other ports in a temporary folder, stopped by stop_own_services. Never skips silently.

PY=${PY:-.venv/bin/python}
OWN_SERVICES_DIR=""
OWN_PG_BIN=""

pg_answers() {
  $PY - "$1" <<'PYEOF' >/dev/null 2>&1
import sys, psycopg
psycopg.connect(sys.argv[1], connect_timeout=3).close()
PYEOF
}

redis_answers() {
  $PY - "$1" <<'PYEOF' >/dev/null 2>&1
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=3).ping()
PYEOF
}

apt_install() {
  if ! command -v apt-get >/dev/null; then
    echo "test setup: cannot install $* (no apt-get); set TEST_DATABASE_URL / TEST_REDIS_URL" >&2
    return 1
  fi
  if [[ -z "${APT_UPDATED:-}" ]]; then apt-get update -qq >/dev/null && APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

own_dir() {
  [[ -n "$OWN_SERVICES_DIR" ]] || OWN_SERVICES_DIR=$(mktemp -d -t cryolabel-services.XXXXXX)
  chmod 755 "$OWN_SERVICES_DIR"
}

start_own_postgres() {
  echo "test setup: no PostgreSQL answers; installing and starting a private one" >&2
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql || return 1
  OWN_PG_BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")
  own_dir
  local data="$OWN_SERVICES_DIR/pg"
  mkdir -p "$data" && chown postgres "$data" 2>/dev/null || true
  local as=(); [[ $(id -u) == 0 ]] && as=(runuser -u postgres --)
  "${as[@]}" "$OWN_PG_BIN/initdb" -D "$data" -U postgres --auth=trust >/dev/null || return 1
  "${as[@]}" "$OWN_PG_BIN/pg_ctl" -D "$data" -w -l "$data/log" \
    -o "-p 55432 -k $data -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null || return 1
  TEST_DATABASE_URL="postgres://postgres@127.0.0.1:55432/cryolabel"
}

start_own_redis() {
  echo "test setup: no Redis answers; installing and starting a private one" >&2
  command -v redis-server >/dev/null || apt_install redis-server || return 1
  own_dir
  redis-server --port 56379 --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --dir "$OWN_SERVICES_DIR" --pidfile "$OWN_SERVICES_DIR/redis.pid" --logfile "$OWN_SERVICES_DIR/redis.log" || return 1
  for _ in $(seq 50); do redis_answers redis://127.0.0.1:56379/0 && break; sleep 0.1; done
  TEST_REDIS_URL="redis://127.0.0.1:56379/0"
}

stop_own_services() {
  [[ -n "$OWN_SERVICES_DIR" ]] || return 0
  if [[ -n "$OWN_PG_BIN" ]]; then
    local as=(); [[ $(id -u) == 0 ]] && as=(runuser -u postgres --)
    "${as[@]}" "$OWN_PG_BIN/pg_ctl" -D "$OWN_SERVICES_DIR/pg" -m fast stop >/dev/null 2>&1 || true
  fi
  [[ -f "$OWN_SERVICES_DIR/redis.pid" ]] && kill "$(cat "$OWN_SERVICES_DIR/redis.pid")" 2>/dev/null || true
  rm -rf "$OWN_SERVICES_DIR"
}

ensure_services() {
  if [[ -z "${TEST_DATABASE_URL:-}" ]]; then
    if pg_answers "postgres://postgres@127.0.0.1:5432/postgres"; then
      TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/cryolabel"
    else
      start_own_postgres || { echo "test setup: FAILED: no PostgreSQL available (set TEST_DATABASE_URL)" >&2; return 1; }
    fi
  fi
  if [[ -z "${TEST_REDIS_URL:-}" ]]; then
    if redis_answers "redis://127.0.0.1:6379/0"; then
      TEST_REDIS_URL="redis://127.0.0.1:6379/0"
    else
      start_own_redis || { echo "test setup: FAILED: no Redis available (set TEST_REDIS_URL)" >&2; return 1; }
    fi
  fi
  local pg_admin="${TEST_DATABASE_URL%/*}/postgres"
  pg_answers "$pg_admin" || { echo "test setup: FAILED: PostgreSQL at $TEST_DATABASE_URL does not answer" >&2; return 1; }
  redis_answers "$TEST_REDIS_URL" || { echo "test setup: FAILED: Redis at $TEST_REDIS_URL does not answer" >&2; return 1; }
  export TEST_DATABASE_URL TEST_REDIS_URL
  echo "test setup: PostgreSQL $TEST_DATABASE_URL, Redis $TEST_REDIS_URL"
}

ensure_tools() {
  # Headless Chromium for the browser tests, docker-compose to validate docker-compose.yml.
  if [[ ! -x /usr/bin/chromium ]]; then
    echo "test setup: installing Debian's chromium for the browser tests" >&2
    apt_install chromium fonts-dejavu-core || { echo "test setup: FAILED: cannot install chromium" >&2; return 1; }
  fi
  if ! command -v docker-compose >/dev/null; then
    echo "test setup: installing Debian's docker-compose to validate docker-compose.yml" >&2
    apt_install docker-compose || { echo "test setup: FAILED: cannot install docker-compose" >&2; return 1; }
  fi
}
