#!/usr/bin/env bash
# Run every molecule scenario that can run on this machine, one after another.
# The `docker` scenario needs a Docker engine: it runs only when `docker info`
# answers, otherwise it is skipped with a message. Extra arguments go to
# `molecule test` (e.g. --destroy=never to keep a failed rehearsal for inspection).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

exclude=()
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  echo "molecule_all: Docker engine found: the docker scenario runs too"
else
  echo "molecule_all: no Docker engine answers 'docker info': skipping the docker scenario"
  exclude=(--exclude docker)
fi

start=$(date +%s)
molecule test --all "${exclude[@]}" "$@"
echo "molecule_all: all scenarios passed in $(( $(date +%s) - start )) s"
