#!/usr/bin/env bash
# Runs the passport-sync demo on a fresh machine: creates .venv, installs passport-sync with
# its demo extra, starts a local MariaDB if none answers on 127.0.0.1:3306, then runs
# `passport-sync demo` (three small OpenMRS databases synced into an embedded MongoDB).
# Arguments are passed to the demo, e.g. `scripts/demo.sh --reset`.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[demo]'

bash scripts/ensure-mariadb.sh

exec .venv/bin/passport-sync demo "$@"
