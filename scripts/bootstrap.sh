#!/usr/bin/env bash
# One-time, idempotent set-up of everything pgcutover's rehearsal and tests need on a
# fresh Debian/Ubuntu machine: OS packages (PostgreSQL 15, PgBouncer, pgBackRest,
# sqlite3) and a project virtualenv in .venv with pgcutover, Ansible and molecule.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=(postgresql-15 postgresql-contrib postgresql-client-15 pgbouncer pgbackrest sqlite3 procps psmisc cron lsof)
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "bootstrap: installing OS packages: ${missing[*]}"
  $SUDO apt-get update -qq
  # Do not let the Debian packages start/create their default services (no systemd here).
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.pgcutover-deps
reqhash=$(cat pyproject.toml requirements-dev.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$reqhash" ]; then
  echo "bootstrap: installing Python dependencies into .venv"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -r requirements-dev.txt
  .venv/bin/pip install -q -e '.[test]'
  echo "$reqhash" > "$stamp"
fi
echo "bootstrap: ready (.venv, $(.venv/bin/ansible --version | sed -n 1p))"
