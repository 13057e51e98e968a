#!/usr/bin/env bash
# Installs the passport-sync systemd units, its system user and /etc/passport-sync.
#
#   sudo scripts/install-systemd.sh              install or update (safe to run again)
#   sudo scripts/install-systemd.sh --uninstall  stop and remove the units (keeps config and user)
#
# Never overwrites an existing hospitals.yaml, env file or credential. Environment (for tests
# and unusual layouts):
#   SYSTEMD_DIR=/etc/systemd/system   where the unit files go
#   CONFIG_DIR=/etc/passport-sync     configuration directory (the units name this path)
#   EXAMPLE_CONFIG=<repo>/hospitals.example.yaml   copied to CONFIG_DIR/hospitals.yaml if absent
#   SKIP_USER=1                       do not create the passport-sync user and group
#   SKIP_SYSTEMCTL=1                  do not run systemctl
set -euo pipefail

SERVICE_USER=passport-sync
UNITS="passport-sync.service passport-sync.timer passport-sync@.service passport-sync@.timer"

repo=$(cd "$(dirname "$0")/.." && pwd)
systemd_dir=${SYSTEMD_DIR:-/etc/systemd/system}
config_dir=${CONFIG_DIR:-/etc/passport-sync}
example_config=${EXAMPLE_CONFIG:-$repo/hospitals.example.yaml}
skip_user=${SKIP_USER:-0}
skip_systemctl=${SKIP_SYSTEMCTL:-0}

say() { printf '%s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
}

uninstall=0
for arg in "$@"; do
  case $arg in
    --uninstall) uninstall=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      printf 'error: unknown argument %s\n' "$arg" >&2
      usage >&2
      exit 2
      ;;
  esac
done

is_root() { [ "$(id -u)" -eq 0 ]; }

# Root is needed for everything except a dry install into temp directories (the tests).
if ! is_root; then
  if [ "$skip_user" = 1 ] && [ "$skip_systemctl" = 1 ] && [ -n "${SYSTEMD_DIR:-}" ] && [ -n "${CONFIG_DIR:-}" ]; then
    warn "not root: installing without changing file owners"
  else
    die "run as root (sudo $0 $*)"
  fi
fi

# Whether to run systemctl: not when told not to, nor where systemd is not the running init.
systemctl_ok=0
if [ "$skip_systemctl" != 1 ]; then
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl_ok=1
  else
    warn "systemd is not running here; skipping systemctl (run 'systemctl daemon-reload' yourself)"
  fi
fi

# chown OWNER:GROUP PATH when we can: as root, and once the group exists.
set_owner() {
  local owner=$1 path=$2
  is_root || return 0
  if [ "${owner#*:}" != root ] && ! getent group "${owner#*:}" >/dev/null 2>&1; then
    warn "group ${owner#*:} does not exist; leaving $path owned by $(stat -c %U:%G "$path")"
    return 0
  fi
  chown "$owner" "$path"
}

if [ "$uninstall" = 1 ]; then
  if [ "$systemctl_ok" = 1 ]; then
    # Our timers, including enabled or running passport-sync@<hospital>.timer instances.
    timers=(passport-sync.timer)
    while read -r unit _; do
      timers+=("$unit")
    done < <(systemctl list-units --all --plain --no-legend 'passport-sync@*.timer')
    for link in "$systemd_dir"/timers.target.wants/passport-sync@*.timer; do
      if [ -L "$link" ]; then
        timers+=("${link##*/}")
      fi
    done
    for timer in $(printf '%s\n' "${timers[@]}" | sort -u); do
      systemctl disable --now "$timer" 2>/dev/null || true
    done
    systemctl stop 'passport-sync.service' 'passport-sync@*.service' || true
    say "stopped and disabled: ${timers[*]}"
  fi
  for unit in $UNITS; do
    if [ -e "$systemd_dir/$unit" ]; then
      rm -f "$systemd_dir/$unit"
      say "removed $systemd_dir/$unit"
    fi
  done
  if [ "$systemctl_ok" = 1 ]; then
    systemctl daemon-reload
  fi
  say "Units removed. Kept $config_dir and the $SERVICE_USER user; to remove them too:"
  say "  rm -r $config_dir && userdel $SERVICE_USER"
  exit 0
fi

# --- the system user ----------------------------------------------------------------------
if [ "$skip_user" != 1 ]; then
  if ! getent group "$SERVICE_USER" >/dev/null 2>&1; then
    command -v groupadd >/dev/null 2>&1 || die "groupadd not found; create the system group $SERVICE_USER yourself"
    groupadd --system "$SERVICE_USER"
    say "created group $SERVICE_USER"
  fi
  if ! getent passwd "$SERVICE_USER" >/dev/null 2>&1; then
    command -v useradd >/dev/null 2>&1 || die "useradd not found; create the system user $SERVICE_USER yourself"
    nologin=$(command -v nologin || echo /usr/sbin/nologin)
    useradd --system --gid "$SERVICE_USER" --no-create-home --home-dir /nonexistent \
      --shell "$nologin" --comment "passport-sync (OpenMRS to Patient Passport)" "$SERVICE_USER"
    say "created user $SERVICE_USER"
  fi
fi

# --- /etc/passport-sync ---------------------------------------------------------------------
# The service user may read the directory and hospitals.yaml, not change them. The env file and
# the credentials are read by systemd (as root) before it starts the service: root only.
mkdir -p "$config_dir" "$config_dir/credentials"
chmod 0750 "$config_dir"
set_owner "root:$SERVICE_USER" "$config_dir"
chmod 0700 "$config_dir/credentials"
set_owner root:root "$config_dir/credentials"

config="$config_dir/hospitals.yaml"
if [ -e "$config" ]; then
  say "kept existing $config"
elif [ -f "$example_config" ]; then
  cp "$example_config" "$config"
  chmod 0640 "$config"
  set_owner "root:$SERVICE_USER" "$config"
  say "created $config from $example_config: edit it"
else
  warn "no example configuration at $example_config (set EXAMPLE_CONFIG=path);" \
    "write $config yourself, then: chown root:$SERVICE_USER $config && chmod 0640 $config"
fi

env_file="$config_dir/env"
if [ ! -e "$env_file" ]; then
  (
    umask 077
    cat >"$env_file" <<'ENV'
# Environment of the passport-sync units (read by systemd as root; keep it 0600).
# MONGODB_URI=mongodb://passport-sync:PASSWORD@mongo.example.org:27017/patientpassport?authSource=admin
# OPENMRS_MAX_RECORDS=1000
# OPENMRS_DETAILED_LOGS=false
ENV
  )
  set_owner root:root "$env_file"
  say "created $env_file: set MONGODB_URI there"
else
  say "kept existing $env_file"
fi

# --- unit files -----------------------------------------------------------------------------
mkdir -p "$systemd_dir"
for unit in $UNITS; do
  src="$repo/systemd/$unit"
  [ -f "$src" ] || die "missing $src (run this script from a passport-sync checkout, or from share/passport-sync/scripts/ of an installation)"
  dest="$systemd_dir/$unit"
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
    say "unchanged $dest"
  else
    install -m 0644 "$src" "$dest"
    say "installed $dest"
  fi
done
if [ "$systemctl_ok" = 1 ]; then
  systemctl daemon-reload
fi

# --- the program ----------------------------------------------------------------------------
if [ ! -x /usr/local/bin/passport-sync ]; then
  found=$(command -v passport-sync || true)
  warn "the units run /usr/local/bin/passport-sync, which does not exist${found:+ (found $found)}."
  warn "Install it into a virtualenv outside /home and /root (the units cannot see those) and link it:"
  warn "  python3 -m venv /opt/passport-sync"
  warn "  /opt/passport-sync/bin/pip install $repo"
  warn "  ln -s /opt/passport-sync/bin/passport-sync /usr/local/bin/passport-sync"
fi

cat <<EOF

Next steps:
  1. Edit $config (hospitals) and $env_file (MONGODB_URI).
  2. Database passwords: one root-only file (0600) per hospital,
       $config_dir/credentials/ID-db-password
     and in hospitals.yaml:  password_file: \${CREDENTIALS_DIRECTORY}/ID-db-password
     (passport-sync@ID.service loads its own; for passport-sync.service add one LoadCredential=
      line per hospital with 'systemctl edit passport-sync.service').
  3. Try one run:  systemctl start passport-sync.service  (or passport-sync@ID.service)
                   journalctl -u passport-sync -e
  4. Then start one of:
       systemctl enable --now passport-sync.timer            all hospitals, one run every 5 minutes
       systemctl enable --now passport-sync@central.timer    one timer per hospital (repeat per id)
  5. Watch:  systemctl list-timers 'passport-sync*'    journalctl -u 'passport-sync*' -f
EOF
