#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: creates .venv, installs what it needs, starts a
# local MariaDB if none answers on 127.0.0.1:3306, then lint, types and tests.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'

bash scripts/ensure-mariadb.sh

.venv/bin/ruff check passport_sync tests scripts
.venv/bin/ruff format --check passport_sync tests scripts
.venv/bin/mypy
.venv/bin/pytest "$@"
