#!/usr/bin/env bash
# ensure-postgres.sh prints the directory holding PostgreSQL's server binaries
# (initdb, postgres, pg_ctl) on stdout.
#
# Order: $POSTGRES_BIN_DIR if set, the highest version in /usr/lib/postgresql/*/bin
# (Debian's layout), the directory of an initdb on PATH, else install Debian's
# postgresql package with apt-get (needs root, or sudo without a password; it
# also creates the unprivileged `postgres` user that tests running as root start
# the server as) and look again. Progress goes to stderr so callers can capture
# the directory: PGBIN="$(scripts/ensure-postgres.sh)".
set -euo pipefail

say() { printf 'ensure-postgres: %s\n' "$*" >&2; }

# has_server DIR: DIR holds the server binaries.
has_server() { [[ -x "$1/initdb" && -x "$1/postgres" && -x "$1/pg_ctl" ]]; }

# find_dir: print the first directory with the server binaries, or fail.
find_dir() {
  local d p
  # Highest major version first: sort -V orders 9.6 < 15 < 16.
  while IFS= read -r d; do
    if has_server "$d"; then echo "$d"; return 0; fi
  done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -rV)
  if p="$(command -v initdb 2>/dev/null)"; then
    d="$(dirname "$(readlink -f "$p")")"
    if has_server "$d"; then echo "$d"; return 0; fi
  fi
  return 1
}

if [[ -n "${POSTGRES_BIN_DIR:-}" ]]; then
  has_server "$POSTGRES_BIN_DIR" || { say "POSTGRES_BIN_DIR=$POSTGRES_BIN_DIR lacks initdb, postgres or pg_ctl"; exit 1; }
  echo "$POSTGRES_BIN_DIR"; exit 0
fi
if find_dir; then exit 0; fi

command -v apt-get >/dev/null || {
  say "no PostgreSQL server found and no apt-get to install one;"
  say "install PostgreSQL and set POSTGRES_BIN_DIR to the directory holding initdb"
  exit 1
}
sudo=""
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null && sudo -n true 2>/dev/null || {
    say "no PostgreSQL server found; installing it needs root:"
    say "  apt-get install -y --no-install-recommends postgresql"
    say "or set POSTGRES_BIN_DIR to the directory holding initdb"
    exit 1
  }
  sudo="sudo -n"
fi

# One installer at a time: parallel test packages may all ask for PostgreSQL.
lock="${TMPDIR:-/tmp}/grpckit-ensure-postgres.lock"
exec 9>"$lock"
if command -v flock >/dev/null && ! flock -n 9; then
  say "waiting for another installation of PostgreSQL to finish (lock $lock)"
  flock 9
  if find_dir; then exit 0; fi
fi

run_apt() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get "$@" >&2; }
apt_install() { run_apt install -y --no-install-recommends postgresql; }
say "no PostgreSQL server found; installing Debian's postgresql package"
if ! apt_install; then
  say "apt-get install failed; updating the package lists and trying again"
  run_apt update || { say "apt-get update failed"; exit 1; }
  apt_install || { say "apt-get install postgresql failed"; exit 1; }
fi
find_dir || { say "installed postgresql, but found no initdb in /usr/lib/postgresql/*/bin or on PATH"; exit 1; }
