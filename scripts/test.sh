#!/usr/bin/env bash
# Runs the whole suite in the project venv. Database: SQLite by default, PostgreSQL when
# PREFLOOP_TEST_DATABASE_URL is set. Browser tests need /usr/bin/chromium: they are skipped with
# a message where it is absent, and required when PREFLOOP_REQUIRE_BROWSER=1 (CI).
set -uo pipefail
cd "$(dirname "$0")/.."
backend=${PREFLOOP_TEST_DATABASE_URL:+postgresql}
echo "== prefloop tests on ${backend:-sqlite} =="
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
code=$?
if [ $code -eq 5 ]; then
  echo "pytest collected no tests"
  exit 1
fi
exit $code
