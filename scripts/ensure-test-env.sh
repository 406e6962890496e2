#!/usr/bin/env bash
# Runs before `npm test` (npm's pretest hook): makes sure what the tests use for real is there.
#  - PostgreSQL on 127.0.0.1:5432 (Delivery Service store tests): started if it is installed but down.
#  - Debian's headless Chromium at /usr/bin/chromium (browser tests): installed with apt-get when
#    missing and we are root; otherwise we say what to install and stop.
set -euo pipefail

if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "pretest: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  fi
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "pretest: PostgreSQL is not reachable on 127.0.0.1:5432 (set MLSKP_TEST_PG_URL to use another server)" >&2
fi

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "pretest: installing Debian's chromium for the browser tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "pretest: the browser tests need Debian's chromium at /usr/bin/chromium: sudo apt-get install -y chromium" >&2
    exit 1
  fi
fi
