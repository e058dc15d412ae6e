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
pytest_log=$(mktemp)
trap 'rm -f "$pytest_log"' EXIT
python -m pytest -q -ra "$@" 2>&1 | tee "$pytest_log"

echo "== molecule test --all (scenarios runnable here)"
./scripts/molecule_all.sh

# Reaching this line means every step passed (set -e); one closing line for the record.
pytest_passed=$(grep -oE '^[0-9]+ passed' "$pytest_log" | tail -1 | cut -d' ' -f1)
echo "pytest: ${pytest_passed:-0} passed, 0 failed"
