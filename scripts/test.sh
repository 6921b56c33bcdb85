#!/usr/bin/env bash
# `make test`: the suite against the real services (PostgreSQL, Redis, a Celery worker on Redis, Daphne with
# channels_redis) and, side by side, in the embedded mode (SQLite, the filesystem broker, no Redis); a test
# whose outcome cannot depend on the mode runs in one of the two. Extra arguments go to pytest (e.g.
# `scripts/test.sh -k jobs`).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
source scripts/test-services.sh
var_pg="" var_lite="" reports="" pid_pg="" pid_lite=""
cleanup() {
  for pid in $pid_pg $pid_lite; do kill "$pid" 2>/dev/null; done
  for pid in $pid_pg $pid_lite; do wait "$pid" 2>/dev/null; done
  stop_own_services; rm -rf "$var_pg" "$var_lite" "$reports"
}
trap cleanup EXIT

ensure_tools || exit 1
ensure_services || exit 1

run_id="$$"
status=0
# The tests' own secret key: the services run is a deployment (DATABASE_URL set, DEBUG off), which needs one.
export SECRET_KEY="cryolabel-tests-$run_id-$RANDOM$RANDOM"
reports=$(mktemp -d -t cryolabel-junit.XXXXXX)
var_pg=$(mktemp -d -t cryolabel-test-pg.XXXXXX)
var_lite=$(mktemp -d -t cryolabel-test-lite.XXXXXX)

# The two runs are independent (own database, broker, Redis prefix, var folder, ports) and go side by side: each
# is mostly one pytest process waiting on its own Daphne, worker and Chromium, so together they use both cores.
# Tests whose outcome can depend on the mode run in both; the others once (tests/conftest.py, CRYOLABEL_TEST_RUN:
# pure code in the embedded run, `one_mode` page checks in the services run). Each run's output is printed at the end.
echo; echo "=== runs 1/2 (services mode: PostgreSQL + Redis) and 2/2 (embedded mode: SQLite + filesystem broker), side by side ==="
DATABASE_URL="$TEST_DATABASE_URL" CELERY_BROKER_URL="$TEST_REDIS_URL" REDIS_URL="$TEST_REDIS_URL" \
  CELERY_KEY_PREFIX="cryolabel-test-$run_id:" CHANNELS_PREFIX="cryolabel-test-$run_id" \
  CRYOLABEL_TEST_DB_SUFFIX="_$run_id" CRYOLABEL_VAR_DIR="$var_pg" CRYOLABEL_TEST_RUN=services \
  .venv/bin/pytest --junitxml="$reports/services.xml" --basetemp="$reports/tmp-services" --durations=12 "$@" >"$reports/services.log" 2>&1 &
pid_pg=$!
env -u DATABASE_URL -u CELERY_BROKER_URL -u REDIS_URL \
  CRYOLABEL_TEST_DB_SUFFIX="_$run_id" CRYOLABEL_VAR_DIR="$var_lite" CRYOLABEL_TEST_RUN=embedded \
  .venv/bin/pytest -m "not postgres_only" --junitxml="$reports/embedded.xml" --basetemp="$reports/tmp-embedded" \
  --durations=12 "$@" \
  >"$reports/embedded.log" 2>&1 &
pid_lite=$!
wait $pid_pg || status=1; pid_pg=""
echo; echo "=== run 1/2: services mode (PostgreSQL + Redis) ==="; cat "$reports/services.log"
wait $pid_lite || status=1; pid_lite=""
echo; echo "=== run 2/2: embedded mode (SQLite + filesystem broker) ==="
cat "$reports/embedded.log"

echo
[[ $status -ne 0 ]] && echo "make test: FAILED (see above)" || echo "make test: both modes passed"
# One closing line over both runs.
$PY - "$reports"/*.xml <<'PYEOF'
import sys, xml.etree.ElementTree as ET
passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        failed += 1
        continue
    for suite in root.iter("testsuite"):
        tests, fails, errors, skips = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
        failed += fails + errors
        skipped += skips
        passed += tests - fails - errors - skips
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PYEOF
exit $status
