#!/usr/bin/env bash
# `make demo`: Daphne on 127.0.0.1:8000 while the embedded SQLite database is migrated and the demo users and
# data are created (demo_setup), then one Celery worker (both queues). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
# The demo runs with DEBUG on (tracebacks in the browser); a deployment leaves it off.
export DEBUG=${DEBUG:-1}
HOST=${CRYOLABEL_HOST:-127.0.0.1}
PORT=${CRYOLABEL_PORT:-8000}
LOG_DIR=${CRYOLABEL_VAR_DIR:-var}/log  # beside the demo's database and files
mkdir -p "$LOG_DIR"

worker_pid=""
web_pid=""
cleanup() {
  # Background children of a script ignore Ctrl-C's SIGINT, so stop them with TERM here.
  trap - INT TERM EXIT
  for pid in $web_pid $worker_pid; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $web_pid $worker_pid; do wait "$pid" 2>/dev/null || true; done
  echo "Cryolabel stopped."
}
trap cleanup INT TERM EXIT

# The web server starts beside the demo data (niced, so that its ~2 s of imports never slow them); the addresses
# are printed once the data are in (a page opened earlier shows what is in so far). The worker starts after them:
# the jobs the simulated crowd queues must not compete with it for the SQLite writer, and it writes and ingests
# the demo's scenes and tracks while people look round.
nice -n 5 .venv/bin/daphne -b "$HOST" -p "$PORT" eoplatform.asgi:application &
web_pid=$!

$PY manage.py demo_setup  # migrates while its worker processes write the demo files

.venv/bin/celery -A eoplatform worker -Q cpu,gpu --concurrency 1 -n "demo@%h" --loglevel INFO \
  >"$LOG_DIR/worker.log" 2>&1 &
worker_pid=$!

cat <<MSG

  Cryolabel is running on http://$HOST:$PORT/
    log in:    http://$HOST:$PORT/accounts/login/   (users above)
    jobs:      http://$HOST:$PORT/jobs/
    API docs:  http://$HOST:$PORT/api/docs/
    health:    http://$HOST:$PORT/healthz
  Worker log: $LOG_DIR/worker.log. Press Ctrl-C to stop.

MSG
wait "$web_pid" || true
