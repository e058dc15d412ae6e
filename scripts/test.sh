#!/usr/bin/env bash
# The project's test command (README quick start #2, and what CI runs):
# set-up, lint, unit + real-PostgreSQL + Ansible tests, then the molecule rehearsals.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== ansible-lint (production profile)"
ansible-lint --profile production

echo "== pytest (unit, real PostgreSQL 15, Ansible modules, roles, rehearsal)"
python -m pytest -q -ra "$@"

echo "== molecule test --all (scenarios runnable here)"
./scripts/molecule_all.sh
