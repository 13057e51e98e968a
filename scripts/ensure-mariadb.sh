#!/usr/bin/env bash
# Starts the local MariaDB server if nothing answers on MYSQL_HOST:MYSQL_PORT (default
# 127.0.0.1:3306) and this machine has one installed; waits until it accepts connections.
set -euo pipefail
host=${PASSPORT_SYNC_TEST_MYSQL_HOST:-127.0.0.1}
port=${PASSPORT_SYNC_TEST_MYSQL_PORT:-3306}

answers() {
  python3 - "$host" "$port" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

if answers; then
  exit 0
fi
if [ -x /usr/sbin/mariadbd ]; then
  echo "starting MariaDB" >&2
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
elif command -v systemctl >/dev/null 2>&1; then
  systemctl start mariadb || systemctl start mysql
fi
for _ in $(seq 1 60); do
  if answers; then
    exit 0
  fi
  sleep 1
done
echo "MariaDB/MySQL does not answer on $host:$port; start it, or set PASSPORT_SYNC_TEST_MYSQL_HOST/PORT" >&2
exit 1
